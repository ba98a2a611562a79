"""fit: data -> model -> run directory (config.json, history.csv, best.keras, metrics.json,
predictions.csv, tensorboard/)."""

import csv
import dataclasses
import os
import time
from pathlib import Path

import keras
import numpy as np

import kerasaudio
from kerasaudio import datasets, models, pipeline, runs
from kerasaudio.config import RunConfig
from kerasaudio.datasets.base import SPLITS, Dataset
from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec

EVAL_BATCH = 256


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever `monitor` improves, atomically (temporary file + rename),
    so best.keras is always a complete model."""

    def __init__(self, path: Path, monitor: str = "val_loss"):
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.best, self.best_epoch = np.inf, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            tmp = self.path.with_name(self.path.stem + ".tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, self.path)


class EpochStats(keras.callbacks.Callback):
    """Adds each epoch's wall time and fraction of padded frames to the logs (so they reach
    history.csv and TensorBoard; it must come before those callbacks)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = padding

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self.start
        logs["padded_fraction"] = next(self.padding)


def _compile(model, cfg: RunConfig, tasks) -> None:
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.lr),
                  loss=heads.losses(tasks), metrics=heads.metrics(tasks))


def _write_predictions(path: Path, dataset: Dataset, probabilities: dict) -> None:
    rows = []
    for i in range(len(dataset.lengths)):
        row = {"index": i}
        for task in dataset.tasks:
            names = dataset.class_names[task.name]
            p = probabilities[task.name][i]
            row.update({f"{task.name}_true": names[dataset.targets[task.name][i]],
                        f"{task.name}_pred": names[int(np.argmax(p))],
                        f"{task.name}_prob": f"{float(np.max(p)):.6f}"})
        rows.append(row)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def predict(model, dataset: Dataset) -> dict:
    """Class probabilities per task, in dataset order."""
    batches, order = pipeline.evaluation_batches(dataset, EVAL_BATCH)
    served = model.predict(batches, verbose=0)  # predict takes x from (x, y) batches
    served = served if isinstance(served, dict) else {dataset.tasks[0].name: served}
    out = {}
    for name, probs in served.items():
        restored = np.empty_like(probs)
        restored[order] = probs
        out[name] = restored
    return out


def evaluate(model, dataset: Dataset) -> tuple[dict, dict]:
    """Loss and accuracy on `dataset`; returns (metrics, probabilities)."""
    batches, _ = pipeline.evaluation_batches(dataset, EVAL_BATCH)
    metrics = model.evaluate(batches, return_dict=True, verbose=0)
    return {k: float(v) for k, v in metrics.items()}, predict(model, dataset)


def fit(cfg: RunConfig, dataset: Dataset | None = None, verbose="auto") -> tuple[Path, dict]:
    """Trains `cfg.model.arch` on `cfg.data` and writes a run directory.

    Args:
        cfg: the run configuration.
        dataset: an already loaded data set (default: load `cfg.data`).
        verbose: Keras verbosity of `model.fit`.

    Returns:
        (run directory, metrics dict as written to metrics.json).
    """
    keras.utils.set_random_seed(cfg.train.seed)
    dataset = dataset or datasets.load(cfg.data, cfg.features)
    train, val, test = (dataset.subset(s) for s in SPLITS)
    hparams = models.resolve(cfg.model.arch, cfg.model.hparams)
    mean, variance = train.frame_statistics()
    model = models.build(cfg.model.arch, InputSpec(dataset.n_features, mean, variance),
                         dataset.tasks, **hparams)
    _compile(model, cfg, dataset.tasks)

    run_dir = runs.create(cfg.out, cfg.model.arch, cfg.data.name)
    resolved = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hparams=hparams))
    runs.write_json(run_dir / "config.json", {
        **dataclasses.asdict(resolved),
        "dataset": {"name": dataset.name, "class_names": dataset.class_names,
                    "examples": {s: int(np.sum(dataset.split == s)) for s in SPLITS},
                    "n_features": dataset.n_features},
        "versions": {"keras": keras.__version__, "kerasaudio": kerasaudio.__version__},
    })
    runs.write_json(run_dir / "status.json", {"status": "running"})
    try:
        metrics = _train_and_test(model, cfg, run_dir, train, val, test, verbose)
    except BaseException as error:
        runs.write_json(run_dir / "status.json", {"status": "failed", "error": repr(error)})
        raise
    runs.write_json(run_dir / "status.json", {"status": "complete"})
    return run_dir, metrics


def _train_and_test(model, cfg, run_dir, train, val, test, verbose) -> dict:
    batch = cfg.train.batch_size
    boundaries = pipeline.bucket_boundaries(train.lengths)
    checkpoint = BestCheckpoint(run_dir / "best.keras")
    callbacks = [
        EpochStats(pipeline.padding_per_epoch(train.lengths, batch, cfg.train.seed, boundaries)),
        checkpoint,
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.train.patience),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")),
    ]
    start = time.perf_counter()
    history = model.fit(
        pipeline.training_batches(train, batch, cfg.train.seed, boundaries),
        validation_data=pipeline.evaluation_batches(val, EVAL_BATCH)[0],
        epochs=cfg.train.epochs, callbacks=callbacks, verbose=verbose,
        shuffle=False)  # the pipeline shuffles (seeded, every epoch)
    train_seconds = time.perf_counter() - start

    # Test the best epoch's model as saved, which also proves best.keras loads (safe mode).
    best = keras.models.load_model(run_dir / "best.keras")
    test_metrics, probabilities = evaluate(best, test)
    _write_predictions(run_dir / "predictions.csv", test, probabilities)
    epochs = history.history["epoch_seconds"]
    metrics = {
        "test": test_metrics,
        "best_epoch": checkpoint.best_epoch,
        "epochs_run": len(epochs),
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(float(np.mean(epochs)), 3),
        "padded_fraction": round(float(np.mean(history.history["padded_fraction"])), 5),
    }
    runs.write_json(run_dir / "metrics.json", metrics)
    return metrics
