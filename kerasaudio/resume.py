"""Resuming an interrupted `fit`: the training state saved at every epoch's end, and the run
directory that rerunning the same command continues.

Keras's BackupAndRestore keeps the weights, the optimizer and the epoch. A resumed run must
also continue the random generators (dropout, SpecAugment), the input pipeline's shuffling and
the stateful callbacks (best checkpoint, early stopping, plateau), or it is not the run that
would have been; `TrainingState` saves all of that, and a test checks that a run killed
mid-epoch and resumed ends with the same metrics as one never interrupted.
"""

import io
import json
import logging
import os
import socket
import zipfile
from pathlib import Path

import keras
import numpy as np

from kerasaudio import datasets, models, runs
from kerasaudio.config import with_defaults
from kerasaudio.errors import UserError

log = logging.getLogger(__name__)

STATE_DIR = "resume"
STATE_FILE = "state.json"
# Attributes that make up a callback's state between epochs (those it has of them).
CALLBACK_ATTRIBUTES = ("best", "best_epoch", "wait", "stopped_epoch", "cooldown_counter")
RESUMABLE = ("running", "interrupted")
# The key of a record's digest of the examples it trained on (`Dataset.fingerprint`).
FINGERPRINT = "fingerprint"


def _variables(model) -> list:
    # model.variables includes the random generators' states; the optimizer's come after.
    return list(model.variables) + list(model.optimizer.variables)


def _plain(value):
    """A callback attribute as JSON can hold it (numpy and tensor scalars -> float/int)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    array = np.asarray(value)
    return array.item()


class TrainingState(keras.callbacks.Callback):
    """Saves the complete training state at the end of every epoch into `directory`.

    The arrays are written first under a new name, then `state.json`, which names them, is
    replaced atomically: a kill at any moment leaves the previous epoch's state whole. It must
    be the last callback, so the epoch it records is fully logged and checkpointed.

    Args:
        directory: where the state lives (`<run>/resume/`).
        callbacks: name -> callback whose state (best value, patience counter, ...) is kept.
        restored: the state `restore` returned, whose callback states are put back once the
            callbacks have reset themselves at the start of training.
    """

    def __init__(self, directory: Path, callbacks: dict, restored: dict | None = None):
        super().__init__()
        self.directory, self.callbacks, self.restored = Path(directory), callbacks, restored

    def on_train_begin(self, logs=None):
        self.put_back()

    def put_back(self):
        """Gives the callbacks the state they had when the interrupted run saved it."""
        for name, attributes in (self.restored or {}).get("callbacks", {}).items():
            for key, value in attributes.items():
                setattr(self.callbacks[name], key, value)

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(exist_ok=True)
        arrays = f"epoch-{epoch + 1}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, *[np.asarray(v) for v in _variables(self.model)])
        tmp = self.directory / (arrays + ".tmp")
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, self.directory / arrays)
        callbacks = {name: {k: _plain(getattr(c, k)) for k in CALLBACK_ATTRIBUTES
                            if hasattr(c, k)}
                     for name, c in self.callbacks.items()}
        runs.write_json(self.directory / STATE_FILE, {
            "epoch": epoch + 1, "arrays": arrays, "callbacks": callbacks,
            "finished": bool(self.model.stop_training)})
        for old in self.directory.glob("epoch-*.npz"):
            if old.name != arrays:
                old.unlink()


def read_state(run_dir: Path) -> dict | None:
    path = Path(run_dir) / STATE_DIR / STATE_FILE
    try:
        return runs.read_json(path)
    except (FileNotFoundError, ValueError):
        return None


def restore(model, run_dir: Path, state: dict) -> None:
    """Puts the saved weights, optimizer and random-generator states into `model`, which must
    be built and compiled exactly as the interrupted run's was."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    path = Path(run_dir) / STATE_DIR / state["arrays"]
    try:
        with np.load(path, allow_pickle=False) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: damaged training state ({error}); start the run anew with "
                        "--no-resume") from None
    variables = _variables(model)
    if len(values) != len(variables):
        raise UserError(f"{run_dir}: its saved training state has {len(values)} variables, "
                        f"the model {len(variables)}; start the run anew with --no-resume")
    for variable, value in zip(variables, values):
        variable.assign(value)


def running_status() -> dict:
    """status.json of a run in progress: which process to ask whether it still is."""
    return {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}


def interrupted(run_dir: Path) -> bool:
    """The run stopped before finishing: interrupted by the user, or its process is gone."""
    try:
        status = runs.read_json(run_dir / "status.json")
    except (FileNotFoundError, ValueError):
        return False
    return status.get("status") == "interrupted" or runs.process_gone(status)


def _as_today(config: dict) -> dict:
    """A config (a run's, an experiment's) as today's record of the same settings would be:
    fields added since filled with their defaults, and the data path resolved."""
    config = resolved_paths(with_defaults(config))
    if "model" in config:
        config["model"] = _with_default_hparams(config["model"])
    return config


def _with_default_hparams(model):
    """A config's model with the hyperparameters its architecture has gained since the run
    was recorded filled in with what builds what the run built (a gru_attention run from
    before `conv_layers` has no convolutions), so that it can be continued."""
    if not isinstance(model, dict):
        return model
    hparams = models.recorded_hyperparameters(model.get("arch"), model.get("hparams"))
    return {**model, "hparams": json.loads(json.dumps(hparams))}


def comparable(config: dict) -> dict:
    """The parts of a config.json that must match for a run to be continued (through JSON,
    so tuples compare as lists)."""
    # finetune too: an interrupted fine-tuning is no plain fit's to continue.
    keys = ("data", "features", "model", "train", "out", "dataset", "finetune")
    config = _as_today(config)
    record = {k: config.get(k) for k in keys}
    # Augmentation strengths (runs before augmentation existed had none). SpecAugment's
    # masks follow from train.spec_augment and the frame step, compared above; runs from
    # before config.json recorded them would otherwise never be continued.
    record["augmentation"] = {name: strength for name, strength in
                              (config.get("augmentation") or {}).items()
                              if name != "spec_augment"}
    # Apart from the rest of the data's record: see `_matches`.
    if isinstance(record["dataset"], dict):
        record["dataset"] = dict(record["dataset"])
        record[FINGERPRINT] = record["dataset"].pop(FINGERPRINT, None) or None
    return json.loads(json.dumps(record))


def compared_datasets(earlier: dict, wanted: dict, fingerprinted: bool) -> tuple:
    """Two data sets' records (`train.describe`'s, in config.json or search.json) as they
    are compared. The lines of `--skip-bad` name the files as the command named the data
    (`tones/mid/9.wav`, `/home/me/tones/mid/9.wav`), so two records of the same examples
    may differ in them; when the earlier record was `fingerprinted`, the fingerprint tells
    which examples were read, and they are left out. Older records keep them: beside the
    counts, they were all that told a different bad file apart."""
    if not fingerprinted:
        return earlier, wanted
    return tuple({key: value for key, value in record.items() if key != "skipped"}
                 if isinstance(record, dict) else record for record in (earlier, wanted))


def _as_compared(earlier: dict, wanted: dict) -> tuple:
    """`comparable`'s records (or an experiment's, which hold no data set's) as compared:
    see `compared_datasets`. Records from before the fingerprint was kept have none, and
    are compared as they were: on their settings and counts."""
    fingerprinted = earlier.get(FINGERPRINT) is not None
    if not fingerprinted:
        earlier, wanted = {**earlier, FINGERPRINT: None}, {**wanted, FINGERPRINT: None}
    held = compared_datasets(earlier.get("dataset"), wanted.get("dataset"), fingerprinted)
    return tuple({**record, "dataset": dataset} if "dataset" in record else record
                 for record, dataset in zip((earlier, wanted), held))


def _matches(earlier: dict, wanted: dict) -> bool:
    """Whether a record (`comparable`'s, or an experiment's) is of the settings and the data
    of `wanted`. Counts of examples and classes match for data that changed with the same
    counts; the fingerprint tells them apart."""
    earlier, wanted = _as_compared(earlier, wanted)
    return earlier == wanted


def unfinished_experiment(out, config: dict, seeds: list, fingerprint: str,
                          folds: int | None = None, ensemble: bool = False) -> Path | None:
    """The newest experiment under `out` of this configuration, seeds and folds that has
    work left to do (an interrupted `fit --repeats` or `--folds`; with `ensemble`, also one
    whose runs are all done but whose ensemble is not), or None. When the newest unfinished
    experiment of the same data differs only in settings, it logs which, as a single run's
    resume does: a changed option would otherwise start the experiment over without a word."""
    if not Path(out).is_dir():
        return None
    # Settings named as a run's resume names them (`train.lr`), and the seeds and folds.
    wanted = {**_as_today(config), "seeds": seeds, "folds": folds,
              FINGERPRINT: fingerprint}
    near = None
    for path in sorted(Path(out).iterdir(), reverse=True):
        if not runs.is_experiment(path):
            continue
        experiment = runs.read_json(path / "experiment.json")
        earlier = {**_as_today(experiment.get("config") or {}),
                   "seeds": experiment["seeds"], "folds": experiment.get("folds"),
                   FINGERPRINT: experiment.get(FINGERPRINT)}
        if _matches(earlier, wanted):
            if _work_left(path, earlier, ensemble):
                return path
        elif near is None and _work_left(path, earlier, False) and _same_data(earlier, wanted):
            near = path, _differences(earlier, wanted)
    _report_near_miss(near, "continuing")
    return None


def _no_epoch_done(run_dir: Path) -> bool:
    """Whether a run left nothing of an epoch: no saved state, model or history row."""
    history = run_dir / "history.csv"
    return not ((run_dir / STATE_DIR).exists() or (run_dir / "best.keras").exists()
                or (history.exists() and len(history.read_text().splitlines()) > 1))


def still_as_found(run_dir: Path, state: dict | None) -> bool:
    """Whether the run `find` returned with `state` is as it was then: no other process
    has resumed it since."""
    return interrupted(run_dir) and read_state(run_dir) == state and (
        state is not None or _no_epoch_done(run_dir))


def _same_data(earlier: dict, wanted: dict) -> bool:
    """A record of other data is no near miss: its differences are not the user's to fix."""
    return (earlier.get("data") or {}).get("name") == wanted["data"]["name"]


def _report_near_miss(near: tuple | None, doing: str) -> None:
    """Logs which settings kept the newest interrupted run or experiment (`near`: its path
    and their names) from being continued: a changed option or default would otherwise
    start anew without a word."""
    if near is None:
        return
    path, changed = near
    # What the data set held is no option to give: it follows from the data and the options.
    options = ", ".join(name for name in changed if name not in (FINGERPRINT, "dataset"))
    if not options:
        log.warning(f"not {doing} {path}: the examples it trained on changed since (other "
                    "files, features or labels); starting anew")
    elif FINGERPRINT in changed or "dataset" in changed:
        log.warning(f"not {doing} {path}: its {options} differ, and so do the examples it "
                    "trained on; starting anew")
    else:
        log.info(f"not {doing} {path}: its {options} differ; give the same options to "
                 "continue it")


def _differences(earlier: dict, wanted: dict) -> list:
    """`runs.differences` of two records as they are compared (`_as_compared`): not a
    fingerprint the earlier one never had (it is no setting to give)."""
    return runs.differences(*_as_compared(earlier, wanted))


def resolved_paths(config: dict) -> dict:
    """`config` (a config.json, an experiment's or a search's record) with its data path and
    `out` folder resolved, for comparing: `../tones/`, `tones` and `/home/me/tones` name one
    folder, and an interrupted run of one is continued by a command that names it another
    way. Relative paths resolve from the working directory the record names (`cwd`, which
    is left out of the result, and must still exist), else from today's, as the command's
    own do."""
    config = dict(config)
    base = str(runs.recorded_folder(config.pop(runs.CWD, None)))
    for key in ("data", "dataset"):  # the record of what was read names the data too
        if isinstance(config.get(key), dict) and isinstance(config[key].get("name"), str):
            config[key] = {**config[key],
                           "name": datasets.data_location(config[key]["name"], base)}
    if isinstance(config.get("out"), str):
        config["out"] = str((Path(base) / config["out"]).resolve())
    return config


def _work_left(path: Path, experiment: dict, ensemble: bool) -> bool:
    done = [p for p in runs.experiment_runs(path) if runs.is_complete(p)]
    folds = experiment["folds"]
    # A cross-validation is done when its summary is written too.
    if len(done) < (folds or len(experiment["seeds"])) or (folds and not
                                                           (path / "metrics.json").exists()):
        return True
    return ensemble and not (path / runs.ENSEMBLE).is_dir()


def find(out, config: dict) -> tuple[Path, dict | None] | None:
    """The newest interrupted run under `out` with the same configuration, and its saved
    training state (None when it stopped before its first epoch ended: it starts again in
    its own directory, where a member of `fit --repeats` belongs); None if there is none.
    When the newest interrupted run differs only in settings, it logs which (a changed
    default would otherwise start a new run without a word)."""
    parent = Path(out)
    if not parent.is_dir():
        return None
    wanted = comparable(config)
    near = None
    for run_dir in sorted(parent.iterdir(), reverse=True):
        if not runs.is_run(run_dir) or not interrupted(run_dir):
            continue
        try:
            earlier = comparable(runs.read_json(run_dir / "config.json"))
        except ValueError:
            continue
        if _matches(earlier, wanted):
            state = read_state(run_dir)
            if state is not None or _no_epoch_done(run_dir):
                return run_dir, state
            # Epochs done and no state to continue from: never started again over them.
            log.warning(f"not resuming {run_dir}: its saved training state is missing or "
                        "damaged; starting a new run")
            continue
        # Nor is a fine-tuning, which no fit continues.
        if near is None and _same_data(earlier, wanted) and earlier.get("finetune") is None:
            near = run_dir, _differences(earlier, wanted)
    _report_near_miss(near, "resuming")
    return None
