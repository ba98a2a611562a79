"""Task heads (classification, regression, multitask), frame labels from eSpeak's phoneme
events, the spoken-phonemes and voice-attributes corpora, and fine-tuning."""

import dataclasses
import json

import keras
import numpy as np
import pytest
from conftest import make_sequences

from kerasaudio import compare, datasets, features, train, transfer
from kerasaudio.config import (
    DataConfig,
    FeatureConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    feature_defaults,
)
from kerasaudio.datasets import speech_synth
from kerasaudio.datasets.base import make_regression_task, make_task
from kerasaudio.errors import UserError
from kerasaudio.models import heads
from kerasaudio.models.layers import SpecAugment


def with_offset_target(data):
    """`data` plus a regression target in [0, 1]: the mean of the sequence's first feature,
    squashed. A model that sees the frames can learn it."""
    means = np.array([s[:, 0].mean() for s in data.sequences()], np.float32)
    value = 1 / (1 + np.exp(-means))
    return dataclasses.replace(
        data, targets={**data.targets, "offset": value},
        tasks=data.tasks + [make_regression_task("offset", bounded=True)])


def test_heads_are_softmax_sigmoid_or_linear_and_named_after_their_tasks():
    x = keras.Input((6,))
    tasks = [make_task("kind", ["a", "b", "c"]), make_regression_task("level", bounded=True),
             make_regression_task("gain")]
    model = keras.Model(x, heads.outputs(x, tasks))
    assert set(model.output_names) == {"kind", "level", "gain"}
    assert heads.regression_outputs(model) == {"level", "gain"}
    out = model.predict(np.random.default_rng(0).normal(size=(5, 6)) * 50, verbose=0)
    assert out["kind"].shape == (5, 3) and out["level"].shape == out["gain"].shape == (5,)
    np.testing.assert_allclose(out["kind"].sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((out["level"] >= 0) & (out["level"] <= 1))
    assert model.get_layer("gain_value").activation.__name__ == "linear"
    assert model.get_layer("level_value").activation.__name__ == "sigmoid"
    losses = heads.losses(tasks)
    assert isinstance(losses["kind"], keras.losses.SparseCategoricalCrossentropy)
    assert isinstance(losses["gain"], keras.losses.MeanSquaredError)
    with pytest.raises(UserError, match="unknown kind 'ranking'"):
        heads.output(x, dataclasses.replace(tasks[0], kind="ranking"))


def test_task_weights_weigh_the_summed_loss():
    keras.utils.set_random_seed(0)
    data = with_offset_target(make_sequences(30))
    tasks = data.tasks
    x = keras.Input((4,))
    model = keras.Model(x, heads.outputs(keras.layers.Dense(8)(x), tasks))
    inputs = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    targets = {"label": data.targets["label"], "offset": data.targets["offset"]}

    def scores(weights):
        model.compile(loss=heads.losses(tasks), loss_weights=heads.loss_weights(tasks, weights))
        return model.evaluate(inputs, targets, verbose=0, return_dict=True)

    plain, weighted = scores({}), scores({"label": 0.5, "offset": 3.0})
    assert plain["loss"] == pytest.approx(plain["label_loss"] + plain["offset_loss"], rel=1e-5)
    assert weighted["loss"] == pytest.approx(
        0.5 * weighted["label_loss"] + 3.0 * weighted["offset_loss"], rel=1e-5)
    with pytest.raises(UserError, match="names no task of the model: pitch"):
        heads.loss_weights(tasks, {"pitch": 1.0})


def test_select_tasks_keeps_the_named_targets_and_rejects_unknown_ones():
    data = with_offset_target(make_sequences(12))
    only = data.select_tasks(["offset"])
    assert [t.name for t in only.tasks] == ["offset"] and list(only.targets) == ["offset"]
    assert data.select_tasks([]) is data
    with pytest.raises(UserError, match="no target pitch; valid: label, offset"):
        data.select_tasks(["pitch"])


def test_multitask_fit_reports_accuracy_and_spearman(tmp_path):
    data = with_offset_target(make_sequences(120, seed=4))
    cfg = RunConfig(model=ModelConfig("dense", {"hidden": 16, "layers": 1, "dropout": 0.0}),
                    train=TrainConfig(epochs=25, batch_size=16, lr=1e-2,
                                      task_weights={"offset": 5.0}),
                    out=str(tmp_path))
    run_dir, metrics = train.fit(cfg, data, verbose=0)
    report = metrics["evaluation"]["test"]
    assert report["tasks"]["label"]["accuracy"] > 0.8
    assert report["tasks"]["offset"]["spearman"] > 0.5
    assert report["mean_spearman"] == report["tasks"]["offset"]["spearman"]
    header = (run_dir / "predictions.csv").read_text().splitlines()[0]
    assert header == "index,label_true,label_pred,label_prob,offset_true,offset_pred"
    assert (run_dir / "plots" / "scatter_offset_test.png").is_file()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["task_weights"] == {"offset": 5.0}
    row, *baselines = compare.table([run_dir])
    assert row["tasks"] == "label,offset"
    assert row["spearman_offset"] == row["mean_spearman"] == report["mean_spearman"]
    assert row["test_accuracy"] == report["tasks"]["label"]["accuracy"]
    assert [b["run"] for b in baselines] == ["baseline: random guess", "baseline: majority class"]
    assert "| spearman_offset |" in compare.markdown([row, *baselines])


def test_frame_labels_take_the_phoneme_at_each_frame_centre():
    # Phonemes start at samples 100 ("'a"), 250 ("n") and 400 (the final pause "_").
    labels = speech_synth.frame_labels(np.array([100, 250, 400]), ["'a", "n", "_"],
                                       num_samples=500, frame_step=50, frame_length=100)
    # Frame t covers [50 t, 50 t + 100): centres 50, 100, 150, ..., 500.
    assert labels.tolist() == ["sil", "a", "a", "a", "n", "n", "n", "sil", "sil", "sil"]
    assert speech_synth.phoneme_class(",0") == "0" and speech_synth.phoneme_class("_:") == "sil"


def test_phoneme_events_line_up_with_the_mfcc_frames():
    """Frames labelled as speech are louder than the frames labelled silence, and the
    difference is largest with the labels as they are: shifting them by 60 ms either way
    blurs it. A misplaced or mis-scaled boundary would fail this."""
    corpus = speech_synth.synthesize_sentences("spoken-phonemes", 0, speakers=[3, 17])
    cfg = FeatureConfig(kind="mfcc")
    frames, lengths = features.extract(corpus["waves"], corpus["lengths"], cfg)
    bounds = np.concatenate([[0], np.cumsum(corpus["phoneme_count"])])
    energy, speech = [], []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        labels = speech_synth.frame_labels(corpus["phoneme_start"][a:b], corpus["phoneme"][a:b],
                                           int(corpus["lengths"][i]), cfg.frame_step,
                                           cfg.frame_length)
        assert len(labels) == lengths[i]
        speech.append(labels != "sil")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    energy = [frames[a:b, 0] for a, b in zip(offsets[:-1], offsets[1:])]

    def contrast(shift):
        loud, quiet = [], []
        for e, s in zip(energy, speech):
            s = np.roll(s, shift)
            loud.append(e[s])
            quiet.append(e[~s])
        return np.concatenate(loud).mean() - np.concatenate(quiet).mean()

    aligned = contrast(0)
    assert aligned > 1.0
    assert aligned > contrast(6) and aligned > contrast(-6)


@pytest.fixture(scope="module")
def phonemes(corpus_cache):
    return datasets.load(DataConfig("spoken-phonemes"), feature_defaults("spoken-phonemes"))


@pytest.mark.slow
def test_spoken_phonemes_labels_every_frame_speaker_disjointly(phonemes):
    assert phonemes.n_features == 39  # 13 MFCCs, deltas and delta-deltas
    assert phonemes.tasks[0].level == "frame"
    assert len(phonemes.targets["phone"]) == phonemes.lengths.sum()
    classes = phonemes.class_names["phone"]
    assert "sil" in classes and 30 < len(classes) < 80
    speakers = {s: set(phonemes.info["speaker"][phonemes.split == s]) for s in
                ("train", "val", "test")}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["val"]
    texts = set(phonemes.info["text"])
    assert any(t in speech_synth.PHRASES for t in texts)
    assert any(t.split()[0] in speech_synth.DIGITS for t in texts)
    with pytest.raises(UserError, match="--beat-sync cannot be used"):
        datasets.load(DataConfig("spoken-phonemes"), FeatureConfig(beat_sync=True))


@pytest.mark.slow
def test_voice_attributes_targets_are_the_synthesis_settings_scaled(corpus_cache):
    data = datasets.load(DataConfig("voice-attributes", tasks=("rate", "noise", "accent")),
                         feature_defaults("voice-attributes"))
    assert data.features.kind == "logmel"
    assert [t.name for t in data.tasks] == ["rate", "noise", "accent"]
    assert all(t.kind == "regression" and t.bounded for t in data.tasks[:2])
    lo, hi = speech_synth.RATE_RANGE
    np.testing.assert_allclose(data.targets["rate"] * (hi - lo) + lo, data.info["rate"],
                               atol=1e-4)
    lo, hi = speech_synth.SNR_DB_RANGE
    np.testing.assert_allclose(hi - data.targets["noise"] * (hi - lo), data.info["snr_db"],
                               atol=1e-4)
    accents = data.class_names["accent"]
    assert accents == list(speech_synth.VOICES)
    assert [accents[i] for i in data.targets["accent"]] == list(data.info["voice"])
    for split in ("train", "val", "test"):  # every accent is in every split
        assert set(data.targets["accent"][data.split == split]) == set(range(len(accents)))


def _fit_source(tmp_path, data, model: ModelConfig, epochs: int):
    """The run directory of `model` trained on `data`'s label task, to fine-tune from."""
    cfg = RunConfig(model=model, data=DataConfig(tasks=("label",)),
                    train=TrainConfig(epochs=epochs, batch_size=16), out=str(tmp_path))
    return train.fit(cfg, data.select_tasks(["label"]), verbose=0)[0]


def _finetune_offset(source_dir, data, freeze: int, epochs: int, out):
    """The run directory of `source_dir`'s model fine-tuned on `data`'s offset task."""
    cfg = transfer.finetune_config(source_dir, DataConfig(tasks=("offset",)),
                                   TrainConfig(epochs=epochs, batch_size=16), freeze, str(out))
    return train.fit(cfg, data.select_tasks(["offset"]), verbose=0)[0]


def test_finetune_puts_new_heads_on_the_source_backbone(tmp_path):
    data = with_offset_target(make_sequences(90, seed=5))
    source_dir = _fit_source(tmp_path, data, ModelConfig("dense", {"hidden": 16, "layers": 1}),
                             epochs=3)
    source = keras.models.load_model(source_dir / "best.keras")

    run_dir = _finetune_offset(source_dir, data, freeze=2, epochs=2,  # frozen throughout
                               out=tmp_path / "tuned-2")
    tuned = keras.models.load_model(run_dir / "best.keras")
    assert tuned.output_names == ["offset"]
    np.testing.assert_array_equal(tuned.get_layer("dense_0").get_weights()[0],
                                  source.get_layer("dense_0").get_weights()[0])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["finetune"]["source"] == str(source_dir)
    assert config["source_run"]["tasks"] == ["label"] and config["model"]["arch"] == "dense"
    assert config["dataset"]["tasks"][0]["name"] == "offset"
    assert compare.run_row(run_dir)["finetuned_from"] == source_dir.name
    assert compare.run_row(source_dir)["finetuned_from"] is None

    run_dir = _finetune_offset(source_dir, data, freeze=1, epochs=3,  # then unfrozen, lr / 10
                               out=tmp_path / "tuned-1")
    tuned = keras.models.load_model(run_dir / "best.keras")
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 4  # the header and three epochs, across both phases
    rates = [float(line.split(",")[2]) for line in history[1:]]
    assert rates[0] == pytest.approx(1e-3) and rates[1] == pytest.approx(1e-4)
    assert not np.array_equal(tuned.get_layer("dense_0").get_weights()[0],
                              source.get_layer("dense_0").get_weights()[0])

    # No frozen phase: the whole model trains at once, at the unfrozen phase's rate.
    run_dir = _finetune_offset(source_dir, data, freeze=0, epochs=1, out=tmp_path / "tuned-0")
    rate = float((run_dir / "history.csv").read_text().splitlines()[1].split(",")[2])
    assert rate == pytest.approx(1e-4)


def test_finetune_can_turn_the_source_s_spec_augment_off(tmp_path):
    data = with_offset_target(make_sequences(60, seed=7))
    cfg = RunConfig(model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                    data=DataConfig(tasks=("label",)), out=str(tmp_path),
                    train=TrainConfig(epochs=1, batch_size=16, spec_augment=True))
    source_dir = train.fit(cfg, data.select_tasks(["label"]), verbose=0)[0]
    offset = DataConfig(tasks=("offset",))
    kept = transfer.finetune_config(source_dir, offset, TrainConfig(), 1, str(tmp_path))
    off = transfer.finetune_config(source_dir, offset, TrainConfig(), 1, str(tmp_path),
                                   spec_augment=False)
    assert kept.train.spec_augment and not off.train.spec_augment  # and the records say so
    frames = keras.ops.convert_to_tensor(np.ones((4, 30, 5), np.float32))
    for spec_augment, identity in ((True, False), (False, True)):
        tuned = transfer.build(source_dir, data.select_tasks(["offset"]).tasks, 5,
                               spec_augment)
        (masking,) = [layer for layer in tuned.layers if isinstance(layer, SpecAugment)]
        masked = keras.ops.convert_to_numpy(masking(frames, training=True))
        assert np.array_equal(masked, np.ones((4, 30, 5))) == identity
    # A source without the layer has none to turn on.
    plain = _fit_source(tmp_path / "plain", data, ModelConfig("dense", {"hidden": 8}), epochs=1)
    with pytest.raises(UserError, match="trained without SpecAugment"):
        transfer.finetune_config(plain, offset, TrainConfig(), 1, str(tmp_path),
                                 spec_augment=True)


def test_finetune_gives_the_new_heads_the_source_heads_l2_penalty(tmp_path):
    data = with_offset_target(make_sequences(60, seed=6))
    source_dir = _fit_source(tmp_path, data,
                             ModelConfig("minirocket", {"features": 168, "l2": 0.05}), epochs=1)
    run_dir = _finetune_offset(source_dir, data, freeze=1, epochs=1, out=tmp_path / "tuned")
    tuned = keras.models.load_model(run_dir / "best.keras")
    assert tuned.get_layer("offset_value").kernel_regularizer.l2 == pytest.approx(0.05)


def test_finetune_refuses_what_is_not_a_run_or_does_not_fit(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        transfer.finetune_config(tmp_path, DataConfig(), TrainConfig(), 1, str(tmp_path))
    data = make_sequences(30)
    run_dir, _ = train.fit(RunConfig(model=ModelConfig("dense"), train=TrainConfig(epochs=1),
                                     out=str(tmp_path)), data, verbose=0)
    with pytest.raises(UserError, match="takes frames of 5 features, the data has 7"):
        transfer.build(run_dir, data.tasks, 7)
    with pytest.raises(UserError, match="trained on mfcc features"):
        transfer.finetune_config(run_dir, DataConfig(), TrainConfig(), 1, str(tmp_path),
                                 "logmel")
