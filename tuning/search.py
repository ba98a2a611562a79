"""KerasTuner searches over kerasaudio models: the hypermodel, the tuner factory, the export of
trials (trials.csv, best.json, parallel-coordinates charts) and distributed runs.

A search lives in results/tuning/<name>/: KerasTuner's own state (oracle.json, trial_*/) next
to what this module exports. Running the same command again reloads that state, so an
interrupted search continues where it stopped and finished trials are never redone.
"""

import csv
import dataclasses
import io
import json
import logging
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
from keras_tuner.src import utils as kt_utils

from kerasaudio import datasets, inference, models, monitor, plots, resume, runs, settings, train
from kerasaudio.config import DataConfig, ModelConfig, RunConfig, TrainConfig, with_defaults
from kerasaudio.datasets.base import Dataset
from kerasaudio.errors import UserError, is_full_disk
from kerasaudio.features import frame_step_ms, kinds
from kerasaudio.models.inputs import spec_of
from tuning import spaces, trial_process

HYPERBAND_FACTOR = 3
SETTINGS_FILE = "search.json"
EXECUTIONS = "executions.jsonl"

log = logging.getLogger(__name__)


def _save_json_atomically(path, obj):
    """KerasTuner's `utils.save_json`, but local files are replaced whole.

    KerasTuner truncates and rewrites oracle.json and trial.json in place, so a search killed
    mid-write leaves an empty or partial file that the resumed search cannot reload."""
    if "://" in str(path):  # a remote file system: KerasTuner's own way
        return _save_json_in_place(path, obj)
    text = json.dumps(obj)
    runs.write_text(Path(path), text)
    return text


_save_json_in_place = kt_utils.save_json
kt_utils.save_json = _save_json_atomically  # KerasTuner looks it up on the module each time


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """One search.

    Attributes:
        run: data, features and the training settings not searched (a trial's epochs are
            Hyperband's, or `max_epochs`).
        archs: the architectures searched (several when `arch` is a grid axis).
        overrides: the user's changes to the search space.
        tuner: `hyperband`, `bayesian`, `random` or `grid`.
        max_epochs: epochs of the longest trial (Hyperband) or of every trial.
        max_trials: trials of bayesian, random and grid (None: the whole grid).
        objective: a validation metric, minimised if it is an error (loss, MAE), else maximised.
        name: folder under `out`.
        out: parent folder of searches.
        folds: cross-validated search: each trial trains once per fold (the training and
            validation data dealt into this many folds, as `fit --folds`) and scores the
            mean of the folds' objectives. None: the data's validation split.
    """

    run: RunConfig
    archs: list
    overrides: spaces.Overrides
    tuner: str = "hyperband"
    max_epochs: int = 20
    max_trials: int | None = None
    objective: str = "val_accuracy"
    name: str = "search"
    out: str = "results/tuning"
    folds: int | None = None

    @property
    def directory(self) -> Path:
        return Path(self.out) / self.name


def objective(name: str) -> kt.Objective:
    return kt.Objective(name, monitor.mode(name))


def fold_datasets(cfg: SearchConfig, dataset: Dataset) -> list:
    """The data set dealt into `cfg.folds` folds, once per fold as the validation split
    (empty without folds).

    Raises:
        UserError: when the data cannot be dealt into that many folds.
    """
    return [datasets.as_fold(dataset, dataclasses.replace(cfg.run.data, folds=cfg.folds,
                                                          fold=k))
            for k in range(cfg.folds or 0)]


class AudioHyperModel(kt.HyperModel):
    """Builds a model from the search space and trains it on tf.data batches whose batch
    size is itself a hyperparameter (hence `fit` here, not in the tuner)."""

    def __init__(self, cfg: SearchConfig, dataset: Dataset, space: dict):
        super().__init__(name="kerasaudio")
        self.cfg, self.space = cfg, space
        self.train_split, self.val_split = dataset.subset("train"), dataset.subset("val")
        self.folds, self.fold = cfg.folds, None  # `fold`: set by the trial's runner
        self.fold_splits = [(d.subset("train"), d.subset("val"))
                            for d in fold_datasets(cfg, dataset)]
        self.tasks = dataset.tasks
        # Each fold's model normalises its inputs (and minirocket adapts its biases) with its
        # own training split's frames: the fold's validation series must stay unseen, or the
        # cross-validated score flatters what a fitted model does on new data.
        self.specs = [spec_of(trained, cfg.run.train.seed,
                              spec_augment=cfg.run.train.spec_augment,
                              utterance_norm=cfg.run.features.cmvn,
                              hop_ms=frame_step_ms(dataset.features))
                      for trained, _ in (self.fold_splits or [(self.train_split, None)])]

    def _settings(self, hp) -> tuple:
        values = spaces.define(hp, self.cfg.archs, self.space)
        run = self.cfg.run
        hparams = models.resolve(values["arch"], values["model"])
        run = dataclasses.replace(run, model=dataclasses.replace(run.model, arch=values["arch"],
                                                                 hparams=hparams),
                                  train=trial_training(self.cfg, values["arch"],
                                                       values["train"]))
        return run, hparams

    def build(self, hp):
        """The trial's model, compiled by `fit`, which knows its steps per epoch."""
        run, hparams = self._settings(hp)
        return models.build(run.model.arch, self.specs[self.fold or 0], self.tasks, **hparams)

    def fit(self, hp, model, *args, **kwargs):
        run, hparams = self._settings(hp)
        train_split, val_split = (self.fold_splits[self.fold] if self.folds
                                  else (self.train_split, self.val_split))
        batches = inference.Batches(run, models.input_kind(run.model.arch), hparams)
        # A Hyperband trial that continues an earlier one continues its epochs' order too.
        first_epoch = kwargs.get("initial_epoch", 0)
        training, steps = batches.training(train_split, first_epoch=first_epoch)
        train.compile_model(model, run.train, steps, self.tasks)
        # ... and its learning-rate schedule, where the earlier trial left it: KerasTuner
        # reloads the weights, not the optimizer, whose step count would restart a cosine
        # decay from the top.
        model.optimizer.iterations.assign(first_epoch * steps)
        validation = batches.evaluation(val_split)[0]
        return model.fit(training, validation_data=validation, steps_per_epoch=steps,
                         shuffle=False, **kwargs)


class IsolatedTrials:
    """Mixed into each tuner: runs every trial in a fresh Python process, and records which
    tuner ran it and the epochs it really trained (Hyperband trials resume from earlier ones;
    early stopping cuts others short).

    Why a process per trial: TensorFlow keeps each fitted model's traced graphs alive for the
    life of the process (keras-team/keras#17458, tensorflow#61791), about 30 MiB a trial that
    `clear_session` and `gc.collect` do not return. A process that exits returns everything,
    so memory over hundreds of trials stays flat. The parent keeps the oracle and never builds
    a model after the search space is known.
    """

    kerastuner_class = None  # the KerasTuner tuner this is mixed into; see `_tuner_class`

    def __init__(self, hypermodel, **kwargs):
        super().__init__(hypermodel=hypermodel, **kwargs)
        self.construction_kwargs = kwargs  # to rebuild the same tuner in each trial's process

    def run_trial(self, trial, *args, **kwargs):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, not a fork
        with futures.ProcessPoolExecutor(1, mp_context=context, initializer=trial_process.start,
                                         initargs=(os.getpid(),)) as pool:
            try:
                results = _result(pool, pool.submit(_run_trial_here, self.kerastuner_class,
                                                    self.hypermodel, self.construction_kwargs,
                                                    trial, args, kwargs))
            except OSError as error:
                if not is_full_disk(error):
                    raise
                # KerasTuner would call the trial invalid and go on to the next, which fails
                # the same way, and end with their tracebacks: the search stops here.
                raise DiskFull(error.errno, error.strerror, error.filename) from None
        histories = []
        for logs in results:
            history = keras.callbacks.History()
            history.history = logs
            histories.append(history)
        epochs = sum(len(logs.get("loss", [])) for logs in results)
        record = {"tuner": self.tuner_id, "epochs": epochs}
        if self.hypermodel.folds:  # each fold's best objective, whose mean is the score
            best = max if self.oracle.objective.direction == "max" else min
            name = self.oracle.objective.name
            record["fold_scores"] = [best(logs[name]) if logs.get(name) else None
                                     for logs in results]
        append_execution(Path(self.get_trial_dir(trial.trial_id)) / EXECUTIONS, record)
        return histories


class DiskFull(OSError, kt.errors.FatalError):
    """A full disk in a trial: an OSError, which the CLI names in one line, and a KerasTuner
    FatalError, which ends the search rather than failing one trial after another."""


def _result(pool: futures.ProcessPoolExecutor, future: futures.Future):
    """The trial's results, waited for in short steps: a SIGINT that the kernel hands to
    another of this process's threads leaves a main thread blocked in one long wait asleep,
    and Python runs the handler only once the main thread runs again. On Ctrl-C the
    trial's process is stopped too; sent to this process alone (`kill -INT`), it would
    train on to the end of its trial."""
    try:
        while True:
            try:
                return future.result(timeout=0.5)
            except futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        for process in list((pool._processes or {}).values()):  # public in Python 3.14
            process.terminate()
        raise


class _TrialRunner:
    """Mixed into the tuner rebuilt in a trial's process: it only runs the trial it is given,
    so it needs no search space (the parent's oracle has it).

    In a cross-validated search it runs KerasTuner's trial once per fold, each fold with a
    checkpoint of its own: a Hyperband trial that continues an earlier one continues each
    fold from that fold's model, which never trained on the fold's validation examples
    (KerasTuner's executions share one checkpoint, the best of all of them)."""

    fold = None

    def _populate_initial_space(self):
        pass

    def run_trial(self, trial, *args, **kwargs):
        if not self.hypermodel.folds:
            return super().run_trial(trial, *args, **kwargs)
        histories = []
        for fold in range(self.hypermodel.folds):
            self.fold = self.hypermodel.fold = fold
            histories += super().run_trial(trial, *args, **kwargs)
        return histories

    def _get_checkpoint_fname(self, trial_id):
        path = super()._get_checkpoint_fname(trial_id)
        if self.fold is None:
            return path
        folder, name = os.path.split(path)
        return os.path.join(folder, f"fold{self.fold}-{name}")


def _run_trial_here(base, hypermodel, settings, trial, args, kwargs) -> list:
    """Runs one trial with KerasTuner's own `run_trial` of `base` (checkpoints, Hyperband's
    warm start and epochs, TensorBoard folders) and returns each execution's logs."""
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        os.environ.pop(name, None)  # a plain local tuner: the chief already made this trial
    os.environ["KERASTUNER_TUNER_ID"] = "trial-process"  # no saved state of its own to reload
    # Every trial starts from the same seed, so a resumed search reruns a trial identically.
    keras.utils.set_random_seed(hypermodel.cfg.run.train.seed)
    runner = type(f"{base.__name__}Runner", (_TrialRunner, base), {})(
        hypermodel=hypermodel, **settings)
    histories = runner.run_trial(trial, *args, **kwargs)
    return [{k: [float(v) for v in values] for k, values in h.history.items()}
            for h in histories]


def _tuner_class(name: str):
    base = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization,
            "random": kt.RandomSearch, "grid": kt.GridSearch}[name]
    return type(f"Audio{base.__name__}", (IsolatedTrials, base), {"kerastuner_class": base})


def make_tuner(cfg: SearchConfig, dataset: Dataset, space: dict):
    """The configured KerasTuner tuner, reloading an earlier state of the same search."""
    # KerasTuner takes seed 0 for none and draws one from Python's `random`, which `search`
    # has seeded: the default --seed 0 draws the same trials each time too.
    common = {"objective": objective(cfg.objective), "directory": cfg.out,
              "project_name": cfg.name, "overwrite": False, "seed": cfg.run.train.seed}
    if cfg.tuner == "hyperband":
        common.update(max_epochs=cfg.max_epochs, factor=HYPERBAND_FACTOR)
    else:
        common.update(max_trials=cfg.max_trials)
    return _tuner_class(cfg.tuner)(hypermodel=AudioHyperModel(cfg, dataset, space), **common)


def _settings_record(cfg: SearchConfig, dataset: Dataset | None = None) -> dict:
    """The settings as search.json holds them (through JSON, so tuples compare as lists),
    with what the data set holds (its examples and classes per split), as `fit` records it
    to resume a run: data that changed under the same path gives trials that do not compare."""
    record = {"archs": cfg.archs, "tuner": cfg.tuner, "max_epochs": cfg.max_epochs,
              "max_trials": cfg.max_trials, "objective": cfg.objective,
              "overrides": dataclasses.asdict(cfg.overrides),
              "data": dataclasses.asdict(cfg.run.data),
              "features": dataclasses.asdict(cfg.run.features),
              "train": dataclasses.asdict(cfg.run.train)}
    if cfg.folds:  # searches without folds keep the record they always had
        record["folds"] = cfg.folds
    own = {arch: models.training_defaults(arch) for arch in cfg.archs}
    if any(own.values()):
        # Trials have trained with them since searches recorded them: an earlier search of
        # these architectures trained at a constant rate, and its trials do not compare.
        record["arch_training"] = own
    # What trials build with the values not searched: a default changed since (gru_attention's
    # convolutions) gives trials that do not compare with the earlier ones.
    record["arch_hparams"] = {arch: models.hyperparameters(arch) for arch in cfg.archs}
    if dataset is not None:
        record["dataset"] = dataclasses.asdict(train.describe(dataset))
    return json.loads(json.dumps(runs.with_cwd(record)))


def check_resumable(cfg: SearchConfig, overwrite: bool, dataset: Dataset | None = None) -> None:
    """Refuses to continue a search with other settings or other data (its trials would not
    compare).

    Raises:
        UserError: when `cfg.directory` holds a search with different settings.
    """
    path = cfg.directory / SETTINGS_FILE
    record = _settings_record(cfg, dataset)
    if overwrite:
        _clear(cfg.directory)
    if path.exists():
        _check_state_files(cfg.directory)
        earlier = with_defaults(runs.read_json(path))
        if "arch_hparams" not in earlier:  # recorded before searches recorded them
            earlier["arch_hparams"] = json.loads(json.dumps({
                arch: models.recorded_hyperparameters(arch, {})
                for arch in earlier.get("archs") or []}))
        if "dataset" not in earlier:  # recorded before searches recorded their data
            record.pop("dataset", None)
        elif resume.FINGERPRINT not in earlier["dataset"] and "dataset" in record:
            record["dataset"].pop(resume.FINGERPRINT, None)  # or the data's fingerprint
        # The same data named another way (`../tones/`, an absolute path) is the same search.
        earlier, record = resume.resolved_paths(earlier), resume.resolved_paths(record)
        if "dataset" in earlier and "dataset" in record:
            earlier["dataset"], record["dataset"] = resume.compared_datasets(
                earlier["dataset"], record["dataset"],
                fingerprinted=resume.FINGERPRINT in earlier["dataset"])
        changed = runs.differences(earlier, record)
        # What the data set held is no option to give: it follows from the data and the rest.
        options = [name for name in changed if name != "dataset"]
        if options:
            raise UserError(f"{cfg.directory} holds a search with other settings "
                            f"({', '.join(options)} differ); use another --name, or --overwrite")
        if changed:
            raise UserError(f"{cfg.directory} holds a search of other examples (their files, "
                            "features or labels changed since); use another --name, or "
                            "--overwrite")
        return
    # Never among other files: a later --overwrite would empty the folder, taking them with it.
    if _holds_other_files(cfg.directory):
        raise UserError(f"{cfg.directory} holds files but no search (no {SETTINGS_FILE}); a "
                        "search there would mix its files with them: use another --name or --out")
    cfg.directory.mkdir(parents=True, exist_ok=True)
    runs.write_json(path, record)


def _holds_other_files(directory: Path) -> bool:
    """Whether `directory` holds files but no search (no search.json)."""
    return (directory.is_dir() and any(directory.iterdir())
            and not (directory / SETTINGS_FILE).is_file())


def _clear(directory: Path) -> None:
    """Empties a search directory for --overwrite.

    Raises:
        UserError: when `directory` holds files but no search (no search.json): --overwrite
            deletes searches, not whatever folder --name and --out happen to name.
    """
    if not directory.is_dir():
        return
    if _holds_other_files(directory):
        raise UserError(f"{directory} is not a search (it has no {SETTINGS_FILE}); "
                        "--overwrite deletes only searches, so it is left alone")
    for path in list(directory.iterdir()):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


# What KerasTuner's reload reads of its state files (keras_tuner Oracle/Trial.get_state).
STATE_KEYS = {"oracle.json": ("ongoing_trials", "hyperparameters", "tried_so_far",
                              "id_to_hash", "seed", "seed_state"),
              "trial.json": ("trial_id", "hyperparameters", "metrics", "status"),
              SETTINGS_FILE: ()}


def _check_state_files(directory: Path) -> None:
    """Names the first saved state file of a search that cannot be reloaded (e.g. one cut
    short by a full disk), rather than failing inside KerasTuner's reload."""
    for path in sorted([*directory.glob("*.json"), *directory.glob("trial_*/trial.json")]):
        try:
            state = runs.read_json(path)
        except ValueError as error:
            problem = f"not valid JSON ({error})"
        else:
            wanted = STATE_KEYS.get(path.name, ())
            missing = [k for k in wanted if k not in state] if isinstance(state, dict) \
                else ["(not a JSON object)"]
            if not missing:
                continue
            problem = f"not a KerasTuner {path.stem} state (missing {', '.join(missing)})"
        raise UserError(f"{path}: {problem}; the search cannot resume from it: fix or "
                        "delete the file, or start again with --overwrite")


def validate(cfg: SearchConfig) -> dict:
    """Checks names before any data is loaded; returns the resolved space."""
    runs.check_name(cfg.name)
    runs.check_writable(cfg.out)
    if cfg.tuner not in spaces.TUNERS:
        raise UserError(f"unknown tuner {cfg.tuner!r}; valid: {', '.join(spaces.TUNERS)}")
    if not cfg.objective.startswith("val_"):
        # A training metric rewards the trial that memorises its training data best.
        raise UserError(f"--objective {cfg.objective}: a search is scored on the validation "
                        f"data; use val_{cfg.objective}")
    space = spaces.resolve(cfg.archs, cfg.overrides, grid_search=cfg.tuner == "grid")
    train.validate(dataclasses.replace(
        cfg.run, out=cfg.out,
        model=dataclasses.replace(cfg.run.model, arch=cfg.archs[0], hparams={})))
    return space


def configure(data: DataConfig, feature_kind: str | None, augment_names: str | None,
              spec_augment: bool | None, patience: int, seed: int, archs: list,
              feature_settings: dict | None = None, **options) -> SearchConfig:
    """A search's configuration, checked: the data set's default features with the
    `feature_settings` given (FeatureConfig fields, None: not given), augmentation and
    SpecAugment (as `fit` has them, kerasaudio/settings.py), the training settings no trial
    searches, and the search's own `options` (SearchConfig's other fields)."""
    features = settings.features_for(data, feature_kind, **(feature_settings or {}))
    augment = settings.augment_for(augment_names, data, features)
    run = RunConfig(data=data, features=features, model=ModelConfig(arch=archs[0]),
                    train=TrainConfig(patience=patience, seed=seed, augment=augment,
                                      spec_augment=settings.spec_augment_for(spec_augment,
                                                                             data)))
    kinds(run.features)
    cfg = SearchConfig(run=run, archs=archs, **options)
    validate(cfg)
    return cfg


def load_data(cfg: SearchConfig) -> Dataset:
    """The search's data set, checked against its objective: what must succeed before an
    earlier search of the same name is replaced (--overwrite)."""
    # A cross-validated search pools all the training examples; --train-fraction applies
    # to each fold's share (fold_datasets).
    data = dataclasses.replace(cfg.run.data, train_fraction=1.0) if cfg.folds else cfg.run.data
    dataset = datasets.load(data, cfg.run.features)
    train.check_monitor(cfg.objective, dataset)
    # What fit checks, for every architecture searched: a frame classifier on sequence
    # labels, say, fails each trial, and KerasTuner ends the search with a traceback.
    for arch in cfg.archs:
        run = dataclasses.replace(cfg.run, model=dataclasses.replace(cfg.run.model, arch=arch))
        train.check_options(run, dataset, models.input_kind(arch))
    fold_datasets(cfg, dataset)
    return dataset


def search(cfg: SearchConfig, dataset: Dataset | None = None, verbose: int = 1):
    """Runs (or resumes) the search and exports its results.

    Returns:
        the tuner (finished), or None in a distributed worker that has more to do elsewhere.
    """
    space = validate(cfg)
    keras.utils.set_random_seed(cfg.run.train.seed)
    dataset = dataset or load_data(cfg)
    tuner = make_tuner(cfg, dataset, space)
    stop = keras.callbacks.EarlyStopping(monitor=cfg.objective,
                                         mode=tuner.oracle.objective.direction,
                                         patience=cfg.run.train.patience)
    board = keras.callbacks.TensorBoard(log_dir=str(cfg.directory / "tensorboard"))
    tuner.search(epochs=cfg.max_epochs, callbacks=[stop, board], verbose=verbose)
    return tuner


def trial_rows(directory: Path) -> list:
    """Every trial of a search as a dict: id, status, hyperparameters, epochs trained, best
    objective and the epoch it was reached at. Reads KerasTuner's trial files only."""
    rows = []
    for path in sorted(directory.glob("trial_*/trial.json")):
        trial = runs.read_json(path)
        values = trial["hyperparameters"]["values"]
        executions = _executions(path.parent / EXECUTIONS)
        rows.append({
            "trial": trial["trial_id"], "status": trial["status"],
            # `layers:gru` is gru's `layers` (tuning/spaces.py); one of them is active.
            **{spaces.hp_name(k): round(v, 10) if isinstance(v, float) else v
               for k, v in values.items() if not k.startswith("tuner/")},
            "bracket": values.get("tuner/bracket"), "round": values.get("tuner/round"),
            # Hyperband continues a trial from an earlier one's best weights, numbering its
            # epochs from the earlier round's budget.
            "initial_epoch": values.get("tuner/initial_epoch", 0),
            "from_trial": values.get("tuner/trial_id"),
            "epochs": sum(e["epochs"] for e in executions), "runs": len(executions),
            "tuner": executions[-1]["tuner"] if executions else None,
            "score": trial.get("score"), "best_step": trial.get("best_step"),
            **{f"score_fold{k}": v for k, v in enumerate(
                executions[-1].get("fold_scores", []) if executions else [])},
        })
    return rows


def append_execution(path: Path, record: dict) -> None:
    """Appends one execution's record to a trial's executions.jsonl. Appended, not
    rewritten: a trial that ran twice shows two lines. A line torn by a kill has no newline;
    the record starts on a line of its own after it, or the torn line would swallow it."""
    torn = path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
    with open(path, "a") as f:
        f.write(("\n" if torn else "") + json.dumps(record) + "\n")


def _executions(path: Path) -> list:
    """The trial's executions.jsonl records. A line that is not JSON was torn by a kill
    during its append (append_execution puts the next record on a line of its own): that
    execution's record was lost, and it is left out."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            if line.strip():
                log.warning(f"{path}: left out a record torn by an interruption")
    return records


def _to_csv(rows: list) -> str:
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def export(cfg: SearchConfig, finished: bool = True) -> dict:
    """trials.csv, best.json and the parallel-coordinates charts of a finished search, or
    of the trials an interrupted one completed (`finished` False, which best.json says).

    Returns:
        the best.json contents.
    """
    rows = trial_rows(cfg.directory)
    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    if not done:
        raise UserError(f"{cfg.directory}: no completed trial to export")
    runs.write_text(cfg.directory / "trials.csv", _to_csv(rows))
    maximise = objective(cfg.objective).direction == "max"
    best = max(done, key=lambda r: r["score"] if maximise else -r["score"])
    space = spaces.resolve(cfg.archs, cfg.overrides, grid_search=cfg.tuner == "grid")
    train_names = [n for n, (_, owners) in space.items() if owners is None]
    arch = best.get("arch", cfg.archs[0])
    model_names = models.hyperparameters(arch)
    training = _trial_training(cfg, arch, best, train_names)
    record = settings.write_best(
        cfg.directory / "best.json", arch,
        # Every one, searched or not: what the winner built, whatever later defaults are.
        hparams=models.resolve(arch, {k: v for k, v in best.items() if k in model_names}),
        train=training, epochs=retrain_epochs(cfg, rows, best, training),
        objective={"name": cfg.objective, "value": best["score"]},
        trial=best["trial"],
        # What `fit --hparams` retrains on, unless its options say otherwise.
        # The data's path resolved: `fit --hparams` may run from another folder.
        data={**dataclasses.asdict(cfg.run.data),
              "name": datasets.data_location(cfg.run.data.name)},
        features=dataclasses.asdict(cfg.run.features),
        augment=list(cfg.run.train.augment), spec_augment=cfg.run.train.spec_augment,
        search={"finished": finished, "trials": len(rows), "completed": len(done),
                "epochs_trained": int(sum(r["epochs"] for r in rows)),
                "grid_configurations": spaces.grid_size(space, cfg.archs),
                "grid_epochs": spaces.grid_size(space, cfg.archs) * cfg.max_epochs})
    _draw(cfg, done, space, maximise)
    return record


def epochs_at_best(rows: list, row: dict) -> int:
    """The epochs a trial's best weights were trained for, through the trials it continues.

    A continued Hyperband trial starts from the earlier trial's best checkpoint, which may
    be older than the earlier round's budget (its `initial_epoch`): counting from that
    checkpoint's own epochs, a winner that peaked early is not retrained for too many."""
    by_id = {r["trial"]: r for r in rows}

    def at_best(row: dict) -> int:
        earlier = by_id.get(row.get("from_trial"))
        if earlier is not None and earlier.get("best_step") is not None:
            start = at_best(earlier)
        else:
            start = row["initial_epoch"]
        # best_step counts from the epoch the trial started at, 0-based.
        return start + int(row["best_step"]) + 1

    return at_best(row)


def trial_training(cfg: SearchConfig, arch: str, values: dict) -> TrainConfig:
    """A trial's training settings: the search's, the architecture's own where `fit` takes
    them too (gru_attention's cosine schedule, say), then the trial's `values`. A schedule
    spans `max_epochs`, the longest trial, so Hyperband's short rounds train near the top of
    a cosine decay and its last round decays it to the end, as `fit --epochs max_epochs`."""
    return dataclasses.replace(cfg.run.train, epochs=cfg.max_epochs,
                               **{**models.training_defaults(arch), **values})


def retrain_epochs(cfg: SearchConfig, rows: list, row: dict, training: dict) -> int:
    """The epochs best.json gives `fit --hparams`: those the winner's best weights had
    trained for, or, under a cosine decay, which spanned the trials' `max_epochs`, all of
    them: retrained for fewer, the decay would reach zero where the trial's had not begun
    to fall. `fit` keeps the best epoch either way."""
    if training.get("schedule") == "cosine":
        return cfg.max_epochs
    return epochs_at_best(rows, row)


def _trial_training(cfg: SearchConfig, arch: str, best: dict, searched: list) -> dict:
    """The training settings best.json gives `fit --hparams`: the searched ones and the
    architecture's own, as the trials had them."""
    values = {k: v for k, v in best.items() if k in searched}
    trial = trial_training(cfg, arch, values)
    return {name: getattr(trial, name)
            for name in dict.fromkeys([*models.training_defaults(arch), *values])}


def _draw(cfg: SearchConfig, done: list, space: dict, maximise: bool) -> None:
    axes = list(dict.fromkeys(spaces.hp_name(k) for k, (param, _) in space.items()
                              if param.searched))
    if len(cfg.archs) > 1:
        axes = ["arch"] + axes
    complete = [r for r in done if all(r.get(a) is not None for a in axes)]
    if not complete:
        return
    scores = np.array([r["score"] for r in complete])
    span = (float(np.nanmin(scores)), float(np.nanmax(scores)))  # one scale for both plots
    plots.parallel_coordinates(complete, axes, "score", cfg.directory / "parallel.png",
                               title=f"{cfg.name}: all {len(complete)} trials by "
                                     f"{cfg.objective}", metric_range=span)
    cut = np.quantile(scores, 0.75 if maximise else 0.25)
    top = [r for r in complete if (r["score"] >= cut if maximise else r["score"] <= cut)]
    if len(top) < 2:  # a quartile of one trial says nothing the whole plot does not
        (cfg.directory / "parallel_top_quartile.png").unlink(missing_ok=True)  # an older one
        return
    plots.parallel_coordinates(top, axes, "score", cfg.directory / "parallel_top_quartile.png",
                               title=f"{cfg.name}: top quartile ({len(top)} trials) by "
                                     f"{cfg.objective}", metric_range=span)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_distributed(argv: list, workers: int, log_dir: Path) -> None:
    """Runs the same `tune` command as a KerasTuner chief (which serves the oracle) and
    `workers` workers on this machine, over loopback; each writes its log to `log_dir`.

    On several machines, run the command yourself on each with KERASTUNER_TUNER_ID (`chief`
    on one, `tuner0`, `tuner1`, ... on the others), KERASTUNER_ORACLE_IP (the chief's address)
    and KERASTUNER_ORACLE_PORT set, and the same --out on a shared file system.

    Raises:
        UserError: if the chief or a worker fails.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1",
           "KERASTUNER_ORACLE_PORT": str(free_port())}
    ids = ["chief"] + [f"tuner{i}" for i in range(workers)]
    procs = []
    for tuner_id in ids:
        log = open(log_dir / f"{tuner_id}.log", "w")
        procs.append((tuner_id, log, subprocess.Popen(
            [sys.executable, *argv], env={**env, "KERASTUNER_TUNER_ID": tuner_id},
            stdout=log, stderr=subprocess.STDOUT)))
    try:
        # Workers wait for the chief's oracle without end, so one failure stops them all.
        while any(proc.poll() is None for _, _, proc in procs):
            if any(proc.poll() not in (None, 0) for _, _, proc in procs):
                break
            time.sleep(0.5)
    finally:
        stopped = set()
        for tuner_id, log, proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
                stopped.add(tuner_id)
            log.close()
    failed = [tuner_id for tuner_id, _, proc in procs
              if proc.returncode != 0 and tuner_id not in stopped]
    if failed:
        raise UserError(f"tuning {', '.join(failed)} failed; see {log_dir}/<id>.log")
