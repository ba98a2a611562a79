"""The built-in music corpus: rendered deterministically, split by song, and heard by the
feature extractors as it was composed (tempo, key)."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasaudio import features
from kerasaudio.config import feature_defaults
from kerasaudio.datasets import music_synth
from kerasaudio.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def as_float(clip):
    return clip.astype(np.float32) / 32768


def test_a_song_renders_the_same_samples_from_the_same_seed_and_others_differ():
    first, again = music_synth.make_song((0, 5, "jazz")), music_synth.make_song((0, 5, "jazz"))
    for a, b in zip(first["clips"], again["clips"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first["targets"] == again["targets"]
    other = music_synth.make_song((0, 6, "jazz"))
    assert not np.array_equal(first["clips"][0], other["clips"][0])
    clip = int(music_synth.CLIP_SECONDS * music_synth.SAMPLE_RATE)
    assert [len(c) for c in first["clips"]] == [clip] * music_synth.CLIPS_PER_SONG
    assert min(np.abs(c).max() for c in first["clips"]) > 1000  # music, not silence


def test_every_genre_fills_every_split_and_a_song_s_clips_stay_together():
    table = music_synth.song_table(seed=0)
    for genre in music_synth.GENRE_NAMES:
        splits = [s["split"] for s in table if s["genre"] == genre]
        assert {name: splits.count(name) for name in music_synth.SPLIT_SONGS} == \
            music_synth.SPLIT_SONGS
    assert [s["split"] for s in music_synth.song_table(seed=1)] != [s["split"] for s in table]
    songs = [0, 1, 31, 200]
    corpus = music_synth.synthesize(seed=0, songs=songs)
    assert list(corpus["song"]) == list(np.repeat(songs, music_synth.CLIPS_PER_SONG))
    for song in songs:
        clips = corpus["song"] == song
        assert len(set(corpus["split"][clips])) == 1
        assert corpus["split"][clips][0] == table[song]["split"]
        assert music_synth.GENRE_NAMES[corpus["genre"][clips][0]] == table[song]["genre"]
    np.testing.assert_array_equal(  # the pool renders what one process renders
        corpus["waves"][:corpus["lengths"][0]], music_synth.make_song((0, 0, "rock"))["clips"][0])
    for target in music_synth.TARGETS:
        assert 0 <= corpus[target].min() and corpus[target].max() <= 1


@pytest.mark.parametrize("genre, index", [("rock", 1), ("disco", 1), ("reggae", 0),
                                          ("ballad", 2), ("march", 1)])
def test_beat_tracking_finds_the_tempo_and_chroma_the_key(genre, index):
    made = music_synth.make_song((0, index, genre))
    song, cfg = made["song"], feature_defaults("music-genres")
    for clip in made["clips"]:
        _, beats = features.beats_of(as_float(clip), cfg)
        tempo = 60 / (np.diff(beats).mean() * cfg.frame_step / cfg.sample_rate)
        ratio = tempo / song["tempo"]
        assert min(abs(ratio / octave - 1) for octave in (0.5, 1, 2)) < 0.04, tempo
    chroma = np.mean([features.chroma_of(as_float(c), cfg).mean(axis=0) for c in made["clips"]],
                     axis=0)
    assert int(np.argmax(chroma)) in (song["tonic"], (song["tonic"] + 7) % 12)


def test_a_missing_renderer_or_soundfont_is_one_clear_error(monkeypatch, tmp_path):
    assert music_synth.version().startswith(f"v{music_synth.CORPUS_VERSION}-")
    monkeypatch.setattr(music_synth, "soundfont_path", lambda: tmp_path / "TimGM6mb.sf2")
    with pytest.raises(UserError, match="TimGM6mb.sf2: no such file"):
        music_synth.version()

    def version(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(UserError, match="needs the package midirenderer"):
        music_synth.version()


def test_targets_are_the_documented_functions_of_the_song():
    song = {"genre": "disco", "mode": "minor", "tempo": 120.0, "drums": True,
            "timing_ms": 0.0, "target_noise": np.zeros(3)}
    notes = {"drums": [(0.0, 0.1, 36, 127)] * 50}  # 5 notes a second at full velocity
    minor = music_synth.targets(song, notes, seconds=10.0)
    tempo = (120 - 60) / 140
    assert minor["valence"] == pytest.approx(0.3 * tempo + 0.2)
    assert minor["energy"] == pytest.approx(0.4 + 0.35 * 5 / 25 + 0.25 * tempo)
    assert minor["danceability"] == pytest.approx(0.6 * 1.0 + 0.4)
    major = music_synth.targets({**song, "mode": "major"}, notes, seconds=10.0)
    assert major["valence"] - minor["valence"] == pytest.approx(0.5)
    loose = music_synth.targets({**song, "drums": False, "timing_ms": 15.0}, notes, 10.0)
    assert loose["danceability"] == pytest.approx(0.6 * 0.5 * 0.5 + 0.4)


def test_fit_trains_cnn2d_on_music_genres_after_data_info(tmp_path, corpus_cache):
    env = {**os.environ, "KERASAUDIO_CACHE": str(corpus_cache)}
    info = subprocess.run([sys.executable, "cli.py", "data", "info", "--data", "music-genres",
                           "--out", str(tmp_path / "info")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "| jazz | 63 | 9 | 18 |" in info.stdout and "## danceability (regression" in info.stdout
    fit = subprocess.run([sys.executable, "cli.py", "fit", "--data", "music-genres", "--arch",
                          "cnn2d", "--tasks", "genre", "--epochs", "1", "--limit", "32",
                          "--out", str(tmp_path / "runs")],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "metrics.json").is_file() and (run / "best.keras").is_file()
