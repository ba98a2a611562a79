"""The one in-memory form every data source is turned into."""

import dataclasses
import gzip
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kerasaudio import userfiles
from kerasaudio.config import SPLITS, FeatureConfig, Task
from kerasaudio.errors import UserError


@dataclass
class Dataset:
    """Variable-length feature sequences with their targets, split and metadata.

    Attributes:
        name: where it came from (a built-in name or a path).
        frames: float32 (total_frames, n_features): all sequences' frames, end to end.
        lengths: int64 (n_examples,): frames per sequence, in order.
        targets: task name -> int64 class index (classification) or float32 value
            (regression) per sequence (n_examples,), or per frame (total_frames,) for a
            frame-level task.
        tasks: the prediction targets, in order.
        class_names: task name -> class names by index.
        split: (n_examples,) of "train" | "val" | "test".
        features: how the frames were computed.
        info: per-example metadata arrays (speaker, voice, ...), same length as `lengths`.
        skipped: the problems of the examples a reader left out (`--skip-bad`), one line each.
        waves: (n_examples,) object array of each example's waveform (int16, or float32 in
            [-1, 1]) at `features.sample_rate`, kept by readers of audio for augmentation
            on the fly; None when the data came as features.
    """

    name: str
    frames: np.ndarray
    lengths: np.ndarray
    targets: dict
    tasks: list
    class_names: dict
    split: np.ndarray
    features: FeatureConfig
    info: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    waves: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.frames.shape[1]

    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def sequences(self) -> list:
        """The sequences as a list of (time, features) arrays (views, no copy)."""
        off = self.offsets()
        return [self.frames[a:b] for a, b in zip(off[:-1], off[1:])]

    def ids(self) -> np.ndarray:
        """A name for each example that survives the data set growing or being reordered:
        its file where it has one (audio, arrays, images), else a hash of its waveform (the
        built-in corpora: integers, the same on any machine), else of its frames (.ts)."""
        if "file" in self.info:
            return np.asarray(self.info["file"], dtype=str)
        examples = self.waves if self.waves is not None else self.sequences()
        return np.array([hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
                         for x in examples])

    def fingerprint(self) -> str:
        """A digest of what the examples hold and where they are dealt: their frames,
        lengths, targets and splits, in order. Unlike `ids`, it survives the data's folder
        moving, and it tells data that changed with every count the same from the data a run
        trained on, which no interrupted run is continued on."""
        # Each in one type, whatever array a caller gave: an object array's bytes are
        # pointers, and an integer's width depends on the platform.
        targets = [self.targets[task.name].astype(
            np.float32 if task.kind == "regression" else np.int64, copy=False)
            for task in sorted(self.tasks, key=lambda t: t.name)]
        digest = hashlib.sha256("\n".join(map(str, self.split)).encode())
        for array in (self.frames.astype(np.float32, copy=False),
                      self.lengths.astype(np.int64, copy=False), *targets):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()[:16]

    def frame_level(self, task_name: str) -> bool:
        return next(t for t in self.tasks if t.name == task_name).level == "frame"

    def take(self, index: np.ndarray) -> "Dataset":
        """A new Dataset of the examples at `index`, in that order."""
        off = self.offsets()
        rows = np.concatenate([np.arange(off[i], off[i + 1]) for i in index] + [[]]).astype(int)
        targets = {k: v[rows] if self.frame_level(k) else v[index]
                   for k, v in self.targets.items()}
        return Dataset(
            name=self.name, frames=self.frames[rows], lengths=self.lengths[index],
            targets=targets, tasks=self.tasks,
            class_names=self.class_names, split=self.split[index], features=self.features,
            info={k: v[index] for k, v in self.info.items()}, skipped=self.skipped,
            waves=None if self.waves is None else self.waves[index])

    def select_tasks(self, names) -> "Dataset":
        """The same examples with only the targets `names` (empty: all of them).

        Raises:
            UserError: for a name the data set has no target of.
        """
        if not names:
            return self
        valid = [t.name for t in self.tasks]
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise UserError(f"data set {self.name!r} has no target {', '.join(unknown)}; "
                            f"valid: {', '.join(valid)}")
        if len(set(names)) != len(names):
            raise UserError(f"a target is named twice in {', '.join(names)}")
        tasks = [next(t for t in self.tasks if t.name == n) for n in names]
        return dataclasses.replace(
            self, tasks=tasks, targets={n: self.targets[n] for n in names},
            class_names={n: c for n, c in self.class_names.items() if n in names})

    def subset(self, split: str) -> "Dataset":
        return self.take(np.nonzero(self.split == split)[0])

    def limit(self, per_split: int, seed: int) -> "Dataset":
        """At most `per_split` examples of each split, drawn at random with `seed`."""
        rng = np.random.default_rng(seed)
        keep = [np.sort(rng.permutation(np.nonzero(self.split == s)[0])[:per_split])
                for s in SPLITS]
        return self.take(np.concatenate(keep))

    def frame_statistics(self):
        """Per-feature mean and variance over all frames (call it on the training split)."""
        return self.frames.mean(axis=0), self.frames.var(axis=0)


# Features beyond this overflow float32 once squared (the normalisation's variance), and
# training on them silently reaches chance: refused instead.
MAX_FEATURE = 1e15


def as_waves(flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """All waveforms end to end, with their lengths, as an object array of views (no copy)."""
    out = np.empty(len(lengths), dtype=object)
    out[:] = np.split(flat, np.cumsum(lengths)[:-1])
    return out


def make_task(name: str, class_names: list, level: str = "sequence") -> Task:
    return Task(name=name, kind="classification", num_classes=len(class_names), level=level)


def make_regression_task(name: str, bounded: bool = False, level: str = "sequence") -> Task:
    return Task(name=name, kind="regression", level=level, bounded=bounded)


def natural_order(label: str):
    """Sort key for class labels: numbers by value (1, 2, 10), then the others as text."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def _read_npy(path) -> np.ndarray:
    """One array in NumPy's .npy format, gzipped or not. np.load would also open an .npz
    archive (several arrays) and call any other file pickled data."""
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rb") as f:
        start = f.read(len(np.lib.format.MAGIC_PREFIX))
        if start != np.lib.format.MAGIC_PREFIX:
            kind = "an .npz archive of arrays" if start.startswith(b"PK") else "another format"
            raise UserError(f"{path}: not a .npy array: {kind} (save one array with numpy.save)")
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)


def read_frames(path, n_features: int | None = None, transpose: bool = False) -> np.ndarray:
    """A (frames, features) float32 array from a .npy or .npy.gz file, checked; never
    unpickles. `transpose`: the file holds (features, frames), as spectrograms do.

    Raises:
        UserError: naming the file, if it is unreadable, of another shape (or another width
            than `n_features`), empty, or not finite.
    """
    userfiles.check_readable(path)
    try:
        x = _read_npy(path)
    except (OSError, ValueError, EOFError, zlib.error) as error:  # zlib: a damaged .gz
        raise UserError(f"{path}: not a readable .npy array ({error})") from None
    if transpose and x.ndim == 2:
        x = x.T
    if x.ndim != 2 or (n_features is not None and x.shape[1] != n_features):
        width = n_features if n_features is not None else "features"
        raise UserError(f"{path}: expected a (time, {width}) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise UserError(f"{path}: has no frames")
    real = np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    if not real or not np.all(np.isfinite(x)):
        raise UserError(f"{path}: holds NaN, infinite, complex or non-numeric values")
    # Checked before the cast, which would turn a float64 1e39 into inf.
    if np.max(np.abs(x)) > MAX_FEATURE:
        raise UserError(f"{path}: holds values beyond {MAX_FEATURE:.0e}, which overflow "
                        "training (rescale them)")
    return x.astype(np.float32)


class Problems:
    """What a reader does with a bad example: raise its error at once, or, with `skip`
    (`--skip-bad`), note it and leave the example out."""

    def __init__(self, skip: bool):
        self.skip, self.found = skip, []

    def __call__(self, error: UserError) -> None:
        if not self.skip:
            raise error
        self.found.append(str(error))


def read_text(path, kind: str = "text") -> str:
    """A UTF-8 text file's contents (a labels file, a list, a .ts file), without the byte
    order mark that spreadsheets put first ("CSV UTF-8" in Excel), which would otherwise be
    part of the first column's name.

    Raises:
        UserError: naming the file, if it is missing or not readable as `kind`.
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnicodeDecodeError, OSError) as error:
        raise UserError(f"{path}: not a readable {kind} file ({error.__class__.__name__})") \
            from None
