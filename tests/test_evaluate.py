"""Metrics against scikit-learn and hand-computed values, confidence intervals, baselines,
report and plots of a real (toy) run, and the compare table."""

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from conftest import make_sequences
from scipy import stats
from sklearn.metrics import classification_report

from kerasaudio import compare, evaluate, plots, runs, train
from kerasaudio.config import DataConfig, DatasetRecord, ModelConfig, RunConfig, Task, TrainConfig
from kerasaudio.datasets.base import make_task
from kerasaudio.errors import UserError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_classification_metrics_match_scikit_learn_and_hand_values():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    y_pred = [0, 1, 0, 1, 1, 2, 2, 0, 2, 1]
    names = ["a", "b", "c"]
    got = evaluate.classification_metrics(y_true, y_pred, names)
    want = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    assert got["accuracy"] == pytest.approx(0.7)
    # Class b: predicted 4 times, right twice; 2 true examples, both found.
    assert got["classes"]["b"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                   "support": 2}
    for i, name in enumerate(names):
        for key in ("precision", "recall"):
            assert got["classes"][name][key] == pytest.approx(want[str(i)][key])
        assert got["classes"][name]["f1"] == pytest.approx(want[str(i)]["f1-score"])
    for average in ("macro", "weighted"):
        assert got[average]["f1"] == pytest.approx(want[f"{average} avg"]["f1-score"])
    assert got["micro"]["f1"] == pytest.approx(0.7)  # single-label: micro F1 is accuracy
    assert got["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 1, 3]]


def test_a_class_never_predicted_scores_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UndefinedMetricWarning would fail it
        got = evaluate.classification_metrics([0, 1, 2], [0, 0, 0], ["a", "b", "c"])
    assert got["classes"]["b"]["precision"] == 0.0 and got["classes"]["c"]["support"] == 1


def test_regression_metrics_against_hand_values_and_scipy():
    y_true, y_pred = [1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 5.0]
    got = evaluate.regression_metrics(y_true, y_pred)
    assert got["mse"] == pytest.approx((0.25 + 0.25 + 0.25 + 1.0) / 4)
    assert got["mae"] == pytest.approx((0.5 + 0.5 + 0.5 + 1.0) / 4)
    assert got["spearman"] == pytest.approx(stats.spearmanr(y_true, y_pred).statistic)
    assert np.isnan(evaluate.regression_metrics([1, 2, 3], [2, 2, 2])["spearman"])


def test_confidence_interval_is_the_student_t_interval():
    mean, half = evaluate.confidence_interval([1, 2, 3, 4, 5])
    # t(0.975, 4) = 2.7764, sample sd = sqrt(2.5)
    assert mean == 3.0 and half == pytest.approx(2.7764451 * np.sqrt(2.5) / np.sqrt(5))
    assert np.isnan(evaluate.confidence_interval([0.9])[1])


def test_baselines_score_the_training_majority_on_the_test_split():
    got = evaluate.baselines(train_counts=[10, 30, 5, 5], test_counts=[4, 2, 2, 2])
    assert got == {"random": 0.25, "majority": 0.2}


def test_every_plot_writes_a_png(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8],
               "val_accuracy": [0.4, 0.7], "learning_rate": [0.001, 0.001]}
    rng = np.random.default_rng(0)
    written = [
        plots.learning_curves(history, tmp_path / "curves.png"),
        plots.confusion_matrix([[5, 1], [2, 4]], ["x", "y"], tmp_path / "cm.png"),
        plots.confusion_matrix([[5, 1], [2, 4]], ["x", "y"], tmp_path / "cmn.png", True),
        plots.class_histogram({"train": [3, 4], "test": [1, 2]}, ["x", "y"], tmp_path / "c.png"),
        plots.length_histogram({"train": rng.random(50), "test": rng.random(20)},
                               tmp_path / "lengths.png"),
        plots.feature_image(rng.random((80, 25)), ["mfcc", "chroma"], [13, 12], 0.01,
                            tmp_path / "features.png"),
        plots.parallel_coordinates(
            [{"arch": a, "lr": lr, "dropout": d, "val_accuracy": s}
             for a, lr, d, s in [("gru", 1e-3, 0.1, 0.9), ("dense", 1e-2, 0.5, 0.6),
                                 ("gru", 1e-4, 0.3, 0.7)]],
            ["arch", "lr", "dropout"], "val_accuracy", tmp_path / "parallel.png"),
    ]
    assert all(is_png(path) for path in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_parallel_coordinates_label_integer_settings_with_integers():
    place, (where, labels) = plots._numeric_axis([1, 2, 2, 3], "layers")
    assert labels == ["1", "2", "3"] and list(where) == [0, 0.5, 1]
    assert list(place) == [0, 0.5, 0.5, 1]
    _, (_, labels) = plots._numeric_axis([32, 40, 48, 56, 64, 72, 80, 96], "batch_size")
    assert all(label.isdigit() for label in labels) and labels[0] == "32" and labels[-1] == "96"
    _, (_, labels) = plots._numeric_axis([1e-4, 1e-3, 1e-2], "lr")  # log scale
    assert labels[0] == "0.0001" and labels[-1] == "0.01"
    _, (_, labels) = plots._numeric_axis([0.1, 0.35], "dropout")
    assert labels[0] == "0.1" and labels[-1] == "0.35"
    assert plots._numeric_axis([4, 4], "layers")[1] == ([0.5], ["4"])


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    cfg = RunConfig(model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=3, batch_size=8),
                    out=str(tmp_path_factory.mktemp("runs")))
    return train.fit(cfg, make_sequences(90), verbose=0)[0]


def test_fit_leaves_a_report_with_plots_and_evaluation_metrics(toy_run):
    metrics = json.loads((toy_run / "metrics.json").read_text())
    report = metrics["evaluation"]["test"]["tasks"]["label"]
    rows = evaluate.read_predictions(toy_run / "predictions.csv")
    accuracy = np.mean(np.array(rows["label_true"]) == np.array(rows["label_pred"]))
    assert report["accuracy"] == pytest.approx(accuracy)
    assert report["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert sum(map(sum, report["confusion_matrix"])) == 30
    assert metrics["baselines"]["label"]["random"] == pytest.approx(1 / 3)
    text = (toy_run / "report.md").read_text()
    assert "| macro |" in text and "plots/confusion_label_test_counts.png" in text
    for name in ("learning_curves.png", "confusion_label_test_counts.png",
                 "confusion_label_test_normalised.png"):
        assert is_png(toy_run / "plots" / name)


def _board_runs(log_dir):
    """{run: {tag: [(step, value)]}} and each run's HParams plugin data, read as TensorBoard
    does."""
    from tensorboard.backend.event_processing import event_accumulator

    scalars, plugin_data = {}, {}
    for run in [log_dir, *sorted(p for p in log_dir.iterdir() if p.is_dir())]:
        events = event_accumulator.EventAccumulator(str(run), size_guidance={"tensors": 0})
        events.Reload()
        name = run.relative_to(log_dir).as_posix()
        scalars[name] = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto)))
                               for e in events.Tensors(tag)]
                         for tag in events.Tags()["tensors"]
                         if events.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"}
        plugin_data[name] = {tag: events.SummaryMetadata(tag).plugin_data.content
                             for tag in events.Tags()["tensors"]
                             if events.SummaryMetadata(tag).plugin_data.plugin_name == "hparams"}
    return scalars, plugin_data


def test_tensorboard_has_train_validation_and_a_test_session_that_the_hparams_table_shows(toy_run):
    from tensorboard.plugins.hparams import metadata

    scalars, plugin_data = _board_runs(toy_run / "tensorboard")
    assert set(scalars) == {".", "train", "validation"}
    assert {"epoch_seconds", "epoch_loss", "epoch_learning_rate"} <= set(scalars["train"])
    assert not any("epoch_epoch" in tag for tags in scalars.values() for tag in tags)
    metrics = json.loads((toy_run / "metrics.json").read_text())
    # The session's own run holds the test metrics, at the best epoch (Keras counts from 0).
    assert scalars["."] == {f"Test/{k}": [(metrics["best_epoch"] - 1, pytest.approx(v))]
                            for k, v in metrics["test"].items()}
    # The HParams table shows the first five metrics in (tag, run) order: the test ones first.
    names = sorted((tag, run) for run, tags in scalars.items() for tag in tags)
    assert {tag for tag, _ in names[:len(metrics["test"])]} == set(scalars["."])
    start = metadata.parse_session_start_info_plugin_data(
        plugin_data["."][metadata.SESSION_START_INFO_TAG])
    values = {k: v.WhichOneof("kind") for k, v in start.hparams.items()}
    # Integers go as text, which TensorBoard shows as "8" rather than "8.0000".
    assert start.hparams["batch_size"].string_value == "8"
    assert start.hparams["hidden"].string_value == "8"
    assert values["lr"] == "number_value" and start.hparams["limit"].string_value == "all"


def test_evaluate_val_split_runs_the_saved_model(toy_run, monkeypatch):
    data = make_sequences(90)  # what the toy run trained on; no built-in corpus needed
    monkeypatch.setattr("kerasaudio.datasets.load", lambda *_: data)
    report = evaluate.evaluate_run(toy_run, "val")
    assert (toy_run / "predictions_val.csv").exists()
    assert sum(report["label"]["classes"][c]["support"] for c in "abc") == 30
    metrics = json.loads((toy_run / "metrics.json").read_text())
    assert set(metrics["evaluation"]) == {"test", "val"}  # the test report is kept
    text = (toy_run / "report.md").read_text()
    test, val = text.index("## label on the test split"), text.index("## label on the val split")
    assert test < val  # the test section first, with its plots, then validation's
    assert test < text.index("plots/confusion_label_test_counts.png") < val
    assert val < text.index("plots/confusion_label_val_counts.png")
    assert test < text.index("Baselines on the test split") < val  # baselines are the test's
    assert text.count("Baselines") == 1
    # Predicted anew each time, from the data as it is: examples gone since are named, not
    # scored from the predictions an earlier evaluate left.
    monkeypatch.setattr("kerasaudio.datasets.load", lambda *_: make_sequences(90, seed=1))
    with pytest.raises(UserError, match="examples of the run's val split are no longer"):
        evaluate.evaluate_run(toy_run, "val")
    # A class added since (a folder that sorts first, say) moves every class's number: the
    # model's outputs would be named wrongly.
    classes = ["_", "a", "b", "c"]
    added = dataclasses.replace(data, tasks=[make_task("label", classes)],
                                class_names={"label": classes},
                                targets={"label": data.targets["label"] + 1})
    monkeypatch.setattr("kerasaudio.datasets.load", lambda *_: added)
    kept = (toy_run / "predictions_val.csv").read_text()
    with pytest.raises(UserError, match="the data set's classes of 'label' are now _, a, b, c"):
        evaluate.evaluate_run(toy_run, "val")
    # A label column that became numbers, or another target in its place.
    numbers = dataclasses.replace(data, tasks=[Task("label", kind="regression")],
                                  class_names={},
                                  targets={"label": data.targets["label"].astype(np.float32)})
    renamed = dataclasses.replace(data, tasks=[make_task("genre", list("abc"))],
                                  class_names={"genre": list("abc")},
                                  targets={"genre": data.targets["label"]})
    added = dataclasses.replace(data, tasks=[*data.tasks, Task("loudness", kind="regression")],
                                targets={**data.targets, "loudness": np.zeros(90, np.float32)})
    for changed, problem in [(numbers, "the data set's 'label' is now a sequence-level "
                                       "regression target; the run trained it as "
                                       "sequence-level classification"),
                             (renamed, "the data set no longer has the target 'label' the "
                                       "run trained on .it has genre."),
                             (added, r"the data set has targets the run never trained on "
                                     r"\(loudness\); its model predicts label")]:
        monkeypatch.setattr("kerasaudio.datasets.load", lambda *_, d=changed: d)
        with pytest.raises(UserError, match=problem):
            evaluate.evaluate_run(toy_run, "val")
    assert (toy_run / "predictions_val.csv").read_text() == kept


def test_a_split_without_its_record_is_drawn_again_with_a_warning(toy_run, tmp_path,
                                                                  monkeypatch, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_run, run_dir)
    (run_dir / "splits.json").unlink()
    data = make_sequences(90)
    monkeypatch.setattr("kerasaudio.datasets.load", lambda *_: data)
    with caplog.at_level("WARNING", logger="kerasaudio.inference"):
        report = evaluate.evaluate_run(run_dir, "val")
    assert f"{run_dir}: has no splits.json" in caplog.text
    assert sum(report["label"]["classes"][c]["support"] for c in "abc") == 30


def test_evaluate_warns_that_a_complete_run_s_metrics_json_was_gone(toy_run, tmp_path, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_run, run_dir)
    (run_dir / "metrics.json").unlink()
    with caplog.at_level("WARNING", logger="kerasaudio.evaluate"):
        evaluate.evaluate_run(run_dir)
    assert f"{run_dir}: a complete run without metrics.json" in caplog.text
    assert set(runs.read_json(run_dir / "metrics.json")) == {"evaluation", "baselines"}
    (run_dir / "best.keras").unlink()
    with pytest.raises(UserError, match=r"has no best.keras \(it was moved or deleted since\)"):
        evaluate.evaluate_run(run_dir, "val")


def test_report_lists_classes_in_the_data_order(tmp_path):
    classes = ["zero", "one", "two"]
    report = evaluate.classification_metrics([0, 1, 2, 2], [0, 1, 2, 1], classes)
    record = runs.RunRecord(tmp_path, RunConfig(data=DataConfig(name="x")),
                            DatasetRecord(name="x", class_names={"digit": classes}))
    # Through JSON with sorted keys, as metrics.json stores it.
    metrics = json.loads(json.dumps({"evaluation": {"test": {"tasks": {"digit": report}}}},
                                    sort_keys=True))
    text = evaluate.report_markdown(tmp_path, record, metrics, [])
    rows = [line.split(" | ")[0][2:] for line in text.splitlines()
            if line.startswith("| ") and line.split(" | ")[0][2:] in classes]
    assert rows == classes


def test_evaluate_of_a_folder_that_is_not_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a run directory .no config.json"):
        evaluate.evaluate_run(tmp_path)


def fake_run(parent, name, arch="gru", seed=0, accuracy=0.9, first=2.0, final=0.1, best=5,
             run=8, epochs=40):
    path = parent / name
    path.mkdir(parents=True)
    cfg = RunConfig(data=DataConfig(name="toy"), model=ModelConfig(arch, {"hidden": 8}),
                    train=TrainConfig(optimizer="adam", lr=0.001, batch_size=32, seed=seed,
                                      epochs=epochs))
    runs.write_json(path / "config.json", {
        **json.loads(cfg.to_json()),
        "dataset": {"name": "toy", "tasks": [{"name": "label"}],
                    "class_names": {"label": ["a", "b"]},
                    "class_counts": {"label": {"train": [30, 10], "test": [6, 4]}}}})
    runs.write_json(path / "metrics.json", {
        "test": {"accuracy": accuracy, "loss": 0.3}, "first_train_loss": first,
        "final_train_loss": final, "best_epoch": best, "epochs_run": run,
        "seconds_per_epoch": 1.0})
    (path / "best.keras").touch()
    return path


def test_compare_gives_mean_and_interval_of_an_experiment_and_baseline_rows(tmp_path):
    experiment = runs.create_experiment(tmp_path, "gru", "toy", [0, 1, 2])
    for seed, accuracy in enumerate([0.8, 0.9, 1.0]):
        fake_run(experiment, f"run{seed}", seed=seed, accuracy=accuracy)
    fake_run(tmp_path, "single", arch="dense", accuracy=0.5, final=2.5)  # diverged
    fake_run(tmp_path, "short", arch="lstm", accuracy=0.7, best=40, run=40)  # still improving
    rows = compare.table([tmp_path], sort="test_accuracy", descending=True)
    assert [r["run"] for r in rows] == [f"{experiment.name} (3 runs)", "short", "single",
                                        "baseline: random guess", "baseline: majority class"]
    assert rows[0]["test_accuracy"] == pytest.approx(0.9)
    assert rows[0]["test_accuracy_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / 3**0.5)
    assert rows[1]["flags"] == "cut short" and rows[2]["flags"] == "diverged"
    # One epoch: its first loss is its last, which tells nothing of divergence.
    one = fake_run(tmp_path / "one", "epoch", first=0.7, final=0.7, best=1, run=1, epochs=1)
    assert compare.run_row(one)["flags"] == "cut short"
    assert rows[3]["test_accuracy"] == 0.5 and rows[4]["test_accuracy"] == 0.6
    table = compare.markdown(rows)
    assert "| 0.9000 ± 0.2484 |" in table
    header = compare.to_csv(rows).splitlines()[0].split(",")
    assert "test_accuracy_ci95" in header and "lr" in header


def test_compare_shows_a_run_from_before_a_hyperparameter_as_the_model_it_built(tmp_path):
    # Recorded before gru_attention had convolutions: it had none, whatever today's default.
    older = fake_run(tmp_path, "older", arch="gru_attention")  # hparams {"hidden": 8}
    assert compare.run_row(older)["hparams"] == ("conv_filters=128 conv_kernel=5 conv_layers=0 "
                                                 "dropout=0.1 hidden=8 layers=2")


def test_report_shows_a_run_from_before_a_hyperparameter_as_the_model_it_built(tmp_path):
    older = fake_run(tmp_path, "older", arch="gru_attention")  # hparams {"hidden": 8}
    text = evaluate.report_markdown(older, runs.read_record(older), {}, [])
    assert ("hyperparameters {'hidden': 8, 'layers': 2, 'dropout': 0.1, 'conv_layers': 0, "
            "'conv_filters': 128, 'conv_kernel': 5};") in text


def test_compare_gives_folders_typed_alike_their_own_baselines(tmp_path, monkeypatch):
    # `--data tones` run in two project folders reads two data sets; a run made before
    # the working directory was recorded (None) reads one nobody can tell.
    for name, folder in (("20260101-100000-gru-toy", "A"), ("20260101-110000-gru-toy", "B"),
                         ("20260101-120000-gru-toy", "B"), ("20260101-130000-gru-toy", None)):
        run = fake_run(tmp_path / "runs", name)
        config = json.loads((run / "config.json").read_text())
        cwd = {"cwd": str(tmp_path / folder)} if folder else {}
        runs.write_json(run / "config.json", {**config, "data": {**config["data"],
                                                                 "name": "tones"}, **cwd})
    (tmp_path / "A" / "tones").mkdir(parents=True)  # B is gone: the project was moved
    folders = [str(tmp_path.resolve() / folder / "tones") for folder in "ABB"] + ["tones"]
    for here in (tmp_path / "A", tmp_path):  # wherever the table is printed
        monkeypatch.chdir(here)
        rows = compare.table([tmp_path / "runs"])
        assert [r["data"] for r in rows[:4]] == folders
        baselines = [r["data"] for r in rows if r["run"] == "baseline: random guess"]
        assert baselines == [folders[0], folders[1], "tones"]
    assert [r["data"] for r in compare.table([tmp_path / "runs"], sort="data")[:4]] == \
        sorted(folders)
    # from one folder alone, the name as typed, and one pair of baselines
    rows = compare.table([tmp_path / "runs" / "20260101-110000-gru-toy",
                          tmp_path / "runs" / "20260101-120000-gru-toy"])
    assert [r["data"] for r in rows] == ["tones"] * 4


def test_compare_rejects_unknown_columns_and_empty_folders(tmp_path):
    fake_run(tmp_path, "one")
    with pytest.raises(UserError, match="cannot sort by 'speed'"):
        compare.table([tmp_path], sort="speed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no run directories"):
        compare.table([tmp_path / "empty"])


def test_compare_lists_a_run_named_twice_once(tmp_path, monkeypatch):
    run = fake_run(tmp_path, "one")
    fake_run(tmp_path, "two")
    monkeypatch.chdir(tmp_path)
    rows = compare.table([Path("one"), run, tmp_path, Path(".")])
    assert [r["run"] for r in rows if not r["run"].startswith("baseline")] == ["one", "two"]


def test_fit_repeats_groups_seeded_runs_in_one_experiment(tmp_path):
    cfg = RunConfig(model=ModelConfig("dense", {"hidden": 8}),
                    train=TrainConfig(epochs=1, batch_size=16, seed=7), out=str(tmp_path))
    experiment, results = train.fit_repeats(cfg, 2, make_sequences(60), verbose=0)
    assert runs.read_json(experiment / "experiment.json")["seeds"] == [7, 8]
    seeds = [runs.read_json(p / "config.json")["train"]["seed"]
             for p in runs.experiment_runs(experiment)]
    assert sorted(seeds) == [7, 8] and len(results) == 2
    (row,) = [r for r in compare.table([experiment]) if not r["run"].startswith("baseline")]
    assert row["seeds"] in ("7,8", "8,7")


def test_compare_of_a_folder_skips_runs_still_running(tmp_path):
    fake_run(tmp_path, "done")
    running = tmp_path / "running"
    running.mkdir()
    runs.write_json(running / "config.json", {})
    runs.write_json(running / "status.json", {"status": "running"})
    rows = compare.table([tmp_path])
    assert [r["run"] for r in rows if not r["run"].startswith("baseline")] == ["done"]
    with pytest.raises(UserError, match="has no test metrics"):
        compare.table([running])  # named explicitly: an error, not a silent gap


def test_runs_lists_runs_and_experiments_newest_first(tmp_path):
    fake_run(tmp_path, "20260101-100000-gru-toy", accuracy=0.8)
    experiment = runs.create_experiment(tmp_path, "gru", "toy", [0, 1])
    fake_run(experiment, "20260101-110000-gru-toy", seed=0)
    late = fake_run(tmp_path, "29990101-000000-dense-toy", arch="dense", accuracy=0.75)
    runs.write_json(late / "status.json", {"status": "interrupted"})
    (tmp_path / "29990101-000001-gru-toy").mkdir()
    (tmp_path / "29990101-000001-gru-toy" / "config.json").write_text("{damaged")
    rows = runs.listing(tmp_path)
    assert [r["name"] for r in rows] == ["29990101-000001-gru-toy", "29990101-000000-dense-toy",
                                         experiment.name, "20260101-100000-gru-toy"]
    assert rows[0]["status"] == "unreadable records"
    assert (rows[1]["arch"], rows[1]["score"], rows[1]["status"]) == ("dense", 0.75,
                                                                      "interrupted")
    assert (rows[2]["kind"], rows[2]["status"]) == ("2 seeds", "1/1 complete")
    assert (rows[3]["score"], rows[3]["epochs"], rows[3]["status"]) == (0.8, 8, "complete")
    (tmp_path / "20260101-100000-gru-toy" / "best.keras").unlink()  # moved or deleted since
    assert runs.listing(tmp_path)[3]["status"] == "complete, best.keras missing"


def test_runs_shows_an_experiments_mean_over_its_finished_seeds_and_its_ensemble(tmp_path):
    experiment = runs.create_experiment(tmp_path, "gru", "toy", [0, 1, 2])
    fake_run(experiment, "20260101-110000-gru-toy", seed=0, accuracy=0.8)
    fake_run(experiment, "20260101-110100-gru-toy", seed=1, accuracy=0.9)
    unfinished = fake_run(experiment, "20260101-110200-gru-toy", seed=2, accuracy=0.1)
    runs.write_json(unfinished / "status.json", {"status": "interrupted"})
    (row,) = runs.listing(tmp_path)
    assert (row["metric"], row["score"], row["ensemble_score"]) == ("accuracy",
                                                                   pytest.approx(0.85), None)
    fake_run(experiment, runs.ENSEMBLE, accuracy=0.95)
    (row,) = runs.listing(tmp_path)
    assert (row["score"], row["ensemble_score"], row["status"]) == (pytest.approx(0.85), 0.95,
                                                                   "2/3 complete")
    import cli

    shown = CliRunner().invoke(cli.main, ["runs", str(tmp_path)])
    assert "test accuracy 0.8500 (mean), ensemble accuracy 0.9500" in shown.output
    # A damaged record spoils its own line only, never the listing.
    fake_run(tmp_path, "20260101-120000-gru-toy", accuracy=0.7)
    (experiment / runs.ENSEMBLE / "metrics.json").write_text('{"test": {"accuracy": "x"}}')
    assert [r["status"] for r in runs.listing(tmp_path)] == ["unreadable records", "complete"]
    (experiment / runs.ENSEMBLE / "metrics.json").write_text("{damaged")
    assert [r["status"] for r in runs.listing(tmp_path)] == ["unreadable records", "complete"]
    (experiment / runs.ENSEMBLE / "metrics.json").unlink()
    (experiment / "20260101-110100-gru-toy" / "metrics.json").write_text('{"test": {}}')
    assert [r["status"] for r in runs.listing(tmp_path)] == ["unreadable records", "complete"]


def test_compare_shows_a_limited_run_as_such(tmp_path):
    fake_run(tmp_path, "20260101-100000-gru-toy")
    limited = fake_run(tmp_path, "20260101-110000-gru-toy")
    config = json.loads((limited / "config.json").read_text())
    runs.write_json(limited / "config.json", {**config, "data": {**config["data"],
                                                                 "limit": 200}})
    rows = compare.table([tmp_path])
    assert [r.get("limit") for r in rows[:2]] == [None, 200]
    header, _, first, second = compare.markdown(rows).splitlines()[:4]
    assert "| limit |" in header and "| 200 |" in second and "| 200 |" not in first
    less = fake_run(tmp_path, "20260101-120000-gru-toy")
    runs.write_json(less / "config.json", {**config, "data": {**config["data"],
                                                              "train_fraction": 0.1}})
    rows = compare.table([tmp_path])
    fractions = [r.get("train_fraction") for r in rows if r["run"].startswith("2026")]
    assert fractions == [1.0, 1.0, 0.1]
    # Each data setting has its own pair of baselines, and they say which setting.
    baselines = [(r["run"], r["limit"], r["train_fraction"]) for r in rows
                 if r["run"].startswith("baseline")]
    assert ("baseline: majority class", None, 0.1) in baselines
    assert ("baseline: majority class", 200, 1.0) in baselines
    assert len(baselines) == 6
    # Another test split of the same data: its own baselines, and it says so.
    other = fake_run(tmp_path, "20260101-125000-gru-toy")
    runs.write_json(other / "config.json", {**config, "data": {**config["data"],
                                                               "test_fraction": 0.3}})
    rows = compare.table([tmp_path])
    assert sum(r["run"] == "baseline: random guess" for r in rows) == 4
    assert [r["data"] for r in rows if r["run"] == other.name] == \
        [f"{config['data']['name']} (test 0.3)"]
    assert runs.summary(less)["train_fraction"] == 0.1
    synced = fake_run(tmp_path, "20260101-130000-gru-toy")
    runs.write_json(synced / "config.json", {**config, "features": {**config["features"],
                                                                    "beat_sync": True}})
    (row,) = [r for r in compare.table([synced]) if r["run"] == synced.name]
    assert row["features"] == f"{config['features']['kind']} beat-sync"


def test_a_target_predicted_as_a_constant_counts_as_no_correlation_in_the_mean():
    constant = evaluate.regression_metrics([0.1, 0.5, 0.9], [0.4, 0.4, 0.4])["spearman"]
    assert np.isnan(constant)
    assert evaluate.mean_spearman([0.8, constant]) == pytest.approx(0.4)


def test_compare_gives_an_ensemble_of_seeds_its_members_seeds(tmp_path):
    experiment = runs.create_experiment(tmp_path, "gru", "toy", [3, 4])
    members = [fake_run(experiment, f"run{seed}", seed=seed) for seed in (3, 4)]
    ensemble = fake_run(experiment, runs.ENSEMBLE, seed=3)  # its record is its first member's
    config = runs.read_json(ensemble / "config.json")
    runs.write_json(ensemble / "config.json", {
        **config, "ensemble": {"of": "seeds", "members": [m.name for m in members]}})
    row = compare.run_row(ensemble)
    assert row["seeds"] == "3,4" and "(mean of 2 seeds)" in row["run"]
    # compare of the folder lists the experiment (mean and interval) and its ensemble.
    runs_shown = [r["run"] for r in compare.table([tmp_path])]
    assert f"{experiment.name} (2 runs)" in runs_shown and row["run"] in runs_shown
    named_twice = [r["run"] for r in compare.table([experiment, ensemble])]
    assert named_twice.count(row["run"]) == 1
