"""Audio files labelled by folder or by a list: `--data FOLDER` or `--data LIST.csv`.

- FOLDER/<class>/*.wav (keras.utils.audio_dataset_from_directory's layout): a seeded,
  stratified split into train, validation and test;
- FOLDER/{train,val,test}/<class>/*.wav: those splits (without val/, validation is drawn
  from train);
- LIST.csv with a `path,label[,group]` header: paths relative to the list's folder; a group
  (a speaker, say) is kept within one split.

Any format libsndfile reads (WAV, FLAC, OGG, ...), mixed down to mono and resampled to the
feature configuration's rate; the features are then computed as for the built-in corpus.
"""

import csv
import os
from pathlib import Path

import numpy as np

from kerasaudio import audio, features, progress, userfiles
from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets.base import SPLITS, Dataset, Problems, as_waves, make_task, read_text
from kerasaudio.datasets.splits import draw_missing
from kerasaudio.errors import UserError

TASK = "class"


def _class_folders(folder: Path) -> dict:
    """class name -> its audio files (searched recursively), for each subfolder of `folder`.

    Raises:
        UserError: for audio files in `folder` itself, which have no class and would be left
            out without a word.
    """
    _refuse_loose_files(folder)
    found = {}
    for sub in userfiles.subfolders(folder):
        if not os.access(sub, os.R_OK | os.X_OK):  # its files would not be found
            raise UserError(f"{sub}: cannot be read (permission denied)")
        files = [p for p in userfiles.files_under(sub) if audio.is_audio(p)]
        if not files:
            raise UserError(f"{sub}: no audio files ({', '.join(audio.AUDIO_SUFFIXES)})")
        _refuse_two_formats(files)
        found[sub.name] = files
    if not found:
        raise UserError(f"{folder}: no class subfolders with audio files")
    return found


def _refuse_loose_files(folder: Path) -> None:
    """Raises UserError for audio files directly in `folder`, which have no class (or split)
    and would be left out without a word."""
    loose = sorted(p.name for p in folder.iterdir()
                   if userfiles.is_file_or_broken_link(p) and audio.is_audio(p))
    if loose:
        raise UserError(f"{folder}: {len(loose)} audio file{'s' * (len(loose) > 1)} outside "
                        "the class folders "
                        f"({', '.join(loose[:3])}{', ...' if len(loose) > 3 else ''}) would be "
                        "left out; move each into its class's folder")


def _refuse_two_formats(files: list) -> None:
    """Raises UserError for one name in two formats (x.wav beside x.mp3): most likely one
    recording twice, counted twice, and perhaps drawn into training and test both."""
    seen = {}
    for path in files:
        other = seen.setdefault(path.with_suffix(""), path)
        if other != path:
            raise UserError(f"{path.parent}: {other.name} and {path.name} look like one "
                            "recording in two formats; keep one (or rename one)")


def _from_folders(root: Path, to_train: bool = True) -> tuple[list, list, list, None]:
    """(files, labels, given split or "" to draw, no groups) of a folder layout; split
    folders without train/ only when not `to_train` (a test set to score a run on).

    Raises:
        UserError: for a layout that is neither class folders nor split folders exactly:
            split folders in another case (TRAIN/), or other folders beside them, which
            would silently become classes or be left out.
    """
    subfolders = userfiles.subfolders(root)
    miscased = [p.name for p in subfolders if p.name.lower() in SPLITS and p.name not in SPLITS]
    if miscased:
        raise UserError(f"{root}: split folders are named {', '.join(SPLITS)} in lower case; "
                        f"found {', '.join(miscased)}/ (rename them)")
    given = [s for s in SPLITS if (root / s).is_dir()]
    if to_train and given and "train" not in given:
        raise UserError(f"{root}: has {', '.join(given)}/ but no train/")
    others = [p.name for p in subfolders if p.name not in SPLITS]
    if given and others:
        raise UserError(f"{root}: beside {', '.join(given)}/ it holds {', '.join(others)}/, "
                        "which would be left out; move it into a split or elsewhere")
    if given:
        _refuse_loose_files(root)
    files, labels, split = [], [], []
    for part in given or [""]:
        for label, paths in _class_folders(root / part).items():
            files += paths
            labels += [label] * len(paths)
            split += [part] * len(paths)
    userfiles.refuse_one_file_twice(
        files, "a recording belongs to one class and one split, once")
    return files, labels, split, None


def labelled_files(path: Path, problems: Problems | None = None) -> tuple[list, list]:
    """(files, labels) of every audio file of a folder layout or a path,label CSV, whatever
    its split: the whole of another data set to score a finished run on."""
    problems = problems or Problems(False)
    files, labels, _, _ = (_from_list(path, problems) if path.is_file()
                           else _from_folders(path, to_train=False))
    return files, labels


def _inside(root: Path, relative: str, where: str) -> Path:
    """The file a list's row names (its real path), which must lie in the list's folder:
    where it leads, or as written without '..', so that a link there may lead elsewhere,
    as links in audio folders may."""
    written = root / relative
    if not userfiles.lies_in(root, relative):
        raise UserError(f"{where}: {relative!r} points outside {root}")
    try:
        userfiles.refuse_broken_link(written)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    real = Path(os.path.realpath(written))
    if not real.is_file():
        raise UserError(f"{where}: {relative!r}: no such file")
    return real


def _from_list(path: Path, problems: Problems) -> tuple[list, list, list, list | None]:
    """(files, labels, "" splits to draw, groups or None) of a path,label[,group] CSV."""
    rows = list(csv.reader(read_text(path, "CSV").splitlines()))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["path", "label"]:
        raise UserError(f"{path}:1: expected a header path,label[,group]")
    grouped = len(rows[0]) > 2 and rows[0][2].strip().lower() == "group"
    # A speaker column under another name would be ignored: splits drawn across speakers.
    unknown = [c.strip() for c in rows[0][3 if grouped else 2:] if c.strip()]
    if unknown:
        problem = ("group must be the third column" if unknown[0].lower() == "group"
                   else f"unknown column {unknown[0]!r}")
        raise UserError(f"{path}:1: {problem}; the header is path,label[,group] (group: the "
                        "speaker or session, which no two splits share)")
    files, labels, groups, row_numbers = [], [], [], []
    for n, row in enumerate(rows[1:], 2):
        if not row:
            continue
        try:
            if len(row) < (3 if grouped else 2) or not row[1].strip():
                raise UserError(f"{path}:{n}: expected path,label{',group' if grouped else ''}")
            files.append(_inside(path.parent, row[0].strip(), f"{path}:{n}"))
        except UserError as error:
            problems(error)
            continue
        labels.append(row[1].strip())
        row_numbers.append((n, row[0].strip()))
        if grouped:
            groups.append(row[2].strip())
    if not files:
        raise UserError(f"{path}: lists no files")
    first = {}
    for (n, written), file in zip(row_numbers, files):
        try:
            key = userfiles.identity(file)  # one file, however many links name it
        except OSError as error:  # gone since it was found
            raise UserError(f"{path}:{n}: {written!r}: {error.strerror}") from None
        if key in first:
            row, earlier = first[key]
            same = (f"{written!r} is listed twice" if earlier == written
                    else f"{earlier!r} and {written!r} are one file (through a link)")
            raise UserError(f"{path}: {same} (rows {row} and {n}); a file belongs to one "
                            "split, once")
        first[key] = n, written
    return files, labels, [""] * len(files), groups if grouped else None


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def canonical(label: str) -> str:
    """The form labels are matched in: lower case, trimmed, digits spelt out (`7` -> `seven`)."""
    label = label.strip().lower()
    # isdecimal, not isdigit: int() cannot read digits such as '²', which isdigit accepts.
    return NUMBER_WORDS[int(label)] if label.isdecimal() and int(label) < 10 else label


def _check_distinct(classes: list, root: Path) -> None:
    """Refuses two labels that name one class (`7` and `Seven`): trained apart they would
    split its examples. Labels that differ in case only stay apart (keys: C major, c minor)."""
    seen = {}
    for name in classes:
        other = seen.setdefault(canonical(name), name)
        if other.strip().lower() != name.strip().lower():
            raise UserError(f"{root}: labels {other!r} and {name!r} name the same class; "
                            "give it one name")


def _read_all(files: list, cfg: FeatureConfig, problems: Problems) -> tuple[list, np.ndarray]:
    """(waveforms of the files read, a mask of which were), reporting progress."""
    waves, kept = [], []
    for path in progress.each(files, f"Reading {len(files)} audio files", len(files)):
        try:
            waves.append(audio.read(path, cfg.sample_rate, cfg.frame_length))
            kept.append(True)
        except UserError as error:
            problems(error)
            kept.append(False)
    if not waves:
        raise UserError(f"no readable audio among {len(files)} files")
    return waves, np.array(kept, bool)


def load(data: DataConfig, cfg: FeatureConfig) -> Dataset:
    """The audio files' features, classes and splits."""
    root = Path(data.name)
    problems = Problems(data.skip_bad)
    if root.is_file():
        files, labels, split, groups = _from_list(root, problems)
    else:
        files, labels, split, groups = _from_folders(root)
    _check_distinct(sorted({str(c) for c in labels}), root)  # before minutes of reading
    waves, kept = _read_all(files, cfg, problems)
    files = [f for f, k in zip(files, kept) if k]
    labels, split = np.array(labels)[kept], np.array(split, dtype=object)[kept]
    groups = None if groups is None else np.array(groups)[kept]
    classes = sorted({str(c) for c in labels[split != "test"]})
    unknown = sorted({str(c) for c in labels} - set(classes))
    if unknown:
        raise UserError(f"{root}: class {unknown[0]!r} is in the test split only")
    split = draw_missing(split, labels, data, str(root), groups)
    frames, lengths = features.extract(np.concatenate(waves),
                                       np.array([len(w) for w in waves], np.int64), cfg,
                                       label=f"{cfg.kind} for {root.name}")
    index = {name: i for i, name in enumerate(classes)}
    info = {"file": np.array([str(f) for f in files])}
    if groups is not None:
        info["group"] = groups
    return Dataset(name=str(root), frames=frames, lengths=lengths,
                   targets={TASK: np.array([index[c] for c in labels], np.int64)},
                   tasks=[make_task(TASK, classes)], class_names={TASK: classes},
                   split=split.astype(str), features=cfg, info=info, skipped=problems.found,
                   waves=as_waves(np.concatenate(waves).astype(np.float32),
                                  np.array([len(w) for w in waves])))
