"""Cross-validation and ensembles.

`fit --folds K` pools a data set's training and validation examples, deals them into K folds
(stratified by class, and by group where the data has groups: no speaker is in two folds),
and trains one run per fold, that fold validating, in one experiment directory. The
experiment keeps the out-of-fold predictions (every pooled example predicted once, by the
model that never trained on it), their report and confusion matrices, and each fold model's
test metrics as mean and 95 % interval.

`--ensemble` then averages the members' (folds', or seeds') class probabilities and
regression values in one Keras model, saved as the run directory `<experiment>/ensemble`,
which `evaluate`, `predict`, `export` and `finetune` take like any run.
"""

import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from kerasaudio import datasets, evaluate, inference, models, runs, train
from kerasaudio import resume as resume_lib
from kerasaudio.config import DatasetRecord, RunConfig
from kerasaudio.datasets.base import SPLITS
from kerasaudio.errors import UserError

OOF_FILE = "predictions_oof.csv"


def fold_configs(cfg: RunConfig, folds: int) -> list:
    return [dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, folds=folds, fold=k))
            for k in range(folds)]


def check_folds(cfg: RunConfig, folds: int) -> None:
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    if cfg.data.folds is not None:
        raise UserError("the data is already dealt into folds")
    if cfg.train.strategy == "multiworker":
        raise UserError("--folds runs on one machine; use --strategy default or mirrored")
    if cfg.finetune:
        raise UserError("--folds trains from scratch; finetune one run instead")


def fit_folds(cfg: RunConfig, folds: int, verbose="auto", resume: bool = True,
              callbacks=(), ensemble: bool = False) -> tuple[Path, dict]:
    """Trains one run per fold into an experiment directory and summarises them.

    An interrupted cross-validation of the same configuration is continued: finished folds
    are kept, an interrupted one resumed. With `ensemble`, a finished one whose ensemble was
    never written is taken up again too (the caller writes it), rather than trained anew.

    Returns:
        (experiment directory, its metrics.json).
    """
    check_folds(cfg, folds)
    train.validate(cfg)
    # All the training examples are pooled; --train-fraction applies to each fold's share.
    base = datasets.load(dataclasses.replace(cfg.data, train_fraction=1.0), cfg.features)
    members = fold_configs(cfg, folds)
    # Every fold is dealt before anything is written: too few groups fail here.
    fold_sets = [datasets.as_fold(base, m.data) for m in members]
    config = runs.with_cwd(json.loads(train.with_every_hparam(cfg).to_json()))
    seeds = [cfg.train.seed]
    fingerprint = base.fingerprint()
    experiment = (resume_lib.unfinished_experiment(cfg.out, config, seeds, fingerprint, folds,
                                                   ensemble) if resume else None)
    experiment = experiment or runs.create_experiment(cfg.out, cfg.model.arch, cfg.data.name,
                                                      seeds, config, folds=folds,
                                                      fingerprint=fingerprint)
    done = {runs.read_record(p).config.data.fold: p
            for p in runs.experiment_runs(experiment) if runs.is_complete(p)}
    run_dirs = []
    for member, data in zip(members, fold_sets):
        fold = member.data.fold
        if fold in done:
            _check_same_deal(done[fold], data, fold)
        else:
            done[fold] = train.fit(dataclasses.replace(member, out=str(experiment)), data,
                                   verbose, resume, callbacks)[0]
        run_dirs.append(done[fold])
    return experiment, summarise_folds(experiment, run_dirs)


def _check_same_deal(run_dir: Path, data, fold: int) -> None:
    """Refuses to keep a finished fold whose validation examples are no longer the fold's:
    files added to the data since deal the folds anew, and the kept folds and the new ones
    would hold an example twice, or never."""
    recorded = inference.recorded_ids(run_dir, "val")
    if recorded != inference.placed_ids(data.ids()[data.split == "val"]):
        raise UserError(f"{run_dir.parent}: fold {fold} was trained on another deal of the "
                        "data (it changed since); start anew with --no-resume")


def write_out_of_fold(experiment: Path, run_dirs: list) -> Path:
    """Each fold run's validation predictions (predicted with its best.keras when missing),
    with the fold and the example's id, into one predictions_oof.csv."""
    table, header = [], None
    for run_dir in run_dirs:
        path = runs.predictions_path(run_dir, "val")
        if not path.exists():
            inference.write_split_predictions(run_dir, "val")
        columns = evaluate.read_predictions(path)
        header = list(columns)
        ids = runs.read_json(run_dir / inference.SPLITS_FILE)["val"]
        fold = runs.read_record(run_dir).config.data.fold
        table += [[fold, example, *row[1:]]
                  for example, row in zip(ids, zip(*columns.values()), strict=True)]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["fold", "example", *header[1:]])
    writer.writerows(table)
    out = experiment / OOF_FILE
    runs.write_text(out, text.getvalue())
    return out


def summarise_folds(experiment: Path, run_dirs: list) -> dict:
    """Out-of-fold report and plots, and the fold models' test metrics as mean and 95 %
    interval, into the experiment's metrics.json and report.md."""
    dataset = runs.read_record(run_dirs[0]).dataset
    columns = evaluate.read_predictions(write_out_of_fold(experiment, run_dirs))
    report = {t.name: evaluate.task_report(t, columns, dataset.class_names.get(t.name))
              for t in dataset.tasks}
    tests = [runs.read_metrics(p)["test"] for p in run_dirs]
    test = {name: dict(zip(("mean", "ci95"), evaluate.confidence_interval(
        [t[name] for t in tests]))) for name in tests[0]}
    metrics = {"folds": len(run_dirs), "out_of_fold": {"tasks": report,
                                                       "examples": len(columns["fold"])},
               "test": test, "runs": [p.name for p in run_dirs]}
    runs.write_json(experiment / "metrics.json", metrics)
    figures = _confusion_plots(experiment, dataset, report)
    runs.write_text(experiment / "report.md", _markdown(experiment, metrics, figures))
    return metrics


def _confusion_plots(experiment: Path, dataset: DatasetRecord, report: dict) -> list:
    figures = []
    for task, metrics in report.items():
        if "confusion_matrix" not in metrics:
            continue
        figures += evaluate.confusion_plots(
            metrics, dataset.class_names[task],
            experiment / "plots" / f"confusion_{task}_out_of_fold",
            f"{experiment.name}\n{task}, out-of-fold predictions")
    return figures


def _markdown(experiment: Path, metrics: dict, figures: list) -> str:
    oof = metrics["out_of_fold"]
    lines = [f"# {experiment.name}", "",
             f"{metrics['folds']}-fold cross-validation: {oof['examples']} training examples, "
             "each predicted by the fold model that did not train on it.", "",
             "| task | out-of-fold | measure |", "| --- | --- | --- |"]
    for task, report in oof["tasks"].items():
        measure = "spearman" if "spearman" in report else "accuracy"
        lines.append(f"| {task} | {report[measure]:.4f} | {measure} |")
    lines += ["", "Each fold model on the test split (mean and 95 % interval over folds):", "",
              "| metric | mean | ± |", "| --- | --- | --- |"]
    lines += [f"| {name} | {v['mean']:.4f} | {v['ci95']:.4f} |"
              for name, v in metrics["test"].items()]
    lines += [""] + [f"![{f.stem}](plots/{f.name})" for f in figures]
    return "\n".join(lines) + "\n"


def ensemble_model(run_dirs: list) -> keras.Model:
    """One model whose every output is the mean of the members' outputs (class
    probabilities, regression values), the members nested inside it."""
    members = [runs.load_model(p, compile=False) for p in run_dirs]
    inputs = {name: keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)
              for name, tensor in members[0].input.items()}
    outputs = []
    for k, member in enumerate(members):
        member.name = f"member_{k}"  # nested models need names of their own
        outputs.append(member(inputs))
    averaged = {name: keras.layers.Average(name=name)([o[name] for o in outputs])
                for name in outputs[0]}
    return keras.Model(inputs, averaged, name="ensemble")


ENSEMBLE = runs.ENSEMBLE


def _dataset_record(record: dict, dataset, splits: dict) -> dict:
    """The members' record of the data (config.json's `dataset`) with the examples and class
    counts of `splits`: a fold ensemble's training split is every member's, and it has no
    validation split, so the first member's counts would skew its majority baseline."""
    # Files by where they are: the members name them as typed (`--data tones`), the data
    # set read again from the members' record by their resolved path.
    where = {example: i for i, example in enumerate(inference.placed_ids(dataset.ids()))}
    placed = {split: inference.placed_split(splits, split) for split in SPLITS}
    missing = [e for split in SPLITS for e in placed[split] if e not in where]
    if missing:
        raise UserError(f"{len(missing)} examples the members trained or were tested on are "
                        f"no longer in the data set (e.g. {missing[0]})")
    # Counted as fit counts them (by frame for frame labels); examples in no split (left out
    # by --train-fraction) are not counted.
    labels = np.full(len(dataset.lengths), "", dtype=object)
    for split in SPLITS:
        labels[[where[e] for e in placed[split]]] = split
    counted = train.describe(dataclasses.replace(dataset, split=labels.astype(str)))
    return {**record, "examples": counted.examples,
            "class_counts": json.loads(json.dumps(counted.class_counts)),
            "fingerprint": counted.fingerprint}


def write_ensemble(experiment: Path, run_dirs: list, of: str) -> Path:
    """The members' averaging model as the run directory `<experiment>/ensemble`, tested on
    the members' test split like any run (predictions.csv, metrics.json, report.md).

    Args:
        of: `folds` (members trained on different folds: the ensemble has no validation
            split of its own) or `seeds`.
    """
    # The members' record, copied into the ensemble's own.
    config, cfg = runs.read_config(run_dirs[0] / "config.json")
    model = ensemble_model(run_dirs)
    dataset = datasets.load(datasets.recorded(cfg.data, config.get(runs.CWD)), cfg.features)
    test = inference.recorded_split(run_dirs[0], dataset, "test")
    batches = inference.Batches(cfg, models.input_kind(cfg.model.arch), cfg.model.hparams)
    test_batches, order = batches.evaluation(test)
    # Built beside its final place, then moved in: an old ensemble stays until this one is whole.
    building = experiment / f".{ENSEMBLE}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    model.save(building / "best.keras")  # uncompiled: no optimizer state to carry
    train.compile_model(model, cfg.train, 1, test.tasks)  # for its test loss and metrics
    member_splits = [runs.read_json(d / inference.SPLITS_FILE) for d in run_dirs]
    splits = member_splits[0]
    if of == "folds":  # the examples some member trained on (not all, with --train-fraction)
        # each resolved from where its member ran: a resumed experiment's can differ
        trained = dict.fromkeys(i for member in member_splits
                                for i in inference.placed_split(member, "train"))
        splits = {**splits, "train": list(trained), "val": []}
    runs.write_json(building / inference.SPLITS_FILE, splits)
    runs.write_json(building / "config.json", {
        **config, "dataset": _dataset_record(config["dataset"], dataset, splits),
        "ensemble": {"of": of, "members": [p.name for p in run_dirs]}})
    test_metrics = {k: float(v) for k, v in
                    model.evaluate(test_batches, return_dict=True, verbose=0).items()}
    inference.write_predictions(building / "predictions.csv", test,
                            inference.predict(model, test_batches, order))
    runs.write_json(building / "metrics.json", {"test": test_metrics,
                                               "members": len(run_dirs)})
    final = experiment / ENSEMBLE
    if final.exists():
        shutil.rmtree(final)
    building.rename(final)
    evaluate.evaluate_run(final, "test")
    return final
