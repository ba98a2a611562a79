"""Seeded train/validation/test splits for users' data sets that do not bring their own."""

import math
import warnings

import numpy as np

from kerasaudio.errors import UserError


def _can_stratify(labels: np.ndarray, size: int) -> bool:
    """Whether `size` of the examples can be drawn stratified by `labels`: that needs at
    least one example of each class on each side."""
    classes, counts = np.unique(labels, return_counts=True)
    return counts.min() >= 2 and len(classes) <= min(size, len(labels) - size)


def carve(labels: np.ndarray, fraction: float, seed: int, source: str,
          groups: np.ndarray | None = None, option: str = "the share") -> np.ndarray:
    """A boolean mask of about `fraction` of the examples, drawn with `seed`.

    Without groups the draw is stratified by label, so every class keeps its share (with
    too few examples for that, it is random but leaves one example of every class on the
    other side); with groups (speakers, say) whole groups are drawn, so no group is on both
    sides.

    Raises:
        UserError: naming `source` and `option`, when the share would leave nothing on the
            other side.
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    index = np.arange(len(labels))
    if groups is not None:
        count = len(np.unique(groups))
        if count < 2:
            raise UserError(f"{source}: one group only; at least 2 are needed to split by group")
        # Rounded up, as scikit-learn rounds a share of groups (so its earlier draws stand),
        # but checked first: a large share would take every group and crash inside it.
        size = _carved_size(math.ceil(fraction * count), count, "groups", fraction, source,
                            option)
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        _, picked = next(splitter.split(index, labels, groups))
    else:
        size = _carved_size(max(1, round(fraction * len(labels))), len(labels), "examples",
                            fraction, source, option)
        if _can_stratify(labels, size):
            _, picked = train_test_split(index, test_size=size, stratify=labels,
                                         random_state=seed)
        else:
            picked = _draw_keeping_every_class(labels, size, seed, source, option)
    mask = np.zeros(len(labels), bool)
    mask[picked] = True
    return mask


def _draw_keeping_every_class(labels: np.ndarray, size: int, seed: int, source: str,
                              option: str) -> np.ndarray:
    """Up to `size` examples drawn at random from all but one of each class, set aside first:
    too few to stratify (3 recordings of each digit), a random draw could take every example
    of a class, and the model would never train on it."""
    _, rest = _one_of_each_class(labels, seed)
    if not len(rest):
        raise UserError(f"{source}: every class has one example, which {option} would take "
                        "from training; give more examples")
    return rest[:size]


def _one_of_each_class(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(one example of each class, all the others), both in an order drawn with `seed`: the
    draws that keep every class on one side when there are too few examples to stratify."""
    order = np.random.default_rng(seed).permutation(len(labels))
    _, first = np.unique(labels[order], return_index=True)
    return order[first], np.delete(order, first)


def _carved_size(size: int, count: int, unit: str, fraction: float, source: str,
                 option: str) -> int:
    """`size`, checked to leave at least one of the `count` units on the other side."""
    if size >= count:
        raise UserError(f"{source}: {option} {fraction:g} of its {count} training {unit} "
                        f"leaves none to train on; give a smaller share")
    return size


def subsample(labels: np.ndarray, size: int, seed: int,
              groups: np.ndarray | None = None) -> np.ndarray:
    """A boolean mask of `size` examples (of `size` whole groups, with `groups`), drawn with
    `seed` so as to keep every class where it can: stratified by label, or, where a class has
    too few examples to stratify, one example of each class first and the rest at random.
    Groups are drawn at random (each may hold several classes)."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    index = np.arange(len(labels))
    if groups is not None:
        # An integer size: a fraction would be rounded up, to more groups than asked for.
        splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=seed)
        _, picked = next(splitter.split(index, labels, groups))
    elif _can_stratify(labels, size):
        _, picked = train_test_split(index, test_size=size, stratify=labels, random_state=seed)
    else:  # one of each class first, then the rest in random order
        picked = np.concatenate(_one_of_each_class(labels, seed))[:size]
    mask = np.zeros(len(labels), bool)
    mask[picked] = True
    return mask


def draw_missing(split: np.ndarray, labels: np.ndarray, data, source: str,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """`split` with the splits a data set did not bring drawn from its training examples:
    test first (`data.test_fraction`), then validation (`data.val_fraction`), with
    `data.seed`; examples marked "" count as training ones.

    Args:
        split: per example "train", "val", "test" or "" (not given).
        labels: per example class label, to stratify by.
        data: the DataConfig with the fractions and the seed.
        source: names the data in errors.
        groups: per example group kept within one split (None: stratify by label).
    """
    split = np.where(split == "", "train", split).astype(object)
    for name, fraction in (("test", data.test_fraction), ("val", data.val_fraction)):
        if (split == name).any():
            if fraction != getattr(type(data), f"{name}_fraction"):
                raise UserError(f"{source} has a {name} split of its own; --{name}-fraction "
                                "applies only to data without one")
        else:
            train = np.flatnonzero(split == "train")
            chosen = carve(labels[train], fraction, data.seed, source,
                           None if groups is None else groups[train], f"--{name}-fraction")
            split[train[chosen]] = name
    return split


def fold_of(n: int, labels: np.ndarray | None, folds: int, seed: int, source: str,
            groups: np.ndarray | None = None) -> np.ndarray:
    """Which of `folds` folds each of `n` examples is in, drawn with `seed`: stratified by
    label (None: not stratified, as for regression) and, with groups, whole groups per
    fold, so that no group (speaker) is in two folds.

    Raises:
        UserError: naming `source`, when the examples (or groups) cannot fill every fold.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    units, unit = (len(np.unique(groups)), "groups") if groups is not None else (n, "examples")
    if units < folds:
        raise UserError(f"{source}: {units} {unit} to train on, fewer than --folds {folds}")
    if labels is None:
        splitter = (GroupKFold(folds, shuffle=True, random_state=seed) if groups is not None
                    else KFold(folds, shuffle=True, random_state=seed))
    else:
        splitter = (StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
                    if groups is not None else StratifiedKFold(folds, shuffle=True,
                                                               random_state=seed))
    fold = np.full(n, -1)
    try:
        with warnings.catch_warnings():
            # A class with fewer members than folds is simply absent from some folds.
            warnings.simplefilter("ignore", UserWarning)
            for k, (_, held_out) in enumerate(splitter.split(np.zeros(n), labels, groups)):
                fold[held_out] = k
    except ValueError as error:
        raise UserError(f"{source}: cannot deal the examples into {folds} folds ({error})") \
            from None
    sizes = np.bincount(fold[fold >= 0], minlength=folds)
    if sizes.min() == 0 or sizes.max() == n:
        raise UserError(f"{source}: --folds {folds} leaves a fold empty (fold sizes "
                        f"{', '.join(map(str, sizes))}); use fewer folds")
    return fold
