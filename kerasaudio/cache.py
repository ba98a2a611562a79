"""Where generated corpora and extracted features are cached, and how they are written."""

import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_ENV = "KERASAUDIO_CACHE"


def cache_dir() -> Path:
    """The cache directory: $KERASAUDIO_CACHE, else ~/.cache/kerasaudio."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "kerasaudio"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_npz_atomic(path: Path, **arrays) -> None:
    """Writes arrays to `path` through a temporary file, so a crash never leaves half a cache."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is for all who read the folder
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_npz(path: Path) -> dict:
    """Reads a cache file written by `save_npz_atomic`; never unpickles."""
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
