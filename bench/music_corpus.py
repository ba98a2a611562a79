"""The music-genres corpus: how long it takes to render and how big it is, and whether the
feature extractors hear what was composed: the tempo of the beats that beat tracking
detects (the ones `--beat-sync` uses) against the composed tempo, and the strongest pitch
class of each clip's chroma against the song's key.

    python bench/music_corpus.py [--seed 0]

Renders the corpus afresh (the cache is neither read nor written), then prints one JSON line
per figure: render seconds, clips and MB; the share of clips whose detected tempo is within
4 % of the composed one or of its double or half; the share whose chroma peaks on the key's
tonic or dominant; both also per genre.
"""

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kerasaudio import features  # noqa: E402
from kerasaudio.config import feature_defaults  # noqa: E402
from kerasaudio.datasets import music_synth  # noqa: E402

TEMPO_TOLERANCE = 0.04


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "music_corpus", "figure": figure, "value": value, **extra}),
          flush=True)


def heard(clip: np.ndarray) -> tuple:
    """(detected tempo, strongest chroma pitch class) of one int16 clip. The detected tempo
    is that of the beats `--beat-sync` cuts the clip at: 60 s over their mean interval
    (finer than the tempo estimate that guides the tracker, which moves in whole frames of
    lag: 32 ms is 4 % at 170 bpm)."""
    cfg = feature_defaults("music-genres")
    y = clip.astype(np.float32) / 32768
    _, beats = features.beats_of(y, cfg)
    seconds_per_beat = np.diff(beats).mean() * cfg.frame_step / cfg.sample_rate
    return 60.0 / seconds_per_beat, int(np.argmax(features.chroma_of(y, cfg).mean(axis=0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    corpus = music_synth.synthesize(args.seed)
    emit("render_seconds", round(time.perf_counter() - start, 1), cores=os.cpu_count())
    emit("clips", int(len(corpus["lengths"])))
    emit("megabytes", round(corpus["waves"].nbytes / 1e6, 1),
         sample_rate=music_synth.SAMPLE_RATE)

    clips = np.split(corpus["waves"], np.cumsum(corpus["lengths"])[:-1])
    with multiprocessing.get_context("forkserver").Pool() as pool:
        detected = pool.map(heard, clips, chunksize=8)
    tempo = np.array([t for t, _ in detected])
    ratio = tempo / corpus["tempo"]
    tempo_ok = np.min([np.abs(ratio / k - 1) for k in (0.5, 1.0, 2.0)], axis=0) < TEMPO_TOLERANCE
    top = np.array([c for _, c in detected])
    key_ok = (top == corpus["tonic"]) | (top == (corpus["tonic"] + 7) % 12)
    emit("tempo_within_4_percent", round(float(tempo_ok.mean()), 4),
         by_genre={g: round(float(tempo_ok[corpus["genre"] == i].mean()), 4)
                   for i, g in enumerate(music_synth.GENRE_NAMES)})
    emit("chroma_peak_is_tonic_or_dominant", round(float(key_ok.mean()), 4),
         by_genre={g: round(float(key_ok[corpus["genre"] == i].mean()), 4)
                   for i, g in enumerate(music_synth.GENRE_NAMES)})


if __name__ == "__main__":
    main()
