"""Seconds per epoch of the default gru_attention under the speed options worth trying on a
CPU: op determinism off, XLA, a larger batch, one inter-op thread.

    python bench/fit_options.py [--epochs 2] [--options baseline,xla,...]

Prints two JSON lines per option: mean seconds of --epochs timed epochs after a warm-up
epoch, and validation accuracy after them. Each option runs in a fresh process (TensorFlow's
threading and determinism are fixed once it starts). `xla` compiles the train step with
`jit_compile=True` and pads each batch up to its bucket's boundary, so XLA sees a dozen shapes
rather than one per batch length.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPTIONS = ("baseline", "nondeterministic", "xla", "batch64", "interop1")


def pad_to_bucket_edge(boundaries: list, longest: int):
    import tensorflow as tf

    edges = tf.constant(boundaries + [longest], tf.int32)

    def pad(inputs, labels):
        length = tf.shape(inputs["features"])[1]
        extra = edges[tf.searchsorted(edges, [length])[0]] - length
        return {"features": tf.pad(inputs["features"], [[0, 0], [0, extra], [0, 0]]),
                "mask": tf.pad(inputs["mask"], [[0, 0], [0, extra]])}, labels

    return pad


def measure(option: str, epochs: int) -> dict:
    """Runs in the child process."""
    import keras
    import tensorflow as tf

    from kerasaudio import datasets, models, pipeline, train
    from kerasaudio.config import DataConfig, FeatureConfig, TrainConfig
    from kerasaudio.models import heads
    from kerasaudio.models.inputs import InputSpec

    keras.utils.set_random_seed(0)
    if option != "nondeterministic":
        tf.config.experimental.enable_op_determinism()  # what fit does
    if option == "interop1":
        tf.config.threading.set_inter_op_parallelism_threads(1)
    batch_size = 64 if option == "batch64" else TrainConfig.batch_size
    data = datasets.load(DataConfig(), FeatureConfig())
    trn, val = data.subset("train"), data.subset("val")
    mean, variance = trn.frame_statistics()
    model = models.build("gru_attention", InputSpec(data.n_features, mean, variance), data.tasks,
                         **models.resolve("gru_attention", {}))
    boundaries = pipeline.bucket_boundaries(trn.lengths)
    batches = pipeline.training_batches(trn, batch_size, seed=0, boundaries=boundaries)
    if option == "xla":
        batches = batches.map(pad_to_bucket_edge(boundaries, int(trn.lengths.max())))
    steps = int(batches.cardinality().numpy())
    model.compile(optimizer=train.make_optimizer(TrainConfig(batch_size=batch_size), steps),
                  loss=heads.losses(trn.tasks), metrics=heads.metrics(trn.tasks),
                  jit_compile=option == "xla")
    seconds = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.__setitem__(-1, seconds[-1] + time.perf_counter()))
    history = model.fit(batches, validation_data=pipeline.evaluation_batches(val, 256)[0],
                        epochs=1 + epochs, callbacks=[timer], verbose=0, shuffle=False)
    return {"seconds_per_epoch": round(sum(seconds[1:]) / epochs, 2),
            "val_accuracy": round(float(history.history["val_accuracy"][-1]), 4),
            "batch_size": batch_size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.epochs)), flush=True)
        return
    for option in args.options.split(","):
        if option not in OPTIONS:
            sys.exit(f"bench/fit_options.py: unknown option {option!r} (one of {OPTIONS})")
        child = subprocess.run([sys.executable, __file__, "--measure", option,
                                "--epochs", str(args.epochs)],
                               capture_output=True, text=True, check=True)
        found = json.loads(child.stdout.strip().splitlines()[-1])
        for figure in ("seconds_per_epoch", "val_accuracy"):
            print(json.dumps({"bench": "fit_options", "figure": figure, "value": found[figure],
                              "option": option, "batch_size": found["batch_size"],
                              "epochs": args.epochs}), flush=True)


if __name__ == "__main__":
    main()
