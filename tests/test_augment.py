"""On-the-fly waveform augmentation (issue 19): each augmentation is deterministic for a key,
keeps its batch consistent (labels, lengths, masks), touches training batches only, and a
resumed run hears exactly what the uninterrupted one heard."""

import json

import numpy as np
import pytest
import tensorflow as tf

from kerasaudio import augment, features, pipeline
from kerasaudio.config import AUGMENTATIONS, FeatureConfig, parse_augment
from kerasaudio.datasets.base import Dataset, as_waves, make_task
from kerasaudio.errors import UserError

RATE = 16000


def tone_dataset(n: int = 24, seed: int = 0, length_by_class: tuple | None = None) -> Dataset:
    """Tones of three pitches (the class) and random lengths (or a length per class), with
    their waveforms kept."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    waves = []
    for label in labels:
        samples = length_by_class[label] if length_by_class else rng.integers(2000, 6000)
        t = np.arange(int(samples)) / RATE
        waves.append((0.4 * np.sin(2 * np.pi * (300 + 400 * label) * t)
                      * 32767).astype(np.int16))
    cfg = FeatureConfig()
    frames, lengths = features.extract(np.concatenate(waves).astype(np.float32) / 32768,
                                       np.array([len(w) for w in waves]), cfg)
    names = ["low", "mid", "high"]
    return Dataset(name="tones", frames=frames, lengths=lengths,
                   targets={"pitch": labels.astype(np.int64)}, tasks=[make_task("pitch", names)],
                   class_names={"pitch": names}, split=np.array(["train"] * n), features=cfg,
                   waves=as_waves(np.concatenate(waves), np.array([len(w) for w in waves])))


def batch_of_noise(widths=(8000, 5000, 3000, 6000)):
    rng = np.random.default_rng(1)
    waves = np.zeros((len(widths), max(widths)), np.float32)
    for i, w in enumerate(widths):
        waves[i, :w] = rng.standard_normal(w) * 0.1
    return tf.constant(waves), tf.constant(np.array(widths, np.int64))


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_is_deterministic_for_a_key_and_zero_past_each_length(name):
    waves, lengths = batch_of_noise()
    key = tf.constant([3, 4], tf.int64)
    first, first_lengths = augment.apply(waves, lengths, (name,), key, RATE)
    again, _ = augment.apply(waves, lengths, (name,), key, RATE)
    other, _ = augment.apply(waves, lengths, (name,), key + 1, RATE)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    assert np.isfinite(first.numpy()).all()
    for row, length in zip(first.numpy(), first_lengths.numpy()):
        assert np.all(row[length:] == 0)
    if name not in ("speed", "shift"):  # only these change a waveform's length
        np.testing.assert_array_equal(first_lengths.numpy(), lengths.numpy())
    assert first.shape[1] == first_lengths.numpy().max()


def test_speed_and_shift_change_lengths_within_their_ranges():
    waves, lengths = batch_of_noise()
    key = tf.constant([9, 9], tf.int64)
    _, sped = augment.speed(waves, lengths, key, tf.constant([True] * 4),
                            augment.STRENGTHS["speed"], RATE)
    low, high = augment.STRENGTHS["speed"]["factor"]
    ratio = lengths.numpy() / sped.numpy()
    assert np.all((ratio > low - 0.01) & (ratio < high + 0.01))
    _, delayed = augment.shift(waves, lengths, key, tf.constant([True] * 4),
                               augment.STRENGTHS["shift"], RATE)
    extra = delayed.numpy() - lengths.numpy()
    assert np.all((extra >= 0) & (extra <= augment.STRENGTHS["shift"]["max_ms"] * RATE / 1000))


def test_unchosen_utterances_keep_their_sound():
    waves, lengths = batch_of_noise()
    chosen = tf.constant([True, False, True, False])
    for name in ("reverb", "telephone", "noise", "babble"):
        out, _ = augment.FUNCTIONS[name](waves, lengths, tf.constant([1, 2], tf.int64), chosen,
                                         augment.STRENGTHS[name], RATE)
        np.testing.assert_array_equal(out.numpy()[[1, 3]], waves.numpy()[[1, 3]])
        assert not np.allclose(out.numpy()[0], waves.numpy()[0])


def first_batches(dataset, names, first_epoch=0, count=3):
    ds, _ = pipeline.training_batches(dataset, 4, seed=7, first_epoch=first_epoch,
                                      augmentations=names)
    return list(ds.take(count).as_numpy_iterator())


def test_augmented_batches_keep_labels_and_masks_consistent():
    # Each class has its own length, far enough apart that speed (+-15 %) cannot blur them:
    # an utterance's length after augmentation tells which class it is.
    data = tone_dataset(48, length_by_class=(2000, 4000, 6000))
    names = ("speed", "gain", "noise", "reverb", "telephone")
    steps = pipeline.training_batches(data, 4, seed=7, augmentations=names)[1]
    served = first_batches(data, names, count=steps)
    labels = []
    for x, y in served:
        frames = x["mask"].sum(axis=1)
        np.testing.assert_array_equal(np.digitize(frames, [19, 32]), y["pitch"])
        labels += y["pitch"].tolist()
        # Every real frame is marked, every padded one is zero.
        assert np.all(x["features"][~x["mask"]] == 0)
    assert sorted(labels) == sorted(data.targets["pitch"].tolist())  # each utterance once
    plain = first_batches(data, (), count=steps)
    assert not all(np.array_equal(a[0]["features"], b[0]["features"])
                   for a, b in zip(served, plain))


def test_augmented_batches_pad_little_after_speed_and_shift():
    # Batches are made of utterances of similar length after speed and shift, which are
    # drawn for the whole epoch before batching.
    data = tone_dataset(200)
    ds, steps = pipeline.training_batches(data, 8, seed=7, augmentations=augment.ORDER)
    masks = [x["mask"] for x, _ in ds.take(steps).as_numpy_iterator()]
    assert 1 - sum(m.sum() for m in masks) / sum(m.size for m in masks) < 0.08


def test_without_augmentation_batches_equal_the_stored_features():
    data = tone_dataset()
    ((x, _),) = first_batches(data, (), count=1)
    sequences = data.sequences()
    for row, mask in zip(x["features"], x["mask"]):
        length = int(mask.sum())
        assert any(len(s) == length and np.allclose(s, row[:length]) for s in sequences)


def test_a_resumed_run_hears_what_the_uninterrupted_run_heard():
    data = tone_dataset()
    steps = pipeline.bucketed_batch_count(data.lengths,
                                          pipeline.bucket_boundaries(data.lengths, 4), 4)
    whole = first_batches(data, augment.ORDER, first_epoch=0, count=steps + 2)
    resumed = first_batches(data, augment.ORDER, first_epoch=1, count=2)
    for (x, _), (xr, _) in zip(whole[steps:], resumed):
        np.testing.assert_array_equal(x["features"], xr["features"])
    # ...and another epoch hears something else.
    first, second = whole[0][0]["features"], whole[steps][0]["features"]
    assert first.shape != second.shape or not np.array_equal(first, second)


def test_data_without_audio_or_with_frame_labels_is_refused():
    data = tone_dataset()
    with pytest.raises(UserError, match="came as features"):
        pipeline.check_augmentable(Dataset(**{**data.__dict__, "waves": None}), ("noise",))
    chroma = Dataset(**{**data.__dict__, "features": FeatureConfig(kind="chroma")})
    with pytest.raises(UserError, match="not chroma"):
        pipeline.check_augmentable(chroma, ("noise",))
    framed = Dataset(**{**data.__dict__, "tasks": [make_task("pitch", ["a", "b", "c"],
                                                             level="frame")]})
    with pytest.raises(UserError, match="frame labels"):
        pipeline.check_augmentable(framed, ("noise",))
    pipeline.check_augmentable(Dataset(**{**data.__dict__, "waves": None}), ())


def test_augment_option_names():
    assert parse_augment("none") == ()
    assert parse_augment("default") == AUGMENTATIONS
    assert parse_augment("speed+noise") == ("speed", "noise")
    for bad in ("speed+speed", "echo", "speed,noise"):
        with pytest.raises(UserError, match="bad --augment"):
            parse_augment(bad)


def test_fit_refuses_augmentation_of_data_without_audio_before_writing(tmp_path):
    from conftest import make_sequences

    from kerasaudio import train
    from kerasaudio.config import ModelConfig, RunConfig, TrainConfig

    cfg = RunConfig(model=ModelConfig("gru", {"hidden": 4, "layers": 1}),
                    train=TrainConfig(epochs=1, augment=("noise",)), out=str(tmp_path / "runs"))
    with pytest.raises(UserError, match="came as features"):
        train.fit(cfg, make_sequences(30), verbose=0)
    assert not (tmp_path / "runs").exists()


def test_a_fit_with_augmentation_records_it_and_trains(tmp_path):
    from kerasaudio import train
    from kerasaudio.config import ModelConfig, RunConfig, TrainConfig

    data = tone_dataset(60)
    data = Dataset(**{**data.__dict__, "split": np.array(["train", "val", "test"])[
        np.arange(60) % 3]})
    cfg = RunConfig(model=ModelConfig("gru_attention", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=2, batch_size=8, augment=augment.ORDER),
                    out=str(tmp_path))
    run_dir, metrics = train.fit(cfg, data, verbose=0)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["augment"] == list(augment.ORDER)
    assert config["augmentation"]["speed"]["factor"] == [0.85, 1.15]
    assert metrics["epochs_run"] == 2


@pytest.mark.slow
def test_augment_preview_draws_every_augmentation(tmp_path, corpus_cache):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "cli.py", "data", "augment-preview", "--count", "2",
                             "--out", str(tmp_path / "preview.png")], cwd=root,
                            capture_output=True, text=True,
                            env={**os.environ, "KERASAUDIO_CACHE": str(corpus_cache)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "preview.png").read_bytes()[:4] == b"\x89PNG"


def test_babble_never_mixes_an_utterance_with_itself():
    waves, lengths = batch_of_noise((4000, 4000))
    out, _ = augment.babble(waves, lengths, tf.constant([1, 1], tf.int64),
                            tf.constant([True, True]), {**augment.STRENGTHS["babble"],
                                                        "talkers": 3}, RATE)
    # A batch of two: the only other talker of each is the other utterance.
    added = out.numpy() - waves.numpy()
    for i, other in ((0, 1), (1, 0)):
        talker = waves.numpy()[other]
        scale = added[i] @ talker / (talker @ talker)
        assert scale > 0
        np.testing.assert_allclose(added[i], scale * talker, atol=1e-6)


def test_fft_length_is_the_next_length_of_factors_2_3_and_5():
    def fast(m):
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in (1, 5, 7, 11, 4001, 9849, 16385, 2**21 + 1, 2**30):
        length = int(augment._fft_length(tf.constant(n)))
        assert length >= n and fast(length)
        assert not any(fast(m) for m in range(n, length))


def test_telephone_keeps_the_speech_band_and_drops_what_is_outside():
    rate, width = 8000, 5849  # a width with a large prime factor: the FFT is padded
    t = np.arange(width) / rate
    tones = tf.constant(np.stack([np.sin(2 * np.pi * hz * t) for hz in (100, 1000)]) * 0.3,
                        tf.float32)
    lengths = tf.constant([width, width], tf.int64)
    line, _ = augment.telephone(tones, lengths, tf.constant([3, 4], tf.int64),
                                tf.constant([True, True]), augment.STRENGTHS["telephone"], rate)
    rms = np.sqrt(np.mean(line.numpy()[:, 500:-500] ** 2, axis=1))  # away from the edges
    assert rms[1] > 0.3 / np.sqrt(2) / 10 ** (6 / 20) * 0.8   # at most eq_db (6 dB) down
    assert rms[0] < 0.01 * rms[1]
