"""Metrics of a finished run, computed from its run directory: the classification report,
regression errors and Spearman correlation, baselines, and report.md with its plots. Only a
split other than test needs the data set again, to predict it (kerasaudio/inference.py)."""

import csv
import logging
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from kerasaudio import models, plots, runs
from kerasaudio.config import DatasetRecord, Task
from kerasaudio.errors import UserError
from kerasaudio.runs import RunRecord

log = logging.getLogger(__name__)


def classification_metrics(y_true, y_pred, class_names: list) -> dict:
    """Accuracy, per-class precision/recall/F1/support, their macro, micro and weighted
    averages, and the confusion matrix (rows true, columns predicted), by class index.

    Every class has its row, but the averages are over the classes that are in `y_true` or
    `y_pred` only (scikit-learn's own choice): a class absent from the data and never
    predicted would add an F1 of 0 that no prediction could change (a perfect model scored on
    recordings of one digit would get a macro F1 of 0.1)."""
    labels = list(range(len(class_names)))
    present = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    per_class = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                    zero_division=0)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "classes": {name: {"precision": float(per_class[0][i]), "recall": float(per_class[1][i]),
                           "f1": float(per_class[2][i]), "support": int(per_class[3][i])}
                    for i, name in enumerate(class_names)},
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    for average in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=present,
                                                         average=average, zero_division=0)
        out[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    return out


def regression_metrics(y_true, y_pred) -> dict:
    """Mean squared error, mean absolute error and Spearman rank correlation of one target."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    rho = stats.spearmanr(y_true, y_pred).statistic if np.ptp(y_pred) > 0 else float("nan")
    return {"mse": float(skm.mean_squared_error(y_true, y_pred)),
            "mae": float(skm.mean_absolute_error(y_true, y_pred)), "spearman": float(rho)}


def mean_spearman(values: list) -> float:
    """The targets' mean Spearman correlation, a target predicted as one constant value
    (Spearman undefined, NaN) counting as 0: it ranks nothing, and left out of the mean it
    would let a model that failed on it look as good as on the others."""
    return float(np.mean(np.nan_to_num(np.asarray(values, float), nan=0.0)))


def baselines(train_counts, test_counts) -> dict:
    """Accuracy of guessing without looking at the input.

    `random`: the expected accuracy of a uniform guess, 1 / classes. `majority`: always the
    most frequent training class, scored on the test counts.
    """
    train_counts, test_counts = np.asarray(train_counts), np.asarray(test_counts)
    return {"random": 1.0 / len(train_counts),
            "majority": float(test_counts[int(np.argmax(train_counts))] / test_counts.sum())}


def confidence_interval(values, level: float = 0.95) -> tuple:
    """(mean, half width) of the Student-t interval for the mean of `values` (half width NaN
    for a single value)."""
    values = np.asarray(values, float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, float(half)


def read_predictions(path: Path) -> dict:
    """Column name -> list of strings, from predictions.csv."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (has the run finished?)") from None
    if not rows:
        raise UserError(f"{path}: no predictions")
    return {k: [r[k] for r in rows] for k in rows[0]}


def task_report(task: Task, columns: dict, class_names: list | None) -> dict:
    true, pred = columns[f"{task.name}_true"], columns[f"{task.name}_pred"]
    if task.kind == "regression":
        return regression_metrics(np.asarray(true, float), np.asarray(pred, float))
    index = {name: i for i, name in enumerate(class_names)}
    return classification_metrics([index[t] for t in true], [index[p] for p in pred], class_names)


def evaluate_run(run_dir, split: str = "test", training: bool = False) -> dict:
    """Computes the report of `split` from the run directory, writes it into metrics.json
    (under "evaluation") and report.md, and draws the plots into plots/.

    Test predictions are written by `fit`; other splits are predicted here with best.keras,
    every time: the data under the run's path may have changed since an earlier evaluate.
    report.md says when the run is not complete, unless `training` (the run's own report,
    written before its status.json says complete).

    Returns:
        task name -> metrics dict.
    """
    run_dir = Path(run_dir)
    record = runs.read_record(run_dir)
    path = runs.predictions_path(run_dir, split)
    if split != "test":
        # TensorFlow only when a model must run (compare reads this module too).
        from kerasaudio import inference

        inference.write_split_predictions(run_dir, split)
    columns = read_predictions(path)
    dataset = record.dataset
    report = {task.name: task_report(task, columns, dataset.class_names.get(task.name))
              for task in dataset.tasks}
    regression = [r["spearman"] for t, r in report.items() if "spearman" in r]
    summary = {"tasks": report}
    if regression:
        summary["mean_spearman"] = mean_spearman(regression)
    metrics = runs.read_metrics(run_dir)
    if not metrics and not training and runs.incomplete(run_dir) is None:
        log.warning(f"{run_dir}: a complete run without metrics.json (moved or deleted "
                    "since): the one written now holds this evaluation, not the run's test "
                    "metrics or training figures")
    metrics.setdefault("evaluation", {})[split] = summary
    metrics["baselines"] = run_baselines(dataset)
    runs.write_json(run_dir / "metrics.json", metrics)
    figures = draw_run_plots(run_dir, dataset, report, split, columns,
                             metrics.get("best_epoch"))
    state = None if training else runs.incomplete(run_dir)
    runs.write_text(run_dir / "report.md",
                    report_markdown(run_dir, record, metrics, figures, state))
    return report


def run_baselines(dataset: DatasetRecord) -> dict:
    """Random and majority baselines of every classification task, from a run's record of
    its data."""
    return {name: baselines(c["train"], c["test"]) for name, c in dataset.class_counts.items()}


def draw_run_plots(run_dir: Path, dataset: DatasetRecord, report: dict, split: str,
                   columns: dict, best_epoch: int | None = None) -> list:
    """Learning curves (the best epoch, 1-based, marked), confusion matrices (counts and
    row-normalised) and, for regression targets, predicted-against-true scatter plots into
    plots/."""
    figures = []
    history = runs.read_history(run_dir / "history.csv")
    name = run_dir.name
    if history and "loss" in history and "val_loss" in history:
        figures.append(plots.learning_curves(history, run_dir / "plots" / "learning_curves.png",
                                             title=f"Learning curves of {name}",
                                             best_epoch=best_epoch))
    for task, metrics in report.items():
        if "spearman" in metrics:
            figures.append(plots.regression_scatter(
                np.asarray(columns[f"{task}_true"], float),
                np.asarray(columns[f"{task}_pred"], float),
                run_dir / "plots" / f"scatter_{task}_{split}.png",
                title=f"{name}\n{task} on the {split} split (Spearman "
                      f"{metrics['spearman']:.3f})"))
            continue
        figures += confusion_plots(metrics, dataset.class_names[task],
                                   run_dir / "plots" / f"confusion_{task}_{split}",
                                   f"{name}\n{task} on the {split} split")
    return figures


def confusion_plots(report: dict, classes: list, stem: Path, title: str) -> list:
    """A task's confusion matrix as counts and row-normalised: <stem>_counts.png and
    <stem>_normalised.png."""
    return [plots.confusion_matrix(report["confusion_matrix"], classes,
                                   stem.with_name(f"{stem.name}_{kind}.png"),
                                   normalised=kind == "normalised", title=title)
            for kind in ("counts", "normalised")]


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _split_figures(run_dir: Path, split: str, task: str) -> list:
    """The plots of `task` on `split` that plots/ holds (drawn by this or an earlier
    evaluation)."""
    names = [f"confusion_{task}_{split}_counts.png", f"confusion_{task}_{split}_normalised.png",
             f"scatter_{task}_{split}.png"]
    return [run_dir / "plots" / n for n in names if (run_dir / "plots" / n).exists()]


def report_markdown(run_dir: Path, record: RunRecord, metrics: dict, figures: list,
                    incomplete: str | None = None) -> str:
    """report.md: settings, then per split (test first) and task the averages, the per-class
    table in the data's class order, the baselines (of the test split) and the plots, with
    every split evaluated so far kept; first, why the run is `incomplete` if it is."""
    cfg = record.config
    model, train = cfg.model, cfg.train
    # An ensemble's record is its first member's: its seed is not the ensemble's.
    seed = (f"the mean of {len(record.ensemble['members'])} models' probabilities "
            f"({record.ensemble['of']})" if record.ensemble else f"seed {train.seed}")
    # A run from before a hyperparameter was added reads as the model it built.
    hparams = models.recorded_hyperparameters(model.arch, model.hparams)
    lines = [f"# {run_dir.name}", "",
             f"`{model.arch}` on `{cfg.data.name}` ({cfg.features.kind} "
             f"features); hyperparameters {hparams}; {train.optimizer} lr "
             f"{train.lr}, batch {train.batch_size}, {seed}"
             + (f"; at most {cfg.data.limit} examples per split (--limit)"
                if cfg.data.limit else "") + ".", ""]
    if incomplete:
        lines += [f"**Not complete** ({incomplete}): these figures are of the best model of "
                  "the epochs it finished.", ""]
    if "best_epoch" in metrics:
        lines += [f"Best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run, "
                  f"{metrics['seconds_per_epoch']} s per epoch.", ""]
    curves = [f for f in figures if Path(f).name == "learning_curves.png"]
    lines += [f"![{Path(f).stem}]({Path(f).relative_to(run_dir)})" for f in curves]
    lines += [""] if curves else []
    evaluation = metrics.get("evaluation", {})
    for split in sorted(evaluation, key=lambda s: (s != "test", s)):
        summary = evaluation[split]
        for task, r in summary["tasks"].items():
            lines += [f"## {task} on the {split} split", ""]
            lines += _task_lines(r, record.dataset.class_names.get(task, []))
            baseline = metrics.get("baselines", {}).get(task)
            if split == "test" and baseline:
                lines += [f"Baselines on the test split: random guess "
                          f"{_fmt(baseline['random'])}, majority class "
                          f"{_fmt(baseline['majority'])}.", ""]
            lines += [f"![{f.stem}]({f.relative_to(run_dir)})"
                      for f in _split_figures(run_dir, split, task)]
            lines.append("")
        if "mean_spearman" in summary:
            lines += [f"Mean Spearman over the regression targets: "
                      f"{_fmt(summary['mean_spearman'])}", ""]
    return "\n".join(lines) + "\n"


def _task_lines(r: dict, classes: list) -> list:
    if "spearman" in r:
        return ["| MSE | MAE | Spearman |", "|---|---|---|",
                f"| {_fmt(r['mse'])} | {_fmt(r['mae'])} | {_fmt(r['spearman'])} |", ""]
    lines = [f"Accuracy **{_fmt(r['accuracy'])}**", "",
             "| average | precision | recall | F1 |", "|---|---|---|---|"]
    lines += [f"| {a} | {_fmt(r[a]['precision'])} | {_fmt(r[a]['recall'])} | "
              f"{_fmt(r[a]['f1'])} |" for a in ("macro", "micro", "weighted")]
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    # metrics.json keeps its keys sorted; the table keeps the data's class order.
    order = [c for c in classes if c in r["classes"]] or list(r["classes"])
    lines += [f"| {c} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} "
              f"| {m['support']} |" for c, m in ((c, r["classes"][c]) for c in order)]
    return lines + [""]
