"""Wall-clock seconds until gru_attention first reaches a validation accuracy on spoken-digits,
at TrainConfig's batch 32 and lr 1e-3 and with the options that train faster per epoch.

    python bench/time_to_accuracy.py [--target 0.98] [--max-epochs 15] [--options a,b]

Each option runs `kerasaudio.train.fit` (everything the CLI's `fit` does) in a fresh process;
the clock starts when training starts (data loaded, model built) and stops at the end of the
first epoch whose validation accuracy reaches --target. Prints one JSON line per option:
seconds, epochs, and the accuracy reached (null seconds: not reached within --max-epochs).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TrainConfig fields of each option. The baseline is TrainConfig's batch 32 and lr 1e-3, what
# `python cli.py fit --arch gru_attention` used until the last option became its default.
OPTIONS = {"baseline": {}, "batch64": {"batch_size": 64},
           "batch64_lr2e-3": {"batch_size": 64, "lr": 2e-3}}


def measure(option: str, target: float, max_epochs: int) -> dict:
    import keras

    from kerasaudio import train
    from kerasaudio.config import RunConfig, TrainConfig

    class Reach(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.seconds, self.epochs, self.best = time.perf_counter(), None, 0, 0.0

        def on_epoch_end(self, epoch, logs=None):
            self.epochs, self.best = epoch + 1, max(self.best, logs["val_accuracy"])
            if logs["val_accuracy"] >= target:
                self.seconds = round(time.perf_counter() - self.start, 1)
                self.model.stop_training = True

    reach = Reach()
    with tempfile.TemporaryDirectory() as out:
        cfg = RunConfig(train=TrainConfig(epochs=max_epochs, **OPTIONS[option]), out=out)
        train.fit(cfg, verbose=0, resume=False, callbacks=[reach])
    return {"bench": "time_to_accuracy", "figure": f"{option}_seconds", "value": reach.seconds,
            "epochs": reach.epochs, "best_val_accuracy": round(reach.best, 4),
            "target": target, **OPTIONS[option]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.98)
    parser.add_argument("--max-epochs", type=int, default=15)
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's option
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.target, args.max_epochs)), flush=True)
        return
    for option in args.options.split(","):
        if option not in OPTIONS:
            sys.exit(f"unknown option {option!r}; valid: {', '.join(OPTIONS)}")
        subprocess.run([sys.executable, __file__, "--one", option, "--target", str(args.target),
                        "--max-epochs", str(args.max_epochs)], check=True)


if __name__ == "__main__":
    main()
