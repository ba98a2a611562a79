"""The input pipeline on spoken-digits: padded frames with bucketing vs padding every batch to
the longest example, and examples per second of the pipeline alone (no model).

    python bench/pipeline.py [--batch-size 32] [--epochs 3]

Prints one JSON line per figure. The throughput is measured over whole epochs after one
warm-up epoch, on the training split with the default features.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasaudio import datasets, pipeline  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig  # noqa: E402


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "pipeline", "figure": figure, "value": value, **extra}),
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    train = datasets.load(DataConfig(), FeatureConfig()).subset("train")
    lengths = train.lengths
    boundaries = pipeline.bucket_boundaries(lengths)
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
    start = time.perf_counter()
    for _ in range(args.epochs * steps):
        next(batches)
    seconds = time.perf_counter() - start
    emit("pipeline_examples_per_second", round(args.epochs * len(lengths) / seconds),
         batch_size=args.batch_size, examples=len(lengths))


if __name__ == "__main__":
    main()
