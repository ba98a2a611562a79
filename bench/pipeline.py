"""The input pipeline on spoken-digits: padded frames with bucketing vs padding every batch to
the longest example, examples per second of the pipeline alone (no model), and whether the
fastest consumer, the dense model, waits on it.

    python bench/pipeline.py [--batch-size 32] [--epochs 3] [--throughput-epochs 10]

Prints one JSON line per figure. The padding is the worst of `--epochs` epochs. The
throughput is the best of 3 passes of `--throughput-epochs` whole epochs each, after one
warm-up epoch, on the training split with the default features: an epoch takes the
pipeline about 30 ms, too short to time alone. The dense model's `fit` is timed the same way
reading from the pipeline and from one epoch of batches cached in memory: if training waited
on data, the cached batches would train faster.
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

from kerasaudio import datasets, models, pipeline, train  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig, TrainConfig  # noqa: E402
from kerasaudio.models.inputs import spec_of  # noqa: E402


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "pipeline", "figure": figure, "value": value, **extra}),
          flush=True)


def best_seconds(fn, passes: int = 3) -> float:
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def dense_fit_seconds(data, ds, steps: int, epochs: int) -> float:
    """Best of 3 passes of `epochs` epochs of the default dense model's fit on `ds`."""
    keras.utils.set_random_seed(0)
    model = models.build("dense", spec_of(data, seed=0), data.tasks)
    train.compile_model(model, TrainConfig(), steps, data.tasks)
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)  # warm-up: tracing, caches
    return best_seconds(lambda: model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--throughput-epochs", type=int, default=10)
    args = parser.parse_args()

    train = datasets.load(DataConfig(), FeatureConfig()).subset("train")
    lengths = train.lengths
    boundaries = pipeline.bucket_boundaries(lengths, args.batch_size)
    padding = pipeline.padding_per_epoch(lengths, args.batch_size, seed=0, boundaries=boundaries)
    bucketed = [next(padding) for _ in range(args.epochs)]
    emit("padded_fraction_bucketed", round(max(bucketed), 4), epochs=args.epochs,
         note="worst epoch")
    emit("padded_fraction_pad_to_max", round(1 - lengths.mean() / lengths.max(), 4))

    batches, steps = pipeline.training_batches(train, args.batch_size, seed=0,
                                               boundaries=boundaries)
    batches = iter(batches)
    for _ in range(steps):  # warm-up: tracing and the first epoch
        next(batches)

    def read_epochs():
        for _ in range(args.throughput_epochs * steps):
            next(batches)

    seconds = best_seconds(read_epochs)
    examples = args.throughput_epochs * len(lengths)
    common = {"batch_size": args.batch_size, "examples": len(lengths),
              "epochs": args.throughput_epochs, "note": "best of 3 passes"}
    emit("pipeline_examples_per_second", round(examples / seconds), **common)

    ds, steps = pipeline.training_batches(train, args.batch_size, seed=0, boundaries=boundaries)
    fed = dense_fit_seconds(train, ds, steps, args.throughput_epochs)
    cached = dense_fit_seconds(train, ds.take(steps).cache().repeat(), steps,
                               args.throughput_epochs)
    emit("dense_fit_examples_per_second", round(examples / fed), source="pipeline", **common)
    emit("dense_fit_examples_per_second", round(examples / cached), source="memory", **common)
    emit("pipeline_over_dense_fit", round(fed / seconds, 1))


if __name__ == "__main__":
    main()
