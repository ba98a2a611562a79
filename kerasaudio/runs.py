"""Run directories: <out>/<time>-<arch>-<data>/ holding everything one `fit` produced."""

import contextlib
import csv
import errno
import fcntl
import itertools
import json
import logging
import math
import os
import re
import socket
import statistics
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kerasaudio.config import DatasetRecord, RunConfig
from kerasaudio.errors import UserError

log = logging.getLogger(__name__)


def slug(text: str) -> str:
    """A data set name or path as a piece of a folder name (a path gives its file name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text).stem if "/" in text else text)


# A search or experiment name: one folder name, never a path (".", "..", "a/b").
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=,-]*")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it; put it back at once


def check_name(name: str, option: str = "--name") -> None:
    """Raises UserError unless `name` is a plain folder name."""
    if not NAME.fullmatch(name):
        raise UserError(f"{option} {name!r}: expected one folder name of letters, digits and "
                        "_ . + = , - (starting with a letter or digit), not a path")


def check_writable(out: str | os.PathLike, option: str = "--out") -> None:
    """Raises UserError unless `out` is, or can be made as, a folder this process can write."""
    path = Path(out).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{option} {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {out}: {existing} is not writable")
    # os.access lets root write anywhere, but a read-only or pseudo file system (/proc)
    # refuses even root: making and removing an empty folder there is the only sure test.
    try:
        probe = tempfile.mkdtemp(prefix=".kerasaudio-probe-", dir=existing)
    except OSError as error:
        raise UserError(f"{option} {out}: cannot make a folder in {existing} "
                        f"({error.strerror})") from None
    os.rmdir(probe)


@contextlib.contextmanager
def locked(directory: Path, inside: bool = False):
    """Holds an exclusive lock on `directory` while the block runs, so that a second process
    working in it (the same `tune` command started twice, a run resumed twice) is refused,
    with who holds it. The lock is the operating system's (flock), so a killed holder
    releases it. Its file is `.lock` inside the directory with `inside` (a run directory,
    ours from its creation), else `.<name>.lock` beside it (a search, which --overwrite may
    empty and a refused command must leave as it was)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory / ".lock" if inside else directory.parent / f".{directory.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{directory} is in use by {holder}; wait for it to finish, or "
                        "stop it") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def create(out: str | os.PathLike, arch: str, data: str) -> Path:
    """Makes a new, empty run directory; never reuses one (a suffix separates same-second runs)."""
    parent = Path(out)
    check_writable(parent)
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{arch}-{slug(data)}"
    for n in range(1, 1000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {parent}")


def write_text(path: Path, text: str) -> None:
    """Writes through a temporary file and a rename, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        _fill(fd, text)
        os.replace(tmp, path)
    except BaseException as error:
        # A full disk or a kill mid-write leaves no temporary file behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _name_the_file(error, path)
        raise


def _fill(fd: int, text: str) -> None:
    """Writes `text` into the temporary file mkstemp opened as `fd`, and closes it."""
    with os.fdopen(fd, "w") as f:
        # mkstemp makes the file private (0600); a run's records are as readable as the
        # rest (some file systems, e.g. vfat, refuse the change: no matter).
        with contextlib.suppress(OSError):
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
        f.write(text)


def _name_the_file(error: BaseException, path: Path) -> None:
    """Gives a write's OSError without a file name (a full disk's, raised by `write`) the
    file written, so its one line says which."""
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(path)


def write_new_text(path: Path, text: str) -> None:
    """Writes a file that must not exist yet (a table the user asked for, which may be named
    after anything, another run's best.keras included), whole or not at all.

    Raises:
        FileExistsError: when `path` exists, also when another process made it meanwhile
            (the file is linked into place, which never replaces one).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        _fill(fd, text)
        try:
            os.link(tmp, path)
        except OSError as error:
            if error.errno not in NO_HARD_LINKS:
                raise
            # vfat, exFAT, some network and FUSE mounts: made exclusively instead (a kill
            # mid-write may then leave part of the file, never a replaced one).
            with open(path, "x") as f:
                f.write(text)
    except OSError as error:
        # The output, not the temporary file the error names (and which is gone).
        error.filename, error.filename2 = str(path), None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# What os.link raises on file systems without hard links.
NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def write_numbered(folder: Path, stem: str, suffix: str, text: str) -> Path:
    """Writes `text` to `folder/stem + suffix`, or, when that exists (the same command
    started twice in one second), to `stem-2 + suffix`, `stem-3`, ...; returns the path."""
    for number in itertools.count(1):
        path = folder / (stem + (f"-{number}" if number > 1 else "") + suffix)
        try:
            write_new_text(path, text)
            return path
        except FileExistsError:
            continue


def check_new_file(path: Path, option: str) -> None:
    """Refuses, before any work, an output file that exists or whose folder is missing or
    cannot be written (`write_new_text` never replaces a file).

    Raises:
        UserError: naming the option and the file.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():  # a link, even to nothing, is not replaced
        raise UserError(f"{option} {path}: already exists; remove it or give another name")
    if not path.absolute().parent.is_dir():
        raise UserError(f"{option} {path}: its folder {path.absolute().parent} does not exist")
    check_writable(path.absolute().parent, option)


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_history(path: Path) -> dict:
    """history.csv as column -> list of floats ({} if there is none)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return {}
    return {k: [float(r[k]) if r[k] not in ("", None) else math.nan for r in rows]
            for k in (rows[0] if rows else {})}


def is_run(path: Path) -> bool:
    return (Path(path) / "config.json").is_file()


def is_experiment(path: Path) -> bool:
    return (Path(path) / "experiment.json").is_file()


def create_experiment(out, arch: str, data: str, seeds: list, config: dict | None = None,
                      folds: int | None = None, fingerprint: str | None = None) -> Path:
    """A folder grouping the runs of one configuration: repeated runs (seeds s..s+N-1), or
    the runs of `folds` cross-validation folds; `fingerprint` is that of the data they
    share (`Dataset.fingerprint`)."""
    path = create(out, arch, f"{slug(data)}-cv{folds}" if folds else f"{slug(data)}-x{len(seeds)}")
    write_json(path / "experiment.json", {"arch": arch, "data": data, "seeds": seeds,
                                          "folds": folds, "config": config,
                                          "fingerprint": fingerprint})
    return path


def differences(earlier: dict, record: dict, prefix: str = "") -> list:
    """The settings that differ between two records (config.json, search.json), named to
    the leaf (`train.spec_augment`) but for what a data set holds (`dataset`): the option a
    user would give to continue the earlier one."""
    changed = []
    for key in sorted(set(record) | set(earlier)):
        before, now = earlier.get(key), record.get(key)
        if isinstance(before, dict) and isinstance(now, dict) and key != "dataset":
            changed += differences(before, now, f"{prefix}{key}.")
        elif before != now or (key in earlier) != (key in record):
            changed.append(f"{prefix}{key}")
    return changed


# The run directory, inside an experiment, of the model that averages its members.
ENSEMBLE = "ensemble"

# The key of a record (config.json, an experiment's, a search's) that holds the working
# directory of the command that wrote it: its relative paths (`--data tones`, `--out
# runs`) name folders there, wherever a later command runs.
CWD = "cwd"


def recorded_folder(cwd: str | None) -> Path:
    """Where a record's relative paths resolve from: the working directory it recorded
    (`cwd`) while that still exists; else (records from before it was recorded, a moved
    project) today's."""
    return Path(cwd) if cwd and Path(cwd).is_dir() else Path(".")


def with_cwd(record: dict) -> dict:
    """`record` with the working directory it is written from (CWD)."""
    return {**record, CWD: os.getcwd()}


def experiment_runs(path: Path) -> list:
    """The member runs of an experiment (its ensemble, if any, is not one)."""
    return sorted(p for p in Path(path).iterdir()
                  if is_run(p) and p.name != ENSEMBLE and not p.name.startswith("."))


def is_complete(path: Path) -> bool:
    status = Path(path) / "status.json"
    if not status.exists():
        return True
    try:
        return read_json(status).get("status") == "complete"
    except (ValueError, AttributeError):  # damaged: not a run to count on
        return False


def discover(paths: list) -> list:
    """Runs and experiments named by `paths`; a folder that is neither is searched one level
    down (so `results/runs` lists everything in it), skipping runs still running or failed.

    Raises:
        UserError: for a path that does not exist or holds no runs.
    """
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path}: no such run, experiment or folder")
        if is_run(path) or is_experiment(path):
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir()
                          if (is_run(p) and is_complete(p))
                          or (is_experiment(p) and any(map(is_complete, experiment_runs(p)))))
        if not children:
            raise UserError(f"{path}: holds no run directories (no config.json found)")
        found += children
    # An experiment's ensemble is a run of its own, beside the members' mean and interval.
    with_ensembles = [p for path in found for p in (path, path / ENSEMBLE)
                      if p == path or (is_experiment(path) and is_run(p) and is_complete(p))]
    # A run named twice (an experiment and its ensemble; a relative and an absolute path;
    # a folder and a run in it) is listed once, as first named.
    unique = {}
    for path in with_ensembles:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _status(path: Path) -> str:
    try:
        status = read_json(path / "status.json")
        return "stopped (its process is gone)" if process_gone(status) else \
            status.get("status", "?")
    except FileNotFoundError:
        return "complete"
    except (ValueError, AttributeError):
        return "damaged"


def process_gone(status: dict) -> bool:
    """Whether a status.json that says `running` was written by a process of this host
    that no longer exists (killed, or the machine restarted)."""
    if status.get("status") != "running" or status.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(status.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, TypeError):
        return False
    return False


def summary(path: Path) -> dict:
    """One run's or experiment's line of `runs`: when, what, on what, how it ended."""
    path = Path(path)
    record = read_json(path / "experiment.json") if is_experiment(path) else None
    members = experiment_runs(path) if record else [path]
    config = read_json(members[0] / "config.json") if members else {}
    metrics = read_json(path / "metrics.json") if (path / "metrics.json").exists() else {}
    if record and not metrics:
        metrics = _members_mean(members)
    metric, score = _test_score(metrics)
    ensemble_metric, ensemble_score = _ensemble_score(path) if record else (None, None)
    kind = (f"{record['folds']} folds" if record and record.get("folds")
            else f"{len(record['seeds'])} seeds" if record else "run")
    return {"name": path.name, "kind": kind,
            "arch": config.get("model", {}).get("arch"),
            "data": config.get("data", {}).get("name"),
            "limit": config.get("data", {}).get("limit"),
            "train_fraction": config.get("data", {}).get("train_fraction", 1.0),
            "epochs": metrics.get("epochs_run"),
            "metric": metric, "score": score,
            "ensemble_metric": ensemble_metric, "ensemble_score": ensemble_score,
            "status": (f"{sum(map(is_complete, members))}/{len(members)} complete" if record
                       else _run_status(path))}


def _run_status(path: Path) -> str:
    """A run's status for `runs`; a complete run whose model is gone cannot be evaluated,
    predicted with or exported, which the listing says rather than "complete"."""
    status = _status(path)
    if status == "complete" and not (path / "best.keras").is_file():
        return "complete, best.keras missing"
    return status


def _members_mean(members: list) -> dict:
    """Repeated seeds write no metrics.json of their own: the mean of their finished runs'
    test metric, as a metrics.json would hold it.

    Raises:
        KeyError: if a finished run has no such test metric (damaged or hand-made).
    """
    finished = [read_json(p / "metrics.json")["test"] for p in members if is_complete(p)]
    if not finished:
        return {}
    metric, _ = _test_score({"test": finished[0]})
    return {"test": {metric: {"mean": statistics.fmean(t[metric] for t in finished)}}}


def _ensemble_score(experiment: Path) -> tuple:
    """`_test_score` of an experiment's finished ensemble; (None, None) if it has none."""
    ensemble = experiment / ENSEMBLE
    if not (is_run(ensemble) and is_complete(ensemble) and (ensemble / "metrics.json").exists()):
        return None, None
    return _test_score(read_json(ensemble / "metrics.json"))


def _test_score(metrics: dict) -> tuple:
    """(metric, value) of a metrics.json's test accuracy, else its test loss; an
    experiment's value is its runs' mean.

    Raises:
        TypeError: if the value is not a number.
    """
    test = metrics.get("test", {})
    metric = "accuracy" if "accuracy" in test else ("loss" if "loss" in test else None)
    score = test.get(metric)
    score = score.get("mean") if isinstance(score, dict) else score
    if not isinstance(score, (int, float, type(None))):
        raise TypeError(f"test {metric} is {score!r}, not a number")
    return metric, score


def listing(folder) -> list:
    """`summary` of every run and experiment directly under `folder`, newest first (their
    names begin with the time they started)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    found = [p for p in folder.iterdir() if is_run(p) or is_experiment(p)]
    rows = []
    for path in sorted(found, key=lambda p: p.name, reverse=True):
        try:
            rows.append(summary(path))
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            rows.append({"name": path.name, "kind": "?", "arch": None, "data": None,
                         "limit": None, "train_fraction": None, "epochs": None,
                         "metric": None, "score": None, "ensemble_metric": None,
                         "ensemble_score": None,
                         "status": "unreadable records"})
    return rows


def predictions_path(run_dir: Path, split: str) -> Path:
    return run_dir / ("predictions.csv" if split == "test" else f"predictions_{split}.csv")


def drop_split_predictions(run_dir: Path) -> None:
    """Removes the predictions_<split>.csv files `evaluate --split` made with the run's best
    model: a resumed run may save a better one, and they would no longer be the run's
    (evaluate predicts them anew when asked)."""
    for path in run_dir.glob("predictions_*.csv"):
        path.unlink()


@dataclass(frozen=True)
class RunRecord:
    """A run directory's config.json, read once and typed.

    Attributes:
        path: the run directory.
        config: its settings.
        dataset: what it recorded of its data.
        ensemble: for an ensemble, its members and what they are ("seeds" or "folds").
        cwd: the working directory of the command that made it, from which the relative
            paths in `config` resolve (None for runs made before it was recorded).
    """

    path: Path
    config: RunConfig
    dataset: DatasetRecord
    ensemble: dict | None = None
    cwd: str | None = None


def read_config(path, parse=RunConfig.from_dict) -> tuple:
    """(the dict as written, `parse` of it) of a run's config.json at `path`, which may have
    been copied anywhere (`fit --config`).

    Raises:
        UserError: naming the file, when it is missing, not JSON, or not a config.json this
            version of kerasaudio reads.
    """
    try:
        config = read_json(path)
        return config, parse(config)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path}: not a run's config.json this version of kerasaudio reads "
                        f"({type(error).__name__}: {error})") from None


def read_record(run_dir) -> RunRecord:
    """The typed config.json of a run directory, finished or not.

    Raises:
        UserError: if there is no config.json, or it cannot be read as one.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.json)")
    _, record = read_config(run_dir / "config.json", lambda config: RunRecord(
        run_dir, RunConfig.from_dict(config), DatasetRecord.from_dict(config["dataset"]),
        config.get("ensemble"), config.get(CWD)))
    return record


def read_metrics(run_dir) -> dict:
    """metrics.json of a run directory ({} if it has none yet): a dict, since what it holds
    depends on what the run did (test metrics, evaluations, folds, divergence, ...).

    Raises:
        UserError: if it is not valid JSON.
    """
    path = Path(run_dir) / "metrics.json"
    try:
        return read_json(path)
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None


def load_run(run_dir, warn: bool = True) -> RunRecord:
    """The record of a finished run, one whose model can be loaded; with `warn`, a warning
    if the run did not complete (its best epoch so far is usable, but not what the run would
    give). Callers that check a run before the call that uses it pass `warn=False`.

    Raises:
        UserError: if `run_dir` is not a complete run directory.
    """
    record = read_record(run_dir)
    if not (record.path / "best.keras").is_file():
        why = ("it was moved or deleted since" if incomplete(record.path) is None
               else "the run never finished an epoch")
        raise UserError(f"{record.path}: has no best.keras ({why})")
    if warn:
        warn_if_incomplete(record.path)
    return record


def incomplete(run_dir) -> str | None:
    """Why a run is not complete (interrupted, running, failed, an unreadable status.json),
    or None when it is."""
    status = _status(Path(run_dir))
    if status == "complete":
        return None
    return ("status.json has no readable status" if status in ("?", "damaged")
            else f"the run is {status}")


def warn_if_incomplete(run_dir) -> None:
    """Warns that a run did not complete: what is used of it comes from the best model of
    the epochs it finished."""
    state = incomplete(run_dir)
    if state:
        log.warning(f"{run_dir}: {state}, not complete; using the best model of the epochs it "
                    "finished")


def load_model(run_dir, compile: bool = True):
    """The run's best model, loaded in Keras safe mode (no code from the file runs); the
    kerasaudio layers, losses and metrics it uses are imported first so that Keras finds
    them. `compile=False` leaves out its loss and optimizer (a model that will only predict)."""
    import keras

    import kerasaudio.models.heads  # noqa: F401  (registers mixup's loss and metric)
    import kerasaudio.models.layers  # noqa: F401  (registers the layers with Keras)

    path = Path(run_dir) / "best.keras"
    if not path.is_file():
        raise UserError(f"{path}: no such file (the run saves its model after its first epoch)")
    with open(path, "rb") as f:  # an unreadable file is a disk error, not a damaged one
        f.read(1)
    # Keras reports a file that is no zip archive as "File not found", which misleads.
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a loadable Keras model (damaged: not a .keras zip "
                        "archive; truncated or overwritten?)")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=compile)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise UserError(f"{path}: not a loadable Keras model ({reason})") from None
    _check_fits_record(model, read_record(run_dir).dataset, path)
    return model


def _check_fits_record(model, dataset: DatasetRecord, path: Path) -> None:
    """Refuses a model that is not the one its run's config.json describes (a best.keras
    copied from another run): its probabilities would be printed under the wrong class
    names, or its input would not take the features the record says the run computes."""
    widths = {name: tensor.shape[-1] for name, tensor in zip(model.output_names, model.outputs)}
    for task in dataset.tasks:
        classes = dataset.class_names.get(task.name)
        if task.name in widths and (classes is None or widths[task.name] == len(classes)):
            continue
        found = f"{widths[task.name]} outputs" if task.name in widths else "no output"
        wanted = f"{len(classes)} classes" if classes else "a value"
        raise UserError(f"{path}: has {found} for task {task.name!r}, where config.json says "
                        f"{wanted}; is it another run's model?")
    inputs = {tensor.name: tensor.shape for tensor in model.inputs}
    if len(inputs.get("features", ())) == 3 and inputs["features"][-1] != dataset.n_features:
        raise UserError(f"{path}: takes {inputs['features'][-1]} features a frame, where "
                        f"config.json says {dataset.n_features}; is it another run's model?")
