"""fit: data -> model -> run directory (config.json, history.csv, best.keras, metrics.json,
predictions.csv, report.md, plots/, status.json, tensorboard/)."""

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import kerasaudio
from kerasaudio import (
    augment,
    datasets,
    distribute,
    evaluate,
    inference,
    interrupts,
    models,
    pipeline,
    runs,
    transfer,
)
from kerasaudio import monitor as monitor_lib
from kerasaudio import resume as resume_lib
from kerasaudio.config import (
    OPTIMIZERS,
    SCHEDULES,
    WINDOW_EDGES,
    DatasetRecord,
    RunConfig,
    TrainConfig,
)
from kerasaudio.datasets.base import SPLITS, Dataset
from kerasaudio.errors import UserError, is_full_disk
from kerasaudio.features import frame_step_ms
from kerasaudio.models import heads
from kerasaudio.models.inputs import spec_augment_settings, spec_of

# Below this many validation examples, one example is worth a percentage point or more of
# the score that picks the best epoch and stops training: a noisy guide.
MIN_VALIDATION = 100

log = logging.getLogger(__name__)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever `monitor` improves, atomically (temporary file + rename),
    so best.keras is always a complete model."""

    def __init__(self, path: Path, monitor: str = "val_loss"):
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.sign = 1.0 if monitor_lib.lower_is_better(monitor) else -1.0
        self.best, self.best_epoch = np.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        # An epoch that diverged is never the best, whatever its (chance) accuracy says.
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return
        if value is not None and self.sign * value < self.best:
            self.best, self.best_epoch = self.sign * value, epoch + 1
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.stem + ".tmp.keras")
        try:
            self.model.save(tmp)
            os.replace(tmp, self.path)
        except BaseException as error:
            # A full disk (or a Ctrl-C) leaves no partial model behind.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not isinstance(error, OSError) or error.errno is None or error.filename:
                raise
            # Keras's zip writer names no file: the line the user reads names the model.
            raise OSError(error.errno, error.strerror, str(self.path)) from error


class EpochStats(keras.callbacks.Callback):
    """Adds each epoch's wall time, learning rate and (for padded sequences) fraction of padded
    frames to the logs, so they reach history.csv and TensorBoard; it must come first."""

    def __init__(self, padding=None):
        super().__init__()
        self.padding = padding

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self.start
        lr = self.model.optimizer.learning_rate
        value = lr(self.model.optimizer.iterations) if callable(lr) else lr
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(value))  # also when mirrored
        if self.padding is not None:
            logs["padded_fraction"] = next(self.padding)


class RunBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback with EpochStats's wall time tagged `epoch_seconds`: the
    callback prefixes every log with `epoch_`, which would make it `epoch_epoch_seconds`."""

    def on_epoch_end(self, epoch, logs=None):
        logs = {("seconds" if k == "epoch_seconds" else k): v for k, v in (logs or {}).items()}
        super().on_epoch_end(epoch, logs)


LOG_FILE = "train.log"


class EpochLog(keras.callbacks.Callback):
    """Appends one plain line per epoch to the run's train.log, whatever the terminal shows:
    a record of the run that a resumed run continues."""

    def __init__(self, path: Path, epochs: int):
        super().__init__()
        self.path, self.epochs = path, epochs

    def on_epoch_end(self, epoch, logs=None):
        values = " - ".join(f"{k}: {v:.4g}" for k, v in (logs or {}).items()
                            if isinstance(v, int | float))
        with open(self.path, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} epoch {epoch + 1}/{self.epochs} - "
                    f"{values}\n")


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite (a learning rate far
    too high, say): every later step would only spread the NaN through the weights. It
    remembers where, so that the run can say so."""

    def __init__(self):
        super().__init__()
        self.epoch, self.at = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            self.at = {"epoch": self.epoch + 1, "batch": batch + 1, "loss": str(loss)}
            self.model.stop_training = True


class Diverged(UserError):
    """Training diverged before any epoch was good enough to keep as best.keras."""


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    """A float, or a Keras schedule stepped once per batch."""
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "cosine-restarts":
        return keras.optimizers.schedules.CosineDecayRestarts(
            cfg.lr, first_decay_steps=cfg.t0 * steps_per_epoch, t_mul=cfg.t_mult)
    return cfg.lr  # constant, or plateau (a callback lowers it)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer with its schedule, weight decay and gradient clipping."""
    common = {"learning_rate": learning_rate(cfg, steps_per_epoch), "clipnorm": cfg.clipnorm,
              "weight_decay": cfg.weight_decay or None}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(**common)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(**{**common, "weight_decay": cfg.weight_decay})
    return keras.optimizers.SGD(momentum=cfg.momentum, **common)


def validate(cfg: RunConfig) -> None:
    """Rejects option combinations that cannot work, before any data is loaded."""
    t = cfg.train
    runs.check_writable(cfg.out)
    if t.optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {t.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    if t.schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {t.schedule!r}; valid: {', '.join(SCHEDULES)}")
    if t.window_edge not in WINDOW_EDGES:
        raise UserError(f"unknown window edge {t.window_edge!r}; valid: {', '.join(WINDOW_EDGES)}")
    if t.strategy not in distribute.STRATEGIES:
        raise UserError(f"unknown strategy {t.strategy!r}; valid: "
                        f"{', '.join(distribute.STRATEGIES)}")
    # The command line's ranges, for settings read from a config.json (`fit --config`).
    _check_number("label_smoothing", t.label_smoothing, below=1)
    _check_number("mixup", t.mixup)
    models.resolve(cfg.model.arch, cfg.model.hparams)


def _check_number(name: str, value, below: float = math.inf) -> None:
    """Raises UserError unless `value` is a number from 0 up to (not including) `below`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < below:
        bound = f"below {below:g}" if below < math.inf else "finite"
        raise UserError(f"train.{name} is {value!r}; expected a number, at least 0 and {bound}")


def check_monitor(monitor: str, dataset: Dataset) -> None:
    names = ["loss"] + [f"{t.name}_{m}" for t in dataset.tasks for m in heads.metric_names(t)]
    if len(dataset.tasks) == 1:
        # Keras drops the output's name when there is only one.
        names += heads.metric_names(dataset.tasks[0])[1:]
    valid = names + [f"val_{n}" for n in names]
    if monitor not in valid:
        raise UserError(f"cannot monitor {monitor!r}; valid: {', '.join(valid)}")


def class_weights(dataset: Dataset) -> np.ndarray:
    """Per-class weights n / (classes * n_c) from the only task's training targets.

    Raises:
        UserError: unless the data set has one task, a classification.
    """
    if len(dataset.tasks) != 1 or dataset.tasks[0].kind != "classification":
        raise UserError("--class-weights needs exactly one task, a classification; the "
                        f"tasks are {', '.join(t.name for t in dataset.tasks)} (see --tasks)")
    task = dataset.tasks[0]
    counts = np.bincount(dataset.targets[task.name], minlength=task.num_classes)
    return np.where(counts > 0, counts.sum() / (task.num_classes * np.maximum(counts, 1)), 0.0)


def _check_validation_size(val: Dataset, cfg: RunConfig) -> None:
    monitor = cfg.train.monitor
    if monitor.startswith("val_") and len(val.lengths) < MIN_VALIDATION:
        remedy = ("fewer folds give larger ones" if cfg.data.folds else
                  "give it more with --val-fraction, or cross-validate with --folds K")
        log.warning(f"the validation split has {len(val.lengths)} examples, too few to pick "
                    f"the best epoch and stop training reliably by {monitor}; {remedy}")


def _check_levels(dataset: Dataset, arch: str) -> None:
    wanted = models.label_level(arch)
    for task in dataset.tasks:
        if task.level != wanted:
            raise UserError(f"architecture {arch!r} predicts one label per {wanted}, but task "
                            f"{task.name!r} of {dataset.name!r} has one per {task.level}")


def fit(cfg: RunConfig, dataset: Dataset | None = None, verbose="auto", resume: bool = True,
        callbacks=()) -> tuple[Path, dict]:
    """Trains `cfg.model.arch` on `cfg.data` and writes a run directory.

    A run of the same configuration under `cfg.out` that was interrupted (Ctrl-C, or its
    process killed) is continued from its last completed epoch, into its own run directory,
    with the same result as if it had never stopped.

    A multiworker run is not resumed (every worker would have to find the same state); its
    non-chief workers write their run directory to a temporary folder that they delete.

    Args:
        cfg: the run configuration.
        dataset: an already loaded data set (default: load `cfg.data`).
        verbose: Keras verbosity of `model.fit`.
        resume: continue an interrupted run of the same configuration (False: start anew).
        callbacks: extra Keras callbacks for `model.fit`, run before the run's own state is
            saved at each epoch's end.

    Returns:
        (run directory, metrics dict as written to metrics.json).
    """
    validate(cfg)
    strategy = distribute.make(cfg.train.strategy)  # first: multiworker must precede any op
    with _output_folder(cfg) as out:
        return _fit(dataclasses.replace(cfg, out=out), strategy, dataset, verbose,
                    resume and out == cfg.out, callbacks)


@contextlib.contextmanager
def _output_folder(cfg: RunConfig):
    """`cfg.out`; on a multiworker cluster's non-chief workers, which take the same steps
    (every all-reduce needs them), a temporary folder deleted afterwards, so that only the
    chief's run directory is kept."""
    if distribute.is_chief(cfg.train.strategy):
        yield cfg.out
        return
    with tempfile.TemporaryDirectory(prefix="kerasaudio-worker-") as out:
        yield out


def check_options(cfg: RunConfig, dataset: Dataset, kind: str) -> None:
    """Everything about the options that the data decides, before anything is written (also
    for each architecture of a search, before its first trial)."""
    _check_levels(dataset, cfg.model.arch)
    if cfg.train.augment and kind == "window":
        raise UserError(f"--augment is for whole utterances; {cfg.model.arch!r} classifies "
                        "windows of frames: use --augment none")
    if cfg.train.mixup and kind == "window":
        raise UserError(f"--mixup mixes whole examples; {cfg.model.arch!r} classifies windows "
                        "of frames: use --mixup 0")
    if cfg.train.mixup and cfg.train.overfit_batches:
        raise UserError("--overfit-batches checks that the loss can reach ~0, which mixed "
                        "targets never let it: use --mixup 0")
    if cfg.train.label_smoothing and cfg.train.overfit_batches:
        raise UserError("--overfit-batches checks that the loss can reach ~0, which smoothed "
                        "targets never let it: use --label-smoothing 0")
    if cfg.train.label_smoothing and not any(task.kind == "classification"
                                             for task in dataset.tasks):
        raise UserError("--label-smoothing smooths class targets; this data set has only "
                        "regression tasks: use --label-smoothing 0")
    pipeline.check_augmentable(dataset, cfg.train.augment)
    pipeline.check_mixable(dataset, cfg.train.mixup)
    check_monitor(cfg.train.monitor, dataset)
    heads.loss_weights(dataset.tasks, cfg.train.task_weights)  # names tasks
    if cfg.train.class_weights:
        class_weights(dataset)
        if kind == "sequence" and models.label_level(cfg.model.arch) == "frame":
            raise UserError(f"--class-weights is not supported by {cfg.model.arch!r}, which "
                            "labels whole sequences; use frame_mlp or bilstm_frames")
    if not cfg.train.overfit_batches:
        _check_validation_size(dataset.subset("val"), cfg)


def _record(cfg: RunConfig, dataset: Dataset, hparams: dict, replicas: int) -> tuple:
    """(the resolved RunConfig, config.json's contents) of a run."""
    # The data set's own feature description: a .ts file's frames came with it, whatever
    # --features said, and predict and export must know that.
    # The reader too, so that predict reads arrays as training did (spectrograms are stored
    # frequency x time).
    resolved = dataclasses.replace(cfg, features=dataclasses.replace(
                                       dataset.features, cmvn=cfg.features.cmvn),
                                   data=dataclasses.replace(cfg.data,
                                                            format=datasets.format_of(cfg.data)),
                                   model=dataclasses.replace(cfg.model, hparams=hparams))
    config = json.loads(json.dumps(runs.with_cwd({
        **dataclasses.asdict(resolved),
        "dataset": dataclasses.asdict(describe(dataset)),
        "distribution": {"strategy": cfg.train.strategy, "replicas": replicas,
                         "global_batch_size": cfg.train.batch_size * replicas},
        "versions": {"keras": keras.__version__, "kerasaudio": kerasaudio.__version__},
        "augmentation": {**{name: augment.STRENGTHS[name] for name in cfg.train.augment},
                         **({"spec_augment": spec_augment_settings(frame_step_ms(
                             dataset.features))} if cfg.train.spec_augment else {})},
        **({"source_run": transfer.describe_source(cfg.finetune.source)} if cfg.finetune
           else {}),
    })))
    return resolved, config


def _warn_reused(source, test: Dataset) -> None:
    """Warns when a fine-tuning's test split holds examples its source run trained or
    validated on, whose score flatters the model. The source's own data keeps the source's
    splits (transfer.py); the same files in another form (a CSV of them) draw new ones."""
    reused = inference.trained_on(source, test.ids())
    if reused:
        log.warning(f"{reused} of the {len(test.lengths)} test examples were in the training "
                    f"or validation split of {source}: the test score says little of new data")


def _fit(cfg: RunConfig, strategy, dataset, verbose, resume, callbacks) -> tuple[Path, dict]:
    keras.utils.set_random_seed(cfg.train.seed)
    # Same seed, same machine, same numbers: deterministic kernels cost little on a CPU.
    tf.config.experimental.enable_op_determinism()
    dataset = dataset or datasets.load(cfg.data, cfg.features)
    kind = models.input_kind(cfg.model.arch)
    check_options(cfg, dataset, kind)
    train, val, test = (dataset.subset(s) for s in SPLITS)
    if cfg.finetune:
        _warn_reused(cfg.finetune.source, test)
    hparams = models.resolve(cfg.model.arch, cfg.model.hparams)
    spec = spec_of(train, cfg.train.seed, spec_augment=cfg.train.spec_augment,
                   utterance_norm=cfg.features.cmvn, hop_ms=frame_step_ms(dataset.features))
    with strategy.scope():  # variables are created once per replica
        model = transfer.build(cfg.finetune.source, dataset.tasks, dataset.n_features,
                               cfg.train.spec_augment) \
            if cfg.finetune else models.build(cfg.model.arch, spec, dataset.tasks, **hparams)
    replicas = strategy.num_replicas_in_sync
    # The pipeline serves global batches; the strategy splits each one over the replicas.
    batching = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, batch_size=cfg.train.batch_size * replicas))
    resolved, config = _record(cfg, dataset, hparams, replicas)
    # A fine-tuning run switches models between its phases, which a resumed state cannot
    # tell apart; it starts anew.
    resume = resume and cfg.train.strategy != "multiworker" and cfg.finetune is None
    found = resume_lib.find(cfg.out, config) if resume else None
    if found is None:
        run_dir, state = runs.create(cfg.out, cfg.model.arch, cfg.data.name), None
        # Before anything else: a run directory without status.json is a complete run (of
        # a kerasaudio from before status.json), and a kill may come at any moment.
        runs.write_json(run_dir / "status.json", resume_lib.running_status())
    else:
        run_dir, state = found
        log.info(f"resuming {run_dir} after epoch {state['epoch']}" if state else
                 f"starting {run_dir} again: it stopped before its first epoch ended")
    # Two processes resuming the same interrupted run would write over each other.
    with runs.locked(run_dir, inside=True):
        if found and not resume_lib.still_as_found(run_dir, state):
            raise UserError(f"{run_dir} was resumed by another process meanwhile; run the "
                            "same command again")
        if state is None:
            runs.write_json(run_dir / "config.json", config)
            runs.write_json(run_dir / inference.SPLITS_FILE, inference.record_splits(dataset))
        else:
            _record_skipped(run_dir, config)
        return _run_in(run_dir, model, resolved, batching, kind, hparams, replicas, train, val,
                       test, verbose, state, callbacks, strategy)


def _record_skipped(run_dir: Path, config: dict) -> None:
    """A resumed run trains on the examples it started with (their fingerprint says so),
    but the bad files `--skip-bad` left out may be others now (one deleted, another gone
    bad): config.json names those of the session that continues."""
    recorded = runs.read_json(run_dir / "config.json")
    skipped = config["dataset"].get("skipped", [])
    if recorded.get("dataset", {}).get("skipped", []) != skipped:
        recorded["dataset"]["skipped"] = skipped
        runs.write_json(run_dir / "config.json", recorded)


def _run_in(run_dir, model, resolved, batching, kind, hparams, replicas, train, val, test,
            verbose, state, callbacks, strategy) -> tuple[Path, dict]:
    """Trains and tests in `run_dir`, keeping status.json true to what happened."""
    runs.write_json(run_dir / "status.json", resume_lib.running_status())
    try:
        job = _Job(model, resolved, inference.Batches(batching, kind, hparams, replicas),
                   run_dir, train, val, test, verbose, state, strategy)
        metrics = _train_and_test(job, list(callbacks))
    except KeyboardInterrupt:
        runs.write_json(run_dir / "status.json", {"status": "interrupted"})
        raise
    except Diverged as error:
        # An outcome, not a crash: the history stays; the saved state holds NaN weights.
        runs.write_json(run_dir / "status.json", {"status": "diverged", "error": str(error)})
        shutil.rmtree(run_dir / resume_lib.STATE_DIR, ignore_errors=True)
        raise
    except BaseException as error:
        if interrupts.requested():
            # A Ctrl-C that surfaced inside TensorFlow as another exception (an OSError
            # too): still one, so the same command continues the run (as it does a
            # "running" one, if a full disk keeps this from being written).
            with contextlib.suppress(OSError):
                runs.write_json(run_dir / "status.json", {"status": "interrupted"})
            raise KeyboardInterrupt from error
        # A full disk: the last completed epoch's state is kept, and the same command
        # continues from it once there is space (if status.json cannot be written either,
        # "running" with a dead process is resumed too).
        full = is_full_disk(error)
        with contextlib.suppress(OSError):
            runs.write_json(run_dir / "status.json",
                            {"status": "interrupted" if full else "failed",
                             "error": repr(error)})
        raise
    runs.write_json(run_dir / "status.json", {"status": "complete"})
    shutil.rmtree(run_dir / resume_lib.STATE_DIR, ignore_errors=True)
    return run_dir, metrics


def describe(dataset: Dataset) -> DatasetRecord:
    """What config.json records of the data: enough for evaluate and compare to work from the
    run directory alone (class names, tasks, examples and class counts per split)."""
    splits = {s: dataset.subset(s) for s in SPLITS}
    counts = {t.name: {s: np.bincount(d.targets[t.name], minlength=t.num_classes).tolist()
                       for s, d in splits.items()}
              for t in dataset.tasks if t.kind == "classification"}
    return DatasetRecord(name=dataset.name, tasks=tuple(dataset.tasks),
                         class_names=dataset.class_names,
                         examples={s: len(d.lengths) for s, d in splits.items()},
                         class_counts=counts, n_features=dataset.n_features,
                         skipped=tuple(dataset.skipped), fingerprint=dataset.fingerprint())


# TensorBoard's HParams table shows the first five metrics in (tag, run) order; "Test/" sorts
# before Keras's lowercase "epoch_" tags, so the test metrics are the ones it shows.
TEST_TAG = "Test/{}"


def _hparam_value(value):
    """TensorBoard shows every number with five significant digits (32 as 32.000), so integers
    go as text; lists as comma-separated text."""
    if isinstance(value, bool | float):
        return value
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _log_hparams(run_dir: Path, cfg: RunConfig, metrics: dict) -> None:
    """The run's settings and final test metrics for TensorBoard's HParams dashboard, whose
    parallel-coordinates view then compares every run under the log directory. They go in the
    session's own run, beside Keras's train and validation runs, at the best epoch's step."""
    from tensorboard.plugins.hparams import api as hp

    settings = {"arch": cfg.model.arch, "features": cfg.features.kind, "lr": cfg.train.lr,
                "optimizer": cfg.train.optimizer, "batch_size": cfg.train.batch_size,
                "seed": cfg.train.seed, "schedule": cfg.train.schedule,
                "data": cfg.data.name,
                # A run on part of the data must not pass for one on all of it.
                "limit": cfg.data.limit if cfg.data.limit is not None else "all",
                "fold": (f"{cfg.data.fold}/{cfg.data.folds}" if cfg.data.folds else "none"),
                "augment": "+".join(cfg.train.augment) or "none", "mixup": cfg.train.mixup,
                "label_smoothing": cfg.train.label_smoothing,
                "spec_augment": cfg.train.spec_augment,
                "class_weights": cfg.train.class_weights, **cfg.model.hparams}
    step = max((metrics.get("best_epoch") or 1) - 1, 0)  # Keras's callback counts from 0
    with tf.summary.create_file_writer(str(run_dir / "tensorboard")).as_default():
        hp.hparams({k: _hparam_value(v) for k, v in settings.items() if v is not None},
                   trial_id=run_dir.name)
        for name, value in metrics["test"].items():
            tf.summary.scalar(TEST_TAG.format(name), value, step=step)


def fit_repeats(cfg: RunConfig, repeats: int, dataset: Dataset | None = None,
                verbose="auto", resume: bool = True, callbacks=(),
                ensemble: bool = False) -> tuple[Path, list]:
    """`repeats` runs of `cfg` with seeds seed..seed+repeats-1, grouped in one experiment
    directory that `compare` summarises as mean ± confidence interval.

    An interrupted experiment of the same configuration is continued: its complete runs are
    kept, its interrupted run resumed, and the missing seeds run.

    Returns:
        (experiment directory, metrics of each run).
    """
    validate(cfg)
    distribute.make(cfg.train.strategy)  # before loading data runs TensorFlow's first op
    with _output_folder(cfg) as out:
        return _fit_repeats(dataclasses.replace(cfg, out=out), repeats, dataset, verbose,
                            resume, callbacks, ensemble)


def with_every_hparam(cfg: RunConfig) -> RunConfig:
    """`cfg` with every hyperparameter of its architecture, defaults included, as an
    experiment.json records it: a run's config.json has them all, and a default that changes
    later must not change what an experiment's record says its runs built."""
    hparams = models.resolve(cfg.model.arch, cfg.model.hparams)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hparams=hparams))


def _fit_repeats(cfg, repeats, dataset, verbose, resume, callbacks,
                 ensemble) -> tuple[Path, list]:
    dataset = dataset or datasets.load(cfg.data, cfg.features)
    seeds = list(range(cfg.train.seed, cfg.train.seed + repeats))
    config = runs.with_cwd(json.loads(with_every_hparam(cfg).to_json()))
    fingerprint = dataset.fingerprint()
    experiment = (resume_lib.unfinished_experiment(cfg.out, config, seeds, fingerprint,
                                                   ensemble=ensemble) if resume else None)
    experiment = experiment or runs.create_experiment(cfg.out, cfg.model.arch, cfg.data.name,
                                                      seeds, config, fingerprint=fingerprint)
    complete = {runs.read_record(p).config.train.seed: p
                for p in runs.experiment_runs(experiment) if runs.is_complete(p)}
    results = []
    for seed in seeds:
        if seed in complete:
            results.append(runs.read_metrics(complete[seed]))
            continue
        run_cfg = dataclasses.replace(cfg, out=str(experiment),
                                      train=dataclasses.replace(cfg.train, seed=seed))
        results.append(fit(run_cfg, dataset, verbose, resume, callbacks)[1])
    return experiment, results


@dataclasses.dataclass
class _Job:
    """One run's training, as every stage of `_train_and_test` reads it."""

    model: keras.Model
    cfg: RunConfig
    batches: inference.Batches
    run_dir: Path
    train: Dataset
    val: Dataset
    test: Dataset
    verbose: object
    state: dict | None  # the saved state a resumed run continues from
    strategy: object


@dataclasses.dataclass
class _Feed:
    """What `model.fit` reads: the batches and what early stopping watches."""

    train: object
    steps: int
    val: object
    monitor: str
    patience: int
    padding: object = None  # per-epoch padded fractions, for plain sequence batches


@dataclasses.dataclass
class _Watchers:
    """The callbacks `_test_and_report` asks afterwards, and all of them in order."""

    checkpoint: "BestCheckpoint"
    divergence: StopOnDivergence
    logger: keras.callbacks.CSVLogger
    saver: resume_lib.TrainingState
    all: list


def _train_and_test(job: _Job, extra_callbacks: list) -> dict:
    feed = _feed(job)
    initial_epoch = _compile_and_restore(job, feed)
    watchers = _callbacks(job, feed, extra_callbacks)
    if job.state and job.state["finished"]:
        watchers.saver.put_back()  # killed after training, before testing: only the test is left
    else:
        _fit_phases(job, feed, watchers, initial_epoch)
    return _test_and_report(job, feed, watchers)


def _feed(job: _Job) -> _Feed:
    t = job.cfg.train
    weights = class_weights(job.train) if t.class_weights else None
    # A resumed run continues with the epoch after the last one it completed.
    first_epoch = 0 if job.state is None or t.overfit_batches else job.state["epoch"]
    batch_size, padding = job.batches.cfg.train.batch_size, None
    if job.batches.kind == "sequence":
        boundaries = pipeline.bucket_boundaries(job.train.lengths, batch_size)
        train_batches, steps = job.batches.training(job.train, weights, boundaries, first_epoch)
        # Augmentation changes lengths (speed, shift): the clean lengths' padding would be
        # another epoch's.
        if not t.overfit_batches and not t.augment:
            padding = pipeline.padding_per_epoch(job.train.lengths, batch_size, t.seed,
                                                 boundaries, first_epoch, job.batches.replicas,
                                                 t.min_epoch_steps)
    else:
        train_batches, steps = job.batches.training(job.train, weights, first_epoch=first_epoch)
    feed = _Feed(train_batches, steps, job.batches.evaluation(job.val)[0], t.monitor,
                 t.patience, padding)
    if t.overfit_batches:
        # The course projects' sanity check: the same few batches every epoch, no early stopping;
        # a model that cannot drive their loss to ~0 has a bug.
        repeated = train_batches.take(t.overfit_batches).cache().repeat()
        feed = _Feed(repeated, t.overfit_batches, repeated.take(t.overfit_batches), "loss",
                     t.epochs)
    return feed


def _frozen_epochs(job: _Job) -> int:
    return job.cfg.finetune.freeze_epochs if job.cfg.finetune else 0


def _compile_and_restore(job: _Job, feed: _Feed) -> int:
    """Compiles the model (its backbone frozen for a fine-tuning's first phase) and puts back
    a resumed run's state; returns the epoch training starts at."""
    if _frozen_epochs(job):
        transfer.set_backbone_trainable(job.model, job.train.tasks, False)
    with job.strategy.scope():  # the optimizer's variables are mirrored like the model's
        compile_model(job.model, job.cfg.train, feed.steps, job.train.tasks)
        if job.state is None:
            return 0
        resume_lib.restore(job.model, job.run_dir, job.state)
    runs.drop_split_predictions(job.run_dir)
    epoch = job.state["epoch"]
    _truncate_history(job.run_dir / "history.csv", epoch)
    with open(job.run_dir / LOG_FILE, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} resumed after epoch {epoch}\n")
    return epoch


def _callbacks(job: _Job, feed: _Feed, extra_callbacks: list) -> _Watchers:
    t, run_dir, mode = job.cfg.train, job.run_dir, monitor_lib.mode(feed.monitor)
    checkpoint = BestCheckpoint(run_dir / "best.keras", feed.monitor)
    stopping = keras.callbacks.EarlyStopping(monitor=feed.monitor, patience=feed.patience,
                                             mode=mode)
    stateful = {"checkpoint": checkpoint, "early_stopping": stopping}
    logger = keras.callbacks.CSVLogger(str(run_dir / "history.csv"),
                                       append=job.state is not None)
    divergence = StopOnDivergence()
    callbacks = [
        EpochStats(feed.padding),
        divergence,
        checkpoint,
        stopping,
        logger,
        EpochLog(run_dir / LOG_FILE, t.epochs),
        RunBoard(log_dir=str(run_dir / "tensorboard")),
        interrupts.StopOnInterrupt(),
    ]
    if t.schedule == "plateau":
        stateful["plateau"] = keras.callbacks.ReduceLROnPlateau(
            monitor=feed.monitor, factor=0.1, patience=max(1, feed.patience // 2), mode=mode)
        callbacks.append(stateful["plateau"])
    saver = resume_lib.TrainingState(run_dir / resume_lib.STATE_DIR, stateful, job.state)
    return _Watchers(checkpoint, divergence, logger, saver,
                     callbacks + list(extra_callbacks) + [saver])


def _fit_phases(job: _Job, feed: _Feed, watchers: _Watchers, initial_epoch: int) -> None:
    t, model, frozen = job.cfg.train, job.model, _frozen_epochs(job)
    fit_args = {"x": feed.train, "validation_data": feed.val, "steps_per_epoch": feed.steps,
                "verbose": job.verbose, "shuffle": False}  # the pipeline shuffles (seeded)
    callbacks = watchers.all
    if frozen:
        # Fine-tuning: the new heads alone first, then everything at a lower rate.
        model.fit(epochs=min(frozen, t.epochs), callbacks=callbacks, **fit_args)
        transfer.set_backbone_trainable(model, job.train.tasks, True)
        with job.strategy.scope():
            compile_model(model, dataclasses.replace(t, lr=t.lr * job.cfg.finetune.lr_factor),
                          feed.steps, job.train.tasks)
        # The second fit continues history.csv instead of starting it anew.
        callbacks = [keras.callbacks.CSVLogger(str(job.run_dir / "history.csv"), append=True)
                     if c is watchers.logger else c for c in callbacks]
        initial_epoch = min(frozen, t.epochs)
    model.fit(epochs=t.epochs, initial_epoch=initial_epoch, callbacks=callbacks, **fit_args)


def _test_and_report(job: _Job, feed: _Feed, watchers: _Watchers) -> dict:
    """Tests best.keras, writes predictions.csv, metrics.json, report.md and the HParams
    session; returns metrics.json."""
    t, run_dir, at = job.cfg.train, job.run_dir, watchers.divergence.at
    if at and not (run_dir / "best.keras").exists():
        raise Diverged(f"training diverged: the loss became {at['loss']} in epoch {at['epoch']}, "
                       f"batch {at['batch']}, before any epoch could be kept; lower --lr (it "
                       f"was {t.lr:g}) or set --clipnorm; the run's history is in {run_dir}")
    # Test the best epoch's model as saved, which also proves best.keras loads (safe mode).
    best = keras.models.load_model(run_dir / "best.keras")
    test_batches, order = job.batches.evaluation(job.test)
    test_metrics = {k: float(v) for k, v in
                    best.evaluate(test_batches, return_dict=True, verbose=0).items()}
    inference.write_predictions(run_dir / "predictions.csv", job.test,
                                inference.predict(best, test_batches, order))
    # history.csv rather than fit's History: a resumed run's history starts before this process.
    h = runs.read_history(run_dir / "history.csv")
    metrics = {
        "test": test_metrics,
        "best_epoch": watchers.checkpoint.best_epoch,
        "epochs_run": len(h["loss"]),
        "train_seconds": round(float(np.sum(h["epoch_seconds"])), 2),
        "seconds_per_epoch": round(float(np.mean(h["epoch_seconds"])), 3),
        "first_train_loss": float(h["loss"][0]),
        "final_train_loss": float(h["loss"][-1]),
    }
    if job.state is not None:
        metrics["resumed_after_epoch"] = job.state["epoch"]
    if at:
        metrics["diverged"] = at
    if feed.padding is not None:
        metrics["padded_fraction"] = round(float(np.mean(h["padded_fraction"])), 5)
    if t.overfit_batches:
        metrics["overfit_batches"] = t.overfit_batches
    runs.write_json(run_dir / "metrics.json", metrics)
    _log_hparams(run_dir, job.cfg, metrics)
    evaluate.evaluate_run(run_dir, "test", training=True)
    return runs.read_json(run_dir / "metrics.json")


def compile_model(model, t: TrainConfig, steps: int, tasks: list) -> None:
    """Compiles `model` for `tasks` with the optimizer of `t` (inside the strategy's scope):
    what `fit` and every tuning trial train with."""
    mixup = bool(t.mixup)
    model.compile(optimizer=make_optimizer(t, steps),
                  loss=heads.losses(tasks, mixup, t.label_smoothing),
                  loss_weights=heads.loss_weights(tasks, t.task_weights),
                  metrics=heads.metrics(tasks, mixup))
    # Keras always has a strategy (the default one when none is set), under which the first
    # replica's part of a batch is the whole batch.
    distribute.build_from_one_replica(model)


def _truncate_history(path: Path, epochs: int) -> None:
    """Keeps the header and the first `epochs` rows: a kill after an epoch was logged but
    before its state was saved leaves a row that the resumed run writes again."""
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    runs.write_text(path, "".join(lines[:epochs + 1]))
