"""Frame-labelled utterances (the phoneme course project's layout, .npy instead of .pt):
`--data FOLDER` with

- FOLDER/feat/**/<utterance>.npy: (frames, features) arrays, one per utterance;
- FOLDER/train_labels.txt: lines `utterance l1 l2 ...`, one label per frame;
- FOLDER/train_split.txt, and optionally val_split.txt and test_split.txt: utterance ids.

Utterances of test_split.txt that have labels form the test split; without any, the test
split (and without val_split.txt, the validation split) is drawn from the training list by
utterance, with the data seed (`DataConfig.seed`, not `--seed`). Utterances without labels
are left for `predict`.
"""

from pathlib import Path

import numpy as np

from kerasaudio import features, userfiles
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

TASK = "phone"
LABELS = "train_labels.txt"
FEATURES = "feat"


def _lines(path: Path) -> list:
    text = read_text(path)
    return [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_labels(path: Path) -> dict:
    """utterance -> (line number, its frame labels as strings)."""
    labels = {}
    for n, (utterance, *frames) in _lines(path):
        if not frames:
            raise UserError(f"{path}:{n}: expected 'utterance label label ...'")
        if utterance in labels:
            raise UserError(f"{path}:{n}: {utterance} is labelled twice")
        labels[utterance] = (n, frames)
    return labels


def _check_disjoint(root: Path, splits: dict) -> None:
    """Raises UserError for an utterance listed in two split lists (test would leak into
    training) or twice in one."""
    seen = {}
    for name, ids in splits.items():
        for u in ids:
            if u in seen:
                raise UserError(f"{root / f'{name}_split.txt'}: {u} is also in "
                                f"{seen[u]}_split.txt; an utterance belongs to one split")
            seen[u] = name


def read_split(path: Path) -> list:
    """The utterance ids of a split list, one per line."""
    return [words[0] for _, words in _lines(path)]


def load(data: DataConfig, cfg: FeatureConfig) -> Dataset:
    root = Path(data.name)
    labels = read_labels(root / LABELS)
    arrays = {p.stem: p for p in sorted((root / FEATURES).rglob("*.npy"))}
    splits = {s: read_split(root / f"{s}_split.txt") for s in ("train", "val", "test")
              if (root / f"{s}_split.txt").is_file() or s == "train"}
    # Test utterances without labels are for predict; the others must have them.
    splits["test"] = [u for u in splits.get("test", []) if u in labels]
    _check_disjoint(root, splits)
    order, split = [], []
    for name, ids in splits.items():
        order += ids
        split += [name] * len(ids)
    userfiles.refuse_one_file_twice([arrays[u] for u in order if u in arrays],
                                    "an utterance's array belongs to one split, once")
    series, frame_labels, n_features = [], [], None
    problems, kept = Problems(data.skip_bad), []
    for u, name in zip(order, split):
        try:
            if u not in labels:
                raise UserError(f"{root / f'{name}_split.txt'}: {u} has no labels in {LABELS}")
            if u not in arrays:
                raise UserError(f"{root / FEATURES}: no {u}.npy for {u} of {name}_split.txt")
            x = read_frames(arrays[u], n_features)
            line, y = labels[u]
            if len(y) != len(x):
                raise UserError(f"{root / LABELS}:{line}: {len(y)} labels for {u}, its "
                                f"features have {len(x)} frames")
        except UserError as error:
            problems(error)
            kept.append(False)
            continue
        n_features = x.shape[1]
        series.append(x)
        frame_labels += y
        kept.append(True)
    if not series:
        raise UserError(f"{root}: no utterance could be read")
    order = np.array(order)[kept]
    # Drawn by utterance: each is its own group, so its frames stay together.
    split = draw_missing(np.array(split, dtype=object)[kept], order, data, str(root / LABELS),
                         groups=order)
    classes = sorted(set(frame_labels), key=natural_order)
    index = {c: i for i, c in enumerate(classes)}
    return Dataset(
        name=str(root), frames=np.concatenate(series),
        lengths=np.array([len(s) for s in series], np.int64),
        targets={TASK: np.array([index[c] for c in frame_labels], np.int64)},
        tasks=[make_task(TASK, classes, level="frame")], class_names={TASK: classes},
        split=split.astype(str), features=FeatureConfig(kind=features.GIVEN),
        info={"utterance": order}, skipped=problems.found)
