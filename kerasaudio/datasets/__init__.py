"""Data sources -> `Dataset`. Built-in corpora are registered by name; users' data is read
from a path, by the reader its format names (given, or told from what the path holds)."""

import hashlib
import importlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from kerasaudio import audio, cache
from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets import images
from kerasaudio.datasets.base import Dataset, make_task
from kerasaudio.errors import UserError


def _spoken_digits(data: DataConfig, features: FeatureConfig) -> Dataset:
    from kerasaudio import features as feature_lib
    from kerasaudio.datasets import speech_synth

    corpus = speech_synth.load_digits(data.seed)
    key = hashlib.sha1(json.dumps(asdict(features), sort_keys=True).encode()).hexdigest()[:12]
    path = cache.cache_dir() / (
        f"spoken-digits-v{speech_synth.GENERATOR_VERSION}-seed{data.seed}-features-{key}.npz")
    if path.exists():
        extracted = cache.load_npz(path)
    else:
        frames, lengths = feature_lib.extract(corpus["waves"], corpus["lengths"], features,
                                              label=f"{features.kind} for spoken-digits")
        extracted = {"frames": frames, "lengths": lengths}
        cache.save_npz_atomic(path, **extracted)
    classes = list(speech_synth.DIGITS)
    return Dataset(
        name="spoken-digits", frames=extracted["frames"], lengths=extracted["lengths"],
        targets={"digit": corpus["digit"]}, tasks=[make_task("digit", classes)],
        class_names={"digit": classes}, split=corpus["split"], features=features,
        info={k: corpus[k] for k in ("speaker", "voice", "variant", "gender", "rate", "pitch",
                                     "snr_db")})


# name -> loader(DataConfig, FeatureConfig) -> Dataset
BUILTIN = {
    "spoken-digits": _spoken_digits,
    "digits-images": images.load_digits,
}


# format (config.DATA_FORMATS) -> module with `load(DataConfig, FeatureConfig) -> Dataset`
READERS = {
    "ts": "kerasaudio.datasets.uea",
    "audio": "kerasaudio.datasets.audio_folder",
    "frames": "kerasaudio.datasets.frames",
    "images": "kerasaudio.datasets.images",
    "spectrograms": "kerasaudio.datasets.spectrograms",
}


def detect_format(path: Path) -> str:
    """The reader for what `path` holds.

    Raises:
        UserError: if the path does not exist or its format cannot be told.
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or folder, and not a built-in data set "
                        f"({', '.join(sorted(BUILTIN))})")
    if path.is_file() and path.suffix.lower() == ".ts":
        return "ts"
    if path.is_file() and path.suffix.lower() == ".csv":
        return "audio"
    if (path / "train_labels.txt").is_file():
        return "frames" if (path / "feat").is_dir() else "spectrograms"
    if path.is_dir() and any(audio.is_audio(p) for p in path.rglob("*")):
        return "audio"
    if path.is_dir() and any(images.is_image(p) for p in path.rglob("*")):
        return "images"
    raise UserError(f"{path}: cannot tell its format; give --format "
                    f"({', '.join(READERS)})")


def format_of(data: DataConfig) -> str | None:
    """The reader `data` is read with: None for a built-in data set."""
    if data.name in BUILTIN:
        return None
    return data.format or detect_format(Path(data.name))


def _read(data: DataConfig, features: FeatureConfig) -> Dataset:
    if data.name in BUILTIN:
        return BUILTIN[data.name](data, features)
    fmt = format_of(data)
    if fmt not in READERS:
        raise UserError(f"unknown data format {fmt!r}; valid: {', '.join(READERS)}")
    return importlib.import_module(READERS[fmt]).load(data, features)


def load(data: DataConfig, features: FeatureConfig) -> Dataset:
    """Loads a built-in data set by name or a user's data set from a path, applying
    `data.limit`.

    Raises:
        UserError: for an unknown name or format, bad input (naming the file), or a split
            left empty.
    """
    for fraction in (data.val_fraction, data.test_fraction):
        if not 0 < fraction < 1:
            raise UserError(f"split fractions must be between 0 and 1, got {fraction}")
    dataset = _read(data, features)
    if dataset.skipped:
        import click

        click.echo(f"skipped {len(dataset.skipped)} bad examples (--skip-bad):", err=True)
        for problem in dataset.skipped:
            click.echo(f"  {problem}", err=True)
    if data.limit is not None:
        if data.limit < 1:
            raise UserError(f"--limit must be at least 1, got {data.limit}")
        dataset = dataset.limit(data.limit, seed=data.seed)
    for split in ("train", "val", "test"):
        if not np.any(dataset.split == split):
            raise UserError(f"data set {data.name!r} has no {split} examples")
    return dataset
