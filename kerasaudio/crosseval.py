"""A finished run scored on another data set with the same classes: the built-in corpus's
model on recordings of real people, say. Class names are matched loosely (`7` is `seven`,
case and surrounding spaces do not matter), and the results go to
RUN_DIR/evaluations/<data>/ (metrics.json, predictions.csv, report.md, confusion PNGs)."""

import csv
import io
import logging
from pathlib import Path

import numpy as np

from kerasaudio import evaluate, inference, plots, predict, runs
from kerasaudio.config import DatasetRecord
from kerasaudio.datasets.audio_folder import canonical, labelled_files
from kerasaudio.errors import UserError

log = logging.getLogger(__name__)


def match_classes(labels: list, classes: list, where: str) -> np.ndarray:
    """Each label's index among the run's `classes`: the class of that exact name, or else
    the one class it matches loosely (`canonical`). Classes that differ in case only (keys:
    C major, c minor) match exactly.

    Raises:
        UserError: for labels that match none of the run's classes, or several loosely.
    """
    exact = {c: i for i, c in enumerate(classes)}
    loose = {}
    for i, c in enumerate(classes):
        loose.setdefault(canonical(c), []).append(i)

    def index(label):
        if label in exact:
            return exact[label]
        hits = loose.get(canonical(label), [])
        return hits[0] if len(hits) == 1 else None

    unknown = sorted({label for label in labels if index(label) is None})
    if unknown:
        raise UserError(f"{where}: classes {', '.join(map(repr, unknown[:5]))} are not among "
                        f"the run's classes ({', '.join(classes)}), or match several of them")
    return np.array([index(label) for label in labels])


def _classification_task(dataset: DatasetRecord, run_dir: Path) -> tuple[str, list]:
    tasks = dataset.tasks
    if len(tasks) != 1 or tasks[0].kind != "classification" or tasks[0].level != "sequence":
        raise UserError(f"{run_dir}: evaluate --data scores runs with one classification task "
                        f"of whole sequences; this one has {', '.join(t.name for t in tasks)}")
    name = tasks[0].name
    return name, dataset.class_names[name]


def evaluate_on(run_dir, data_path) -> tuple[Path, dict]:
    """Scores `run_dir`'s best model on every audio file of `data_path` (a folder of class
    subfolders, or of split folders of them, or a path,label CSV), through the run's own
    feature extraction.

    Returns:
        (the evaluation's folder, its metrics as written to metrics.json there).
    """
    run_dir, data_path = Path(run_dir), Path(data_path)
    dataset = runs.load_run(run_dir, warn=False).dataset  # predict_files warns
    task, classes = _classification_task(dataset, run_dir)
    if not data_path.exists():
        raise UserError(f"{data_path}: no such folder or file")
    files, labels = labelled_files(data_path)
    truth = match_classes(labels, classes, str(data_path))
    out = _evaluation_folder(run_dir, data_path)
    runs.check_writable(out, "evaluation folder")  # before the work of predicting
    seen = inference.trained_on(run_dir, files)
    if seen:
        log.warning(f"{seen} of the {len(files)} files of {data_path} were in the run's "
                    "training or validation split: their score says little of new recordings")
    header, rows = predict.predict_files(run_dir, files)
    predicted = np.array([classes.index(row[header.index(task)]) for row in rows])
    report = evaluate.classification_metrics(truth, predicted, classes)
    counts = np.bincount(truth, minlength=len(classes))
    train_counts = dataset.class_counts[task]["train"]
    metrics = {"data": str(data_path), "source": str(data_path.resolve()),
               "examples": len(files), "tasks": {task: report},
               "baselines": evaluate.baselines(train_counts, counts),
               "predicted": {task: {str(f): classes[p] for f, p in zip(files, predicted)}}}
    out.mkdir(parents=True, exist_ok=True)
    runs.write_json(out / "metrics.json", metrics)
    runs.write_text(out / "predictions.csv", _predictions_csv(files, truth, predicted, classes))
    title = f"{run_dir.name} on {data_path.name}"
    figures = [plots.confusion_matrix(report["confusion_matrix"], classes,
                                      out / f"confusion_{kind}.png", normalised=kind == "norm",
                                      title=title)
               for kind in ("counts", "norm")]
    runs.write_text(out / "report.md", _markdown(title, metrics, task, figures))
    return out, metrics


def _evaluation_folder(run_dir: Path, data_path: Path) -> Path:
    """RUN_DIR/evaluations/<the data's own folder or file name>, or <name>-2, -3, ... when
    that holds the evaluation of other data of the same name (two `test/` folders, say): an
    evaluation replaces only an earlier one of the same data."""
    source = data_path.resolve()
    name = runs.slug(source.name or "root")  # ("..", "." resolved), never a path
    for n in range(1, 1000):
        folder = run_dir / "evaluations" / (name if n == 1 else f"{name}-{n}")
        if folder.exists() and not folder.is_dir():
            continue  # a file of the user's, never written over
        if not (folder / "metrics.json").exists() or _source_of(folder) == source:
            return folder
    raise UserError(f"{run_dir / 'evaluations'}: 999 evaluations of data named {name!r}")


def _source_of(folder: Path) -> Path | None:
    """The data an earlier evaluation scored (None when its record cannot say)."""
    try:
        record = runs.read_json(folder / "metrics.json")
        # Records before "source" hold the path as typed: relative to a directory unknown now.
        source = Path(record.get("source") or record["data"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return source.resolve() if source.is_absolute() else None


def _predictions_csv(files, truth, predicted, classes) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["file", "true", "predicted"])
    writer.writerows([str(f), classes[t], classes[p]] for f, t, p in zip(files, truth, predicted))
    return text.getvalue()


def _markdown(title: str, metrics: dict, task: str, figures: list) -> str:
    report, base = metrics["tasks"][task], metrics["baselines"]
    lines = [f"# {title}", "", f"{metrics['examples']} files of {metrics['data']}.", "",
             "| measure | value |", "| --- | --- |",
             f"| accuracy | {report['accuracy']:.4f} |",
             f"| macro F1 | {report['macro']['f1']:.4f} |",
             f"| random-guess baseline | {base['random']:.4f} |",
             f"| majority-class baseline | {base['majority']:.4f} |", "",
             "| class | precision | recall | F1 | files |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | "
              f"{c['support']} |" for name, c in report["classes"].items()]
    lines += [""] + [f"![{f.stem}]({f.name})" for f in figures]
    return "\n".join(lines) + "\n"
