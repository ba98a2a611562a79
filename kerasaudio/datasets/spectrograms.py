"""Spectrogram folders (the music course project's layout): `--data FOLDER` with

- FOLDER/train_labels.txt (and optionally test_labels.txt): lines `file label`, an optional
  `Id ...` header line first; the files are looked up in FOLDER/train/ (test/) or FOLDER/,
  by name, or by id: `123` finds the one file named `123.<anything>.npy[.gz]`;
- or, for several targets (the music course project's multitask set), a header naming them,
  `Id,valence,energy,danceability`, and a value per target on each line: a column of numbers
  is a regression target (bounded to [0, 1] when all its values are), any other a class;
- the arrays: .npy or .npy.gz, (frequency, time), of any length;
- optionally FOLDER/class_mapping.csv: lines `label,new label` that merge classes, or
  `label,` that drops a class's examples, as the music course project merged similar genres
  and dropped rare ones.

`--part mel` or `--part chroma` keeps the first rows but the last 12, or the last 12, of a
fused mel+chroma array. Without test_labels.txt the test split is drawn from the training
files, and validation always is, with the data seed (`DataConfig.seed`, not `--seed`); a
test folder without labels is left for `predict`.
"""

import glob
from pathlib import Path

import numpy as np

from kerasaudio import features, userfiles
from kerasaudio.config import SPECTROGRAM_PARTS, DataConfig, FeatureConfig
from kerasaudio.datasets.base import (
    Dataset,
    Problems,
    make_regression_task,
    make_task,
    natural_order,
    read_frames,
    read_text,
)
from kerasaudio.datasets.splits import draw_missing
from kerasaudio.errors import UserError

TASK = "genre"
MAPPING = "class_mapping.csv"
CHROMA_ROWS = 12
PARTS = SPECTROGRAM_PARTS
ARRAYS = (".npy", ".npy.gz")


def read_labels(path: Path) -> tuple[list, list]:
    """(target names, rows) of a labels file; a row is (line number, file, [value per
    target]). Without a header naming targets, the one target is `genre`."""
    lines = [(n, line.replace(",", " ").split())
             for n, line in enumerate(read_text(path).splitlines(), 1)]
    lines = [(n, words) for n, words in lines if words]
    names = [TASK]
    if lines and lines[0][1][0].lower() in ("id", "file"):
        header = lines.pop(0)[1]
        names = header[1:] if len(header) > 2 else names
        if len(set(names)) != len(names):
            raise UserError(f"{path}:1: a target is named twice in the header")
    rows = []
    for n, words in lines:
        if len(words) != 1 + len(names):
            expected = "file label" if names == [TASK] else f"file {' '.join(names)}"
            raise UserError(f"{path}:{n}: expected '{expected}'")
        rows.append((n, words[0], words[1:]))
    if not rows:
        raise UserError(f"{path}: lists no files")
    return names, rows


def read_mapping(path: Path) -> dict:
    """label -> new label, or None to drop it."""
    mapping = {}
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        old, sep, new = (part.strip() for part in line.partition(","))
        if not sep or not old:
            raise UserError(f"{path}:{n}: expected 'label,new label' (or 'label,' to drop it)")
        mapping[old] = new or None
    return mapping


def _array_path(root: Path, split: str, name: str, where: str) -> Path:
    for within in (Path(split), Path()):
        folder = root / within
        userfiles.refuse_broken_link(folder / name)
        if not userfiles.lies_in(root, within / name):
            raise UserError(f"{where}: {name!r} points outside {root}")
        if (folder / name).is_file():
            return (folder / name).resolve()
        # An id: the course project's multitask labels name `123` for 123.fused.full.npy.gz.
        named = [p for p in sorted(folder.glob(f"{glob.escape(name)}.*"))
                 if p.name.endswith(ARRAYS)]
        if len(named) > 1:
            raise UserError(f"{where}: id {name!r} matches {len(named)} files in {folder}")
        if named:
            userfiles.refuse_broken_link(named[0])
            return named[0].resolve()
    raise UserError(f"{where}: {name}: no such file in {root / split} or {root}")


def rows(x: np.ndarray, part: str, path: Path) -> np.ndarray:
    """The columns (frequency rows of the file) that `part` keeps."""
    if part == "all":
        return x
    if x.shape[1] <= CHROMA_ROWS:
        raise UserError(f"{path}: {x.shape[1]} rows cannot be split into mel and "
                        f"{CHROMA_ROWS} chroma rows")
    return x[:, :-CHROMA_ROWS] if part == "mel" else x[:, -CHROMA_ROWS:]


def load(data: DataConfig, _: FeatureConfig) -> Dataset:
    root = Path(data.name)
    if data.part not in PARTS:
        raise UserError(f"unknown part {data.part!r}; valid: {', '.join(PARTS)}")
    mapping = read_mapping(root / MAPPING) if (root / MAPPING).is_file() else {}
    series, values, split, files, lines, file_rows, names = [], [], [], [], [], None, None
    problems = Problems(data.skip_bad)
    for name in ("train", "test"):
        path = root / f"{name}_labels.txt"
        if not path.is_file():
            if name == "train":
                raise UserError(f"{path}: no such file")
            continue
        columns, rows_ = read_labels(path)
        if names is not None and columns != names:
            raise UserError(f"{path}: targets {', '.join(columns)} differ from "
                            f"train_labels.txt's ({', '.join(names)})")
        names = columns
        for n, file, row in rows_:
            if len(row) == 1:
                row = [mapping.get(row[0], row[0])]
                if row[0] is None:
                    continue  # a dropped class
            try:
                array = _array_path(root, name, file, f"{path}:{n}")
                whole = read_frames(array, file_rows, transpose=True)
                x = rows(whole, data.part, array)
            except UserError as error:
                problems(error)
                continue
            file_rows = whole.shape[1]
            series.append(x)
            values.append(row)
            split.append(name)
            files.append(str(array))
            lines.append(f"{path}:{n}")
    if not series:
        raise UserError(f"{root}: no array could be read")
    values, split = np.array(values, dtype=str), np.array(split, dtype=object)
    tasks, targets, class_names = [], {}, {}
    for column, name in enumerate(names):
        task, target, classes = _target(name, values[:, column], split, root, lines)
        tasks.append(task)
        targets[name] = target
        if classes is not None:
            class_names[name] = classes
    first_class = next((t.name for t in tasks if t.kind == "classification"), None)
    _check_disjoint(files, lines)
    # Drawn splits keep each class's share; without a class, each example is its own group.
    split = draw_missing(split, targets[first_class] if first_class else np.zeros(len(split)),
                         data, str(root), groups=None if first_class else np.arange(len(split)))
    return Dataset(
        name=str(root), frames=np.concatenate(series),
        lengths=np.array([len(x) for x in series], np.int64),
        targets=targets, tasks=tasks, class_names=class_names,
        split=split.astype(str), features=FeatureConfig(kind=features.GIVEN),
        info={"file": np.array(files)}, skipped=problems.found)


def _check_disjoint(files: list, lines: list) -> None:
    """Raises UserError for an array named on two lines (in train and test, test would leak
    into training)."""
    first = {}
    for path, where in zip(files, lines):
        key = str(Path(path).resolve())
        if key in first:
            raise UserError(f"{where}: {Path(path).name} is already listed at {first[key]}; "
                            "an array belongs to one split, once")
        first[key] = where


def _target(name: str, column: np.ndarray, split: np.ndarray, root: Path, lines: list):
    """(task, targets, class names or None) of one labels column: numbers (in a file with
    named targets) are a regression target, anything else classes. `lines` names each
    example's labels line."""
    if name != TASK:
        try:
            numbers = column.astype(np.float64)
        except ValueError:
            numbers = None
        if numbers is not None:
            bad = np.flatnonzero(~np.isfinite(numbers))
            if len(bad):
                raise UserError(f"{lines[bad[0]]}: {name} is {column[bad[0]]}; targets must "
                                "be finite numbers")
            bounded = bool(np.all((numbers >= 0) & (numbers <= 1)))
            return make_regression_task(name, bounded), numbers.astype(np.float32), None
    classes = sorted({str(c) for c in column[split == "train"]}, key=natural_order)
    unknown = sorted({str(c) for c in column[split == "test"]} - set(classes))
    if unknown:
        raise UserError(f"{root / 'test_labels.txt'}: class {unknown[0]!r} does not occur in "
                        "train_labels.txt")
    index = {c: i for i, c in enumerate(classes)}
    return make_task(name, classes), np.array([index[c] for c in column], np.int64), classes
