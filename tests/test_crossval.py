"""Cross-validation (`fit --folds`) and ensembles (`--ensemble`)."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_frames, make_sequences
from sklearn.model_selection import GroupShuffleSplit
from test_export import serve_inputs
from test_readers import PITCHES, write_tone

from kerasaudio import crossval, datasets, export, predict, runs, settings, train
from kerasaudio.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.datasets import splits
from kerasaudio.datasets.base import SPLITS
from kerasaudio.errors import UserError


@pytest.mark.parametrize(("repeats", "folds", "ensemble", "plan"), [
    (1, None, None, (1, None)),
    (3, None, None, (3, None)),
    (1, 5, None, (1, None)),
    (1, 5, 0, (1, "folds")),       # --folds 5 --ensemble (no number)
    (1, None, 4, (4, "seeds")),    # --ensemble 4
    (4, None, 0, (4, "seeds")),    # --repeats 4 --ensemble
    (4, None, 4, (4, "seeds")),
])
def test_ensemble_plan_of_repeats_folds_and_ensemble(repeats, folds, ensemble, plan):
    assert settings.ensemble_plan(repeats, folds, ensemble) == plan


@pytest.mark.parametrize(("repeats", "folds", "ensemble", "message"), [
    (3, 5, None, "--folds and --repeats: give one"),
    (1, 5, 3, "the ensemble is the 5 fold models"),
    (3, None, 4, "--ensemble 4 and --repeats 3 disagree"),
    (1, None, 1, "--ensemble needs members"),
    (1, None, 0, "--ensemble needs members"),
])
def test_ensemble_plan_refuses_combinations_that_mean_nothing(repeats, folds, ensemble,
                                                              message):
    with pytest.raises(UserError, match=message):
        settings.ensemble_plan(repeats, folds, ensemble)


def test_folds_are_stratified_and_keep_every_group_whole():
    rng = np.random.default_rng(0)
    labels, groups = rng.integers(0, 3, 300), rng.integers(0, 30, 300)
    fold = splits.fold_of(300, labels, 5, seed=0, source="x", groups=groups)
    assert set(fold) == set(range(5))
    for group in np.unique(groups):
        assert len(set(fold[groups == group])) == 1  # no group in two folds
    overall = np.bincount(labels) / len(labels)
    for k in range(5):
        share = np.bincount(labels[fold == k], minlength=3) / np.sum(fold == k)
        assert np.abs(share - overall).max() < 0.1
    # Without groups every class is dealt as evenly as its count allows.
    plain = splits.fold_of(300, labels, 5, seed=0, source="x")
    for c in range(3):
        per_fold = np.bincount(plain[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    assert not np.array_equal(plain, splits.fold_of(300, labels, 5, seed=1, source="x"))
    with pytest.raises(UserError, match="x: 3 groups to train on, fewer than --folds 5"):
        splits.fold_of(300, labels, 5, seed=0, source="x", groups=groups % 3)
    # Regression (no labels) without groups, and classes too small for the folds.
    assert set(splits.fold_of(10, None, 5, seed=0, source="x")) == set(range(5))
    with pytest.raises(UserError, match="x: cannot deal the examples into 5 folds"):
        splits.fold_of(8, np.arange(8) % 4, 5, seed=0, source="x")


def test_a_class_whose_examples_all_fall_in_one_fold_is_refused():
    # One recording of "c": the fold that holds it for validation trains without any "c".
    split = np.where(np.arange(41) < 36, "train", "test")
    split[40] = "train"
    data = dataclasses.replace(make_sequences(41), split=split, targets={
        "label": np.where(np.arange(41) == 40, 2, np.arange(41) % 2)})
    with pytest.raises(UserError, match="all 1 training example of class 'c' fall in fold"):
        datasets.with_fold(data, DataConfig(name="x", folds=5, fold=0))


def test_a_drawn_split_takes_whole_groups_and_refuses_a_share_that_leaves_none():
    labels, groups = np.arange(60) % 2, np.arange(60) // 6  # 10 groups of 6
    for fraction in (0.1, 0.25, 0.5, 0.85):
        picked = splits.carve(labels, fraction, 3, "x", groups)
        # The groups scikit-learn drew from the fraction itself (earlier runs' splits).
        _, expected = next(GroupShuffleSplit(1, test_size=fraction, random_state=3)
                           .split(labels, labels, groups))
        assert np.array_equal(np.flatnonzero(picked), np.sort(expected))
        assert not set(groups[picked]) & set(groups[~picked])
    # 0.95 of 10 groups is all 10: one line naming the data and the option, not a traceback.
    with pytest.raises(UserError, match=r"x: --val-fraction 0.95 of its 10 training groups "
                                        r"leaves none to train on"):
        splits.carve(labels, 0.95, 0, "x", groups, "--val-fraction")
    with pytest.raises(UserError, match="of its 60 training examples leaves none"):
        splits.carve(labels, 0.995, 0, "x")
    assert splits.carve(labels, 0.5, 0, "x").sum() == 30



def test_train_fraction_keeps_part_of_the_training_groups_and_all_of_val_and_test():
    data = make_sequences(300, seed=3)
    grouped = dataclasses.replace(data, info={"group": np.arange(300) // 6})  # 50 groups of 6
    kept = datasets.with_train_fraction(grouped, DataConfig(train_fraction=0.3, seed=0))
    for split in ("val", "test"):
        assert np.sum(kept.split == split) == np.sum(data.split == split)
    train_groups = set(kept.info["group"][kept.split == "train"])
    all_train_groups = set(grouped.info["group"][grouped.split == "train"])
    assert len(train_groups) == round(0.3 * len(all_train_groups))
    for group in train_groups:  # whole groups: every training example of a kept group stays
        assert np.sum(kept.info["group"] == group) == np.sum(grouped.info["group"] == group)
    # Without groups: stratified by class, and another seed draws other examples.
    plain = datasets.with_train_fraction(data, DataConfig(train_fraction=0.1, seed=0))
    labels = plain.targets["label"][plain.split == "train"]
    assert len(labels) == 10 and set(labels) == {0, 1, 2}
    other = datasets.with_train_fraction(data, DataConfig(train_fraction=0.1, seed=1))
    assert not np.array_equal(plain.frames, other.frames)
    with pytest.raises(UserError, match="--train-fraction must be in"):
        datasets.with_train_fraction(data, DataConfig(train_fraction=0.0))
    nearly_all = datasets.with_train_fraction(data, DataConfig(train_fraction=0.999))
    assert np.array_equal(nearly_all.split, data.split)  # rounds up to every example
    # Groups of one class each (songs of one genre) are drawn stratified: no class is lost.
    labels = data.targets["label"]
    one_class = dataclasses.replace(data, info={"group": labels * 1000 + np.arange(300) // 20})
    for seed in range(5):
        few = datasets.with_train_fraction(one_class, DataConfig(train_fraction=0.1, seed=seed))
        assert set(few.targets["label"][few.split == "train"]) == {0, 1, 2}
    # With folds, the share is of each fold's training examples; its validation stays whole.
    folded = DataConfig(folds=3, fold=0, train_fraction=0.5)
    whole = datasets.with_fold(grouped, folded)
    part = datasets.as_fold(grouped, folded)
    assert np.sum(part.split == "val") == np.sum(whole.split == "val")
    assert np.sum(part.split == "train") == pytest.approx(np.sum(whole.split == "train") / 2,
                                                          abs=6)


def test_train_fraction_keeps_every_class_or_says_which_it_cannot():
    data = make_sequences(120, seed=4)
    train = data.split == "train"  # 40 examples
    # Groups of mixed classes: an exact count of groups (0.98 of 39 was rounded up to all 39,
    # which scikit-learn refused with a traceback).
    group = np.arange(120) // 3 % 39  # 39 groups among the training examples
    mixed = dataclasses.replace(data, info={"group": group})
    kept = datasets.with_train_fraction(mixed, DataConfig(train_fraction=0.98))
    assert len(set(kept.info["group"][kept.split == "train"])) == 38
    # A class that lives in one group only is refused, by name, when its group is not drawn.
    group = np.arange(120) // 3 % 13  # 13 groups of several classes
    rare = np.where(train & (group == 0), 2, data.targets["label"] % 2)
    one_group = dataclasses.replace(data, info={"group": group}, targets={"label": rare})
    outcomes = set()
    for seed in range(8):
        try:
            few = datasets.with_train_fraction(one_group,
                                               DataConfig(train_fraction=0.2, seed=seed))
        except UserError as error:
            assert "keeps" in str(error) and "and none of label 'c'" in str(error)
            outcomes.add("refused")
        else:
            assert 2 in few.targets["label"][few.split == "train"]
            outcomes.add("kept")
    assert outcomes == {"refused", "kept"}
    # A class of one example is kept, not refused (it cannot be stratified).
    single = np.where(train, data.targets["label"] % 2, data.targets["label"])
    single[np.flatnonzero(train)[0]] = 2
    lone = dataclasses.replace(data, targets={"label": single})
    kept = datasets.with_train_fraction(lone, DataConfig(train_fraction=0.5))
    assert set(kept.targets["label"][kept.split == "train"]) == {0, 1, 2}
    assert np.sum(kept.split == "train") == 20
    # Fewer examples than classes cannot hold every class: one line, naming the class.
    with pytest.raises(UserError, match=r"toy: --train-fraction 0.05 keeps 2 of 40 training "
                                        r"examples and none of label '\w'"):
        datasets.with_train_fraction(data, DataConfig(name="toy", train_fraction=0.05))


@pytest.fixture(scope="module")
def speakers_csv(tmp_path_factory):
    """Tones of three pitches by 8 'speakers' (a group column), 4 files each."""
    root = tmp_path_factory.mktemp("speakers")
    rng = np.random.default_rng(0)
    lines = ["path,label,group"]
    for speaker in range(8):
        for n, (name, pitch) in enumerate(list(PITCHES.items()) * 2):
            if n >= 4 and name == "high":
                continue
            path = root / f"s{speaker}-{n}.wav"
            write_tone(path, pitch * (1 + 0.05 * speaker), rng)
            lines.append(f"{path.name},{name},s{speaker}")
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    return root / "list.csv"


@pytest.fixture(scope="module")
def cross_validation(speakers_csv, tmp_path_factory):
    cfg = RunConfig(data=DataConfig(name=str(speakers_csv)),
                    out=str(tmp_path_factory.mktemp("runs")),
                    model=ModelConfig("gru_attention", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=2, batch_size=8, lr=0.01, min_epoch_steps=10))
    experiment, metrics = crossval.fit_folds(cfg, 3, verbose=0)
    return cfg, experiment, metrics


def test_out_of_fold_predictions_cover_every_training_example_once(cross_validation):
    cfg, experiment, metrics = cross_validation
    dataset = datasets.load(cfg.data, cfg.features)
    pooled = set(dataset.ids()[dataset.split != "test"])
    with open(experiment / crossval.OOF_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["example"] for r in rows) == sorted(pooled)
    assert metrics["out_of_fold"]["examples"] == len(pooled)
    assert {r["fold"] for r in rows} == {"0", "1", "2"}
    group = dict(zip(dataset.ids(), dataset.info["group"]))
    members = runs.experiment_runs(experiment)
    assert len(members) == 3
    for run_dir in members:  # each fold run trains on no speaker it validates on
        recorded = runs.read_json(run_dir / "splits.json")
        assert not {group[i] for i in recorded["train"]} & {group[i] for i in recorded["val"]}
        assert set(recorded["test"]) == set(dataset.ids()[dataset.split == "test"])
    assert set(metrics["test"]) >= {"accuracy", "loss"}
    assert (experiment / "report.md").read_text().count("out-of-fold") >= 1
    assert (experiment / "plots" / "confusion_class_out_of_fold_counts.png").is_file()


def test_an_interrupted_cross_validation_continues_without_retraining(cross_validation):
    cfg, experiment, _ = cross_validation
    before = sorted(p.name for p in experiment.iterdir())
    (experiment / "metrics.json").unlink()  # as if stopped before the summary
    again, _ = crossval.fit_folds(cfg, 3, verbose=0)
    assert again == experiment
    assert sorted(p.name for p in experiment.iterdir()) == before


def test_a_cross_validation_is_not_continued_on_another_deal_of_the_data(cross_validation):
    # As if files had been added since: fold 0's validation examples are no longer its own.
    cfg, experiment, _ = cross_validation
    fold_run = next(p for p in runs.experiment_runs(experiment)
                    if runs.read_record(p).config.data.fold == 0)
    path, summary = fold_run / "splits.json", experiment / "metrics.json"
    recorded, summarised = runs.read_json(path), summary.read_bytes()
    try:
        runs.write_json(path, {**recorded, "val": recorded["val"][1:]})
        summary.unlink()  # unfinished: to be continued
        with pytest.raises(UserError, match="fold 0 was trained on another deal of the data"):
            crossval.fit_folds(cfg, 3, verbose=0)
    finally:
        runs.write_json(path, recorded)
        summary.write_bytes(summarised)


def test_a_cross_validation_whose_ensemble_was_lost_is_not_trained_again(cross_validation):
    cfg, experiment, _ = cross_validation
    before = sorted(p.name for p in experiment.iterdir())
    assert crossval.ENSEMBLE not in before
    # Asked for with an ensemble (say, after one failed to be written): the same experiment.
    again, _ = crossval.fit_folds(cfg, 3, verbose=0, ensemble=True)
    assert again == experiment
    assert sorted(p.name for p in experiment.iterdir()) == before


def member_probabilities(run_dir, files) -> np.ndarray:
    header, rows = predict.predict_files(run_dir, files)
    columns = [i for i, name in enumerate(header) if name.startswith("class_p_")]
    return np.array([[float(row[i]) for i in columns] for row in rows])


def test_an_ensemble_of_folds_on_a_training_share_records_what_its_members_trained_on(
        cross_validation, tmp_path):
    cfg, experiment, _ = cross_validation
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns(crossval.ENSEMBLE))
    members = runs.experiment_runs(copy)
    left_out = runs.read_json(members[0] / "splits.json")["val"][0]  # as --train-fraction does
    for member in members:
        record = runs.read_json(member / "splits.json")
        runs.write_json(member / "splits.json",
                        {**record, "train": [i for i in record["train"] if i != left_out]})
    ensemble = crossval.write_ensemble(copy, members, "folds")
    splits = runs.read_json(ensemble / "splits.json")
    assert left_out not in splits["train"]
    # Its record of the data counts those examples (the first member's left out a fold).
    dataset = datasets.load(cfg.data, cfg.features)
    task = dataset.tasks[0]
    label = dict(zip(dataset.ids(), dataset.targets[task.name], strict=True))
    record = runs.read_json(ensemble / "config.json")["dataset"]
    for split in ("train", "val", "test"):
        assert record["examples"][split] == len(splits[split])
        assert record["class_counts"][task.name][split] == np.bincount(
            [label[i] for i in splits[split]], minlength=task.num_classes).tolist()


@pytest.mark.parametrize("data", [make_sequences(30), make_frames(12)],
                         ids=["sequence labels", "frame labels"])
def test_an_ensemble_s_record_counts_its_splits_as_fit_does(data):
    record = json.loads(json.dumps(dataclasses.asdict(train.describe(data))))
    members = {split: list(data.ids()[data.split == split]) for split in SPLITS}
    assert crossval._dataset_record(record, data, members) == record
    # and a fold ensemble's: every example but the test split's trained, none validates
    pooled = {"train": members["train"] + members["val"], "val": [], "test": members["test"]}
    counted = crossval._dataset_record(record, data, pooled)
    assert counted["examples"] == {"train": len(pooled["train"]), "val": 0,
                                   "test": len(pooled["test"])}
    for task, counts in counted["class_counts"].items():
        was = record["class_counts"][task]
        assert counts["val"] == [0] * len(was["val"])
        assert counts["train"] == (np.array(was["train"]) + was["val"]).tolist()


def test_an_ensemble_of_a_folder_named_relatively_is_written(tmp_path, monkeypatch):
    # `fit --data tones --ensemble 2`: the members record the files as typed, the ensemble
    # reads the data again from their record, by its resolved path.
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name, pitch in PITCHES.items():
        for n in range(8):
            write_tone(Path("tones") / name / f"{n}.wav", pitch * (1 + 0.03 * n), rng)
    cfg = RunConfig(data=DataConfig(name="tones"), out="runs",
                    model=ModelConfig("gru_attention", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=1, batch_size=8, min_epoch_steps=1))
    experiment, _ = train.fit_repeats(cfg, 2, verbose=0)
    members = runs.experiment_runs(experiment)
    ensemble = crossval.write_ensemble(experiment, members, "seeds")
    assert runs.read_record(ensemble).dataset.examples == \
        runs.read_record(members[0]).dataset.examples


def test_a_fold_ensemble_of_members_run_from_different_folders_is_written(cross_validation,
                                                                           tmp_path):
    # A cross-validation resumed from another folder, its data named relative to each.
    _, experiment, _ = cross_validation
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy)
    member = runs.experiment_runs(copy)[1]
    splits = runs.read_json(member / "splits.json")
    base = Path(splits["train"][0]).parent.parent
    runs.write_json(member / "splits.json", {
        **{split: [str(Path(i).relative_to(base)) for i in splits[split]] for split in SPLITS},
        "relative_to": str(base)})
    ensemble = crossval.write_ensemble(copy, runs.experiment_runs(copy), "folds")
    trained = set(runs.read_json(ensemble / "splits.json")["train"])
    assert trained == {i for m in runs.experiment_runs(experiment)
                       for i in runs.read_json(m / "splits.json")["train"]}


def test_an_ensemble_averages_its_members_and_exports_like_a_run(cross_validation, speakers_csv,
                                                                tmp_path):
    _, experiment, _ = cross_validation
    members = runs.experiment_runs(experiment)
    ensemble = crossval.write_ensemble(experiment, members, "folds")
    assert runs.experiment_runs(experiment) == members  # the ensemble is not a member
    files = sorted(speakers_csv.parent.glob("s*-*.wav"))[:6]
    mean = np.mean([member_probabilities(m, files) for m in members], axis=0)
    np.testing.assert_allclose(member_probabilities(ensemble, files), mean, atol=1e-5)
    metrics = runs.read_json(ensemble / "metrics.json")
    assert metrics["members"] == 3 and 0 <= metrics["test"]["accuracy"] <= 1
    # Its record is its first member's; its report says what it is, not that seed.
    assert "the mean of 3 models' probabilities (folds)" in \
        (ensemble / "report.md").read_text()
    trained = [set(runs.read_json(m / "splits.json")["train"]) for m in members]
    recorded = runs.read_json(ensemble / "splits.json")
    assert set(recorded["train"]) == set.union(*trained) and recorded["val"] == []
    with pytest.raises(UserError, match="has no val split"):
        crossval.inference.write_split_predictions(ensemble, "val")
    path = export.export(ensemble, "tflite", tmp_path / "ensemble.tflite")
    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serve")
    got = [runner(**dict(zip(("waveform", "num_samples"), serve_inputs([f]))))["class"][0]
           for f in files]
    np.testing.assert_allclose(np.array(got), mean, atol=1e-4)
