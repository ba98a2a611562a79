"""CPU seconds per epoch of the augmented training pipeline alone (no model): what each
waveform augmentation adds to gathering the spoken-digits training split's batches and
computing their features, in one thread, as the main command's `fit` serves them.

    python bench/augment_pipeline.py [--batch-size 64] [--passes 3] [--only none,all,speed]

Prints one JSON line per setting: `none` (the stored features gathered per batch), each
augmentation alone, and `all` (the main command's set). The figure is the least process
CPU time of `--passes` whole epochs after one warm-up epoch (tracing): less noisy than a
training run's seconds per epoch, and the part of them augmentation is responsible for,
since training and the pipeline share the cores.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from kerasaudio import augment, datasets, pipeline  # noqa: E402
from kerasaudio.config import AUGMENTATIONS, DataConfig, feature_defaults  # noqa: E402


def one_thread() -> tf.data.Options:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return options


def epoch_cpu_seconds(train, names: tuple, batch_size: int, passes: int) -> tuple:
    """(least CPU seconds of an epoch over `passes`, steps, frames served in the last)."""
    batches, steps = pipeline.training_batches(train, batch_size, seed=0, augmentations=names)
    batches = iter(batches.with_options(one_thread()))
    for _ in range(steps):  # warm-up: tracing
        next(batches)
    best = float("inf")
    for _ in range(passes):
        start, frames = time.process_time(), 0
        for _ in range(steps):
            frames += int(tf.size(next(batches)[0]["mask"]))
        best = min(best, time.process_time() - start)
    return best, steps, frames


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--only", help="comma-separated settings (default: all of them)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    train = datasets.load(DataConfig(), feature_defaults("spoken-digits")).subset("train")
    settings = args.only.split(",") if args.only else ["none", *AUGMENTATIONS, "all"]
    for setting in settings:
        names = {"none": (), "all": augment.ORDER}.get(setting, (setting,))
        seconds, steps, frames = epoch_cpu_seconds(train, tuple(names), args.batch_size,
                                                   args.passes)
        print(json.dumps({"bench": "augment_pipeline", "setting": setting,
                          "cpu_seconds_per_epoch": round(seconds, 3), "steps": steps,
                          "frames_served": frames, "batch_size": args.batch_size}),
              flush=True)


if __name__ == "__main__":
    main()
