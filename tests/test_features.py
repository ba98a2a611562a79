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


def test_batched_extraction_equals_one_at_a_time():
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (1600, 4000, 2345)]
    lengths = np.array([len(w) for w in waves])
    together, _ = features.extract(np.concatenate(waves), lengths, cfg)
    alone = np.concatenate([features.extract(w, np.array([len(w)]), cfg)[0] for w in waves])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)


def test_different_sounds_give_different_features():
    cfg = FeatureConfig()
    a, _ = features.extract(_tone(0.3, 300), np.array([4800]), cfg)
    b, _ = features.extract(_tone(0.3, 3000), np.array([4800]), cfg)
    assert np.abs(a.mean(0) - b.mean(0)).max() > 1.0
