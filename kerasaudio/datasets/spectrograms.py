"""Spectrogram folders (the music lab's layout): `--data FOLDER` with

- FOLDER/train_labels.txt (and optionally test_labels.txt): lines `file label`, an optional
  `Id ...` header line first; the files are looked up in FOLDER/train/ (test/) or FOLDER/;
- the arrays: .npy or .npy.gz, (frequency, time), of any length;
- optionally FOLDER/class_mapping.csv: lines `label,new label` that merge classes, or
  `label,` that drops a class's examples, as the lab merged similar genres and dropped rare
  ones.

`--part mel` or `--part chroma` keeps the first rows but the last 12, or the last 12, of a
fused mel+chroma array. Without test_labels.txt the test split is drawn from the training
files, and validation always is, with the seed; a test folder without labels is left for
`predict`.
"""

from pathlib import Path

import numpy as np

from kerasaudio import features
from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets.base import (
    Dataset,
    Problems,
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
PARTS = ("all", "mel", "chroma")


def read_labels(path: Path) -> list:
    """(line number, file name, label) of each line of a labels file."""
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        words = line.replace(",", " ").split()
        if not words or (n == 1 and words[0].lower() in ("id", "file")):
            continue
        if len(words) != 2:
            raise UserError(f"{path}:{n}: expected 'file label'")
        rows.append((n, words[0], words[1]))
    if not rows:
        raise UserError(f"{path}: lists no files")
    return rows


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
    for folder in (root / split, root):
        path = (folder / name).resolve()
        if not path.is_relative_to(root.resolve()):
            raise UserError(f"{where}: {name!r} points outside {root}")
        if path.is_file():
            return path
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
    series, labels, split, files, file_rows = [], [], [], [], None
    problems = Problems(data.skip_bad)
    for name in ("train", "test"):
        path = root / f"{name}_labels.txt"
        if not path.is_file():
            if name == "train":
                raise UserError(f"{path}: no such file")
            continue
        for n, file, label in read_labels(path):
            label = mapping.get(label, label)
            if label is None:
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
            labels.append(label)
            split.append(name)
            files.append(str(array))
    labels, split = np.array(labels), np.array(split, dtype=object)
    classes = sorted({str(c) for c in labels[split == "train"]}, key=natural_order)
    unknown = sorted({str(c) for c in labels[split == "test"]} - set(classes))
    if unknown:
        raise UserError(f"{root / 'test_labels.txt'}: class {unknown[0]!r} does not occur in "
                        "train_labels.txt")
    split = draw_missing(split, labels, data, str(root))
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(
        name=str(root), frames=np.concatenate(series),
        lengths=np.array([len(x) for x in series], np.int64),
        targets={TASK: np.array([index[c] for c in labels], np.int64)},
        tasks=[make_task(TASK, classes)], class_names={TASK: classes},
        split=split.astype(str), features=FeatureConfig(kind=features.GIVEN),
        info={"file": np.array(files)}, skipped=problems.found)
