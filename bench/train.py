"""Training speed on spoken-digits: seconds per epoch and examples per second of dense,
gru_attention and cnn2d, with bucketed batches and with every batch padded to the longest
example, measured one after the other in the same run.

    python bench/train.py [--archs dense,gru_attention,cnn2d] [--epochs 2] [--batch-size 32]

Prints one JSON line per figure. Each model trains one warm-up epoch (tracing, first shuffle),
then --epochs timed epochs; both pipelines start from the same seed and weights, so the
validation accuracy after the same epochs shows whether bucketing changes what is learnt.
The models, optimizer and determinism settings are those of `python cli.py fit`.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasaudio import datasets, models, pipeline, train  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig, TrainConfig  # noqa: E402
from kerasaudio.models import heads  # noqa: E402
from kerasaudio.models.inputs import spec_of  # noqa: E402

FEATURES = {"cnn2d": "logmel"}  # the reference runs' features; MFCCs otherwise
DIGITS = {"seconds_per_epoch": 2, "examples_per_second": None, "val_accuracy": 4}


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "train", "figure": figure, "value": value, **extra}), flush=True)


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

    def on_train_begin(self, logs=None):
        self.seconds = []


def time_epochs(arch: str, data, bucketing: bool, epochs: int, batch_size: int,
                deterministic: bool = True, jit_compile: bool = False, transform=None) -> dict:
    """Trains a fresh model (seed 0) and returns its timed epochs and final val accuracy.

    `deterministic` and `jit_compile` default to what `fit` does; `transform` is mapped over
    the training batches (bench/fit_options.py pads them for XLA)."""
    keras.utils.set_random_seed(0)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    trn, val = data.subset("train"), data.subset("val")
    hparams = models.resolve(arch, {})
    model = models.build(arch, spec_of(trn, seed=0), data.tasks, **hparams)
    batches, steps = pipeline.training_batches(trn, batch_size, seed=0, bucketing=bucketing)
    if transform is not None:
        batches = batches.map(transform)
    model.compile(optimizer=train.make_optimizer(TrainConfig(batch_size=batch_size), steps),
                  loss=heads.losses(trn.tasks), metrics=heads.metrics(trn.tasks),
                  jit_compile=jit_compile)
    timer = EpochTimes()
    history = model.fit(batches, validation_data=pipeline.evaluation_batches(val, 256)[0],
                        epochs=1 + epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0,
                        shuffle=False)
    seconds = float(np.mean(timer.seconds[1:]))
    return {"seconds_per_epoch": seconds, "examples_per_second": len(trn.lengths) / seconds,
            "val_accuracy": float(history.history["val_accuracy"][-1])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="dense,gru_attention,cnn2d")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    for arch in args.archs.split(","):
        kind = FEATURES.get(arch, "mfcc")
        data = datasets.load(DataConfig(), FeatureConfig(kind=kind))
        found = {}
        for name, bucketing in (("bucketed", True), ("pad_to_max", False)):
            found[name] = time_epochs(arch, data, bucketing, args.epochs, args.batch_size)
            for figure, value in found[name].items():
                emit(figure, round(value, DIGITS[figure]), arch=arch,
                     features=kind, batches=name, epochs=args.epochs,
                     batch_size=args.batch_size)
        emit("pad_to_max_over_bucketed_seconds",
             round(found["pad_to_max"]["seconds_per_epoch"] /
                   found["bucketed"]["seconds_per_epoch"], 2), arch=arch, features=kind)


if __name__ == "__main__":
    main()
