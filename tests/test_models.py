import dataclasses
import warnings

import keras
import numpy as np
import pytest
from conftest import make_frames, make_sequences

from kerasaudio import features, models, pipeline
from kerasaudio.config import FeatureConfig
from kerasaudio.datasets.base import make_task
from kerasaudio.errors import UserError
from kerasaudio.features import GIVEN, frame_step_ms
from kerasaudio.models import heads
from kerasaudio.models.inputs import (
    ADAPT_EXAMPLES,
    InputSpec,
    padded_examples,
    sequence_inputs,
    spec_of,
)
from kerasaudio.models.layers import BATCH_NORM_MOMENTUM, MiniRocketFeatures

ARCHS = list(models.ARCHITECTURES)
SEQUENCE_ARCHS = [a for a in ARCHS if models.input_kind(a) == "sequence"
                  and models.label_level(a) == "sequence"]
# Small sizes keep every architecture's test fast; the defaults are tested separately.
SMALL = {"dense": {}, "gru": {"hidden": 8}, "gru_attention": {"hidden": 8, "conv_filters": 8},
         "lstm": {"hidden": 8}, "bilstm": {"hidden": 8}, "conv1d": {"filters": 8},
         "cnn2d": {"channels": (8, 4)}, "minirocket": {"features": 168},
         "frame_mlp": {"width": 16, "window": 5},
         "bilstm_frames": {"hidden": 8, "width": 16, "window": 5},
         "bigru_labeller": {"hidden": 8}}


def _spec(data):
    return spec_of(data.subset("train"), seed=0)


def _batch(sequences, width):
    x = np.zeros((len(sequences), width, sequences[0].shape[1]), np.float32)
    mask = np.zeros((len(sequences), width), bool)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
        mask[i, : len(s)] = True
    return {"features": x, "mask": mask}


def test_registry_covers_every_seed_architecture():
    assert set(ARCHS) == set(SMALL)
    assert {a for a in ARCHS if models.input_kind(a) == "window"} == {"frame_mlp", "bilstm_frames"}
    assert {a for a in ARCHS if models.label_level(a) == "frame"} == {
        "frame_mlp", "bilstm_frames", "bigru_labeller"}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_builds_trains_and_predicts(arch):
    keras.utils.set_random_seed(0)
    expected = (4, 3)
    if models.input_kind(arch) == "window":
        data, window = make_frames(30), SMALL[arch]["window"]
        batches, _ = pipeline.window_training_batches(data.subset("train"), window,
                                                      batch_size=16, seed=0)
        predict_on = next(iter(pipeline.window_batches(data, window, batch_size=4)))[0]
    elif models.label_level(arch) == "frame":
        data = make_frames(30)
        batches, _ = pipeline.training_batches(data.subset("train"), batch_size=8, seed=0)
        predict_on, expected = _batch(data.sequences()[:4], 30), (4, 30, 3)
    else:
        data = make_sequences(90)
        batches, _ = pipeline.training_batches(data.subset("train"), batch_size=8, seed=0)
        predict_on = _batch(data.sequences()[:4], 17)
    model = models.build(arch, _spec(data), data.tasks, **SMALL[arch])
    model.compile("adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    model.fit(batches, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    (probs,) = model.predict(predict_on, verbose=0).values()
    assert probs.shape == expected
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


def test_batch_norm_statistics_are_ready_after_a_few_dozen_steps():
    """A small data set's best epoch can come after 50 steps; its saved model must normalise
    with its layers' statistics, not with moving ones still near their initial values
    (Keras's default momentum, 0.99, would leave them 67 % of the way there after 40)."""
    keras.utils.set_random_seed(0)
    data = make_sequences(90)
    # Inputs far from zero mean and unit variance, where the moving statistics start.
    data = dataclasses.replace(data, frames=0.05 * data.frames + 3)
    batches, _ = pipeline.training_batches(data.subset("train"), batch_size=8, seed=0)
    spec = InputSpec(data.n_features, np.zeros(data.n_features), np.ones(data.n_features))
    model = models.build("conv1d", spec, data.tasks, **SMALL["conv1d"])
    model.compile(keras.optimizers.Adam(0.0), loss="sparse_categorical_crossentropy")
    model.fit(batches, steps_per_epoch=40, epochs=1, verbose=0, shuffle=False)
    train = data.subset("train")
    inputs = _batch(train.sequences(), max(train.lengths))
    conv = keras.Model(model.inputs, model.get_layer("conv_0").output)(inputs)
    frames = np.asarray(conv)[inputs["mask"]]  # the real frames the statistics are over
    norm = model.get_layer("batch_norm_0")
    assert norm.momentum == BATCH_NORM_MOMENTUM
    np.testing.assert_allclose(norm.moving_mean.numpy(), frames.mean(axis=0),
                               atol=0.2 * frames.std(axis=0).max())
    np.testing.assert_allclose(norm.moving_variance.numpy(), frames.var(axis=0), rtol=0.3)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_batch_norm_uses_the_projects_momentum(arch):
    data = make_frames(30) if models.input_kind(arch) == "window" else make_sequences(30)
    model = models.build(arch, _spec(data), data.tasks, **SMALL[arch])
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.momentum == BATCH_NORM_MOMENTUM for layer in norms)
    assert norms or arch not in ("conv1d", "cnn2d", "frame_mlp", "bilstm_frames")


# gru_attention without its convolutions (every run before they were its default, and the
# model bench/peer.py compares) must keep padding out too.
PLAIN_GRU_ATTENTION = {"hidden": 8, "conv_layers": 0}


@pytest.mark.parametrize("arch,hparams",
                         [(a, SMALL[a]) for a in SEQUENCE_ARCHS]
                         + [("gru_attention", PLAIN_GRU_ATTENTION)],
                         ids=SEQUENCE_ARCHS + ["gru_attention-plain"])
def test_padding_never_changes_a_prediction(arch, hparams):
    keras.utils.set_random_seed(1)
    data = make_sequences(30, min_len=4, max_len=40)
    model = models.build(arch, _spec(data), data.tasks, **hparams)
    seqs = data.sequences()
    short = min(seqs, key=len)
    alone = model.predict(_batch([short], len(short)), verbose=0)["label"]
    padded = _batch([short] + seqs[:7], max(map(len, seqs)))
    in_batch = model.predict(padded, verbose=0)["label"][:1]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)
    # ...and garbage in the padded frames changes nothing either.
    batch = _batch([short], len(short) + 25)
    batch["features"][0, len(short):] = 1e3
    np.testing.assert_allclose(alone, model.predict(batch, verbose=0)["label"], atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_model_reloads_in_safe_mode(arch, tmp_path):
    if models.input_kind(arch) == "window":
        data = make_frames(9)
        batch = next(iter(pipeline.window_batches(data, SMALL[arch]["window"], batch_size=5)))[0]
    elif models.label_level(arch) == "frame":
        data = make_frames(9)
        batch = _batch(data.sequences()[:3], 30)
    else:
        data = make_sequences(9)
        batch = _batch(data.sequences()[:3], 17)
    model = models.build(arch, _spec(data), data.tasks, **SMALL[arch])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(list(model.predict(batch, verbose=0).values())[0],
                               list(loaded.predict(batch, verbose=0).values())[0], atol=1e-6)


def test_cnn2d_defaults_are_the_seed_cnn(toy_dataset):
    model = models.build("cnn2d", _spec(toy_dataset), toy_dataset.tasks)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [
        (128, (5, 5)), (64, (5, 5)), (32, (5, 5)), (8, (5, 5))]
    assert len([la for la in model.layers if isinstance(la, keras.layers.MaxPooling2D)]) == 4


def test_spec_augment_masks_in_training_only():
    from kerasaudio.models.layers import SpecAugment

    layer = SpecAugment(time_masks=2, time_width=5, freq_masks=1, freq_width=3, seed=0)
    x = np.ones((4, 40, 16), np.float32)
    np.testing.assert_array_equal(layer(x, training=False), x)
    masked = np.asarray(layer(x, training=True))
    zero_frames = (masked == 0).all(axis=2).sum(axis=1)
    zero_bands = (masked == 0).all(axis=1).sum(axis=1)
    assert zero_frames.max() > 0 and zero_frames.max() <= 10
    assert zero_bands.max() > 0 and zero_bands.max() <= 3


@pytest.mark.parametrize(("hop_ms", "frames"), [(10.0, 10), (15.0, 6), (20.0, 5), (32.0, 3),
                                                (None, 10)])
def test_spec_augment_time_masks_last_100_ms_at_any_frame_step(toy_dataset, hop_ms, frames):
    spec = dataclasses.replace(_spec(toy_dataset), spec_augment=True, hop_ms=hop_ms)
    model = models.build("gru_attention", spec, toy_dataset.tasks)
    assert model.get_layer("spec_augment").time_width == frames


def test_the_frame_step_is_known_for_computed_features_only():
    assert frame_step_ms(FeatureConfig(hop_ms=20.0)) == 20.0
    assert frame_step_ms(FeatureConfig(kind=GIVEN)) is None
    assert frame_step_ms(FeatureConfig(beat_sync=True)) is None


def test_frame_times_count_whole_samples_to_each_window_s_centre():
    cfg = FeatureConfig(sample_rate=8000, hop_ms=1.06)  # 8.48 samples: steps of 8, 1 ms
    assert frame_step_ms(cfg) == 1.0
    # The 25 ms (200-sample) window's centre, where frame labels are read.
    assert features.frame_centres_s(cfg, 3).tolist() == [0.0125, 0.0135, 0.0145]
    assert features.frame_centres_s(FeatureConfig(kind=GIVEN), 3) is None


@pytest.mark.parametrize("utterance_norm", [False, True])
@pytest.mark.parametrize("spec_augment", [False, True])
def test_forward_recurrent_stack_runs_unmasked_whatever_the_normalisation(
        toy_dataset, utterance_norm, spec_augment):
    # Utterance normalisation used to hand its frame mask on, so the GRUs of the built-in
    # corpus's default model ran Keras's masked loop, and SpecAugment warned it dropped it.
    spec = dataclasses.replace(_spec(toy_dataset), spec_augment=spec_augment,
                               utterance_norm=utterance_norm)
    _, features, _ = sequence_inputs(spec)  # what the first recurrent layer is given
    assert getattr(features, "_keras_mask", None) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.build("gru_attention", spec, toy_dataset.tasks)


def test_dense_defaults_are_the_seed_baseline(toy_dataset):
    model = models.build("dense", _spec(toy_dataset), toy_dataset.tasks)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [100, 10, 3]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert {layer.rate for layer in dropouts} == {0.5}
    wide = models.build("dense", _spec(toy_dataset), toy_dataset.tasks, hidden=64, layers=3)
    widths = [layer.units for layer in wide.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [64, 64, 64, 3]
    # layers repeats one width; with the default widths it would be ignored without a word.
    with pytest.raises(UserError, match="dense: layers=3 repeats one width"):
        models.build("dense", _spec(toy_dataset), toy_dataset.tasks, layers=3)


def test_gru_attention_hyperparameters_shape_the_model(toy_dataset):
    model = models.build("gru_attention", _spec(toy_dataset), toy_dataset.tasks,
                         hidden=32, layers=3)
    grus = [layer for layer in model.layers if isinstance(layer, keras.layers.GRU)]
    assert [g.units for g in grus] == [32, 32, 32]
    assert model.get_layer("attention") is not None


def test_gru_attention_convolutions_come_before_unmasked_grus(toy_dataset):
    plain = models.build("gru_attention", _spec(toy_dataset), toy_dataset.tasks,
                         **PLAIN_GRU_ATTENTION)
    assert not [la for la in plain.layers if isinstance(la, keras.layers.Conv1D)]
    model = models.build("gru_attention", _spec(toy_dataset), toy_dataset.tasks,
                         **SMALL["gru_attention"])  # two convolutions by default
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv1D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(8, (5,)), (8, (5,))]
    # The GRUs get zeroed frames and no mask: their unmasked loop is the cheaper one.
    assert model.get_layer("gru_0").input is model.get_layer("conv_output").output
    assert models.resolve("gru_attention", {"conv_layers": 0})["conv_layers"] == 0
    with pytest.raises(UserError, match="conv_layers=-1"):
        models.resolve("gru_attention", {"conv_layers": -1})
    with pytest.raises(UserError, match="conv_layers=0 builds no convolutions"):  # not ignored
        models.build("gru_attention", _spec(toy_dataset), toy_dataset.tasks, conv_layers=0,
                     conv_filters=64)


def test_unknown_architecture_and_hyperparameter_are_user_errors(toy_dataset):
    with pytest.raises(UserError, match="valid: dense, gru, gru_attention, lstm"):
        models.build("transformer", _spec(toy_dataset), toy_dataset.tasks)
    with pytest.raises(UserError, match="no hyperparameter width"):
        models.resolve("gru", {"width": 3})


def test_sequence_labeller_labels_every_frame_whatever_the_padding():
    keras.utils.set_random_seed(2)
    data = make_frames(12)
    model = models.build("bigru_labeller", _spec(data), data.tasks, hidden=8)
    seqs = data.sequences()
    short = min(seqs, key=len)
    alone = model.predict(_batch([short], len(short)), verbose=0)["phone"][0]
    batch = _batch([short] + seqs[:5], max(map(len, seqs)) + 3)
    batch["features"][0, len(short):] = 1e3  # garbage in the padding reaches no real frame
    in_batch = model.predict(batch, verbose=0)["phone"][0, :len(short)]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def test_sequence_labeller_loss_ignores_padded_frames():
    keras.utils.set_random_seed(3)
    data = make_frames(6)
    model = models.build("bigru_labeller", _spec(data), data.tasks, hidden=8)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seqs = data.sequences()
    batch = _batch(seqs[:2], max(len(s) for s in seqs[:2]) + 4)
    labels = np.zeros(batch["mask"].shape, np.int64)
    off = data.offsets()
    for i in range(2):
        labels[i, : data.lengths[i]] = data.targets["phone"][off[i]:off[i + 1]]
    scores = model.evaluate(batch, {"phone": labels}, verbose=0, return_dict=True)
    labels[~batch["mask"]] = 2  # other labels on padded frames: nothing may change
    again = model.evaluate(batch, {"phone": labels}, verbose=0, return_dict=True)
    assert scores == pytest.approx(again)


@pytest.mark.parametrize("arch", list(models.ARCHITECTURES))
def test_archs_reads_from_the_source_what_the_module_says(arch):
    about = models.summary(arch)  # without importing the module
    assert about["hyperparameters"] == models.hyperparameters(arch)
    assert about["training"] == models.training_defaults(arch)
    assert about["description"] and "`" not in about["description"][:1]


def test_mixup_loss_is_the_cross_entropy_against_mixed_one_hot_targets():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    mixed = np.array([[0, 2, 0.75], [1, 1, 0.3]], np.float32)  # (class, partner's, lam)
    soft = np.array([[0.75, 0, 0.25], [0, 1, 0]], np.float32)
    loss = heads.MixupCrossentropy()
    np.testing.assert_allclose(loss(mixed, probs),
                               keras.losses.CategoricalCrossentropy()(soft, probs), rtol=1e-5)
    classes = np.array([0, 2])  # validation and test targets: plain sparse cross-entropy
    np.testing.assert_allclose(loss(classes, probs),
                               keras.losses.SparseCategoricalCrossentropy()(classes, probs),
                               rtol=1e-6)
    accuracy = heads.MixupAccuracy()
    accuracy.update_state(mixed, probs)  # heavier classes 0 and 1: right, then wrong
    assert float(accuracy.result()) == 0.5


def test_label_smoothing_is_keras_cross_entropy_against_smoothed_one_hot_targets():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    classes = np.array([0, 2])
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    np.testing.assert_allclose(heads.SmoothedCrossentropy(0.1)(classes, probs),
                               smoothed(np.eye(3)[classes], probs), rtol=1e-6)
    # mixup's targets: each of the pair's classes smoothed, then mixed
    mixed = np.array([[0, 2, 0.75], [1, 1, 0.3]], np.float32)
    soft = np.array([[0.75, 0, 0.25], [0, 1, 0]], np.float32) * 0.9 + 0.1 / 3
    loss = heads.MixupCrossentropy(0.1)
    np.testing.assert_allclose(loss(mixed, probs),
                               keras.losses.CategoricalCrossentropy()(soft, probs), rtol=1e-5)
    # a saved model's loss comes back with its smoothing
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, heads.MixupCrossentropy) and again.label_smoothing == 0.1
    assert heads.losses([make_task("digit", ["a", "b"])])["digit"].__class__ is \
        keras.losses.SparseCategoricalCrossentropy  # off: Keras's own, as before


def _rocket(sequences, features=840, seed=0):
    """A MiniRocketFeatures layer adapted to `sequences`, and their padded batch."""
    spec = InputSpec(sequences[0].shape[1], None, None, examples=tuple(sequences))
    batch = padded_examples(spec)
    layer = MiniRocketFeatures(features, reference_length=max(map(len, sequences)), seed=seed)
    layer.adapt(batch["features"], batch["mask"].sum(axis=1))
    return layer, batch


def _ppv_by_hand(layer, x):
    """MiniRocket's features of one (time, channels) sequence, computed from the layer's
    kernels, biases and padding rule with NumPy alone."""
    features = []
    for i, dilation in enumerate(layer.dilations):
        kernel, biases = layer.kernels[i].numpy(), layer.biases[i].numpy()
        edge = 4 * dilation
        padded = np.pad(x, ((edge, edge), (0, 0)))
        out = sum(padded[j * dilation:j * dilation + len(x)] @ kernel[j] for j in range(9))
        for k in range(84):
            counted = out[:, k] if layer.padded[i][k] else out[edge:len(x) - edge, k]
            features.append([np.mean(counted > b) if len(counted) else 0.0
                             for b in biases[k]])
    return np.concatenate(features)


def test_minirocket_features_are_the_share_of_each_kernel_s_outputs_above_each_bias():
    rng = np.random.default_rng(0)
    sequences = [np.cumsum(rng.standard_normal((n, 3)), axis=0).astype(np.float32)
                 for n in (60, 45, 33)]
    layer, batch = _rocket(sequences)
    assert layer.dilations[0] == 1 and layer.dilations[-1] == 7  # spans (60 - 1) / 8
    got = np.asarray(layer(batch["features"], mask=batch["mask"]))
    assert got.shape == (3, 840)
    for x, row in zip(sequences, got):
        np.testing.assert_allclose(row, _ppv_by_hand(layer, x), atol=1e-6)
    # Each kernel sums one to three channels (of three), and they are not all alike.
    used = [(kernel.numpy() != 0).any(axis=0).sum(axis=0) for kernel in layer.kernels]
    assert set(np.concatenate(used)) == {1, 2, 3}


def test_minirocket_biases_are_quantiles_of_training_outputs():
    """Adapted to one example, a bias at level q leaves a share 1 - q of that example's
    outputs above it (where every output counts)."""
    x = np.sin(np.linspace(0, 20, 80))[:, None].astype(np.float32) \
        + 0.1 * np.random.default_rng(1).standard_normal((80, 1)).astype(np.float32)
    layer, batch = _rocket([x])
    got = np.asarray(layer(batch["features"], mask=batch["mask"]))[0]
    count = sum(layer.per_dilation) * 84
    levels = (np.arange(1, count + 1) * (np.sqrt(5) + 1) / 2) % 1
    padded = np.concatenate([np.repeat(p, n) for p, n in zip(layer.padded, layer.per_dilation)])
    np.testing.assert_allclose(got[padded], 1 - levels[padded], atol=1.5 / 80)


def test_spec_of_carries_at_most_a_sample_of_the_training_sequences():
    data = make_sequences(30).subset("train")
    spec = spec_of(data, seed=0)
    assert len(spec.examples) == len(data.lengths) <= ADAPT_EXAMPLES
    big = make_sequences(3 * ADAPT_EXAMPLES + 300).subset("train")
    assert len(spec_of(big, seed=0).examples) == ADAPT_EXAMPLES
    with pytest.raises(ValueError, match="InputSpec has none"):
        models.build("minirocket", InputSpec(5, np.zeros(5), np.ones(5)), data.tasks)


def test_minirocket_builds_the_same_features_from_the_same_spec_whatever_ran_before():
    """A resumed run or a tuning trial rebuilds the model: its kernels, biases and feature
    statistics must be the ones the first build had."""
    data = make_sequences(30)
    spec = spec_of(data.subset("train"), seed=4)
    batch = _batch(data.sequences()[:4], 17)

    def features():
        model = models.build("minirocket", spec, data.tasks, features=168)
        return np.asarray(keras.Model(model.inputs,
                                      model.get_layer("feature_normalize").output)(batch))

    first = features()
    np.random.seed(123)  # other code drew from the global generators meanwhile
    keras.utils.set_random_seed(99)
    np.testing.assert_array_equal(first, features())
    other = spec_of(data.subset("train"), seed=5)
    assert other.seed == 5
