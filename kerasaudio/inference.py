"""Running a model on a data set: the batches an architecture reads, predictions in the
data set's order, predictions.csv, and the splits a run recorded (splits.json). What `fit`,
`evaluate`, `predict`, cross-validation and tuning share, so none of them imports another for
it."""

import csv
import io
import logging
import os
from pathlib import Path

import numpy as np

from kerasaudio import datasets, models, pipeline, runs
from kerasaudio.config import DatasetRecord, RunConfig
from kerasaudio.datasets.base import SPLITS, Dataset
from kerasaudio.errors import UserError

log = logging.getLogger(__name__)

EVAL_BATCH = 256


class Batches:
    """Builds the batches an architecture needs: padded sequences, or frame windows."""

    def __init__(self, cfg: RunConfig, kind: str, hparams: dict, replicas: int = 1):
        self.cfg, self.kind, self.hparams, self.replicas = cfg, kind, hparams, replicas

    def training(self, data: Dataset, weights: np.ndarray | None = None, boundaries=None,
                 first_epoch: int = 0):
        """(batches of every epoch from `first_epoch` on, without end; steps per epoch)."""
        t = self.cfg.train
        if self.kind == "window":
            return pipeline.window_training_batches(
                data, self.hparams["window"], t.batch_size, t.seed, t.window_edge,
                class_weights=weights, first_epoch=first_epoch, replicas=self.replicas)
        return pipeline.training_batches(data, t.batch_size, t.seed, boundaries,
                                         class_weights=weights, first_epoch=first_epoch,
                                         replicas=self.replicas, augmentations=t.augment,
                                         min_steps=t.min_epoch_steps, mixup=t.mixup)

    def evaluation(self, data: Dataset):
        """(batches, order): order[k] is the index (sequence or frame) of the k-th output."""
        if self.kind == "window":
            return (pipeline.window_batches(data, self.hparams["window"], EVAL_BATCH,
                                            self.cfg.train.window_edge),
                    np.arange(int(data.lengths.sum())))
        return pipeline.evaluation_batches(data, EVAL_BATCH)


def write_predictions(path: Path, dataset: Dataset, outputs: dict) -> None:
    """One row per test example (or frame): per task the true and predicted class and the
    predicted class's probability, or the true and predicted value."""
    text = io.StringIO()
    writer = csv.writer(text)
    header = ["index"]
    columns = [np.arange(len(next(iter(outputs.values()))))]
    for task in dataset.tasks:
        predicted, true = outputs[task.name], dataset.targets[task.name]
        if task.kind == "regression":
            header += [f"{task.name}_true", f"{task.name}_pred"]
            columns += [np.char.mod("%.6f", true), np.char.mod("%.6f", predicted)]
            continue
        header += [f"{task.name}_true", f"{task.name}_pred", f"{task.name}_prob"]
        names = np.array(dataset.class_names[task.name])
        columns += [names[true], names[predicted.argmax(axis=1)],
                    np.char.mod("%.6f", predicted.max(axis=1))]
    writer.writerow(header)
    writer.writerows(zip(*columns))
    # Through a temporary file of its own: two evaluates of one split never share one.
    runs.write_text(path, text.getvalue())


def predict(model, batches, order) -> dict:
    """Each output in dataset order: class probabilities or regression values per example,
    or, from a sequence labeller, per frame of every sequence in turn."""
    if any(len(output.shape) == 3 for output in model.outputs):
        return _predict_frames(model, batches, order)
    served = model.predict(batches, verbose=0)  # predict takes x from (x, y) batches
    out = {}
    for name, values in served.items():
        restored = np.empty_like(values)
        restored[order] = values
        out[name] = restored
    return out


def _predict_frames(model, batches, order) -> dict:
    """A sequence labeller's outputs, cut to each sequence's real frames (batches pad to
    different lengths, so they are not concatenated as they come)."""
    per_sequence = {}
    for inputs, *_ in batches:
        lengths = np.sum(inputs["mask"].numpy(), axis=1)
        for name, values in model.predict_on_batch(inputs).items():
            per_sequence.setdefault(name, []).extend(v[:n] for v, n in zip(values, lengths))
    out = {}
    for name, sequences in per_sequence.items():
        restored = [None] * len(sequences)
        for served, index in enumerate(order):
            restored[index] = sequences[served]
        out[name] = np.concatenate(restored)
    return out


SPLITS_FILE = "splits.json"


def record_splits(dataset: Dataset) -> dict:
    """What splits.json holds: each split's example ids, so that a later `evaluate --split`
    scores the very examples the run had in that split."""
    ids = dataset.ids()
    # Files named by a relative path are relative to the directory fit ran in.
    return {**{s: ids[dataset.split == s].tolist() for s in SPLITS},
            "relative_to": os.getcwd()}


def trained_on(run_dir, ids) -> int:
    """How many of the example `ids` (`Dataset.ids`) the run trained or validated on, as
    its splits.json names them: files by where they are however the path is spelt, the
    built-in corpora's examples by their hash. 0 for a run without splits.json."""
    path = Path(run_dir) / SPLITS_FILE
    if not path.exists():
        return 0
    seen = {*recorded_ids(run_dir, "train"), *recorded_ids(run_dir, "val")}
    return sum(example in seen for example in placed_ids(ids))


def recorded_ids(run_dir, split: str) -> list:
    """The example ids of `split` that the run's splits.json records, files by their
    resolved path (relative ones from where the run ran), as `placed_ids` gives a data
    set's: a folder named `tones` then and `/home/me/tones` now holds the same files."""
    return placed_split(runs.read_json(Path(run_dir) / SPLITS_FILE), split)


def placed_split(splits: dict, split: str) -> list:
    """`recorded_ids` of a splits.json's content, `splits`."""
    then = runs.recorded_folder(splits.get("relative_to"))
    return [_place(str(example), then) for example in splits.get(split, [])]


def placed_ids(ids) -> list:
    """Example ids (`Dataset.ids`) with files by their resolved path, as `recorded_ids`."""
    return [_place(str(example), Path(".")) for example in ids]


def _place(example: str, base: Path) -> str:
    return str((base / example).resolve()) if os.sep in example else example


def recorded_split(run_dir: Path, dataset: Dataset, split: str) -> Dataset:
    """`split` of `dataset` as the run recorded it (splits.json; runs made before it was
    written: as the data set's split says).

    Raises:
        UserError: when the data set no longer holds the recorded examples: the split cannot
            be rebuilt, and drawing it anew would mix training examples into it.
    """
    path = run_dir / SPLITS_FILE
    if not path.exists():
        log.warning(f"{run_dir}: has no {SPLITS_FILE} (from before runs recorded their splits, "
                    f"or deleted): its {split} split is the one the data set draws today, which "
                    "holds other examples if the data changed since")
        return dataset.subset(split)
    recorded = recorded_ids(run_dir, split)
    if not recorded:
        raise UserError(f"{run_dir}: has no {split} split (an ensemble of fold models: every "
                        "example outside the test split trained one of its members)")
    where = {example: i for i, example in enumerate(placed_ids(dataset.ids()))}
    missing = [example for example in recorded if example not in where]
    if missing:
        raise UserError(f"{run_dir}: {len(missing)} examples of the run's {split} split are no "
                        f"longer in the data set (e.g. {missing[0]})")
    return dataset.take(np.array([where[example] for example in recorded], int))


def _check_targets(run_dir: Path, recorded: DatasetRecord, data: Dataset) -> None:
    """Raises UserError when the data set's targets are not the run's (`--tasks` applied):
    a target gone or added, or of another kind (classes that became numbers, say), or
    classes not the run's, in its order: the model's output i is the i-th class the run
    trained on, and another list (a class folder added, say) would name its predictions and
    targets wrongly."""
    now = {task.name: task for task in data.tasks}
    trained = {task.name: task for task in recorded.tasks}
    for task in recorded.tasks:
        if task.name not in now:
            raise UserError(f"{run_dir}: the data set no longer has the target {task.name!r} "
                            f"the run trained on (it has {_few(list(now))})")
        if (now[task.name].kind, now[task.name].level) != (task.kind, task.level):
            raise UserError(f"{run_dir}: the data set's {task.name!r} is now a "
                            f"{now[task.name].level}-level {now[task.name].kind} target; the "
                            f"run trained it as {task.level}-level {task.kind}")
    added = [name for name in now if name not in trained]
    if trained and added:  # (records from before tasks were kept name none)
        raise UserError(f"{run_dir}: the data set has targets the run never trained on "
                        f"({_few(added)}); its model predicts {_few(list(trained))}")
    for name, classes in data.class_names.items():
        if name in recorded.class_names and list(classes) != list(recorded.class_names[name]):
            raise UserError(f"{run_dir}: the data set's classes of {name!r} are now "
                            f"{_few(classes)}; the run trained on "
                            f"{_few(recorded.class_names[name])}: its predictions cannot be "
                            "named")


def _few(classes, shown: int = 6) -> str:
    """A class list for one line: the first few, and how many in all."""
    names = ", ".join(map(str, classes[:shown]))
    return names if len(classes) <= shown else f"{names}, ... ({len(classes)} in all)"


def write_split_predictions(run_dir: Path, split: str) -> Path:
    """Predicts `split` of the run's data set, as the run recorded it, with its best.keras
    into predictions_<split>.csv."""
    record = runs.load_run(run_dir, warn=False)  # its model there, before the data is read
    cfg = record.config
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    data = recorded_split(run_dir, datasets.load(datasets.recorded(cfg.data, record.cwd),
                                                 cfg.features), split)
    _check_targets(run_dir, record.dataset, data)
    kind = models.input_kind(cfg.model.arch)
    model = runs.load_model(run_dir, compile=False)
    batches, order = Batches(cfg, kind, cfg.model.hparams).evaluation(data)
    path = runs.predictions_path(run_dir, split)
    write_predictions(path, data, predict(model, batches, order))
    return path
