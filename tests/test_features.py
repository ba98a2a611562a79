import librosa
import numpy as np

from kerasaudio import features
from kerasaudio.config import FeatureConfig


def _tone(seconds, freq, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mfcc_shape_is_13_per_10ms_frame():
    cfg = FeatureConfig()
    assert (cfg.frame_length, cfg.frame_step) == (400, 160)
    waves = [_tone(0.5, 440), _tone(0.2137, 880)]
    lengths = np.array([len(w) for w in waves])
    frames, counts = features.extract(np.concatenate(waves), lengths, cfg)
    np.testing.assert_array_equal(counts, [50, 22])  # ceil(8000 / 160), ceil(3419 / 160)
    assert frames.shape == (72, 13) and frames.dtype == np.float32
    assert np.isfinite(frames).all()


def test_batched_extraction_equals_one_at_a_time(monkeypatch):
    # A budget of two of the longest waveforms makes several batches, run concurrently.
    monkeypatch.setattr(features, "EXTRACT_SAMPLES", 2 * 4000)
    cfg = FeatureConfig(deltas=True)
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.5, 0.5, n).astype(np.float32)
             for n in (1600, 4000, 2345, 3999, 160, 1234, 2900)]
    lengths = np.array([len(w) for w in waves])
    assert len(features._extract_batches(lengths)) > 2
    together, counts = features.extract(np.concatenate(waves), lengths, cfg)
    alone = [features.extract(w, np.array([len(w)]), cfg)[0] for w in waves]
    np.testing.assert_array_equal(counts, [len(a) for a in alone])
    np.testing.assert_allclose(together, np.concatenate(alone), rtol=1e-4, atol=1e-4)


def test_different_sounds_give_different_features():
    cfg = FeatureConfig()
    a, _ = features.extract(_tone(0.3, 300), np.array([4800]), cfg)
    b, _ = features.extract(_tone(0.3, 3000), np.array([4800]), cfg)
    assert np.abs(a.mean(0) - b.mean(0)).max() > 1.0


def _two_tones():
    waves = [_tone(0.5, 440), _tone(0.31, 1046.5)]  # A4, C6 (512-point FFT bins are 31 Hz)
    return np.concatenate(waves), np.array([len(w) for w in waves])


def test_logmel_chroma_and_concatenation_share_the_frame_grid():
    waves, lengths = _two_tones()
    logmel, n1 = features.extract(waves, lengths, FeatureConfig(kind="logmel", n_mels=32))
    chroma, n2 = features.extract(waves, lengths, FeatureConfig(kind="chroma"))
    both, n3 = features.extract(waves, lengths, FeatureConfig(kind="logmel+chroma", n_mels=32))
    np.testing.assert_array_equal(n1, [50, 31])  # ceil(8000 / 160), ceil(4960 / 160)
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_array_equal(n1, n3)
    assert (logmel.shape[1], chroma.shape[1], both.shape[1]) == (32, 12, 44)
    np.testing.assert_allclose(both, np.concatenate([logmel, chroma], axis=1), atol=1e-5)
    # A 440 Hz tone is an A (pitch class 9), 1046.5 Hz a C (pitch class 0).
    assert np.argmax(chroma[10:40].mean(0)) == 9
    assert np.argmax(chroma[60:].mean(0)) == 0


def test_mfcc_deltas_give_39_dimensions():
    waves, lengths = _two_tones()
    plain, _ = features.extract(waves, lengths, FeatureConfig())
    full, counts = features.extract(waves, lengths, FeatureConfig(deltas=True))
    assert full.shape == (counts.sum(), 39)
    np.testing.assert_allclose(full[:, :13], plain, atol=1e-5)
    assert np.abs(full[:50, 13:26]).mean() < np.abs(full[:50, :13]).mean()
    # The TensorFlow deltas are librosa's, each utterance on its own (no padding leaks in).
    first, second = np.split(plain, [counts[0]])
    for own, got in ((first, full[:counts[0]]), (second, full[counts[0]:])):
        for order, columns in ((1, slice(13, 26)), (2, slice(26, 39))):
            expected = librosa.feature.delta(own, width=5, order=order, axis=0, mode="nearest")
            np.testing.assert_allclose(got[:, columns], expected, atol=1e-4)


def test_beat_sync_takes_medians_between_beats():
    x = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    synced = features.beat_sync(x, np.array([5, 12]))
    np.testing.assert_array_equal(synced[:, 0], [2, 8, 15.5])  # medians of 0-4, 5-11, 12-19
    clicks = np.zeros(32000, np.float32)
    clicks[::8000] = 1.0  # a click every 0.5 s
    frames, counts = features.extract(clicks, np.array([32000]), FeatureConfig(beat_sync=True))
    assert 1 < counts[0] < 200 and frames.shape == (counts[0], 13)


def test_unknown_feature_type_is_a_user_error():
    import pytest

    from kerasaudio.errors import UserError

    with pytest.raises(UserError, match="valid: mfcc, logmel, chroma"):
        features.kinds(FeatureConfig(kind="logmel+mfcc+spectral"))
