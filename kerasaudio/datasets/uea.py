"""UEA / UCR time-series archive `.ts` files: `--data X_TRAIN.ts` (with `X_TEST.ts` beside it).

The format: `#` comment lines, `@` header lines (`@problemName`, `@dimensions`,
`@classLabel true a b c`, ...), then `@data` and one case per line: each dimension's values
separated by `,`, dimensions separated by `:`, the class label last. Cases may differ in
length; within a case every dimension has the same length. This is the archive's
SpokenArabicDigits, the spoken-digit course project's own data set.
"""

from pathlib import Path

import numpy as np

from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets.base import (
    MAX_FEATURE,
    Dataset,
    Problems,
    make_task,
    natural_order,
    read_text,
)
from kerasaudio.datasets.splits import draw_missing
from kerasaudio.errors import UserError

TASK = "class"
UNSUPPORTED_HEADERS = {
    "@timestamps true": "time-stamped values",
    "@targetlabel true": "regression targets",
    "@classlabel false": "cases without class labels",
}


def _lines(path: Path):
    """(line number, stripped line) of a text file, naming the file when it cannot be read."""
    text = read_text(path, ".ts text")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]


def _header(path: Path, lines) -> tuple[dict, int]:
    """Header values by lower-case key, and the index of the first case line."""
    header = {}
    for i, (n, line) in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise UserError(f"{path}:{n}: a case before @data")
        key, _, value = line.partition(" ")
        key = key.lower()
        for start, what in UNSUPPORTED_HEADERS.items():
            if line.lower().startswith(start):
                raise UserError(f"{path}:{n}: {what} are not supported")
        if key == "@data":
            return header, i + 1
        header[key] = value.strip()
    raise UserError(f"{path}: no @data line")


def _case(path: Path, n: int, line: str, dimensions: int | None) -> tuple[np.ndarray, str]:
    *fields, label = line.split(":")
    label = label.strip()
    if not fields or not label:
        raise UserError(f"{path}:{n}: expected dimensions separated by ':' and a class label")
    try:
        columns = [np.array([_value(v) for v in f.split(",")], np.float32) for f in fields]
    except ValueError:
        raise UserError(f"{path}:{n}: a value that is not a number") from None
    if dimensions is not None and len(columns) != dimensions:
        raise UserError(f"{path}:{n}: {len(columns)} dimensions, expected {dimensions}")
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise UserError(f"{path}:{n}: dimensions of different lengths "
                        f"({', '.join(map(str, sorted(lengths)))})")
    series = np.stack(columns, axis=1)
    if not np.all(np.isfinite(series)):
        raise UserError(f"{path}:{n}: missing, NaN or infinite values")
    if np.max(np.abs(series)) > MAX_FEATURE:
        raise UserError(f"{path}:{n}: values up to {np.max(np.abs(series)):.3g}; beyond "
                        f"{MAX_FEATURE:.0e} they overflow training (rescale them)")
    return series, label


def _value(text: str) -> float:
    """A number; the archive writes a missing value as '?'."""
    return np.nan if text.strip() == "?" else float(text)


def read_ts(path, problems=None) -> tuple[list, list, list | None]:
    """The cases of one .ts file.

    Returns:
        (series, labels, declared classes): (time, dimensions) float32 arrays, their class
        labels as strings, and the header's class list (None if it gives none).

    Args:
        path: the file.
        problems: what to do with a bad case (default: raise its error).

    Raises:
        UserError: naming the file and line of the first problem.
    """
    problems = problems or Problems(skip=False)
    path = Path(path)
    lines = _lines(path)
    header, first = _header(path, lines)
    dimensions = None
    if "@dimensions" in header:
        try:
            dimensions = int(header["@dimensions"])
        except ValueError:
            raise UserError(f"{path}: @dimensions is not a number") from None
    declared = header.get("@classlabel", "").split()[1:] or None
    series, labels = [], []
    for n, line in lines[first:]:
        if not line or line.startswith("#"):
            continue
        try:
            x, label = _case(path, n, line, dimensions if dimensions else
                             (series[0].shape[1] if series else None))
            if declared is not None and label not in declared:
                raise UserError(f"{path}:{n}: class {label!r} is not in @classLabel "
                                f"({' '.join(declared)})")
        except UserError as error:
            problems(error)
            continue
        series.append(x)
        labels.append(label)
    if not series:
        raise UserError(f"{path}: no cases after @data")
    return series, labels, declared


def train_and_test_paths(path) -> tuple[Path, Path]:
    """X_TRAIN.ts and X_TEST.ts, given either."""
    path = Path(path)
    stem = path.stem
    for ours, other in (("_TRAIN", "_TEST"), ("_TEST", "_TRAIN")):
        if stem.upper().endswith(ours):
            ending = stem[-len(ours):]
            sibling = path.with_name(stem[:-len(ours)] + (
                other if ending.isupper() else other.lower()) + path.suffix)
            train, test = (path, sibling) if ours == "_TRAIN" else (sibling, path)
            break
    else:
        raise UserError(f"{path}: expected a name ending in _TRAIN.ts (with _TEST.ts beside it)")
    for p, role in ((train, "training"), (test, "test")):
        if not p.is_file():
            raise UserError(f"{p}: no such file (the {role} split)")
    return train, test


def load(data: DataConfig, features: FeatureConfig) -> Dataset:
    """The train file's cases (minus a seeded, stratified validation share) and the test
    file's, as a Dataset of given features."""
    train_path, test_path = train_and_test_paths(data.name)
    problems = Problems(data.skip_bad)
    train_series, train_labels, declared = read_ts(train_path, problems)
    test_series, test_labels, _ = read_ts(test_path, problems)
    if test_series[0].shape[1] != train_series[0].shape[1]:
        raise UserError(f"{test_path}: {test_series[0].shape[1]} dimensions, the training file "
                        f"{train_series[0].shape[1]}")
    classes = declared or sorted(set(train_labels), key=natural_order)
    unknown = sorted(set(test_labels) - set(classes))
    if unknown:
        raise UserError(f"{test_path}: class {unknown[0]!r} does not occur in {train_path.name}")
    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index[c] for c in train_labels + test_labels], np.int64)
    n_train = len(train_series)
    split = np.array(["train"] * n_train + ["test"] * len(test_series), dtype=object)
    split = draw_missing(split, np.array(train_labels + test_labels), data, str(train_path))
    series = train_series + test_series
    return Dataset(
        name=str(data.name), frames=np.concatenate(series),
        lengths=np.array([len(s) for s in series], np.int64), targets={TASK: labels},
        tasks=[make_task(TASK, classes)], class_names={TASK: list(classes)},
        split=split.astype(str), features=FeatureConfig(kind="given"), skipped=problems.found)
