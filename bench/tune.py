"""Peak resident memory of a Hyperband search after 5, 15 and 30 trials (must stay flat).

    python bench/tune.py [--arch gru_attention] [--limit 200] [--trials 30]

Prints one JSON line per figure. Hyperband with max_epochs 27 starts with 27 one-epoch trials,
so 30 trials build 30 models. Their size is fixed (hidden, layers, batch size; --fix) while
the learning rate and dropout vary, so growth can only be what trials leave behind, not a larger
model drawn later.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasaudio import datasets  # noqa: E402
from kerasaudio.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from tuning import search, spaces  # noqa: E402


class Done(Exception):
    """Raised after the last measured trial: the search itself would go on."""


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    with open("/proc/self/statm") as f:
        current = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="gru_attention")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--fix", action="append", metavar="NAME=VALUE",
                        default=["hidden=128", "layers=2", "batch_size=32"])
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
                for figure, value in (("peak_rss_mib", peak), ("rss_mib", current)):
                    print(json.dumps({"bench": "tune", "figure": figure, "trials": len(finished),
                                      "value": round(value, 1), "arch": args.arch,
                                      "limit": args.limit}), flush=True)
            if len(finished) == args.trials:
                raise Done

        tuner.on_trial_end = measure
        try:
            tuner.search(epochs=27, verbose=0)
        except Done:
            pass


if __name__ == "__main__":
    main()
