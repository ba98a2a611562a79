"""Seconds per epoch of the default gru_attention (or --arch) under the speed options worth
trying on a CPU: op determinism off, XLA, a larger batch, one inter-op thread, one intra-op
thread, TensorFlow's oneDNN graph rewrites off.

    python bench/fit_options.py [--epochs 2] [--options baseline,xla,...] [--arch lstm]

Prints two JSON lines per option: mean seconds of --epochs timed epochs after a warm-up
epoch, and validation accuracy after them. Each option runs in a fresh process (TensorFlow's
threading and determinism are fixed once it starts). `xla` compiles the train step with
`jit_compile=True` and pads each batch up to its bucket's boundary, so XLA sees a dozen shapes
rather than one per batch length. `onednn_off` starts its process with
`TF_ENABLE_ONEDNN_OPTS=0`.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OPTIONS = ("baseline", "nondeterministic", "xla", "batch64", "interop1", "intraop1",
           "onednn_off")


def pad_to_bucket_edge(boundaries: list, longest: int):
    import tensorflow as tf

    edges = tf.constant(boundaries + [longest], tf.int32)

    def pad(inputs, labels):
        length = tf.shape(inputs["features"])[1]
        extra = edges[tf.searchsorted(edges, [length])[0]] - length
        return {"features": tf.pad(inputs["features"], [[0, 0], [0, extra], [0, 0]]),
                "mask": tf.pad(inputs["mask"], [[0, 0], [0, extra]])}, labels

    return pad


def measure(option: str, epochs: int, arch: str) -> dict:
    """Runs in the child process."""
    import tensorflow as tf

    from bench.train import time_epochs
    from kerasaudio import datasets, pipeline
    from kerasaudio.config import DataConfig, FeatureConfig, TrainConfig

    if option == "interop1":
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if option == "intraop1":
        tf.config.threading.set_intra_op_parallelism_threads(1)
    batch_size = 64 if option == "batch64" else TrainConfig.batch_size
    data = datasets.load(DataConfig(), FeatureConfig())
    lengths = data.subset("train").lengths
    transform = None
    if option == "xla":  # the same boundaries training_batches derives from the lengths
        transform = pad_to_bucket_edge(pipeline.bucket_boundaries(lengths, batch_size),
                                       int(lengths.max()))
    found = time_epochs(arch, data, bucketing=True, epochs=epochs,
                        batch_size=batch_size, deterministic=option != "nondeterministic",
                        jit_compile=option == "xla", transform=transform)
    return {"seconds_per_epoch": round(found["seconds_per_epoch"], 2),
            "val_accuracy": round(found["val_accuracy"], 4), "batch_size": batch_size}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--arch", default="gru_attention")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.epochs, args.arch)), flush=True)
        return
    for option in args.options.split(","):
        if option not in OPTIONS:
            sys.exit(f"bench/fit_options.py: unknown option {option!r} (one of {OPTIONS})")
        # Only onednn_off turns the rewrites off, whatever the caller's environment says.
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        if option == "onednn_off":
            env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        child = subprocess.run([sys.executable, __file__, "--measure", option,
                                "--epochs", str(args.epochs), "--arch", args.arch],
                               capture_output=True, text=True, check=True, env=env)
        found = json.loads(child.stdout.strip().splitlines()[-1])
        for figure in ("seconds_per_epoch", "val_accuracy"):
            print(json.dumps({"bench": "fit_options", "figure": figure, "value": found[figure],
                              "option": option, "arch": args.arch,
                              "batch_size": found["batch_size"],
                              "epochs": args.epochs}), flush=True)


if __name__ == "__main__":
    main()
