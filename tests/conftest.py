import copy
import logging
import os
import signal

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasaudio.config import FeatureConfig  # noqa: E402
from kerasaudio.datasets.base import Dataset, make_task  # noqa: E402


@pytest.fixture(autouse=True)
def library_logger_as_it_was(monkeypatch):
    """Every test starts with the library's logger as the test session had it: `cli.main`,
    run in-process by some tests, gives it a terminal handler and stops it propagating, which
    would hide its records from later tests' log capture."""
    logger = logging.getLogger("kerasaudio")
    for name in ("handlers", "propagate", "level"):
        monkeypatch.setattr(logger, name, copy.copy(getattr(logger, name)))


@pytest.fixture
def ctrl_c_as_at_a_terminal():
    """SIGINT raising KeyboardInterrupt, as in a command typed at a terminal, also when the
    tests run where it is ignored (`pytest &` in a script, a CI runner in the background);
    processes the test starts then take it too (exec keeps an ignored signal ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory):
    """One cache directory for the whole session, so the built-in corpus is made once."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["KERASAUDIO_CACHE"] = str(path)
    return path


def make_sequences(n: int, n_features: int = 5, seed: int = 0, min_len: int = 3,
                   max_len: int = 17) -> Dataset:
    """A small learnable data set: the class is which feature carries a positive offset."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    labels = rng.integers(0, 3, size=n)
    seqs = []
    for length, label in zip(lengths, labels):
        x = rng.standard_normal((length, n_features)).astype(np.float32)
        x[:, label] += 2.0
        seqs.append(x)
    split = np.array(["train", "val", "test"])[np.arange(n) % 3]
    names = ["a", "b", "c"]
    return Dataset(name="toy", frames=np.concatenate(seqs), lengths=lengths.astype(np.int64),
                   targets={"label": labels.astype(np.int64)}, tasks=[make_task("label", names)],
                   class_names={"label": names}, split=split, features=FeatureConfig())


@pytest.fixture
def toy_dataset():
    return make_sequences(90)


def make_frames(n: int, n_features: int = 4, seed: int = 0) -> Dataset:
    """Utterances with one label per frame: the label is which feature is raised, and it
    changes along the utterance, so a frame's neighbours matter."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 30, size=n)
    frames, labels = [], []
    for length in lengths:
        y = (np.arange(length) // 4 + rng.integers(0, 3)) % 3
        x = rng.standard_normal((length, n_features)).astype(np.float32) * 0.5
        x[np.arange(length), y] += 2.0
        frames.append(x)
        labels.append(y)
    names = ["p", "q", "r"]
    return Dataset(name="toy-frames", frames=np.concatenate(frames),
                   lengths=lengths.astype(np.int64),
                   targets={"phone": np.concatenate(labels).astype(np.int64)},
                   tasks=[make_task("phone", names, level="frame")],
                   class_names={"phone": names},
                   split=np.array(["train", "val", "test"])[np.arange(n) % 3],
                   features=FeatureConfig())
