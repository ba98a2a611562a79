"""Where generated corpora and extracted features are cached, and how they are written."""

import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CACHE_ENV = "KERASAUDIO_CACHE"
log = logging.getLogger(__name__)


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


def load_npz(path: Path) -> dict | None:
    """Reads a cache file written by `save_npz_atomic`; never unpickles.

    Returns:
        its arrays, or None when there is no such file or it is damaged (cut short, say, by
        a full disk or a copy): a damaged entry is deleted, so that it is made again.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        log.warning("%s: damaged cache file (%s); making it again", path, error)
        path.unlink(missing_ok=True)
        return None
