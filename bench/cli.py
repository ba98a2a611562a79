"""Wall time of `python cli.py --help` and `python cli.py fit --help` (best of N runs).

    python bench/cli.py [--runs 5]

Prints one JSON line per figure. Both must stay fast because neither may import TensorFlow.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall_time(argv: list, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "cli.py", *argv], cwd=ROOT, check=True,
                       capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for argv in (["--help"], ["fit", "--help"]):
        print(json.dumps({"bench": "cli", "figure": "wall_seconds",
                          "command": " ".join(["python cli.py", *argv]),
                          "value": round(wall_time(argv, args.runs), 3), "runs": args.runs}),
              flush=True)


if __name__ == "__main__":
    main()
