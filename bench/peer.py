"""kerasaudio's gru_attention against the PyTorch reference
(../shared/peers/torch_gru_attention.py), or its lstm against the reference's LSTM variant
(bench/torch_lstm.py), on the spoken-digits MFCC splits: seconds per epoch and test accuracy
of both, one after the other in the same run, with the same hidden size, layers, batch size
and epochs.

    python3 -m venv /tmp/torch-peer && /tmp/torch-peer/bin/pip install torch==2.13.0 numpy
    python bench/peer.py [--arch gru_attention|lstm] [--torch-python /tmp/torch-peer/bin/python]
        [--epochs 3] [--seed 0]

Prints one JSON line per figure. The project never depends on torch: the reference runs in its
own virtual environment. Both train on the training split for a fixed number of epochs (no early
stopping) and are tested on the test split. The reference runs twice: padding each batch to
its longest sequence, and with `--bucket` (batches of similar length, as kerasaudio's), which
is the comparison of equal work. Seconds per epoch are training time over epochs; kerasaudio's
are given with its per-epoch validation pass (600 examples against the 6,600 it trains on an
epoch), which the reference does not run, and without it (the time of those passes, measured
by a callback, taken off).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasaudio import datasets, train  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402,E501

# The PyTorch reference of each architecture compared.
PEERS = {"gru_attention": ROOT.parent / "shared" / "peers" / "torch_gru_attention.py",
         "lstm": ROOT / "bench" / "torch_lstm.py"}
# The references have no convolutions before their recurrent layers.
PEER_HPARAMS = {"gru_attention": {"conv_layers": 0}}


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "peer", "figure": figure, "value": value, **extra}), flush=True)


def export_npz(data, path: Path) -> None:
    """The splits in the reference's layout: concatenated frames, lengths, class indices."""
    arrays = {}
    for split in ("train", "test"):
        part = data.subset(split)
        arrays[f"x_{split}"] = part.frames.astype(np.float32)
        arrays[f"len_{split}"] = part.lengths.astype(np.int64)
        arrays[f"y_{split}"] = part.targets[part.tasks[0].name].astype(np.int64)
    np.savez(path, **arrays)


def run_peer(python: str, npz: Path, args, bucket: bool) -> dict:
    command = [python, str(PEERS[args.arch]), "--npz", str(npz), "--seed", str(args.seed),
               "--epochs", str(args.epochs), "--batch", str(args.batch_size),
               "--hidden", str(args.hidden), "--layers", str(args.layers),
               "--threads", str(os.cpu_count()),
               *(["--bucket"] if bucket else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench/peer.py: the reference failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class ValidationTime(keras.callbacks.Callback):
    """Seconds spent in the validation passes `fit` runs at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def on_test_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.seconds += time.perf_counter() - self.start


def run_kerasaudio(data, out: Path, args) -> dict:
    cfg = RunConfig(
        model=ModelConfig(arch=args.arch,
                          hparams={"hidden": args.hidden, "layers": args.layers,
                                   **PEER_HPARAMS.get(args.arch, {})}),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                          patience=args.epochs),  # fixed epochs, like the reference
        out=str(out))
    validation = ValidationTime()
    _, metrics = train.fit(cfg, data, verbose=0, callbacks=[validation])
    epochs = metrics["epochs_run"]
    return {"test_accuracy": metrics["test"]["accuracy"],
            "seconds_per_epoch": metrics["train_seconds"] / epochs,
            "seconds_per_epoch_without_validation":
                (metrics["train_seconds"] - validation.seconds) / epochs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default="/tmp/torch-peer/bin/python",
                        help="python of a virtual environment with torch and numpy")
    parser.add_argument("--arch", choices=sorted(PEERS), default="gru_attention")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of both (weights, shuffling); run several for accuracy")
    args = parser.parse_args()
    if not Path(args.torch_python).exists():
        sys.exit(f"bench/peer.py: {args.torch_python}: no such python; set it up as the "
                 "docstring says, or pass --torch-python")

    data = datasets.load(DataConfig(), FeatureConfig())
    settings = {"arch": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
                "hidden": args.hidden, "layers": args.layers, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        export_npz(data, Path(tmp) / "digits.npz")
        padded = run_peer(args.torch_python, Path(tmp) / "digits.npz", args, bucket=False)
        bucketed = run_peer(args.torch_python, Path(tmp) / "digits.npz", args, bucket=True)
        ours = run_kerasaudio(data, Path(tmp) / "runs", args)
    for name, found in (("torch, padded to the batch's longest", padded),
                        ("torch, bucketed", bucketed), ("kerasaudio", ours)):
        emit("seconds_per_epoch", round(found["seconds_per_epoch"], 2), system=name, **settings)
        emit("test_accuracy", round(found["test_accuracy"], 4), system=name, **settings)
    emit("seconds_per_epoch_without_validation",
         round(ours["seconds_per_epoch_without_validation"], 2), system="kerasaudio", **settings)
    for name, found in (("padded", padded), ("bucketed", bucketed)):
        for mine in ("seconds_per_epoch", "seconds_per_epoch_without_validation"):
            emit(f"kerasaudio_over_torch_{name}", round(ours[mine] / found["seconds_per_epoch"], 2),
                 kerasaudio=mine, **settings)


if __name__ == "__main__":
    main()
