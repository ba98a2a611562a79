"""predict: a finished run's model applied to audio files or feature arrays.

Audio goes through the very feature extraction the run was trained with (its config.json
holds the feature settings); the normalisation is inside best.keras. Feature arrays (.npy,
time x features) are taken as already extracted.
"""

import collections
import csv
import io
from pathlib import Path

import numpy as np

from kerasaudio import audio, features, inference, models, runs, userfiles
from kerasaudio.config import RunConfig
from kerasaudio.datasets import spectrograms
from kerasaudio.datasets.base import Dataset, Problems, read_frames
from kerasaudio.errors import UserError
from kerasaudio.runs import RunRecord

FEATURE_SUFFIXES = (".npy", ".npy.gz")


def is_array(path: Path) -> bool:
    return Path(path).name.endswith(FEATURE_SUFFIXES)


def input_files(paths) -> list:
    """The audio and .npy[.gz] files named by `paths`, folders searched recursively, in order.

    Raises:
        UserError: for a path that does not exist, a file of another kind, or no files.
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [p for p in userfiles.files_under(path)
                      if audio.is_audio(p) or is_array(p)]
        elif not path.exists() and not path.is_symlink():  # a broken link: read names it
            raise UserError(f"{path}: no such file or folder")
        elif audio.is_audio(path) or is_array(path):
            found.append(path)
        else:
            raise UserError(f"{path}: not an audio file ({', '.join(audio.AUDIO_SUFFIXES)}) "
                            f"or a {' or '.join(FEATURE_SUFFIXES)} feature array")
    if not found:
        raise UserError(f"no audio or {' or '.join(FEATURE_SUFFIXES)} files in "
                        f"{', '.join(map(str, paths))}")
    return found


def read_array(path: Path, cfg: RunConfig, n_features: int) -> np.ndarray:
    """A feature array file as the run's reader read its data: spectrograms are stored
    frequency x time and may keep only some rows (`--part`)."""
    if cfg.data.format != "spectrograms":
        return read_frames(path, n_features)

    x = spectrograms.rows(read_frames(path, transpose=True), cfg.data.part, path)
    if x.shape[1] != n_features:
        raise UserError(f"{path}: gives {x.shape[1]} rows, the run's model takes {n_features}")
    return x


def featurize(files: list, cfg: RunConfig, n_features: int,
              problems: Problems | None = None) -> tuple[list, list]:
    """(the files read, their (time, n_features) frames): audio through the run's feature
    extraction, feature arrays as its reader read them. A bad file goes to `problems`
    (default: raised at once; with `--skip-bad`, noted and left out).

    Raises:
        UserError: for the first bad file, or when no file could be read.
    """
    problems = problems or Problems(False)
    out = [None] * len(files)
    waves = {}
    for i, f in enumerate(files):
        try:
            if cfg.features.kind == features.GIVEN and not is_array(f):
                raise UserError(f"{f}: the run's features came with its data set "
                                f"({cfg.data.name}), not from audio; give .npy arrays of its "
                                "features")
            if is_array(f):
                out[i] = _checked(f, read_array(f, cfg, n_features), n_features)
            else:
                waves[i] = audio.read(f, cfg.features.sample_rate, cfg.features.frame_length)
        except UserError as error:
            problems(error)
    if waves:
        order = list(waves)
        lengths = np.array([len(waves[i]) for i in order], np.int64)
        frames, frame_lengths = features.extract(np.concatenate([waves[i] for i in order]),
                                                 lengths, cfg.features, label="features")
        offsets = np.concatenate([[0], np.cumsum(frame_lengths)])
        for k, i in enumerate(order):
            out[i] = _checked(files[i], frames[offsets[k]:offsets[k + 1]], n_features)
    kept = [i for i, x in enumerate(out) if x is not None]
    if not kept:
        raise UserError(f"none of the {len(files)} files could be read (the first: "
                        f"{problems.found[0]})")
    return [files[i] for i in kept], [out[i] for i in kept]


def _checked(path: Path, frames: np.ndarray, n_features: int) -> np.ndarray:
    if frames.shape[1] != n_features:
        raise UserError(f"{path}: gives {frames.shape[1]} features per frame, the run's "
                        f"model takes {n_features}")
    return frames


def as_dataset(sequences: list, record: RunRecord) -> Dataset:
    """The sequences as a Dataset the run's evaluation batches can serve (targets unknown)."""
    tasks = list(record.dataset.tasks)
    lengths = np.array([len(x) for x in sequences], np.int64)
    targets = {t.name: np.zeros(lengths.sum() if t.level == "frame" else len(lengths),
                                np.int64 if t.kind == "classification" else np.float32)
               for t in tasks}
    return Dataset(name="predict", frames=np.concatenate(sequences), lengths=lengths,
                   targets=targets, tasks=tasks, class_names=record.dataset.class_names,
                   split=np.full(len(lengths), "test"), features=record.config.features)


def predict_files(run_dir, paths, problems: Problems | None = None) -> tuple[list, list]:
    """Applies a run's best model to audio files, folders of them, or .npy feature arrays;
    a bad file goes to `problems` (see `featurize`).

    Returns:
        (header, rows): one row per file (per frame for frame classifiers) with, per task, the
        predicted class, its probability and every class's probability, or the predicted value.
    """
    record = runs.load_run(run_dir)
    cfg = record.config
    files, sequences = featurize(input_files(paths), cfg, record.dataset.n_features, problems)
    data = as_dataset(sequences, record)
    model = runs.load_model(run_dir)
    kind = models.input_kind(cfg.model.arch)
    batches, order = inference.Batches(cfg, kind, cfg.model.hparams).evaluation(data)
    probabilities = inference.predict(model, batches, order)

    per_frame = models.label_level(cfg.model.arch) == "frame"
    # Frames that came with the data, or span beats, have no fixed step: no time column.
    timed = per_frame and features.frame_step_ms(cfg.features) is not None
    header = ["file"] + (["frame"] if per_frame else []) + (["time_s"] if timed else [])
    # A regression task has no classes: its column is the predicted value.
    names = {t.name: data.class_names.get(t.name) for t in data.tasks}
    for task, classes in names.items():
        header += [task] if classes is None else \
            [task, f"{task}_probability"] + [f"{task}_p_{c}" for c in classes]
    rows, offsets = [], data.offsets()
    for index, (path, length) in enumerate(zip(files, data.lengths)):
        frames = range(length) if per_frame else [None]
        times = features.frame_centres_s(cfg.features, length) if timed else None
        for frame in frames:
            row = [str(path)]
            if frame is not None:
                row += [frame] + ([round(float(times[frame]), 4)] if timed else [])
                position = offsets[index] + frame
            else:
                position = index
            for task, classes in names.items():
                p = probabilities[task][position]
                row += [f"{float(p):.6f}"] if classes is None else \
                    [classes[int(p.argmax())], f"{p.max():.6f}"] + [f"{v:.6f}" for v in p]
            rows.append(row)
    return header, rows


def submission(header: list, rows: list) -> tuple[list, list]:
    """The predictions as a Kaggle-style submission: `Id` (the file's name) and one column per
    task, its predicted value or class, as the music course project submitted
    `Id,valence,energy,danceability`.

    Raises:
        UserError: for per-frame predictions, which have no one row per file.
    """
    if "frame" in header:
        raise UserError("a submission has one row per file; this run labels every frame")
    ids = [Path(row[0]).name for row in rows]
    name, count = collections.Counter(ids).most_common(1)[0] if ids else ("", 0)
    if count > 1:
        raise UserError(f"a submission's Id is the file's name, and {name!r} names {count} "
                        "files; give files of distinct names")
    tasks = [i for i, name in enumerate(header[1:], 1)
             if not name.endswith("_probability") and "_p_" not in name]
    return (["Id"] + [header[i] for i in tasks],
            [[name] + [row[i] for i in tasks] for name, row in zip(ids, rows)])


def check_outputs(run_dir, files: list, outputs: dict) -> None:
    """Refuses, before anything is predicted or written, an output path (option -> path)
    that would replace one of the `files` to predict (input_files) or any other file (a
    record of a run, say), that is given twice, or whose folder does not exist or cannot be
    written (`runs.check_new_file`).

    Raises:
        UserError: naming the output path.
    """
    runs.load_run(run_dir, warn=False)  # a mistyped run is named as such, not by its --out
    inputs = {p.resolve() for p in files}
    seen = set()
    for option, out in outputs.items():
        target = Path(out).resolve()
        if target in inputs:
            raise UserError(f"{out}: is one of the files to predict; write elsewhere")
        if target in seen:
            raise UserError(f"{out}: given for both --out and --submission")
        runs.check_new_file(Path(out), option)
        seen.add(target)


def to_csv(header: list, rows: list) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
