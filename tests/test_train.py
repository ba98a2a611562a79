"""train.fit end to end on toy data: training controls, sanity checks, repeatability."""

import dataclasses
import json
import logging

import keras
import numpy as np
import pytest
from conftest import make_frames, make_sequences

from kerasaudio import predict, train
from kerasaudio.config import FeatureConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.datasets.base import make_regression_task
from kerasaudio.errors import UserError
from kerasaudio.features import GIVEN
from kerasaudio.models import heads


def run(tmp_path, arch="gru", hparams=None, **train_options):
    cfg = RunConfig(model=ModelConfig(arch, hparams or {"hidden": 8, "layers": 1}),
                    train=TrainConfig(**{"epochs": 2, "batch_size": 8, **train_options}),
                    out=str(tmp_path))
    return cfg


def test_sgd_with_restarts_clipping_class_weights_and_spec_augment_trains(tmp_path):
    cfg = run(tmp_path, optimizer="sgd", lr=0.05, schedule="cosine-restarts", t0=2,
              clipnorm=1.0, class_weights=True, spec_augment=True, epochs=3)
    run_dir, metrics = train.fit(cfg, make_sequences(90), verbose=0)
    assert metrics["epochs_run"] == 3
    history = (run_dir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    rates = [float(line.split(",")[header.index("learning_rate")]) for line in history[1:]]
    # Logged at each epoch's end: halfway down the first 2-epoch period, restarted, then a
    # quarter into the second period, which is t_mult = 2 times longer.
    expected = [0.025, 0.05, 0.05 * (1 + np.cos(np.pi / 4)) / 2]
    assert rates == pytest.approx(expected, rel=1e-5)
    model = keras.models.load_model(run_dir / "best.keras")
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.clipnorm == 1.0


def test_overfit_batches_drives_training_loss_to_near_zero(tmp_path):
    cfg = run(tmp_path, hparams={"hidden": 32, "layers": 1, "dropout": 0.0},
              overfit_batches=2, epochs=60, lr=0.01)
    _, metrics = train.fit(cfg, make_sequences(90), verbose=0)
    assert metrics["overfit_batches"] == 2 and metrics["epochs_run"] == 60
    assert metrics["final_train_loss"] < 0.05 < metrics["first_train_loss"]


def test_same_seed_gives_the_same_metrics(tmp_path):
    data = make_sequences(90)
    first = train.fit(run(tmp_path / "a", seed=3), data, verbose=0)[1]
    second = train.fit(run(tmp_path / "b", seed=3), data, verbose=0)[1]
    third = train.fit(run(tmp_path / "c", seed=4), data, verbose=0)[1]
    assert first["test"] == second["test"]
    assert first["final_train_loss"] == second["final_train_loss"]
    assert first["final_train_loss"] != third["final_train_loss"]


def test_frame_classifier_trains_through_fit_and_predicts_every_frame(tmp_path):
    # Frames that came with the data, as a frame folder's: their step is unknown.
    data = dataclasses.replace(make_frames(30), features=FeatureConfig(kind=GIVEN))
    cfg = run(tmp_path, arch="frame_mlp", hparams={"window": 5, "width": 32, "depth": 2},
              epochs=15, batch_size=32, lr=0.01, window_edge="zero")
    run_dir, metrics = train.fit(cfg, data, verbose=0)
    rows = (run_dir / "predictions.csv").read_text().splitlines()
    assert len(rows) - 1 == int(data.subset("test").lengths.sum())
    assert metrics["test"]["accuracy"] > 0.6  # chance is 1/3

    np.save(tmp_path / "utterance.npy", data.frames[:12])
    header, rows = predict.predict_files(run_dir, [tmp_path / "utterance.npy"])
    assert header[:3] == ["file", "frame", "phone"]  # no time_s: no step to give it by
    assert [row[1] for row in rows] == list(range(12))


def _history_column(run_dir, name: str) -> list:
    header, *rows = (run_dir / "history.csv").read_text().splitlines()
    column = header.split(",").index(name)
    return [float(r.split(",")[column]) for r in rows]


def test_cosine_schedule_lowers_the_learning_rate_every_epoch(tmp_path):
    cfg = run(tmp_path, schedule="cosine", epochs=4, patience=2, lr=0.01)
    run_dir, _ = train.fit(cfg, make_sequences(60), verbose=0)
    rates = _history_column(run_dir, "learning_rate")
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == 4 and rates[-1] < 0.01


def test_plateau_schedule_divides_the_rate_by_ten_after_the_monitor_stalls(tmp_path):
    # Validation accuracy reaches 1.0 in epoch 2 and cannot improve on it: after two stalled
    # epochs (half the early-stopping patience) the rate falls tenfold.
    cfg = run(tmp_path, schedule="plateau", epochs=6, patience=4, lr=0.01,
              monitor="val_accuracy")
    run_dir, _ = train.fit(cfg, make_sequences(60), verbose=0)
    accuracy = _history_column(run_dir, "val_accuracy")
    assert accuracy[1:] == [1.0] * 5
    # Logged at each epoch's start: the fall at the end of epoch 4 shows from epoch 5 on.
    assert _history_column(run_dir, "learning_rate") == pytest.approx([0.01] * 4 + [0.001] * 2)


def test_adamw_with_weight_decay_trains_with_it_and_records_it(tmp_path):
    run_dir, _ = train.fit(run(tmp_path, optimizer="adamw", weight_decay=1e-3, epochs=1),
                           make_sequences(30), verbose=0)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["optimizer"] == "adamw" and config["train"]["weight_decay"] == 1e-3
    optimizer = keras.models.load_model(run_dir / "best.keras").optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(1e-3)


def test_label_smoothing_trains_with_smoothed_targets_and_records_it(tmp_path):
    run_dir, _ = train.fit(run(tmp_path, label_smoothing=0.1, epochs=1), make_sequences(30),
                           verbose=0)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["label_smoothing"] == 0.1
    loss = keras.models.load_model(run_dir / "best.keras").loss["label"]
    assert isinstance(loss, heads.SmoothedCrossentropy) and loss.label_smoothing == 0.1


def test_label_smoothing_without_a_class_to_smooth_is_a_user_error(tmp_path):
    data = make_sequences(30)
    level = np.linspace(0, 1, len(data.lengths), dtype=np.float32)
    only_regression = dataclasses.replace(data, targets={"level": level},
                                          tasks=[make_regression_task("level", bounded=True)])
    with pytest.raises(UserError, match="--label-smoothing smooths class targets"):
        train.fit(run(tmp_path / "out", label_smoothing=0.1), only_regression, verbose=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"monitor": "val_f1"}, "cannot monitor 'val_f1'"),
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ({"schedule": "step"}, "unknown schedule 'step'"),
    ({"mixup": 0.2, "overfit_batches": 2}, "--overfit-batches checks that the loss can reach"),
    ({"label_smoothing": 0.1, "overfit_batches": 2}, "which smoothed targets never let it"),
    # what `fit --config` may read from a config.json, past the command line's ranges
    ({"label_smoothing": 1.5}, r"train.label_smoothing is 1.5; expected a number, at least 0"),
    ({"label_smoothing": True}, r"train.label_smoothing is True; expected a number"),
    ({"label_smoothing": "abc"}, r"train.label_smoothing is 'abc'; expected a number"),
    ({"mixup": -1}, r"train.mixup is -1; expected a number, at least 0 and finite"),
])
def test_bad_training_options_are_user_errors_before_anything_is_written(tmp_path, options,
                                                                         message):
    with pytest.raises(UserError, match=message):
        train.fit(run(tmp_path / "out", **options), make_sequences(30), verbose=0)
    assert not (tmp_path / "out").exists()


def test_sequence_architecture_on_frame_labels_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="one label per sequence"):
        train.fit(run(tmp_path), make_frames(12), verbose=0)


def test_class_weights_are_inverse_frequency():
    data = make_sequences(90)
    weights = train.class_weights(data)
    counts = np.bincount(data.targets["label"], minlength=3)
    assert np.allclose(weights * counts, counts.sum() / 3)


def test_a_small_validation_split_is_warned_about(tmp_path):
    # Listened to on the library's own logger: the CLI, run in this process by other tests,
    # stops its records from propagating to the root logger.
    records = []
    listener = logging.Handler(logging.WARNING)
    listener.emit = records.append
    logger = logging.getLogger("kerasaudio")
    logger.addHandler(listener)
    cfg = RunConfig(model=ModelConfig("dense"), out=str(tmp_path),
                    train=TrainConfig(epochs=1, batch_size=8, min_epoch_steps=1))
    try:
        train.fit(cfg, make_sequences(90), verbose=0)
        (warning,) = [r.getMessage() for r in records]
        assert warning.startswith("the validation split has 30 examples")
        assert "--val-fraction" in warning
        records.clear()
        train.fit(cfg, make_sequences(330), verbose=0)  # 110 validation examples
        assert not records
    finally:
        logger.removeHandler(listener)
