"""Where a spoken-digits run's test errors are: error rate by speech-band SNR, recording
channel, voice and gender of the synthetic test speakers, and the most frequent confusions.

    python bench/errors_by_condition.py RUN_DIR

Reads RUN_DIR/predictions.csv and the cached corpus (the run's data seed). Prints one JSON
line per group.
"""

import argparse
import collections
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kerasaudio import runs  # noqa: E402
from kerasaudio.datasets import speech_synth  # noqa: E402

# Five-dB bands over the corpus's whole range of SNRs; the last one includes its top.
LOWEST, HIGHEST = speech_synth.DIGIT_SNR_DB_RANGE
SNR_BANDS = [(lo, lo + 5.0) for lo in np.arange(LOWEST, HIGHEST, 5.0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    args = parser.parse_args()
    record = runs.read_record(args.run_dir)
    if record.config.data.name != "spoken-digits":
        sys.exit(f"{args.run_dir}: a run on {record.config.data.name}, not spoken-digits")
    corpus = speech_synth.load_corpus("spoken-digits", record.config.data.seed)
    with open(Path(args.run_dir) / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # predictions.csv lists the test split in the data's order; "index" is the place in it.
    if record.config.data.limit:
        sys.exit(f"{args.run_dir}: trained with --limit; its test split is not the corpus's")
    test = np.flatnonzero(corpus["split"] == "test")[[int(r["index"]) for r in rows]]
    truth = [speech_synth.DIGITS[d] for d in corpus["digit"][test]]
    if truth != [r["digit_true"] for r in rows]:
        sys.exit(f"{args.run_dir}: its predictions do not line up with the corpus's test split")
    wrong = np.array([r["digit_true"] != r["digit_pred"] for r in rows])
    snr = corpus["snr_db"][test]
    groups = {f"snr {lo:g}..{hi:g} dB": (snr >= lo) & ((snr < hi) | (hi >= HIGHEST))
              for lo, hi in SNR_BANDS}
    for key in ("channel", "voice", "gender"):
        values = np.asarray(corpus[key])[test]
        groups |= {f"{key} {v}": values == v for v in sorted(set(values.tolist()))}
    for name, members in groups.items():
        print(json.dumps({"bench": "errors_by_condition", "group": name,
                          "examples": int(members.sum()),
                          "error_rate": round(float(wrong[members].mean()), 4)}))
    confusions = collections.Counter((r["digit_true"], r["digit_pred"]) for r in rows
                                     if r["digit_true"] != r["digit_pred"])
    print(json.dumps({"bench": "errors_by_condition", "errors": int(wrong.sum()),
                      "of": len(rows), "confusions": [
                          [t, p, n] for (t, p), n in confusions.most_common(8)]}))


if __name__ == "__main__":
    main()
