"""Peak resident memory of a Hyperband search after 5, 15 and 30 trials (must stay flat).

    python bench/tune.py [--arch gru_attention] [--limit 200] [--trials 30]

Prints one JSON line per figure: the resident memory of the search process (which holds the
oracle and the data), now and at its peak, and the peak of the largest trial process so far
(each trial runs in a process of its own). Hyperband with max_epochs 27 starts with 27 one-epoch
trials, so 30 trials build 30 models. Their size is fixed (hidden, layers; --fix) while the
learning rate, batch size and dropout vary, so the search process can only grow by what trials
leave behind, not by a larger model drawn later. (Fixing the batch size too leaves 25
configurations, fewer than the trials measured.)
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasaudio import datasets  # noqa: E402
from kerasaudio.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from tuning import search, spaces  # noqa: E402


class Done(Exception):
    """Raised after the last measured trial: the search itself would go on."""


def rss_mib(pid: str = "self") -> tuple[float, float]:
    """(current, peak) resident set size of a process in MiB, from /proc (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


class TrialPeaks(threading.Thread):
    """Samples the peak resident memory of the trial processes this process spawns.

    Read from each child's own VmHWM while it runs: `getrusage(RUSAGE_CHILDREN)` would report
    at least the parent's size at fork, not what the trial used."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = 0.0

    def run(self):
        while True:
            for task in Path("/proc/self/task").iterdir():
                for child in (task / "children").read_text().split():
                    try:
                        # Between fork and exec a child still reports the parent's peak.
                        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                            self.peak = max(self.peak, rss_mib(child)[1])
                    except (FileNotFoundError, ProcessLookupError, KeyError):
                        pass  # ended (or became a zombie) while we looked
            time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="gru_attention")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--fix", action="append", metavar="NAME=VALUE",
                        default=["hidden=128", "layers=2"])
    args = parser.parse_args()
    marks = sorted({5, 15, args.trials})

    run = RunConfig(data=DataConfig(limit=args.limit), train=TrainConfig(patience=3))
    dataset = datasets.load(run.data, run.features)
    with tempfile.TemporaryDirectory() as out:
        cfg = search.SearchConfig(run=run, archs=[args.arch],
                                  overrides=spaces.Overrides.parse(fix=args.fix),
                                  tuner="hyperband", max_epochs=27, name="bench", out=out)
        tuner = search.make_tuner(cfg, dataset, search.validate(cfg))
        finished = []
        on_trial_end = tuner.on_trial_end

        def measure(trial):
            on_trial_end(trial)
            finished.append(trial.trial_id)
            if len(finished) in marks:
                current, peak = rss_mib()
                figures = {"rss_mib": current, "peak_rss_mib": peak,
                           "trial_peak_rss_mib": trials.peak}
                for figure, value in figures.items():
                    print(json.dumps({"bench": "tune", "figure": figure, "trials": len(finished),
                                      "value": round(value, 1), "arch": args.arch,
                                      "limit": args.limit}), flush=True)
            if len(finished) == args.trials:
                raise Done

        tuner.on_trial_end = measure
        trials = TrialPeaks()
        trials.start()
        try:
            tuner.search(epochs=27, verbose=0)
        except Done:
            return
        sys.exit(f"bench/tune.py: the search ended after {len(finished)} trials, before "
                 f"{args.trials}: its space has too few configurations (fix fewer with --fix)")


if __name__ == "__main__":
    main()
