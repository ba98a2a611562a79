"""Users' data: each reader on small files made here, and its answers to bad input."""

import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import make_sequences

from kerasaudio import audio, datasets, predict, settings, train
from kerasaudio.config import DataConfig, FeatureConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.datasets.base import read_frames
from kerasaudio.errors import UserError
from tuning import spaces

ROOT = Path(__file__).resolve().parents[1]

TS_HEADER = """# made by the tests
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2 3
@data
"""


def ts_case(rng, label: int) -> str:
    """A case whose class is which dimension carries an offset; 2 dimensions, 4-12 steps."""
    length = int(rng.integers(4, 13))
    x = rng.standard_normal((2, length)) * 0.3
    x[(label - 1) % 2] += 1.5 if label < 3 else -1.5
    return ":".join(",".join(f"{v:.4f}" for v in row) for row in x) + f":{label}"


def write_ts(folder, n_train=60, n_test=30, seed=0, name="Toy"):
    rng = np.random.default_rng(seed)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        cases = [ts_case(rng, 1 + i % 3) for i in range(n)]
        (folder / f"{name}_{split}.ts").write_text(TS_HEADER + "\n".join(cases) + "\n")
    return folder / f"{name}_TRAIN.ts"


def test_a_ts_pair_loads_with_a_validation_share_and_trains(tmp_path):
    path = write_ts(tmp_path)
    data = datasets.load(DataConfig(name=str(path)), FeatureConfig())
    assert data.n_features == 2 and data.class_names == {"class": ["1", "2", "3"]}
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 54, "val": 6, "test": 30}
    assert sorted(np.bincount(data.subset("val").targets["class"])) == [2, 2, 2]  # stratified
    assert data.features.kind == "given"
    cfg = RunConfig(data=DataConfig(name=str(path)), out=str(tmp_path / "runs"),
                    model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=1, batch_size=8))
    run_dir, metrics = train.fit(cfg, verbose=0)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    assert runs_features(run_dir) == "given"
    # Given either file of the pair, the same data set.
    other = datasets.load(DataConfig(name=str(tmp_path / "Toy_TEST.ts")), FeatureConfig())
    np.testing.assert_array_equal(other.frames, data.frames)


def runs_features(run_dir) -> str:
    import json

    return json.loads((run_dir / "config.json").read_text())["features"]["kind"]


BAD_TS = {
    "nan": ("1,2,?:3,4,5:1", r"Toy_TRAIN.ts:10: missing, NaN or infinite values"),
    "text": ("1,2,x:3,4,5:1", r"Toy_TRAIN.ts:10: a value that is not a number"),
    "lengths": ("1,2:3,4,5:1", r"Toy_TRAIN.ts:10: dimensions of different lengths \(2, 3\)"),
    "dimensions": ("1,2,3:1", r"Toy_TRAIN.ts:10: 1 dimensions, expected 2"),
    "label": ("1,2:3,4:7", r"Toy_TRAIN.ts:10: class '7' is not in @classLabel \(1 2 3\)"),
    "no label": ("1,2:3,4:", r"Toy_TRAIN.ts:10: expected dimensions separated by ':'"),
    "huge values": ("1e30,2:3,4:1", r"Toy_TRAIN.ts:10: values up to 1e\+30; beyond 1e\+15"),
}


def test_a_time_series_file_trains_minirocket_unless_an_arch_is_given(tmp_path):
    train_file = write_ts(tmp_path)
    data = DataConfig(name=str(train_file))
    assert settings.default_arch(data) == "minirocket"
    assert settings.default_arch(DataConfig()) == "gru_attention"  # spoken-digits
    no_options = spaces.Overrides.parse()
    assert spaces.archs(None, no_options, data) == ["minirocket"]  # tune's default is fit's
    assert spaces.archs("gru", no_options, data) == ["gru"]
    for given, arch in (((), "minirocket"), (("--arch", "dense"), "dense")):
        out = tmp_path / arch
        result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "fit", "--data",
                                 str(train_file), "--epochs", "1", "--out", str(out), *given],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-2000:]
        (run_dir,) = out.iterdir()
        assert json.loads((run_dir / "config.json").read_text())["model"]["arch"] == arch


@pytest.mark.parametrize("case", BAD_TS)
def test_a_bad_ts_case_is_named_by_file_and_line(tmp_path, case):
    path = write_ts(tmp_path)
    line, message = BAD_TS[case]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:9] + [line] + lines[9:]) + "\n")
    with pytest.raises(UserError, match=message):
        datasets.load(DataConfig(name=str(path)), FeatureConfig())


def test_bad_ts_files_and_pairs_are_named(tmp_path):
    path = write_ts(tmp_path)
    load = lambda p: datasets.load(DataConfig(name=str(p)), FeatureConfig())  # noqa: E731
    (tmp_path / "Toy_TEST.ts").unlink()
    with pytest.raises(UserError, match=r"Toy_TEST.ts: no such file \(the test split\)"):
        load(path)
    write_ts(tmp_path)
    (tmp_path / "Toy_TEST.ts").write_text(TS_HEADER.replace(" 1 2 3", " 1 2 3 4") + "1,2:3,4:4\n")
    with pytest.raises(UserError, match=r"Toy_TEST.ts: class '4' does not occur in Toy_TRAIN"):
        load(path)
    path.write_text(TS_HEADER.replace("@data\n", ""))
    with pytest.raises(UserError, match="Toy_TRAIN.ts: no @data line"):
        load(path)
    path.write_text(TS_HEADER.replace("@timeStamps false", "@timeStamps true"))
    with pytest.raises(UserError, match="Toy_TRAIN.ts:3: time-stamped values are not supported"):
        load(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UserError, match="Toy_TRAIN.ts: not a readable .ts text file"):
        load(path)
    write_ts(tmp_path)
    path.write_text(TS_HEADER + "1,2:3,4:1\n1,2:3,4:2\n")
    with pytest.raises(UserError, match="Toy_TRAIN.ts: every class has one example, which "
                                        "--val-fraction would take from training"):
        load(path)
    (tmp_path / "other.ts").write_text(TS_HEADER)
    with pytest.raises(UserError, match="other.ts: expected a name ending in _TRAIN.ts"):
        load(tmp_path / "other.ts")
    with pytest.raises(UserError, match=r"nowhere: no such file or folder, and not a built-in"):
        load("nowhere")


def test_every_format_the_cli_offers_has_a_reader():
    from kerasaudio.config import DATA_FORMATS

    assert set(DATA_FORMATS) == set(datasets.READERS)


PITCHES = {"low": 220.0, "mid": 660.0, "high": 1980.0}


def write_tone(path, pitch: float, rng, rate: int = 16000, subtype: str = "PCM_16"):
    import soundfile

    t = np.arange(int(rng.uniform(0.1, 0.3) * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, wave, rate, subtype=subtype)


def write_audio_folder(root, per_class: int = 10, splits=("",), seed: int = 0):
    """root[/split]/<pitch>/<n>.wav|flac, with a 22.05 kHz file among them."""
    rng = np.random.default_rng(seed)
    for split in splits:
        for name, pitch in PITCHES.items():
            for n in range(per_class):
                suffix = "flac" if n % 4 == 3 else "wav"
                rate = 22050 if n == 1 else 16000
                write_tone(root / split / name / f"{n}.{suffix}", pitch, rng, rate)
    return root


def test_an_audio_folder_loads_split_by_seed_and_trains(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=20)
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig(deltas=True))
    assert data.class_names == {"class": ["high", "low", "mid"]} and data.n_features == 39
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 43, "val": 5, "test": 12}
    for split in ("train", "test"):  # stratified: every class on both sides
        assert set(data.subset(split).targets["class"]) == {0, 1, 2}
    again = datasets.load(DataConfig(name=str(root)), FeatureConfig(deltas=True))
    np.testing.assert_array_equal(again.split, data.split)  # the seed fixes the split
    cfg = RunConfig(data=DataConfig(name=str(root)), out=str(tmp_path / "runs"),
                    model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=1, batch_size=8))
    _, metrics = train.fit(cfg, verbose=0)
    assert 0 <= metrics["test"]["accuracy"] <= 1


FINGERPRINT = """
import sys
sys.path.insert(0, {root!r})
from kerasaudio import datasets
from kerasaudio.config import DataConfig, FeatureConfig
print(datasets.load(DataConfig(name=sys.argv[1]), FeatureConfig()).fingerprint())
"""


def test_an_audio_folders_fingerprint_holds_across_processes_and_moves_not_changes(tmp_path):
    # What an interrupted run is continued on: the same examples, wherever the folder is.
    def fingerprint(folder):
        script = FINGERPRINT.format(root=str(ROOT))
        return subprocess.run([sys.executable, "-c", script, str(folder)], check=True,
                              capture_output=True, text=True).stdout.split()[-1]

    root = write_audio_folder(tmp_path / "tones", per_class=6)
    first = fingerprint(root)
    assert fingerprint(root) == first
    moved = root.rename(tmp_path / "elsewhere")
    assert fingerprint(moved) == first
    # One file of each of two classes swapped: every count the same, other examples.
    high, low = moved / "high" / "0.wav", moved / "low" / "0.wav"
    high.rename(tmp_path / "swap.wav")
    low.rename(high)
    (tmp_path / "swap.wav").rename(low)
    assert fingerprint(moved) != first


def test_a_fingerprint_reads_what_arrays_hold_not_how_they_are_typed():
    # An object array's bytes are pointers: a split from pandas would never match itself.
    data = make_sequences(30)
    retyped = dataclasses.replace(data, split=data.split.astype(object),
                                  lengths=data.lengths.astype(np.int32))
    assert retyped.fingerprint() == data.fingerprint()


def test_val_fraction_draws_that_share_and_is_refused_where_the_data_has_a_val_split(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=20)
    features = FeatureConfig()
    data = datasets.load(DataConfig(name=str(root), val_fraction=0.3), features)
    assert int(np.sum(data.split == "val")) == 14  # 30 % of the 48 left after the test split
    split = write_audio_folder(tmp_path / "split", per_class=4, splits=("train", "val", "test"))
    with pytest.raises(UserError, match="has a val split of its own; --val-fraction"):
        datasets.load(DataConfig(name=str(split), val_fraction=0.3), features)
    with pytest.raises(UserError, match="spoken-digits comes with its own splits"):
        datasets.load(DataConfig(name="spoken-digits", test_fraction=0.3), features)


def test_a_classifier_of_one_class_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    for n in range(12):
        write_tone(tmp_path / "only" / "5" / f"{n}.wav", 440.0, rng)
    with pytest.raises(UserError, match="task 'class' has one class only \\('5'\\)"):
        datasets.load(DataConfig(name=str(tmp_path / "only")), FeatureConfig())


def test_two_labels_of_one_class_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("7", "Seven ", "three"):
        for n in range(6):
            write_tone(tmp_path / "mixed" / label / f"{n}.wav", 440.0, rng)
    with pytest.raises(UserError, match="labels '7' and 'Seven ' name the same class"):
        datasets.load(DataConfig(name=str(tmp_path / "mixed")), FeatureConfig())
    for label in ("C", "c"):  # keys: major and minor differ in case only, and stay apart
        for n in range(6):
            write_tone(tmp_path / "keys" / label / f"{n}.wav", 440.0, rng)
    keys = datasets.load(DataConfig(name=str(tmp_path / "keys")), FeatureConfig())
    assert keys.class_names["class"] == ["C", "c"]


def test_too_few_examples_to_stratify_leave_every_class_in_training(tmp_path):
    rng = np.random.default_rng(0)
    for digit in range(10):  # one speaker saying each digit three times
        for take in range(3):
            write_tone(tmp_path / "mine" / str(digit) / f"{take}.wav", 200.0 + 50 * digit, rng)
    write_tone(tmp_path / "mine" / "rare" / "0.wav", 900.0, rng)  # and a class of one
    for seed in range(5):
        data = datasets.load(DataConfig(name=str(tmp_path / "mine"), seed=seed),
                             FeatureConfig())
        assert len(set(data.targets["class"][data.split == "train"])) == 11
        assert np.sum(data.split == "test") == 6 and np.sum(data.split == "val") == 2


def test_mp3_files_are_read_and_files_outside_the_class_folders_are_named(tmp_path):
    import soundfile

    root = write_audio_folder(tmp_path / "tones", per_class=4)
    wave = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    soundfile.write(root / "low" / "extra.mp3", wave, 16000, format="MP3")
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert any(f.endswith("extra.mp3") for f in data.info["file"])
    assert len(audio.read(root / "low" / "extra.mp3", 16000)) == pytest.approx(16000, abs=1200)
    write_tone(root / "stray.wav", 440.0, np.random.default_rng(0))
    with pytest.raises(UserError, match=r"tones: 1 audio file outside the class folders "
                                        r"\(stray.wav\) would be left out"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())
    split = write_audio_folder(tmp_path / "split", per_class=4, splits=("train", "test"))
    write_tone(split / "stray.wav", 440.0, np.random.default_rng(0))  # beside train/, test/
    with pytest.raises(UserError, match=r"split: 1 audio file outside"):
        datasets.load(DataConfig(name=str(split)), FeatureConfig())


def _with_data_size(path, size) -> None:
    """Writes `size` into a WAV file's data chunk header, as other writers leave it ("pad":
    one more byte than the chunk holds)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    if size == "pad":
        size = int.from_bytes(data[at:at + 4], "little") + 1
    data[at:at + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("subtype", "size"), [
    ("GSM610", None),  # a format libsndfile cannot seek in
    ("PCM_16", 0xFFFFFFFF),  # ffmpeg to a pipe
    ("PCM_16", 0x7FFFFFFF),  # arecord
    ("PCM_24", 0x7FFFF000 // 3 * 3),  # sox to a pipe, rounded down to whole frames
    ("PCM_16", "pad"),  # a size that counts the pad byte of an odd-length chunk
])
def test_whole_wav_files_of_other_writers_are_read_whole(tmp_path, subtype, size):
    path = tmp_path / "tone.wav"
    write_tone(path, 440.0, np.random.default_rng(0), rate=8000, subtype=subtype)
    if size is not None:
        _with_data_size(path, size)
    assert len(audio.read(path, 8000, min_samples=200)) == soundfile.info(path).frames


def test_a_w64_file_cut_short_is_named_whatever_size_its_header_claims(tmp_path):
    # W64's sizes have 64 bits: one past 2 GiB is no streaming writer's placeholder, as it
    # is in a WAV file.
    path = tmp_path / "tone.wav"
    soundfile.write(path, np.sin(np.arange(4001) / 5) / 2, 16000, format="W64")
    data = bytearray(path.read_bytes())
    data[16:24] = (3_000_000_000).to_bytes(8, "little")  # the riff chunk's size
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"tone.wav: cut short: its header gives 3000000000 "):
        audio.read(path, 16000)
    # WavPack streams W64 with a 32-bit placeholder, 0x7FFFF000 bytes of samples: whole.
    data[16:24] = (0x7FFFF000 + 104).to_bytes(8, "little")  # the header's 104 bytes
    at = data.index(b"data") + 16  # the data chunk's size, after its 16-byte GUID
    data[at:at + 8] = (0x7FFFF000 + 24).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    assert len(audio.read(path, 16000)) == 4001


@pytest.mark.parametrize(("suffix", "container", "subtype"), [
    (".wav", "WAV", None), (".wav", "RF64", None), (".aiff", "AIFF", None), (".au", "AU", None),
    # both often named .wav (NIST: TIMIT's files); NIST's mu-law header words a size apart
    (".wav", "W64", None), (".wav", "NIST", None), (".wav", "NIST", "ULAW")])
def test_a_file_cut_short_is_named_and_a_whole_one_read(tmp_path, suffix, container, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, np.sin(np.arange(4001) / 5) / 2, 16000, format=container,
                    subtype=subtype)
    assert len(audio.read(path, 16000)) == soundfile.info(path).frames
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])  # a partial copy
    with pytest.raises(UserError, match=f"tone{suffix}: cut short"):
        audio.read(path, 16000)


def test_an_audio_folder_with_split_folders_keeps_them(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=4, splits=("train", "test"))
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 11, "val": 1, "test": 12}
    assert all("/test/" in f for f in data.subset("test").info["file"])


def test_an_audio_list_follows_links_in_its_folder_and_knows_one_file_by_two_names(
        tmp_path, monkeypatch):
    elsewhere = write_audio_folder(tmp_path / "elsewhere", per_class=3)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "clips").symlink_to(elsewhere)  # recordings kept elsewhere
    rows = [f"clips/{name}/{n}.wav,{name}" for name in PITCHES for n in range(3)]
    (tmp_path / "project" / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    data = datasets.load(DataConfig(name=str(tmp_path / "project" / "list.csv")),
                         FeatureConfig())
    assert len(data.lengths) == 9
    (tmp_path / "project" / "same.wav").symlink_to(elsewhere / "low" / "0.wav")
    with open(tmp_path / "project" / "list.csv", "a") as f:
        f.write("same.wav,mid\n")  # taught as mid too
    with pytest.raises(UserError, match=r"list.csv: 'clips/low/0.wav' and 'same.wav' are one "
                                        r"file \(through a link\) \(rows 2 and 11\)"):
        datasets.load(DataConfig(name=str(tmp_path / "project" / "list.csv")), FeatureConfig())
    # '..' after a link is taken by the system from where the link leads: outside.
    (tmp_path / "project" / "deep").symlink_to(elsewhere / "low")
    (tmp_path / "project" / "list.csv").write_text("path,label\ndeep/../mid/0.wav,mid\n")
    with pytest.raises(UserError, match=r"list.csv:2: 'deep/../mid/0.wav' points outside"):
        datasets.load(DataConfig(name=str(tmp_path / "project" / "list.csv")), FeatureConfig())
    # A row may name a file in the folder by its absolute path, the folder given as relative.
    monkeypatch.chdir(tmp_path)
    rows[0] = f"{tmp_path / 'project' / 'same.wav'},low"  # clips/low/0.wav
    (tmp_path / "project" / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    data = datasets.load(DataConfig(name="project/list.csv"), FeatureConfig())
    assert len(data.lengths) == 9


def test_an_audio_list_keeps_each_group_in_one_split(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["path,label,group"]
    for speaker in range(10):
        for name, pitch in PITCHES.items():
            write_tone(tmp_path / "clips" / f"s{speaker}-{name}.wav", pitch, rng)
            lines.append(f"clips/s{speaker}-{name}.wav,{name},s{speaker}")
    # Saved as Excel's "CSV UTF-8" saves it: with a byte order mark before the header.
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    data = datasets.load(DataConfig(name=str(tmp_path / "list.csv")), FeatureConfig())
    by_split = {s: set(data.subset(s).info["group"]) for s in ("train", "val", "test")}
    assert all(by_split[s] for s in by_split)
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"]
                or by_split["val"] & by_split["test"])


def bad_audio_cases(tmp_path):
    """name -> (data path made bad, expected message)."""
    root = write_audio_folder(tmp_path / "tones", per_class=3)
    cases = {}
    (root / "low" / "0.wav").write_bytes(b"RIFF not really")
    cases["corrupt"] = (root, r"low/0.wav: not a readable audio file")
    empty = write_audio_folder(tmp_path / "empty", per_class=3)
    import soundfile

    soundfile.write(empty / "low" / "0.wav", np.zeros(0), 16000)
    cases["empty"] = (empty, r"low/0.wav: holds no samples")
    nan = write_audio_folder(tmp_path / "nan", per_class=3)
    soundfile.write(nan / "mid" / "2.wav", np.full(800, np.nan), 16000, subtype="FLOAT")
    cases["nan"] = (nan, r"mid/2.wav: holds NaN or infinite samples")
    silent = write_audio_folder(tmp_path / "silent", per_class=3)
    tone = np.sin(np.arange(8000) / 5) * 0.5  # in one channel, inverted in the other
    soundfile.write(silent / "mid" / "1.wav", np.stack([tone, -tone], axis=1), 16000,
                    subtype="FLOAT")
    cases["silent"] = (silent, r"mid/1.wav: every sample is 0 \(silence\)")
    short = write_audio_folder(tmp_path / "short", per_class=3)
    soundfile.write(short / "high" / "2.wav", np.full(1, 0.5), 8000)
    cases["one sample"] = (short, r"high/2.wav: 0.125 ms long, shorter than one analysis "
                                  r"window \(25 ms\)")
    cut = write_audio_folder(tmp_path / "cut", per_class=3)
    whole = (cut / "low" / "2.wav").read_bytes()
    (cut / "low" / "2.wav").write_bytes(whole[:len(whole) // 2])  # a partial copy
    cases["cut short"] = (cut, r"low/2.wav: cut short: its header gives \d+ bytes of samples, "
                               r"the file holds \d+")
    linked = write_audio_folder(tmp_path / "linked", per_class=3)
    (linked / "mid" / "3.wav").symlink_to(tmp_path / "gone.wav")  # a file moved away since
    cases["broken link"] = (linked, r"mid/3.wav: a link to .*gone.wav, which does not exist")
    moved = write_audio_folder(tmp_path / "moved", per_class=3)
    (moved / "extra").symlink_to(tmp_path / "gone")  # a class folder moved away since
    cases["broken class link"] = (moved, r"moved/extra: a link to .*gone, which does not exist")
    twice = write_audio_folder(tmp_path / "twice", per_class=3)
    samples, rate = soundfile.read(twice / "low" / "1.wav")
    soundfile.write(twice / "low" / "1.flac", samples, rate)
    cases["two formats"] = (twice, r"twice/low: 1.flac and 1.wav look like one recording in "
                                   r"two formats")
    unknown = write_audio_folder(tmp_path / "unknown", per_class=3, splits=("train", "test"))
    write_tone(unknown / "test" / "extra" / "0.wav", 440.0, np.random.default_rng(1))
    cases["unknown class"] = (unknown, r"unknown: class 'extra' is in the test split only")
    (tmp_path / "nofiles" / "low").mkdir(parents=True)
    (tmp_path / "nofiles" / "low" / "x.wav").write_bytes(b"")
    (tmp_path / "nofiles" / "mid").mkdir()
    cases["empty class folder"] = (tmp_path / "nofiles", r"nofiles/mid: no audio files")
    (tmp_path / "escape.csv").write_text("path,label\n../outside.wav,low\n")
    cases["escape"] = (tmp_path / "escape.csv", r"escape.csv:2: '../outside.wav' points outside")
    (tmp_path / "missing.csv").write_text("path,label\ntones/low/1.wav,low\nnope.wav,mid\n")
    cases["missing"] = (tmp_path / "missing.csv", r"missing.csv:3: 'nope.wav': no such file")
    (tmp_path / "twice.csv").write_text("path,label\ntones/low/1.wav,low\n"
                                        "tones/mid/1.wav,mid\ntones/low/1.wav,mid\n")
    cases["listed twice"] = (tmp_path / "twice.csv", r"twice.csv: 'tones/low/1.wav' is listed "
                                                     r"twice \(rows 2 and 4\)")
    (tmp_path / "clip.wav").symlink_to(tmp_path / "moved.wav")  # a file moved away since
    (tmp_path / "linked.csv").write_text("path,label\nclip.wav,low\n")
    cases["broken link in a list"] = (tmp_path / "linked.csv", r"linked.csv:2: .*clip.wav: a "
                                      r"link to .*moved.wav, which does not exist")
    (tmp_path / "header.csv").write_text("file,class\nx.wav,low\n")
    cases["header"] = (tmp_path / "header.csv", r"header.csv:1: expected a header path,label")
    (tmp_path / "speaker.csv").write_text("path,label,speaker\ntones/low/1.wav,low,ann\n")
    cases["unknown column"] = (tmp_path / "speaker.csv",
                               r"speaker.csv:1: unknown column 'speaker'; the header is "
                               r"path,label\[,group\]")
    (tmp_path / "short.csv").write_text("path,label,group\ntones/low/1.wav,low\n")
    cases["short row"] = (tmp_path / "short.csv", r"short.csv:2: expected path,label,group")
    huge = write_audio_folder(tmp_path / "huge", per_class=3)
    soundfile.write(huge / "high" / "1.wav", np.full(800, 1e30), 16000, subtype="FLOAT")
    cases["huge samples"] = (huge, r"high/1.wav: holds samples up to 1e\+30, far beyond full")
    upper = write_audio_folder(tmp_path / "upper", per_class=3, splits=("TRAIN", "TEST"))
    cases["TRAIN/ TEST/"] = (upper, r"upper: split folders are named train, val, test in lower "
                                    r"case; found TEST, TRAIN/")
    beside = write_audio_folder(tmp_path / "beside", per_class=3, splits=("train", "test"))
    write_tone(beside / "extra" / "low" / "0.wav", 220.0, np.random.default_rng(1))
    cases["folder beside train/"] = (beside, r"beside: beside train, test/ it holds extra/")
    return cases


def write_frame_folder(root, n: int = 24, test: int = 6, seed: int = 0):
    """Utterances whose frame label is which of 3 features is raised, changing every 4
    frames; train_split.txt, and a test_split.txt whose last 2 have no labels."""
    rng = np.random.default_rng(seed)
    (root / "feat" / "train").mkdir(parents=True)
    labels, ids = [], [f"u{i:03d}" for i in range(n + test)]
    for i, u in enumerate(ids):
        length = int(rng.integers(5, 20))
        y = (np.arange(length) // 4 + rng.integers(0, 3)) % 3
        x = rng.standard_normal((length, 4)).astype(np.float32) * 0.5
        x[np.arange(length), y] += 2.0
        np.save(root / "feat" / "train" / f"{u}.npy", x)
        if i < n + test - 2:
            labels.append(u + " " + " ".join(map(str, y)))
    (root / "train_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "train_split.txt").write_text("\n".join(ids[:n]) + "\n")
    (root / "test_split.txt").write_text("\n".join(ids[n:]) + "\n")
    return root


def test_a_frame_folder_loads_frame_labels_and_trains_a_frame_classifier(tmp_path):
    root = write_frame_folder(tmp_path / "phones")
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert data.tasks[0].level == "frame" and data.class_names == {"phone": ["0", "1", "2"]}
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 21, "val": 3, "test": 4}  # 2 unlabelled test utterances left out
    assert len(data.targets["phone"]) == int(data.lengths.sum())
    cfg = RunConfig(data=DataConfig(name=str(root)), out=str(tmp_path / "runs"),
                    model=ModelConfig("frame_mlp", {"width": 16, "window": 3}),
                    train=TrainConfig(epochs=2, batch_size=32))
    _, metrics = train.fit(cfg, verbose=0)
    assert metrics["test"]["accuracy"] > 0.5


def bad_frame_cases(tmp_path):
    cases = {}

    def fresh(name):
        return write_frame_folder(tmp_path / name)

    root = fresh("count")
    lines = (root / "train_labels.txt").read_text().splitlines()
    lines[2] += " 1"
    (root / "train_labels.txt").write_text("\n".join(lines) + "\n")
    cases["label count"] = (root, r"train_labels.txt:3: \d+ labels for u002, its features have")
    root = fresh("missing")
    (root / "feat" / "train" / "u005.npy").unlink()
    cases["missing array"] = (root, r"feat: no u005.npy for u005 of train_split.txt")
    root = fresh("nan")
    np.save(root / "feat" / "train" / "u001.npy", np.full((5, 4), np.nan, np.float32))
    cases["nan"] = (root, r"u001.npy: holds NaN, infinite, complex or non-numeric values")
    root = fresh("width")
    np.save(root / "feat" / "train" / "u003.npy", np.zeros((5, 7), np.float32))
    cases["width"] = (root, r"u003.npy: expected a \(time, 4\) array, got shape \(5, 7\)")
    root = fresh("pickle")
    np.save(root / "feat" / "train" / "u000.npy", np.array([{"x": 1}], dtype=object))
    cases["pickle"] = (root, r"u000.npy: not a readable .npy array")
    root = fresh("unlabelled")
    with open(root / "train_split.txt", "a") as f:
        f.write("u029\n")
    cases["no labels"] = (root, r"train_split.txt: u029 has no labels in train_labels.txt")
    root = fresh("twice")
    with open(root / "train_labels.txt", "a") as f:
        f.write("u000 1 1 1\n")
    cases["twice"] = (root, r"train_labels.txt:29: u000 is labelled twice")
    root = fresh("overlap")
    with open(root / "test_split.txt", "a") as f:
        f.write("u003\n")
    cases["train and test overlap"] = (root, r"test_split.txt: u003 is also in train_split.txt")
    return cases


@pytest.mark.parametrize("arch", ["dense", "cnn2d"])
def test_digits_images_train_dense_and_cnn2d(tmp_path, arch):
    data = datasets.load(DataConfig(name="digits-images"), FeatureConfig())
    assert data.n_features == 8 and set(data.lengths) == {8} and len(data.lengths) == 1797
    hparams = {"hidden": 32} if arch == "dense" else {"channels": (8, 8)}
    cfg = RunConfig(data=DataConfig(name="digits-images"), out=str(tmp_path),
                    model=ModelConfig(arch, hparams), train=TrainConfig(epochs=3, lr=0.01))
    _, metrics = train.fit(cfg, data, verbose=0)
    assert metrics["test"]["accuracy"] > 0.5  # 10 classes: chance is 0.1


def test_one_file_in_two_places_through_a_hard_link_or_a_frames_link_is_refused(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=3)
    os.link(root / "low" / "0.wav", root / "mid" / "copy.wav")  # a hard link: one file
    with pytest.raises(UserError, match=r"mid/copy.wav: the same file as .*low/0.wav"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())
    # Frames: a test utterance's array that is a link to a training utterance's.
    frames = write_frame_folder(tmp_path / "frames")
    (frames / "feat" / "train" / "u024.npy").unlink()
    (frames / "feat" / "train" / "u024.npy").symlink_to(frames / "feat" / "train" / "u000.npy")
    with pytest.raises(UserError, match=r"u024.npy: the same file as .*u000.npy \(through a "
                                        r"link\); an utterance's array belongs to one split"):
        datasets.load(DataConfig(name=str(frames)), FeatureConfig())


def test_an_image_folder_loads_as_rows_and_bad_images_are_named(tmp_path):
    from matplotlib import image

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for n in range(6):  # colour images of two heights
            image.imsave(tmp_path / "pics" / name / f"{n}.png", rng.random((5 + n % 2, 7, 3)))
    data = datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())
    assert data.n_features == 7 and set(data.lengths) == {5, 6}
    assert data.class_names == {"class": ["a", "b"]}
    cfg = RunConfig(data=DataConfig(name=str(tmp_path / "pics")), out=str(tmp_path / "runs"),
                    model=ModelConfig("dense", {"hidden": 8}), train=TrainConfig(epochs=1))
    _, metrics = train.fit(cfg, verbose=0)
    assert metrics["epochs_run"] == 1
    image.imsave(tmp_path / "pics" / "b" / "wide.png", rng.random((5, 9)))
    with pytest.raises(UserError, match=r"b/wide.png: 9 pixels wide, the others 7"):
        datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())
    (tmp_path / "pics" / "b" / "wide.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match=r"b/wide.png: not a readable image"):
        datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())
    (tmp_path / "pics" / "b" / "wide.png").unlink()
    (tmp_path / "pics" / "a" / "6.png").symlink_to(tmp_path / "gone.png")  # moved since
    with pytest.raises(UserError, match=r"a/6.png: a link to .*gone.png, which does not exist"):
        datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())
    (tmp_path / "pics" / "a" / "6.png").unlink()
    (tmp_path / "pics" / ".ipynb_checkpoints").mkdir()  # hidden: no class
    assert datasets.load(DataConfig(name=str(tmp_path / "pics")),
                         FeatureConfig()).class_names == {"class": ["a", "b"]}
    (tmp_path / "pics" / "README.md").symlink_to(tmp_path / "docs" / "README.md")  # no class
    assert datasets.load(DataConfig(name=str(tmp_path / "pics")),
                         FeatureConfig()).class_names == {"class": ["a", "b"]}
    (tmp_path / "pics" / "c").symlink_to(tmp_path / "gone")  # a class folder moved away
    with pytest.raises(UserError, match=r"pics/c: a link to .*gone, which does not exist"):
        datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())
    (tmp_path / "pics" / "c").unlink()
    (tmp_path / "pics" / "b" / "also").symlink_to(tmp_path / "pics" / "a")  # a's in b too
    with pytest.raises(UserError, match=r"b/also/0.png: the same file as .*a/0.png \(through "
                                         r"a link\); an image belongs to one class"):
        datasets.load(DataConfig(name=str(tmp_path / "pics")), FeatureConfig())


GENRES = ["Rock", "Psych-Rock", "Jazz", "Pop", "Old-Time"]


def write_spectrogram_folder(root, per_genre: int = 8, seed: int = 0, test: bool = True):
    """Fused (128 mel + 12 chroma, time) arrays, .npy.gz and .npy, whose genre raises a band;
    Psych-Rock is merged into Rock and Old-Time dropped by class_mapping.csv."""
    import gzip

    rng = np.random.default_rng(seed)
    for split in ("train", "test") if test else ("train",):
        (root / split).mkdir(parents=True)
        lines = ["Id Genre"]
        for k, genre in enumerate(GENRES):
            for n in range(per_genre if split == "train" else 3):
                x = rng.standard_normal((140, int(rng.integers(20, 40)))).astype(np.float32)
                x[10 * (k % 4): 10 * (k % 4) + 10] += 2.0
                name = f"{genre}-{n}.fused.full.npy" + (".gz" if n % 2 else "")
                if name.endswith(".gz"):
                    with gzip.open(root / split / name, "wb") as f:
                        np.save(f, x)
                else:
                    np.save(root / split / name, x)
                lines.append(f"{name} {genre}")
        (root / f"{split}_labels.txt").write_text("\n".join(lines) + "\n")
    (root / "class_mapping.csv").write_text("Psych-Rock,Rock\nOld-Time,\n")
    return root


def test_a_spectrogram_folder_merges_and_drops_classes_and_trains(tmp_path):
    root = write_spectrogram_folder(tmp_path / "music")
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert data.class_names == {"genre": ["Jazz", "Pop", "Rock"]}
    assert data.n_features == 140
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 29, "val": 3, "test": 12}
    chroma = datasets.load(DataConfig(name=str(root), part="chroma"), FeatureConfig())
    mel = datasets.load(DataConfig(name=str(root), part="mel"), FeatureConfig())
    assert chroma.n_features == 12 and mel.n_features == 128
    np.testing.assert_array_equal(np.concatenate([mel.frames, chroma.frames], axis=1),
                                  data.frames)
    cfg = RunConfig(data=DataConfig(name=str(root), part="mel"), out=str(tmp_path / "runs"),
                    model=ModelConfig("cnn2d", {"channels": (8, 4)}),
                    train=TrainConfig(epochs=2, batch_size=8))
    run_dir, metrics = train.fit(cfg, verbose=0)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    # The test folder's arrays, .npy.gz and .npy, read as training read them (mel rows).
    header, rows = predict.predict_files(run_dir, [root / "test"])
    assert len(rows) == 15 and header[1] == "genre"
    assert {row[1] for row in rows} <= {"Jazz", "Pop", "Rock"}


def test_a_spectrogram_folder_follows_links_in_it_as_a_list_does(tmp_path):
    """Arrays kept elsewhere, reached through links in the folder, are read as an audio
    list's rows are; a name with '..' must still lead inside."""
    root = write_spectrogram_folder(tmp_path / "music", per_genre=3)
    store = tmp_path / "store"
    store.mkdir()
    moved = root / "train" / "Jazz-0.fused.full.npy"
    (store / "jazz.npy").write_bytes(moved.read_bytes())
    moved.unlink()
    moved.symlink_to(store / "jazz.npy")  # an array that is a link out
    (root / "kept").symlink_to(store, target_is_directory=True)  # a folder that is one
    (store / "extra.npy").write_bytes((store / "jazz.npy").read_bytes())
    before = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    with open(root / "train_labels.txt", "a") as f:
        f.write("kept/extra.npy Jazz\n")
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert len(data.lengths) == len(before.lengths) + 1
    with open(root / "train_labels.txt", "a") as f:
        f.write("kept/../store/extra.npy Jazz\n")  # '..' taken after the link: outside
    with pytest.raises(UserError, match=r"train_labels.txt:\d+: 'kept/../store/extra.npy' "
                                        "points outside"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())
    # An id is matched by name, never as a pattern that could walk out through a link.
    (root / "train" / "deep").symlink_to(store, target_is_directory=True)
    (store.parent / "hidden").mkdir()
    (store.parent / "hidden" / "777.npy").write_bytes((store / "jazz.npy").read_bytes())
    lines = (root / "train_labels.txt").read_text().splitlines()[:-1]
    (root / "train_labels.txt").write_text("\n".join(lines + ["*/../hidden/777 Jazz"]) + "\n")
    with pytest.raises(UserError, match=r"\*/../hidden/777: no such file"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())


def bad_spectrogram_cases(tmp_path):
    """name -> (folder made bad, expected message): a line added to a labels file, or an
    array broken."""
    cases = {}

    def with_line(name, labels, line, message):
        root = write_spectrogram_folder(tmp_path / name, per_genre=3)
        with open(root / labels, "a") as f:
            f.write(line + "\n")
        cases[name] = (root, message)

    with_line("escape", "train_labels.txt", "../../secret.npy Rock",
              r"train_labels.txt:17: '../../secret.npy' points outside")
    with_line("missing", "train_labels.txt", "nope.npy Rock",
              r"train_labels.txt:17: nope.npy: no such file")
    with_line("unknown class", "test_labels.txt", "Metal-0.npy Metal",
              r"test_labels.txt: class 'Metal' does not occur")
    np.save(cases["unknown class"][0] / "test" / "Metal-0.npy", np.zeros((140, 30), np.float32))
    with_line("bad line", "train_labels.txt", "only-a-name",
              r"train_labels.txt:17: expected 'file label'")
    root = write_spectrogram_folder(tmp_path / "shared", per_genre=3)
    np.save(root / "shared.npy", np.zeros((140, 30), np.float32))
    for labels in ("train_labels.txt", "test_labels.txt"):
        with open(root / labels, "a") as f:
            f.write("shared.npy Rock\n")
    cases["same array in train and test"] = (
        root, r"test_labels.txt:\d+: shared.npy is already listed at .*train_labels.txt:17")
    root = write_spectrogram_folder(tmp_path / "truncated", per_genre=3)
    (root / "train" / "Jazz-1.fused.full.npy.gz").write_bytes(b"\x1f\x8b\x08\x00trunc")
    cases["truncated"] = (root, r"Jazz-1.fused.full.npy.gz: not a readable .npy array")
    for name, line, message in [
            ("multitask short line", "1001,0.5,0.2",
             r"train_labels.txt:42: expected 'file valence energy danceability'"),
            ("multitask NaN", "1001,0.5,nan,0.1", r"train_labels.txt:42: energy is nan"),
            ("multitask unknown id", "77,0.5,0.2,0.1", r"train_labels.txt:42: 77: no such file")]:
        root = write_multitask_folder(tmp_path / name)
        with open(root / "train_labels.txt", "a") as f:
            f.write(line + "\n")
        cases[name] = (root, message)
    root = write_multitask_folder(tmp_path / "multitask broken link")
    (root / "train" / "1000.fused.full.npy.gz").unlink()
    (root / "train" / "1000.fused.full.npy.gz").symlink_to(tmp_path / "gone.npy.gz")  # by id
    cases["multitask broken link"] = (
        root, r"train/1000.fused.full.npy.gz: a link to .*gone.npy.gz, which does not exist")
    root = write_spectrogram_folder(tmp_path / "broken link", per_genre=3)
    (root / "train" / "Jazz-0.fused.full.npy").unlink()
    (root / "train" / "Jazz-0.fused.full.npy").symlink_to(root / "elsewhere.npy")  # by name
    cases["broken link"] = (
        root, r"train/Jazz-0.fused.full.npy: a link to .*elsewhere.npy, which does not exist")
    return cases


def test_skip_bad_leaves_bad_examples_out_and_lists_them(tmp_path):
    (tmp_path / "ts").mkdir()
    path = write_ts(tmp_path / "ts")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:9] + ["1,?:3,4:1", "1,2:3,4:9"] + lines[9:]) + "\n")
    data = datasets.load(DataConfig(name=str(path), skip_bad=True), FeatureConfig())
    assert len(data.lengths) == 90
    assert [p.split("Toy_TRAIN.ts:")[1] for p in data.skipped] == [
        "10: missing, NaN or infinite values", "11: class '9' is not in @classLabel (1 2 3)"]

    cases = {**bad_audio_cases(tmp_path), **bad_frame_cases(tmp_path / "frames")}
    for case in ("corrupt", "nan", "label count", "missing array", "width"):
        folder, message = cases[case]
        data = datasets.load(DataConfig(name=str(folder), skip_bad=True), FeatureConfig())
        assert len(data.skipped) == 1 and re.search(message, data.skipped[0]), case


@pytest.mark.parametrize("cases", [bad_audio_cases, bad_frame_cases, bad_spectrogram_cases])
def test_bad_data_is_one_line_naming_the_file(tmp_path, cases):
    for case, (path, message) in cases(tmp_path).items():
        with pytest.raises(UserError, match=message):
            datasets.load(DataConfig(name=str(path)), FeatureConfig())
            pytest.fail(f"{case}: loaded")


def test_an_unreadable_file_or_class_folder_is_named_as_such(tmp_path, monkeypatch):
    root = write_audio_folder(tmp_path / "tones", per_class=3)
    denied = {root / "low" / "1.wav", root / "mid"}  # chmod 000 (root would read them anyway)
    allowed = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) not in denied
                        and allowed(path, mode))
    with pytest.raises(UserError, match=r"tones/low/1.wav: not readable \(permission denied"):
        audio.read(root / "low" / "1.wav", 16000)
    with pytest.raises(UserError, match=r"tones/mid: cannot be read \(permission denied\)"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())


def test_links_to_folders_in_a_class_are_followed_and_a_loop_walked_once(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=3)
    kept_elsewhere = write_audio_folder(tmp_path / "more", per_class=2)
    (root / "low" / "session2").symlink_to(kept_elsewhere / "low")  # 2 more recordings
    (root / "low" / "session2_again").symlink_to(kept_elsewhere / "low")  # the same 2
    (root / "mid" / "up").symlink_to(root / "mid")  # a link back up the tree
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    files = list(data.info["file"])
    assert sum("/low/" in f for f in files) == 5 and sum("/mid/" in f for f in files) == 3
    assert len(predict.input_files([root])) == 3 * 3 + 2
    # A class folder that is a link, and one reached only through links, are found too.
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("low", "mid", "high"):
        (linked / name).symlink_to(root / name)
    assert datasets.detect_format(linked) == "audio"
    # One recording reached through links in two classes, or two splits, is refused: it
    # would be taught as two classes, or trained on and tested on.
    (root / "high" / "again").symlink_to(kept_elsewhere / "low")
    with pytest.raises(UserError, match=r"low/session2/0.wav: the same file as .*high/again/"
                                         r"0.wav \(through a link\); a recording belongs"):
        datasets.load(DataConfig(name=str(root)), FeatureConfig())
    splits = write_audio_folder(tmp_path / "splits", per_class=3, splits=("train", "test"))
    (splits / "train" / "low" / "all").symlink_to(splits / "test")  # a link up and across
    with pytest.raises(UserError, match=r"the same file as .* \(through a link\)"):
        datasets.load(DataConfig(name=str(splits)), FeatureConfig())


def test_an_unreadable_folder_inside_a_class_is_named_not_left_out(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=3)
    nested = root / "low" / "session2"
    nested.mkdir()
    (root / "low" / "0.wav").rename(nested / "0.wav")
    real_scandir = os.scandir

    def denied(path="."):
        if Path(path) == nested:  # chmod 000 (root would read it anyway)
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "scandir", denied)
        with pytest.raises(UserError, match=r"low/session2: cannot be read \(permission denied\)"):
            datasets.load(DataConfig(name=str(root)), FeatureConfig())


def test_predict_reads_a_broken_link_in_a_folder_rather_than_leaving_it_out(tmp_path):
    linked, message = bad_audio_cases(tmp_path)["broken link"]
    files = predict.input_files([linked])
    assert predict.input_files(files) == files  # predict_files lists them again
    (found,) = [p for p in files if p.is_symlink()]
    with pytest.raises(UserError, match=message):
        audio.read(found, 16000)


def write_multitask_folder(root, n: int = 40, seed: int = 0):
    """The music lab's multitask layout: train/<id>.fused.full.npy.gz arrays labelled by id
    with valence, energy and danceability in [0, 1] (each a band's squashed mean), and a
    test/ folder without labels."""
    import gzip

    rng = np.random.default_rng(seed)
    lines = ["Id,valence,energy,danceability"]
    for split, count in (("train", n), ("test", 5)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            x = rng.standard_normal((20, int(rng.integers(15, 30)))).astype(np.float32)
            x[:3] += rng.normal(size=(3, 1)) * 2
            with gzip.open(root / split / f"{1000 + i}.fused.full.npy.gz", "wb") as f:
                np.save(f, x)
            if split == "train":
                values = 1 / (1 + np.exp(-x[:3].mean(axis=1)))
                lines.append(f"{1000 + i}," + ",".join(f"{v:.4f}" for v in values))
    (root / "train_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def test_a_multitask_labels_csv_trains_regression_heads_and_predicts_a_submission(tmp_path):
    root = write_multitask_folder(tmp_path / "multitask")
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert [(t.name, t.kind, t.bounded) for t in data.tasks] == [
        ("valence", "regression", True), ("energy", "regression", True),
        ("danceability", "regression", True)]
    assert {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")} == {
        "train": 28, "val": 4, "test": 8}
    cfg = RunConfig(data=DataConfig(name=str(root)), out=str(tmp_path / "runs"),
                    model=ModelConfig("dense", {"hidden": 16, "layers": 1, "dropout": 0.0}),
                    train=TrainConfig(epochs=2, batch_size=8))
    run_dir, metrics = train.fit(cfg, verbose=0)
    assert set(metrics["evaluation"]["test"]["tasks"]) == {"valence", "energy", "danceability"}
    assert "mean_spearman" in metrics["evaluation"]["test"]
    header, rows = predict.predict_files(run_dir, [root / "test"])
    sub_header, sub_rows = predict.submission(header, rows)
    assert sub_header == ["Id", "valence", "energy", "danceability"]
    assert sorted(r[0] for r in sub_rows) == [f"{1000 + i}.fused.full.npy.gz" for i in range(5)]
    assert all(0 <= float(v) <= 1 for r in sub_rows for v in r[1:])


def test_hidden_folders_are_not_classes(tmp_path):
    root = write_audio_folder(tmp_path / "tones", per_class=4)
    write_tone(root / ".ipynb_checkpoints" / "0.wav", 440.0, np.random.default_rng(1))
    data = datasets.load(DataConfig(name=str(root)), FeatureConfig())
    assert data.class_names["class"] == ["high", "low", "mid"]


@pytest.mark.parametrize(("values", "problem"), [
    (np.full((3, 2), 1e39), r"beyond 1e\+15"),  # float64: inf once cast to float32
    (np.full((3, 2), 1e30, np.float32), r"beyond 1e\+15"),
    (np.ones((3, 2), np.complex64), "complex"),
])
def test_a_feature_array_of_values_training_cannot_take_is_refused(tmp_path, values, problem):
    np.save(tmp_path / "frames.npy", values)
    with pytest.raises(UserError, match=f"frames.npy: holds .*{problem}"):
        read_frames(tmp_path / "frames.npy")


@pytest.mark.parametrize(("name", "problem"), [
    ("archive.npy", r"archive.npy: not a .npy array: an .npz archive"),
    ("text.npy", r"text.npy: not a .npy array: another format"),
    ("text.npy.gz", r"text.npy.gz: not a .npy array: another format"),
])
def test_a_file_that_is_not_one_npy_array_is_named_as_such(tmp_path, name, problem):
    if name == "archive.npy":
        with open(tmp_path / name, "wb") as f:
            np.savez(f, frames=np.zeros((3, 2), np.float32))
    elif name.endswith(".gz"):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(b"frame,value\n0,1\n")
    else:
        (tmp_path / name).write_text("frame,value\n0,1\n")
    with pytest.raises(UserError, match=problem):
        read_frames(tmp_path / name)


def test_a_link_to_an_array_that_is_gone_names_its_target(tmp_path):
    (tmp_path / "frames.npy").symlink_to(tmp_path / "moved.npy")
    with pytest.raises(UserError, match=r"frames.npy: a link to .*moved.npy, which does not exist"):
        read_frames(tmp_path / "frames.npy")
    (tmp_path / "a.npy").symlink_to(tmp_path / "b.npy")
    (tmp_path / "b.npy").symlink_to(tmp_path / "a.npy")
    with pytest.raises(UserError, match=r"a.npy: a link to .*b.npy, which leads back to itself"):
        read_frames(tmp_path / "a.npy")


def test_a_damaged_gzipped_array_is_named(tmp_path):
    with gzip.open(tmp_path / "frames.npy.gz", "wb") as f:
        np.save(f, np.random.default_rng(0).standard_normal((50, 8)))
    data = bytearray((tmp_path / "frames.npy.gz").read_bytes())
    data[30:60] = b"\xff" * 30  # as a bad disk or a cut download leaves it
    (tmp_path / "frames.npy.gz").write_bytes(bytes(data))
    with pytest.raises(UserError, match="frames.npy.gz: not a readable .npy array"):
        read_frames(tmp_path / "frames.npy.gz")


def test_sound_only_above_the_features_band_is_near_silence(tmp_path):
    # A faint 20 kHz whine at 48 kHz: nothing of it is left at spoken-digits' 8 kHz.
    t = np.arange(48000) / 48000
    soundfile.write(tmp_path / "whine.wav", 10 ** (-55 / 20) * np.sin(2 * np.pi * 20000 * t),
                    48000, subtype="FLOAT")
    assert len(audio.read(tmp_path / "whine.wav", 48000)) == 48000  # heard at its own rate
    with pytest.raises(UserError, match=r"whine.wav: its loudest sample is -\d+\.\d dBFS"):
        audio.read(tmp_path / "whine.wav", 8000)


@pytest.mark.parametrize(("subtype", "steps", "silent"), [
    ("PCM_U8", 1, True), ("PCM_U8", 2, True), ("PCM_S8", 2, True), ("PCM_U8", 3, False),
    # an 8-bit recording saved again in another format idles all the same
    ("PCM_16", 2, True), ("FLOAT", 2, True), ("FLOAT", 3, False),
    # a faint square wave off the 8-bit grid is sound
    ("PCM_16", 2.5, False)])
def test_a_file_idling_on_neighbouring_8_bit_levels_is_near_silence(tmp_path, subtype, steps,
                                                                     silent):
    if steps == 2.5:
        levels = np.where(np.arange(8000) % 40 < 20, 1.25, -1.25)
    else:
        levels = np.random.default_rng(0).integers(0, steps + 1, 8000) - steps // 2
    soundfile.write(tmp_path / "idle.wav", (levels / 128).astype(np.float32), 8000,
                    subtype=subtype, format="WAV" if subtype != "PCM_S8" else "AIFF")
    if silent:
        with pytest.raises(UserError, match="idle.wav: every channel stays on 3 neighbouring"):
            audio.read(tmp_path / "idle.wav", 8000)
    else:
        assert len(audio.read(tmp_path / "idle.wav", 8000)) == 8000


@pytest.mark.parametrize("subtype", ["GSM610", "G721_32"])
def test_files_of_codecs_that_cannot_seek_are_read(tmp_path, subtype):
    t = np.arange(8000) / 8000
    soundfile.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 300 * t), 8000,
                    subtype=subtype)
    assert len(audio.read(tmp_path / "tone.wav", 8000)) >= 8000  # padded to whole blocks


def test_a_short_8_bit_file_is_named_short_not_silent(tmp_path):
    soundfile.write(tmp_path / "short.wav", np.array([0, 1 / 128], np.float32), 8000,
                    subtype="PCM_U8")
    with pytest.raises(UserError, match="short.wav: 0.25 ms long, shorter than"):
        audio.read(tmp_path / "short.wav", 8000, min_samples=200)


def test_a_recorded_format_of_a_path_that_is_gone_is_one_clear_line(tmp_path):
    # A run's record names its data's format, so reading it again skips detection: the
    # reader would meet the missing folder with a FileNotFoundError.
    for fmt in ("audio", "ts", "frames"):
        with pytest.raises(UserError, match="gone: no such file or folder"):
            datasets.load(DataConfig(name=str(tmp_path / "gone"), format=fmt), FeatureConfig())
