"""Data sources -> `Dataset`. Built-in corpora are registered by name."""

import hashlib
import json
from dataclasses import asdict

import numpy as np

from kerasaudio import cache
from kerasaudio.config import DataConfig, FeatureConfig
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
}


def load(data: DataConfig, features: FeatureConfig) -> Dataset:
    """Loads a data set by built-in name, applying `data.limit`.

    Raises:
        UserError: for an unknown name, or a split left empty.
    """
    if data.name not in BUILTIN:
        raise UserError(f"unknown data set {data.name!r}; valid: {', '.join(sorted(BUILTIN))}")
    dataset = BUILTIN[data.name](data, features)
    if data.limit is not None:
        if data.limit < 1:
            raise UserError(f"--limit must be at least 1, got {data.limit}")
        dataset = dataset.limit(data.limit, seed=data.seed)
    for split in ("train", "val", "test"):
        if not np.any(dataset.split == split):
            raise UserError(f"data set {data.name!r} has no {split} examples")
    return dataset
