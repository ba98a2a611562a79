"""One table of runs and experiments (repeated runs: mean ± 95 % Student-t interval), with the
random and majority baselines as rows, and flags for runs that diverged or were cut short.
Reads only run directories."""

import csv
import io
import math
from pathlib import Path

import numpy as np

from kerasaudio import datasets, models, runs
from kerasaudio.config import DataConfig, RunConfig
from kerasaudio.errors import UserError
from kerasaudio.evaluate import confidence_interval, run_baselines

SETTINGS = ("arch", "limit", "train_fraction", "features", "tasks", "finetuned_from", "hparams",
            "optimizer", "lr", "batch_size", "seeds")
METRICS = ("test_accuracy", "cv_accuracy", "macro_f1", "mean_spearman", "test_loss", "best_epoch",
           "epochs_run", "seconds_per_epoch")
# Per regression target, a column `spearman_<task>` follows the fixed ones.
SPEARMAN = "spearman_"


def _flags(cfg: RunConfig, metrics: dict) -> list:
    """The course projects' two questions of every run: did it ever learn, and was it stopped while
    still improving?"""
    flags = []
    if metrics.get("overfit_batches"):
        flags.append(f"overfit check on {metrics['overfit_batches']} batches: train loss "
                     f"{metrics['final_train_loss']:.4f}")
    first, final = metrics.get("first_train_loss"), metrics.get("final_train_loss")
    epochs, run = cfg.train.epochs, metrics.get("epochs_run")
    # After one epoch the first loss is the final one: that says nothing of divergence.
    if final is not None and (math.isnan(final) or (final >= first and run != 1)):
        flags.append("diverged")
    if (run == epochs and metrics.get("best_epoch") == run
            and not metrics.get("overfit_batches")):
        flags.append("cut short")
    return flags


def _hparams_text(hparams: dict) -> str:
    """`hidden=100,10 dropout=0.5`; unset options (None, e.g. dense's `layers`) are left out."""
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list | tuple) else v}"
                    for k, v in sorted(hparams.items()) if v is not None)


def _split_note(cfg: RunConfig) -> str:
    """` (test 0.3, split seed 1)`: the split settings that differ from the defaults, so that
    runs tested on other examples of one data set do not look alike."""
    default = DataConfig()
    changed = [f"{label} {getattr(cfg.data, field)}" for field, label in (
        ("val_fraction", "val"), ("test_fraction", "test"), ("seed", "split seed"))
        if getattr(cfg.data, field) != getattr(default, field)]
    return f" ({', '.join(changed)})" if changed else ""


def _seeds(path: Path, cfg: RunConfig, ensemble: dict | None) -> str:
    """The run's seed; an ensemble of seeds: its members' (its record is its first's)."""
    if ensemble and ensemble["of"] == "seeds":
        return ",".join(str(runs.read_record(path.parent / member).config.train.seed)
                        for member in ensemble["members"])
    return str(cfg.train.seed)


def _data_read(name: str, cwd: str | None) -> str:
    """The data a run read: a built-in's name, else its folder resolved from the working
    directory the run recorded, or the name as typed if it recorded none (runs made
    before it was). Never resolved from today's folder, as `datasets.data_location` does
    to read the data again: a table must not change with where it is printed."""
    if name in datasets.BUILTIN or not cwd:
        return name
    return str((Path(cwd) / name).resolve())


def run_row(path: Path) -> dict:
    """Settings and metrics of one run directory."""
    metrics = runs.read_metrics(path)
    if "test" not in metrics:
        raise UserError(f"{path}: has no test metrics (unfinished or failed run)")
    record = runs.read_record(path)
    cfg = record.config
    tasks = record.dataset.tasks
    # Accuracy, F1 and the baselines are the first classification task's.
    first = record.dataset.first_classification()
    task = first.name if first else None
    evaluation = metrics.get("evaluation", {}).get("test", {})
    reports = evaluation.get("tasks", {})
    report = reports.get(task, {})
    test = metrics["test"]
    ensemble = record.ensemble
    name = (f"{path.parent.name}/{path.name} (mean of {len(ensemble['members'])} "
            f"{ensemble['of']})" if ensemble else path.name)
    return {
        "run": name, "data": cfg.data.name + _split_note(cfg), "_typed": cfg.data.name,
        "_split_note": _split_note(cfg), "arch": cfg.model.arch,
        "limit": cfg.data.limit,
        "train_fraction": cfg.data.train_fraction,
        "features": cfg.features.kind + (" beat-sync" if cfg.features.beat_sync else ""),
        "tasks": ",".join(t.name for t in tasks),
        "finetuned_from": Path(cfg.finetune.source).name if cfg.finetune else None,
        "mean_spearman": evaluation.get("mean_spearman"),
        **{f"{SPEARMAN}{name}": r["spearman"] for name, r in reports.items() if "spearman" in r},
        # A run from before `conv_layers` reads as the model it built (conv_layers=0).
        "hparams": _hparams_text(models.recorded_hyperparameters(cfg.model.arch,
                                                                 cfg.model.hparams)),
        "optimizer": cfg.train.optimizer, "lr": cfg.train.lr,
        "batch_size": cfg.train.batch_size, "seeds": _seeds(path, cfg, ensemble),
        "test_accuracy": report.get("accuracy", test.get("accuracy")),
        "macro_f1": report.get("macro", {}).get("f1"), "test_loss": test.get("loss"),
        "best_epoch": metrics.get("best_epoch"), "epochs_run": metrics.get("epochs_run"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "flags": ", ".join(_flags(cfg, metrics)),
        "_baselines": run_baselines(record.dataset), "_task": task,
        # Runs on one data set share baselines only when they share its test split. A
        # folder is the one the run read, wherever the command that made it was run from.
        "_data_key": (_data_read(cfg.data.name, record.cwd), cfg.data.limit,
                      cfg.data.train_fraction, cfg.data.val_fraction, cfg.data.test_fraction,
                      cfg.data.seed),
    }


def experiment_row(path: Path) -> dict:
    """One row for repeated runs: settings of the first, metrics as mean and CI half width."""
    finished = [p for p in runs.experiment_runs(path) if runs.is_complete(p)]
    members = [run_row(p) for p in finished]
    if not members:
        raise UserError(f"{path}: experiment holds no finished runs")
    folds = runs.read_json(path / "experiment.json").get("folds")
    row = {**members[0], "run": f"{path.name} ({len(members)} runs)",
           "seeds": ",".join(m["seeds"] for m in members)}
    if folds:
        row.update(run=f"{path.name} ({len(members)} of {folds} folds)",
                   seeds=members[0]["seeds"], **_out_of_fold(path, row["_task"]))
    for name in _metrics(members):
        values = [m[name] for m in members if m.get(name) is not None]
        if values:
            row[name], row[f"{name}_ci95"] = confidence_interval(values)
    member = "fold" if folds else "seed"
    labels = ([runs.read_record(p).config.data.fold for p in finished] if folds
              else [m["seeds"] for m in members])
    row["flags"] = "; ".join(f"{member} {label}: {m['flags']}"
                             for label, m in zip(labels, members) if m["flags"])
    return row


def _out_of_fold(path: Path, task: str | None) -> dict:
    """cv_accuracy: the out-of-fold accuracy of `task`, the task whose test accuracy the
    row shows, once every fold has run (None before)."""
    if not (path / "metrics.json").exists():
        return {"cv_accuracy": None}
    reports = runs.read_json(path / "metrics.json")["out_of_fold"]["tasks"]
    return {"cv_accuracy": reports.get(task, {}).get("accuracy")}


def _tell_apart(rows: list) -> None:
    """Where runs read different folders typed alike (`--data tones` in two places), their
    rows name each folder in full, so that their baselines can be told apart too."""
    locations = {}
    for row in rows:
        locations.setdefault(row["_typed"], set()).add(row["_data_key"][0])
    for row in rows:
        if len(locations[row["_typed"]]) > 1:
            row["data"] = row["_data_key"][0] + row["_split_note"]


def baseline_rows(rows: list) -> list:
    """The random-guess and majority-class rows of every data set among `rows`."""
    out, seen = [], set()
    for row in rows:
        if row["_data_key"] in seen or not row["_baselines"]:
            continue
        seen.add(row["_data_key"])
        for name, label in (("random", "random guess"), ("majority", "majority class")):
            value = row["_baselines"][row["_task"]][name]
            out.append({"run": f"baseline: {label}", "data": row["data"],
                        "limit": row["limit"], "train_fraction": row["train_fraction"],
                        "test_accuracy": value})
    return out


def table(paths: list, sort: str | None = None, descending: bool = False,
          left_out: list | None = None) -> list:
    """Rows for every run and experiment under `paths`, sorted by column `sort`, then the
    baselines. A run whose records cannot be read is left out, and one line saying why is
    appended to `left_out`: one damaged run does not hide the others.

    Raises:
        UserError: for an unknown sort column or a path holding no runs.
    """
    rows = []
    for path in runs.discover(paths):
        try:
            rows.append(experiment_row(path) if runs.is_experiment(path) else run_row(path))
        except UserError as error:  # already names the file and the problem
            if left_out is None:
                raise
            left_out.append(f"{error}; left out")
        except (ValueError, KeyError, TypeError, OSError) as error:
            if left_out is None:
                raise UserError(f"{path}: unreadable run records ({error})") from None
            left_out.append(f"{path}: unreadable run records ({type(error).__name__}: "
                            f"{str(error)[:120]}); left out")
    if not rows:
        raise UserError("no readable runs: " + "; ".join(left_out or []))
    _tell_apart(rows)
    if sort is not None:
        if sort not in _columns(rows):
            raise UserError(f"cannot sort by {sort!r}; columns: {', '.join(_columns(rows))}")
        present = [r for r in rows if r.get(sort) is not None]
        present.sort(key=lambda r: r[sort], reverse=descending)
        rows = present + [r for r in rows if r.get(sort) is None]
    return rows + baseline_rows(rows)


def _metrics(rows: list) -> list:
    """The fixed metrics and the per-target Spearman columns of `rows`."""
    return list(METRICS) + sorted({k for r in rows for k in r if k.startswith(SPEARMAN)
                                   and not k.endswith("_ci95")})


def _columns(rows: list) -> list:
    return ["run", "data", *SETTINGS, *_metrics(rows), "flags"]
FORMATS = {"lr": "{:.4g}", "best_epoch": "{:.1f}", "epochs_run": "{:.1f}",
           "seconds_per_epoch": "{:.2f}"}


def _cell(row: dict, name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        form = FORMATS.get(name, "{:.4f}")
        ci = row.get(f"{name}_ci95")
        if ci is None:
            return (form if isinstance(value, float) else "{}").format(value)
        return form.format(value) + " ± " + ("n/a" if np.isnan(ci) else form.format(ci))
    return str(value)


def markdown(rows: list) -> str:
    """The table in Markdown; empty columns are left out."""
    columns = [c for c in _columns(rows) if any(r.get(c) not in (None, "") for r in rows)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r, c).replace("|", "/") for c in columns) + " |"
              for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list) -> str:
    """The table as CSV: numbers unrounded, each interval in its own `_ci95` column."""
    columns = []
    for c in _columns(rows):
        columns.append(c)
        if any(f"{c}_ci95" in r for r in rows):
            columns.append(f"{c}_ci95")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
