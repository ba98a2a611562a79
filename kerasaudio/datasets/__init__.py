"""Data sources -> `Dataset`. Built-in corpora are registered by name; users' data is read
from a path, by the reader its format names (given, or told from what the path holds)."""

import functools
import hashlib
import importlib
import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from kerasaudio import audio, cache, runs, userfiles
from kerasaudio import features as feature_lib
from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets import images, music_synth, speech_synth, splits
from kerasaudio.datasets.base import (
    MAX_FEATURE,
    Dataset,
    as_waves,
    make_regression_task,
    make_task,
)
from kerasaudio.errors import UserError

log = logging.getLogger(__name__)


def _at_rate(corpus: dict, rate: int, made_at: int = speech_synth.SAMPLE_RATE) -> dict:
    """The corpus with its waveforms (int16, end to end) resampled from the rate they were
    made at to the features' `rate`."""
    import soxr

    if rate == made_at:
        return corpus
    waves = [soxr.resample(w, made_at, rate)
             for w in as_waves(corpus["waves"], corpus["lengths"])]
    return {**corpus, "waves": np.concatenate(waves),
            "lengths": np.array([len(w) for w in waves], corpus["lengths"].dtype)}


def _corpus_features(name: str, corpus: dict, features: FeatureConfig, seed: int,
                     version: str | None = None) -> dict:
    """`frames` and `lengths` of a built-in corpus's utterances (`corpus` already at the
    features' rate), extracted on first use and cached (keyed by the corpus version, by
    default speech_synth's with its engines', and the feature settings)."""
    # cmvn happens inside the model: the same extracted frames serve both settings.
    extracted = asdict(replace(features, cmvn=False))
    key = hashlib.sha1(json.dumps(extracted, sort_keys=True).encode()).hexdigest()[:12]
    path = cache.cache_dir() / (
        f"{name}-{version or speech_synth.corpus_key(name)}-seed{seed}-features-"
        f"{key}.npz")
    cached = cache.load_npz(path)
    if cached is not None:
        return cached
    frames, lengths = feature_lib.extract(corpus["waves"], corpus["lengths"], features,
                                          label=f"{features.kind} for {name}")
    cache.save_npz_atomic(path, frames=frames, lengths=lengths)
    return {"frames": frames, "lengths": lengths}


SPEAKER_INFO = ("speaker", "voice", "variant", "gender", "rate", "pitch", "snr_db")


def _spoken_digits(data: DataConfig, features: FeatureConfig) -> Dataset:
    corpus = _at_rate(speech_synth.load_corpus("spoken-digits", data.seed), features.sample_rate)
    extracted = _corpus_features("spoken-digits", corpus, features, data.seed)
    classes = list(speech_synth.DIGITS)
    return Dataset(
        name="spoken-digits", frames=extracted["frames"], lengths=extracted["lengths"],
        targets={"digit": corpus["digit"]}, tasks=[make_task("digit", classes)],
        class_names={"digit": classes}, split=corpus["split"], features=features,
        info={**{k: corpus[k] for k in SPEAKER_INFO}, "channel": corpus["channel"]},
        waves=as_waves(corpus["waves"], corpus["lengths"]))


def _spoken_phonemes(data: DataConfig, features: FeatureConfig) -> Dataset:
    """Every 10 ms frame labelled with the phoneme sounding at its centre."""
    if features.beat_sync:
        raise UserError("spoken-phonemes labels every frame; beat-synchronous frames would "
                        "merge phonemes, so --beat-sync cannot be used with it")
    corpus = _at_rate(speech_synth.load_corpus("spoken-phonemes", data.seed),
                      features.sample_rate)
    extracted = _corpus_features("spoken-phonemes", corpus, features, data.seed)
    # The phonemes' sample positions are at the rate the corpus was synthesised at; its
    # waveforms are now at the features' rate.
    scale = features.sample_rate / speech_synth.SAMPLE_RATE
    bounds = np.concatenate([[0], np.cumsum(corpus["phoneme_count"])])
    labels = [speech_synth.frame_labels(
        corpus["phoneme_start"][a:b] * scale, corpus["phoneme"][a:b],
        int(n), features.frame_step, features.frame_length)
        for a, b, n in zip(bounds[:-1], bounds[1:], corpus["lengths"])]
    labels = np.concatenate(labels)
    classes = sorted(set(labels.tolist()))
    return Dataset(
        name="spoken-phonemes", frames=extracted["frames"], lengths=extracted["lengths"],
        targets={"phone": np.searchsorted(classes, labels).astype(np.int64)},
        tasks=[make_task("phone", classes, level="frame")], class_names={"phone": classes},
        split=corpus["split"], features=features,
        info={**{k: corpus[k] for k in SPEAKER_INFO}, "text": corpus["text"]})


def _voice_attributes(data: DataConfig, features: FeatureConfig) -> Dataset:
    """Digit strings with their speaking rate, pitch and noise level scaled to [0, 1]
    (regression) and their accent, the eSpeak voice (classification)."""
    corpus = _at_rate(speech_synth.load_corpus("voice-attributes", data.seed),
                      features.sample_rate)
    extracted = _corpus_features("voice-attributes", corpus, features, data.seed)

    def scaled(values, bounds):
        return ((values - bounds[0]) / (bounds[1] - bounds[0])).astype(np.float32)

    accents = list(speech_synth.VOICES)
    loudest, quietest = speech_synth.SNR_DB_RANGE  # noise: lowest and highest SNR
    targets = {
        "rate": scaled(corpus["rate"], speech_synth.RATE_RANGE),
        "pitch": scaled(corpus["pitch"], speech_synth.PITCH_RANGE),
        # Noise level: 0 at the highest SNR, 1 at the lowest.
        "noise": scaled(-corpus["snr_db"], (-quietest, -loudest)),
        "accent": np.array([accents.index(v) for v in corpus["voice"]], np.int64),
    }
    tasks = [make_regression_task(t, bounded=True) for t in ("rate", "pitch", "noise")]
    return Dataset(
        name="voice-attributes", frames=extracted["frames"], lengths=extracted["lengths"],
        targets=targets, tasks=tasks + [make_task("accent", accents)],
        class_names={"accent": accents}, split=corpus["split"], features=features,
        info={**{k: corpus[k] for k in SPEAKER_INFO}, "text": corpus["text"]})


def _music_genres(data: DataConfig, features: FeatureConfig) -> Dataset:
    """10 s clips of generated songs: their genre (classification) and valence, energy and
    danceability (regression in [0, 1]); clips of one song share a split and a group."""
    corpus = _at_rate(music_synth.load_corpus(data.seed), features.sample_rate,
                      made_at=music_synth.SAMPLE_RATE)
    extracted = _corpus_features("music-genres", corpus, features, data.seed,
                                 version=music_synth.version())
    genres = list(music_synth.GENRE_NAMES)
    targets = {"genre": corpus["genre"].astype(np.int64),
               **{t: corpus[t].astype(np.float32) for t in music_synth.TARGETS}}
    tasks = [make_task("genre", genres)] + [make_regression_task(t, bounded=True)
                                            for t in music_synth.TARGETS]
    return Dataset(
        name="music-genres", frames=extracted["frames"], lengths=extracted["lengths"],
        targets=targets, tasks=tasks, class_names={"genre": genres}, split=corpus["split"],
        features=features,
        info={"group": corpus["song"], **{k: corpus[k] for k in MUSIC_INFO}},
        waves=as_waves(corpus["waves"], corpus["lengths"]))


MUSIC_INFO = ("tempo", "metre", "tonic", "mode", "drums")


# name -> loader(DataConfig, FeatureConfig) -> Dataset
BUILTIN = {
    "spoken-digits": _spoken_digits,
    "spoken-phonemes": _spoken_phonemes,
    "voice-attributes": _voice_attributes,
    "music-genres": _music_genres,
    "digits-images": images.load_digits,
}


def data_location(name: str, relative_to: str | None = None) -> str:
    """A --data value as one string per data set: a built-in's name (even with a folder of
    that name here, which the built-in wins over), else the path resolved (symbolic links,
    `..`, a trailing slash), a relative one from `relative_to` (the working directory of
    the command that recorded it; None, or a folder that is gone since (the project was
    moved): today's)."""
    if name in BUILTIN:
        return name
    base = runs.recorded_folder(relative_to)
    if relative_to and base != Path(relative_to) and not Path(name).is_absolute():
        _warn_moved(relative_to, name)
    return str((base / name).resolve())


@functools.cache  # once per command, however often its records are read
def _warn_moved(relative_to: str, name: str) -> None:
    log.warning(f"{relative_to}, the folder the run was made in, is gone (a moved project?): "
                f"reading its data {name} from here, {Path(name).resolve()}")


def recorded(data: DataConfig, cwd: str | None) -> DataConfig:
    """A record's data settings with its path resolved from the working directory it was
    recorded in (`cwd`; None: as it is), so that a later command reads the same data from
    any folder."""
    return replace(data, name=data_location(data.name, cwd)) if cwd else data


# format (config.DATA_FORMATS) -> module with `load(DataConfig, FeatureConfig) -> Dataset`
READERS = {
    "ts": "kerasaudio.datasets.uea",
    "audio": "kerasaudio.datasets.audio_folder",
    "frames": "kerasaudio.datasets.frames",
    "images": "kerasaudio.datasets.images",
    "spectrograms": "kerasaudio.datasets.spectrograms",
}


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder, and not a built-in data set "
                        f"({', '.join(sorted(BUILTIN))})")


def detect_format(path: Path) -> str:
    """The reader for what `path` holds.

    Raises:
        UserError: if the path does not exist or its format cannot be told.
    """
    _check_exists(path)
    if path.is_file() and path.suffix.lower() == ".ts":
        return "ts"
    if path.is_file() and path.suffix.lower() == ".csv":
        return "audio"
    if (path / "train_labels.txt").is_file():
        return "frames" if (path / "feat").is_dir() else "spectrograms"
    if path.is_dir():
        found = _folder_format(path)
        if found:
            return found
    raise UserError(f"{path}: cannot tell its format; give --format "
                    f"({', '.join(READERS)})")


def _folder_format(folder: Path) -> str | None:
    """"audio" if the folder holds an audio file anywhere (however many images beside it),
    else "images" if it holds an image, else None; in one walk, which stops at the first
    audio file."""
    holds_images = False
    for path in userfiles.walk_files(folder):
        if audio.is_audio(path):
            return "audio"
        holds_images = holds_images or images.is_image(path)
    return "images" if holds_images else None


def format_of(data: DataConfig) -> str | None:
    """The reader `data` is read with: None for a built-in data set."""
    if data.name in BUILTIN:
        return None
    if data.format:  # as recorded, or given: the path must still be there
        _check_exists(Path(data.name))
        return data.format
    return detect_format(Path(data.name))


# Data that comes as features (frames, images, spectrograms, time series) rather than audio.
FEATURE_FORMATS = ("ts", "frames", "images", "spectrograms")
FEATURE_BUILTINS = ("digits-images",)


def comes_as_features(data: DataConfig) -> bool:
    """Whether `data` holds features already, which no feature setting changes. False for
    a path that is missing or of a format that cannot be told: reading it names the
    problem, where it always has."""
    if data.name in FEATURE_BUILTINS:
        return True
    try:
        return format_of(data) in FEATURE_FORMATS
    except UserError:
        return False


def _read(data: DataConfig, features: FeatureConfig) -> Dataset:
    if data.name in BUILTIN:
        return BUILTIN[data.name](data, features)
    fmt = format_of(data)
    if fmt not in READERS:
        raise UserError(f"unknown data format {fmt!r}; valid: {', '.join(READERS)}")
    return importlib.import_module(READERS[fmt]).load(data, features)


def load(data: DataConfig, features: FeatureConfig) -> Dataset:
    """Loads a built-in data set by name or a user's data set from a path, applying
    `data.limit`.

    Raises:
        UserError: for an unknown name or format, bad input (naming the file), or a split
            left empty.
    """
    for fraction in (data.val_fraction, data.test_fraction):
        if not 0 < fraction < 1:
            raise UserError(f"split fractions must be between 0 and 1, got {fraction}")
    drawn = {name: getattr(data, f"{name}_fraction") != getattr(DataConfig, f"{name}_fraction")
             for name in ("val", "test")}
    if data.name in BUILTIN and any(drawn.values()):
        name = "val" if drawn["val"] else "test"
        raise UserError(f"{data.name} comes with its own splits (by speaker); "
                        f"--{name}-fraction applies only to data without a {name} split")
    dataset = _read(data, features).select_tasks(list(data.tasks))
    if dataset.skipped:
        log.warning(f"skipped {len(dataset.skipped)} bad examples (--skip-bad):\n  "
                    + "\n  ".join(dataset.skipped))
    _check_classes(dataset)
    if data.limit is not None:
        if data.limit < 1:
            raise UserError(f"--limit must be at least 1, got {data.limit}")
        dataset = dataset.limit(data.limit, seed=data.seed)
    dataset = as_fold(dataset, data) if data.folds is not None else \
        with_train_fraction(dataset, data)
    for split in ("train", "val", "test"):
        if not np.any(dataset.split == split):
            raise UserError(f"data set {data.name!r} has no {split} examples")
    _check_magnitude(dataset)
    return dataset


# Per-example metadata that names who or what an example came from (a speaker, a session):
# folds keep each group whole.
GROUP_KEYS = ("group", "speaker")


def groups_of(dataset: Dataset) -> np.ndarray | None:
    return next((dataset.info[k] for k in GROUP_KEYS if k in dataset.info), None)


def with_fold(dataset: Dataset, data: DataConfig) -> Dataset:
    """The data set with its training and validation examples dealt into `data.folds`
    folds, fold `data.fold` as the validation split."""
    if not 0 <= (data.fold or 0) < data.folds:
        raise UserError(f"fold {data.fold} of {data.folds} does not exist")
    pooled = np.flatnonzero(dataset.split != "test")
    if any(t.level == "frame" for t in dataset.tasks):
        raise UserError(f"{data.name}: --folds deals whole examples with one label each; "
                        "frame-level labels cannot be stratified")
    # Stratified by the first classification task (regression targets: not stratified).
    task = next((t for t in dataset.tasks if t.kind == "classification"), None)
    labels = dataset.targets[task.name][pooled] if task else None
    groups = groups_of(dataset)
    fold = splits.fold_of(len(pooled), labels, data.folds, data.seed, data.name,
                          None if groups is None else np.asarray(groups)[pooled])
    _check_every_fold_sees_every_class(dataset, pooled, fold, data)
    split = dataset.split.copy()
    split[pooled] = np.where(fold == data.fold, "val", "train")
    return replace(dataset, split=split)


def _check_every_fold_sees_every_class(dataset: Dataset, pooled: np.ndarray, fold: np.ndarray,
                                       data: DataConfig) -> None:
    """Refuses a deal that puts every example of a class (one example, or one speaker's)
    into one fold: that fold's model would never see the class and be scored on it."""
    for k in range(data.folds):
        left_out = _class_left_out(dataset, pooled, fold != k)
        if left_out:
            _, name, count = left_out
            raise UserError(f"{data.name}: all {count} training example{'s' * (count > 1)} "
                            f"of class {name!r} fall in fold {k} of --folds {data.folds}, "
                            "whose model would never see the class; use fewer folds, or give "
                            "it more examples (speakers)")


def as_fold(dataset: Dataset, data: DataConfig) -> Dataset:
    """The pooled data set as fold `data.fold` of `data.folds` trains on it: its training and
    validation examples dealt into folds, then `data.train_fraction` of the fold's training
    examples. Load the pool with train_fraction 1: the share is taken of each fold."""
    return with_train_fraction(with_fold(dataset, data), data)


def with_train_fraction(dataset: Dataset, data: DataConfig) -> Dataset:
    """The data set with `data.train_fraction` of its training examples: whole groups where
    the data has groups (stratified by class when each group has one), else examples
    stratified by the first classification task. The draw depends on the data alone, not on
    the training seed, so that runs at one share differ only in training. Validation and
    test stay whole, so that runs on less data are scored on the same examples.

    Raises:
        UserError: for a fraction outside (0, 1], or one that keeps no training example, or
            none of a class.
    """
    fraction = data.train_fraction
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise UserError(f"--train-fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return dataset
    train = np.flatnonzero(dataset.split == "train")
    task = next((t for t in dataset.tasks
                 if t.kind == "classification" and t.level == "sequence"), None)
    labels = dataset.targets[task.name][train] if task else np.zeros(len(train), np.int64)
    groups = groups_of(dataset)
    if groups is None:
        kept = _share(labels, fraction, data, "training examples")
    else:
        groups = np.asarray(groups)[train]
        _, first, member_of = np.unique(groups, return_index=True, return_inverse=True)
        if np.array_equal(labels[first][member_of], labels):  # one class per group
            kept = _share(labels[first], fraction, data, "training groups")[member_of]
        else:
            kept = _share(labels, fraction, data, "training groups", groups)
    _check_every_class_kept(dataset, train, kept, data)
    return dataset.take(np.setdiff1d(np.arange(len(dataset.split)), train[~kept]))


def _share(labels, fraction: float, data: DataConfig, units: str, groups=None) -> np.ndarray:
    """A mask of `fraction` of the examples (of whole groups, with `groups`), rounded to the
    nearest count; all of them when that is all."""
    count = len(np.unique(groups)) if groups is not None else len(labels)
    size = round(fraction * count)
    if size >= count:
        return np.ones(len(labels), bool)
    if size < 1:
        raise UserError(f"{data.name}: --train-fraction {fraction} keeps none of its {count} "
                        f"{units}")
    return splits.subsample(labels, size, data.seed, groups)


def _check_every_class_kept(dataset: Dataset, train: np.ndarray, kept: np.ndarray,
                            data: DataConfig) -> None:
    """Refuses a share that leaves out every training example of a class: a model that
    never saw one would be scored on it as if it had."""
    left_out = _class_left_out(dataset, train, kept)
    if left_out:
        task, name, _ = left_out
        raise UserError(f"{data.name}: --train-fraction {data.train_fraction} keeps "
                        f"{int(kept.sum())} of {len(train)} training examples and none of "
                        f"{task.name} {name!r}; give a larger fraction")


def _class_left_out(dataset: Dataset, examples: np.ndarray, kept: np.ndarray):
    """(task, class name, its count among `examples`) of the first class of a sequence
    classification task that `examples` (indices) hold and their subset `kept` (a mask over
    them) does not, or None: a model trained on `kept` would never see that class."""
    for task in dataset.tasks:
        if task.kind != "classification" or task.level != "sequence":
            continue
        targets = dataset.targets[task.name][examples]
        missing = np.setdiff1d(targets[targets >= 0], targets[kept])
        if missing.size:
            return (task, dataset.class_names[task.name][int(missing[0])],
                    int(np.sum(targets == missing[0])))
    return None


def _check_classes(dataset: Dataset) -> None:
    """Refuses a classification task of one class: its softmax says that class with
    probability 1 whatever the input, and a test accuracy of 1.0 would mean nothing."""
    for task in dataset.tasks:
        if task.kind == "classification" and task.num_classes < 2:
            names = dataset.class_names.get(task.name) or []
            raise UserError(f"{dataset.name}: task {task.name!r} has one class only "
                            f"({', '.join(map(repr, names))}); a classifier needs at least 2")


def _check_magnitude(dataset: Dataset) -> None:
    frames = dataset.frames
    largest = max(float(frames.max()), -float(frames.min())) if frames.size else 0.0
    if largest > MAX_FEATURE:
        row = int(np.argmax(np.abs(dataset.frames).max(axis=1)))
        example = int(np.searchsorted(dataset.offsets(), row, side="right") - 1)
        where = dataset.info["file"][example] if "file" in dataset.info else f"example {example}"
        raise UserError(f"{dataset.name}: {where} holds values up to {largest:.3g}; features "
                        f"beyond {MAX_FEATURE:.0e} overflow training (rescale them)")
