"""Small real data sets: kerasaudio's default `fit` (minirocket on a .ts file), `fit --folds 5
--ensemble`, `fit --arch conv1d` and aeon's MiniRocket side by side, on the UEA/UCR sets that
ship inside aeon's wheel.

aeon is a benchmark-only tool, never a project dependency: install it in a virtual
environment of its own, which this script runs for MiniRocket and for the data's location:

    python -m venv /tmp/aeon-venv && /tmp/aeon-venv/bin/pip install aeon
    python bench/small_data.py --aeon-python /tmp/aeon-venv/bin/python [--sets A,B] [--seed 0]
        [--skip default,ensemble,conv1d]

Every system trains on NAME_TRAIN.ts and is tested on NAME_TEST.ts (kerasaudio draws its
validation examples, or its folds, from the training file). Prints one JSON line per data
set and system: test accuracy and wall-clock seconds.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ("JapaneseVowels", "BasicMotions", "PickupGestureWiimoteZ", "GunPoint", "ArrowHead")

# MiniRocket (aeon's defaults, 10,000 kernels and a ridge classifier), run in aeon's venv.
# Series of unequal length are zero-padded at the end to the longest one.
MINIROCKET = """
import json, sys, time
import numpy as np
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.datasets import load_from_ts_file

def padded(X, width):
    out = np.zeros((len(X), X[0].shape[0], width))
    for i, x in enumerate(X):
        out[i, :, :x.shape[1]] = x
    return out

train, test, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
Xtr, ytr = load_from_ts_file(train)
Xte, yte = load_from_ts_file(test)
width = max(max(x.shape[1] for x in Xtr), max(x.shape[1] for x in Xte), 9)
start = time.perf_counter()
model = MiniRocketClassifier(random_state=seed).fit(padded(Xtr, width), ytr)
accuracy = float(np.mean(model.predict(padded(Xte, width)) == yte))
print(json.dumps({"accuracy": accuracy, "seconds": time.perf_counter() - start}))
"""


def data_folder(aeon_python: str) -> Path:
    out = subprocess.run([aeon_python, "-c", "import aeon, os; print(os.path.dirname("
                          "aeon.__file__))"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "datasets" / "data"


def minirocket(aeon_python: str, train: Path, seed: int) -> dict:
    test = train.with_name(train.name.replace("_TRAIN", "_TEST"))
    out = subprocess.run([aeon_python, "-c", MINIROCKET, str(train), str(test), str(seed)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def kerasaudio_fit(train: Path, out: Path, seed: int, *options: str) -> dict:
    """Test accuracy of `python cli.py fit --data train ...` (of its ensemble when
    --ensemble is among the options)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "fit", "--data", str(train),
                           "--out", str(out), "--seed", str(seed), *options],
                          capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    (made,) = [p for p in out.iterdir() if p.is_dir()]
    run_dir = made / "ensemble" if "--ensemble" in options else made
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"accuracy": metrics["test"]["accuracy"], "seconds": seconds,
            "run": str(run_dir)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeon-python", required=True)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="small-data-"))
    parser.add_argument("--skip", default="",
                        help="systems to leave out, of default, ensemble, conv1d")
    args = parser.parse_args()
    root = data_folder(args.aeon_python)
    systems = {"default": ("kerasaudio fit (default)", ()),
               "ensemble": ("kerasaudio fit --folds 5 --ensemble",
                            ("--folds", "5", "--ensemble")),
               # The default architecture of .ts files before minirocket.
               "conv1d": ("kerasaudio fit --arch conv1d", ("--arch", "conv1d"))}
    for key in filter(None, args.skip.split(",")):
        if key not in systems:
            parser.error(f"--skip: unknown system {key!r}; valid: {', '.join(systems)}")
        del systems[key]
    for name in args.sets.split(","):
        train = root / name / f"{name}_TRAIN.ts"
        line = {"bench": "small_data", "data": name, "seed": args.seed}
        print(json.dumps({**line, "system": "MiniRocket (aeon)",
                          **minirocket(args.aeon_python, train, args.seed)}), flush=True)
        for system, options in systems.values():
            # A fresh folder per run: the run directory is the one folder made in it.
            (Path(args.work) / name).mkdir(parents=True, exist_ok=True)
            out = Path(tempfile.mkdtemp(dir=Path(args.work) / name))
            print(json.dumps({**line, "system": system,
                              **kerasaudio_fit(train, out, args.seed, *options)}), flush=True)


if __name__ == "__main__":
    main()
