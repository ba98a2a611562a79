"""Utterances per second of corpus synthesis (eSpeak NG) and of MFCC extraction (tf.signal),
on one core and on two.

    python bench/features.py [--speakers 24]

Prints one JSON line per figure. Each core count runs in a fresh process pinned to that many
cores (sched_setaffinity, inherited by the synthesis worker processes and TensorFlow's
threads), so both use the library exactly as `fit` does, only with fewer cores to run on. The
first --speakers speakers of spoken-digits are synthesised (30 utterances each; the first
224 are eSpeak's, Pico's 96 follow) and their MFCCs extracted after a warm-up batch (tracing).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "features", "figure": figure, "value": value, **extra}),
          flush=True)


def measure(cores: int, speakers: int) -> None:
    """Runs in the pinned child process."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    from kerasaudio import features
    from kerasaudio.config import FeatureConfig
    from kerasaudio.datasets import speech_synth

    start = time.perf_counter()
    corpus = speech_synth.synthesize_digits(seed=0, speakers=range(speakers))
    synth_seconds = time.perf_counter() - start
    waves, lengths = corpus["waves"], corpus["lengths"]
    cfg = FeatureConfig()
    features.extract(waves[:lengths[:64].sum()], lengths[:64], cfg, label="warm-up")
    start = time.perf_counter()
    features.extract(waves, lengths, cfg, label="mfcc")
    mfcc_seconds = time.perf_counter() - start
    for figure, seconds in (("synthesis_utterances_per_second", synth_seconds),
                            ("mfcc_utterances_per_second", mfcc_seconds)):
        emit(figure, round(len(lengths) / seconds), cores=cores, utterances=len(lengths))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=24)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # the pinned child
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.speakers)
        return
    found = {}
    for cores in (1, 2):
        child = subprocess.run([sys.executable, __file__, "--measure", str(cores),
                                "--speakers", str(args.speakers)],
                               capture_output=True, text=True, check=True)
        for line in child.stdout.splitlines():
            if line.startswith('{"bench"'):  # the rest is progress bars
                print(line, flush=True)
                record = json.loads(line)
                found[record["figure"], cores] = record["value"]
    for figure in ("synthesis_utterances_per_second", "mfcc_utterances_per_second"):
        emit(figure.replace("utterances_per_second", "speedup_2_over_1_cores"),
             round(found[figure, 2] / found[figure, 1], 2))


if __name__ == "__main__":
    main()
