import keras
import numpy as np
import pytest

from kerasaudio import models, pipeline
from kerasaudio.errors import UserError
from kerasaudio.models.inputs import InputSpec
from tests.conftest import make_sequences

ARCHS = list(models.ARCHITECTURES)


def _spec(data):
    mean, var = data.subset("train").frame_statistics()
    return InputSpec(data.n_features, mean, var)


def _batch(sequences, width):
    x = np.zeros((len(sequences), width, sequences[0].shape[1]), np.float32)
    mask = np.zeros((len(sequences), width), bool)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
        mask[i, : len(s)] = True
    return {"features": x, "mask": mask}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_builds_trains_and_predicts(arch, toy_dataset):
    keras.utils.set_random_seed(0)
    model = models.build(arch, _spec(toy_dataset), toy_dataset.tasks)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    batches = pipeline.training_batches(toy_dataset.subset("train"), batch_size=8, seed=0)
    before = [w.copy() for w in model.get_weights()]
    model.fit(batches.take(1), epochs=1, verbose=0, shuffle=False)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    probs = model.predict(_batch(toy_dataset.sequences()[:4], 17), verbose=0)["label"]
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_never_changes_a_prediction(arch):
    keras.utils.set_random_seed(1)
    data = make_sequences(30, min_len=4, max_len=40)
    model = models.build(arch, _spec(data), data.tasks)
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
def test_saved_model_reloads_in_safe_mode(arch, tmp_path, toy_dataset):
    model = models.build(arch, _spec(toy_dataset), toy_dataset.tasks)
    batch = _batch(toy_dataset.sequences()[:3], 17)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(model.predict(batch, verbose=0)["label"],
                               loaded.predict(batch, verbose=0)["label"], atol=1e-6)


def test_dense_defaults_are_the_seed_baseline(toy_dataset):
    model = models.build("dense", _spec(toy_dataset), toy_dataset.tasks)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [100, 10, 3]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert {layer.rate for layer in dropouts} == {0.5}
    wide = models.build("dense", _spec(toy_dataset), toy_dataset.tasks, hidden=64, layers=3)
    widths = [layer.units for layer in wide.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [64, 64, 64, 3]


def test_gru_attention_hyperparameters_shape_the_model(toy_dataset):
    model = models.build("gru_attention", _spec(toy_dataset), toy_dataset.tasks,
                         hidden=32, layers=3)
    grus = [layer for layer in model.layers if isinstance(layer, keras.layers.GRU)]
    assert [g.units for g in grus] == [32, 32, 32]
    assert model.get_layer("attention") is not None


def test_unknown_architecture_and_hyperparameter_are_user_errors(toy_dataset):
    with pytest.raises(UserError, match="valid: dense, gru, gru_attention"):
        models.build("transformer", _spec(toy_dataset), toy_dataset.tasks)
    with pytest.raises(UserError, match="no hyperparameter width"):
        models.resolve("gru", {"width": 3})
