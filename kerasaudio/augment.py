"""On-the-fly waveform augmentation of training batches, in TensorFlow ops inside the
`tf.data` pipeline: every epoch hears every training utterance spoken a little faster or
slower, louder or softer, later, in other noise, in another room, or down a telephone line.

Each augmentation works on a zero-padded batch of waveforms (batch, samples) with each
waveform's length, and is applied to each utterance with its probability. Randomness is
stateless and keyed by (seed, epoch, batch), so a resumed run, or a Hyperband continuation,
hears exactly what the uninterrupted run heard. Labels never change; lengths change only with
`speed` and `shift`, and the features' mask follows them.

Strengths live in STRENGTHS and are recorded in each run's config.json.
"""

import math

import numpy as np
import tensorflow as tf

from kerasaudio.config import AUGMENTATIONS

# name -> probability of applying it to an utterance, and its range.
STRENGTHS = {
    "speed": {"probability": 0.8, "factor": (0.85, 1.15)},   # tempo, pitch and formants
    "gain": {"probability": 1.0, "db": (-10.0, 10.0)},
    "shift": {"probability": 0.5, "max_ms": 200.0},          # leading silence
    "noise": {"probability": 0.7, "snr_db": (0.0, 30.0), "colour_exponent": (0.0, 2.0)},
    "babble": {"probability": 0.3, "snr_db": (5.0, 20.0), "talkers": 3},
    "reverb": {"probability": 0.4, "rt60_s": (0.1, 0.7), "drr_db": (-5.0, 10.0)},
    "telephone": {"probability": 0.3, "band_hz": (300.0, 3400.0), "eq_db": 6.0},
}
# Applied in this order whatever order they are named in: the talker (speed, a late start),
# the room, the other sounds in it (so a late start is filled with noise, not digital
# silence), the microphone's level, then the line.
ORDER = ("speed", "shift", "reverb", "babble", "noise", "gain", "telephone")
RIR_SECONDS = 0.5
assert set(ORDER) == set(STRENGTHS) == set(AUGMENTATIONS)


def _uniform(key, index: int, shape, low: float, high: float):
    """Stateless uniform values for augmentation step `index` of the batch keyed by `key`."""
    return tf.random.stateless_uniform(shape, seed=key + tf.constant([0, index], tf.int64),
                                       minval=low, maxval=high)


def _chosen(key, index: int, batch, probability: float):
    """(batch,) bool: which utterances get augmentation `index`."""
    return _uniform(key, 100 + index, [batch], 0.0, 1.0) < probability


def _length_mask(lengths, width):
    return tf.sequence_mask(lengths, width, dtype=tf.float32)


def _power(waves, lengths):
    """Mean power of each waveform over its own samples."""
    mask = _length_mask(lengths, tf.shape(waves)[1])
    return tf.reduce_sum(tf.square(waves) * mask, 1) / tf.maximum(
        tf.cast(lengths, tf.float32), 1.0) + 1e-10


def _retime(waves, lengths, factor, delay):
    """Each waveform resampled by `factor` (linear interpolation) after `delay` samples of
    silence: speed and shift in one pass over the batch."""
    new_lengths = retimed_lengths(lengths, factor, delay)
    new_width = tf.reduce_max(new_lengths)
    steps = tf.cast(tf.range(new_width, dtype=lengths.dtype)[None, :] - delay[:, None],
                    tf.float32)
    last = tf.cast(lengths - 1, tf.float32)[:, None]
    position = tf.clip_by_value(steps * factor[:, None], 0.0, last)
    left = tf.cast(position, tf.int32)  # truncation: positions are >= 0
    right = tf.minimum(left + 1, tf.cast(last, tf.int32))
    weight = position - tf.cast(left, tf.float32)
    # Gathered from the flattened batch: a quarter faster than gathering by rows.
    flat = tf.reshape(waves, [-1])
    start = tf.range(tf.shape(waves)[0])[:, None] * tf.shape(waves)[1]
    out = (tf.gather(flat, start + left) * (1 - weight)
           + tf.gather(flat, start + right) * weight)
    keep = (steps >= 0) & tf.sequence_mask(new_lengths, new_width)
    return tf.where(keep, out, 0.0), new_lengths


def _speed_factor(key, chosen, s):
    return tf.where(chosen, _uniform(key, 0, [tf.shape(chosen)[0]], *s["factor"]), 1.0)


def _delay(key, chosen, s, rate: int, dtype):
    seconds = tf.where(chosen, _uniform(key, 2, [tf.shape(chosen)[0]], 0.0,
                                        s["max_ms"] / 1000.0), 0.0)
    return tf.cast(seconds * rate, dtype)


def speed(waves, lengths, key, chosen, s, rate: int):
    """Resamples each chosen waveform by a factor: faster and higher, or slower and lower,
    as a shorter or longer vocal tract would sound."""
    return _retime(waves, lengths, _speed_factor(key, chosen, s),
                   tf.zeros_like(lengths))


def gain(waves, lengths, key, chosen, s, rate: int):
    db = tf.where(chosen, _uniform(key, 1, [tf.shape(waves)[0]], *s["db"]), 0.0)
    return waves * tf.pow(10.0, db / 20.0)[:, None], lengths


def shift(waves, lengths, key, chosen, s, rate: int):
    """Delays each chosen waveform by up to `max_ms` of silence (its length grows)."""
    return _retime(waves, lengths, tf.ones(tf.shape(lengths), tf.float32),
                   _delay(key, chosen, s, rate, lengths.dtype))


NOISE_BANK_ROWS, NOISE_BANK_SECONDS = 256, 2.0


def noise_bank(seed: int, rate: int, s=None) -> np.ndarray:
    """(rows, samples) float32: unit-power noises whose power falls as 1 / f^exponent, the
    exponent drawn per row (0 white, 1 pink, 2 brown), nothing below 50 Hz. Made once per
    run, so that each batch only picks rows instead of shaping fresh noise."""
    s = s or STRENGTHS["noise"]
    rng = np.random.default_rng([seed, 7])
    width = int(NOISE_BANK_SECONDS * rate)
    spectrum = np.fft.rfft(rng.standard_normal((NOISE_BANK_ROWS, width)), axis=1)
    frequency = np.fft.rfftfreq(width, 1.0 / rate)
    exponent = rng.uniform(*s["colour_exponent"], size=(NOISE_BANK_ROWS, 1))
    shape = np.where(frequency >= 50.0, np.maximum(frequency, 50.0) ** (-exponent / 2), 0.0)
    bank = np.fft.irfft(spectrum * shape, width, axis=1)
    return (bank / np.sqrt(np.mean(bank ** 2, axis=1, keepdims=True))).astype(np.float32)


def noise(waves, lengths, key, chosen, s, rate: int, bank=None):
    """Adds a noise of the bank (white to brown), from a random point, at a drawn SNR over
    each utterance's own samples."""
    batch, width = tf.shape(waves)[0], tf.shape(waves)[1]
    bank = tf.constant(noise_bank(0, rate, s)) if bank is None else bank
    rows = tf.random.stateless_uniform([batch], seed=key + tf.constant([0, 3], tf.int64),
                                       maxval=tf.shape(bank)[0], dtype=tf.int32)
    picked = tf.gather(bank, rows)
    # Start anywhere (the bank's rows are cyclic, so a roll keeps them seamless) and cover
    # any width.
    start = _uniform(key, 5, [], 0.0, 1.0) * tf.cast(tf.shape(bank)[1], tf.float32)
    picked = tf.roll(picked, -tf.cast(start, tf.int32), axis=1)
    repeats = (width + tf.shape(bank)[1] - 1) // tf.shape(bank)[1]
    picked = tf.tile(picked, [1, repeats])[:, :width]
    snr = _uniform(key, 4, [batch], *s["snr_db"])
    scale = tf.sqrt(_power(waves, lengths) / tf.pow(10.0, snr / 10.0))
    added = picked * scale[:, None] * _length_mask(lengths, width)
    return waves + tf.where(chosen[:, None], added, 0.0), lengths


def babble(waves, lengths, key, chosen, s, rate: int):
    """Adds other utterances of the batch, as talkers in the background, at a drawn SNR."""
    width = tf.shape(waves)[1]
    batch = tf.shape(waves)[0]
    # In a batch of n, a roll by n or more brings an utterance back onto itself.
    others = tf.add_n([tf.roll(waves, k, axis=0) * tf.cast(k < batch, tf.float32)
                       for k in range(1, s["talkers"] + 1)])
    snr = _uniform(key, 6, [tf.shape(waves)[0]], *s["snr_db"])
    scale = tf.sqrt(_power(waves, lengths) / tf.pow(10.0, snr / 10.0)
                    / (tf.reduce_mean(tf.square(others), 1) + 1e-10))
    added = others * scale[:, None] * _length_mask(lengths, width)
    # A batch of one has no other talker.
    alone = tf.shape(waves)[0] < 2
    return waves + tf.where(chosen[:, None] & ~alone, added, 0.0), lengths


# Lengths whose only prime factors are 2, 3 and 5, up to 2^30 samples: FFTs of these are
# fast (one of 10,240 points took two thirds of the time of one of 16,384, and one of any
# length can take six times as long).
_FAST_LENGTHS = np.array(sorted(
    2**a * 3**b * 5**c for a in range(31) for b in range(19) for c in range(14)
    if 2**a * 3**b * 5**c <= 2**30), np.int32)


def _fft_length(n):
    """The smallest fast FFT length (`_FAST_LENGTHS`) >= n."""
    lengths = tf.constant(_FAST_LENGTHS)
    n = tf.reshape(tf.cast(n, tf.int32), [1])
    return tf.gather(lengths, tf.searchsorted(lengths, n, side="left"))[0]


def _on_chosen(chosen, waves, lengths, transform):
    """`transform(waves, lengths, rows)` of the chosen rows only, put back in the batch: the
    FFTs of the costly augmentations are not spent on utterances that keep their sound."""
    rows = tf.where(chosen)[:, 0]
    changed = transform(tf.gather(waves, rows), tf.gather(lengths, rows), rows)
    return tf.tensor_scatter_nd_update(waves, rows[:, None], changed)


def reverb(waves, lengths, key, chosen, s, rate: int):
    """Convolves each chosen waveform with a simulated room impulse response: a direct path
    and exponentially decaying noise (reverberation time and direct-to-reverberant ratio
    drawn); the energy stays that of the dry signal."""
    batch, width = tf.shape(waves)[0], tf.shape(waves)[1]
    taps = int(RIR_SECONDS * rate)
    t = tf.range(taps, dtype=tf.float32)[None, :] / rate
    rt60 = _uniform(key, 7, [batch], *s["rt60_s"])[:, None]
    drr = _uniform(key, 9, [batch], *s["drr_db"])[:, None]

    def convolve(dry, dry_lengths, rows):
        tail = tf.random.stateless_normal([tf.shape(rows)[0], taps],
                                          seed=key + tf.constant([0, 8], tf.int64))
        tail *= tf.exp(-6.9 * t / tf.gather(rt60, rows)) * tf.cast(t > 0, tf.float32)
        tail *= tf.sqrt(1.0 / ((tf.reduce_sum(tf.square(tail), 1, keepdims=True) + 1e-10)
                               * tf.pow(10.0, tf.gather(drr, rows) / 10.0)))
        response = tail + tf.one_hot(tf.zeros_like(rows, tf.int32), taps)
        n = _fft_length(width + taps)
        # Zero-padded by hand: TensorFlow's CPU RFFT refuses an input shorter than its length.
        dry = tf.pad(dry, [[0, 0], [0, n - width]])
        response = tf.pad(response, [[0, 0], [0, n - taps]])
        wet = tf.signal.irfft(tf.signal.rfft(dry) * tf.signal.rfft(response), [n])
        wet = wet[:, :width] / tf.sqrt(tf.reduce_sum(tf.square(response), 1, keepdims=True))
        return wet * _length_mask(dry_lengths, width)

    return _on_chosen(chosen, waves, lengths, convolve), lengths


def telephone(waves, lengths, key, chosen, s, rate: int):
    """A telephone line: the band kept, a random smooth equalisation within +-`eq_db`, and
    8-bit mu-law coding."""
    batch, width = tf.shape(waves)[0], tf.shape(waves)[1]
    # A transform of a fast length, the batch's width or a little more: one of the width
    # itself took up to six times as long when it had a large prime factor.
    n = _fft_length(width)
    bins = n // 2 + 1
    frequency = tf.cast(tf.range(bins), tf.float32) * rate / tf.cast(n, tf.float32)
    low, high = s["band_hz"]
    band = tf.cast((frequency >= low) & (frequency <= high), tf.float32)[None, :]
    # A smooth curve: three cosines over the band with random amplitudes and phases, drawn
    # for the whole batch (so a row's draw does not depend on which rows are chosen). As
    # cos(a + p) = cos a cos p - sin a sin p, each row's curve is its weights times fixed
    # cosines and sines of the frequency: a small matrix product, where cosines of every
    # chosen row cost more than the FFTs.
    harmonic = tf.range(1.0, 4.0)[:, None] * math.pi * frequency[None, :] / high
    basis = tf.concat([tf.cos(harmonic), tf.sin(harmonic)], 0)  # (6, bins)
    amplitudes = tf.concat([_uniform(key, 10 + k, [batch, 1], -s["eq_db"] / 3,
                                     s["eq_db"] / 3) for k in range(1, 4)], 1)
    phases = tf.concat([_uniform(key, 20 + k, [batch, 1], 0.0, 2 * math.pi)
                        for k in range(1, 4)], 1)
    weights = tf.concat([amplitudes * tf.cos(phases), -amplitudes * tf.sin(phases)], 1)
    mu = 255.0

    def line(clean, clean_lengths, rows):
        db = tf.matmul(tf.gather(weights, rows), basis)
        gain = band * tf.exp(db * (math.log(10.0) / 20.0))
        padded = tf.pad(clean, [[0, 0], [0, n - width]])  # as reverb pads, by hand
        shaped = tf.signal.irfft(tf.signal.rfft(padded) * tf.cast(gain, tf.complex64),
                                 fft_length=[n])[:, :width]
        peak = tf.reduce_max(tf.abs(shaped), 1, keepdims=True) + 1e-10
        # Mu-law coded to 127 levels a side and decoded.
        level = tf.round(tf.math.log1p(mu * tf.abs(shaped) / peak) * (127.0 / math.log1p(mu)))
        decoded = tf.sign(shaped) * (tf.exp(level * (math.log1p(mu) / 127.0)) - 1.0) / mu * peak
        return decoded * _length_mask(clean_lengths, width)

    return _on_chosen(chosen, waves, lengths, line), lengths


FUNCTIONS = {"speed": speed, "gain": gain, "shift": shift, "noise": noise, "babble": babble,
             "reverb": reverb, "telephone": telephone}


def _draw(key, name: str, batch):
    """(key of augmentation `name`, which of `batch` utterances get it)."""
    index = ORDER.index(name)
    return key + 1000 * (index + 1), _chosen(key, index, batch, STRENGTHS[name]["probability"])


def retime_plan(key, lengths, names: tuple, rate: int):
    """Each utterance's speed factor and delay (in samples) for `speed` and `shift`, drawn
    for a whole epoch at once (key from (seed, epoch)): known before batching, so that a
    batch can gather utterances of similar length after them.

    Returns:
        (factor float32 (n,), delay like `lengths` (n,)): 1 and 0 where not applied.
    """
    n = tf.shape(lengths)[0]
    factor, delay = tf.ones([n]), tf.zeros_like(lengths)
    if "speed" in names:
        factor = _speed_factor(*_draw(key, "speed", n), STRENGTHS["speed"])
    if "shift" in names:
        delay = _delay(*_draw(key, "shift", n), STRENGTHS["shift"], rate, lengths.dtype)
    return factor, delay


def retimed_lengths(lengths, factor, delay):
    """Samples of each utterance after `_retime` by `factor` and `delay`."""
    return tf.cast(tf.math.floor(tf.cast(lengths, tf.float32) / factor), lengths.dtype) + delay


def apply(waves, lengths, names: tuple, key, rate: int, bank=None, retime=None):
    """Augments a zero-padded batch.

    Args:
        waves: float32 (batch, samples).
        lengths: int64 (batch,) samples of each waveform before padding.
        names: the augmentations to apply (each with its probability per utterance).
        key: int64 (2,) stateless random key of this batch, from (seed, epoch, batch).
        rate: the waveforms' sample rate in Hz.
        bank: the run's noise bank (`noise_bank`); default: seed 0's.
        retime: (factor, delay) of each utterance, from the epoch's `retime_plan`; default:
            drawn for this batch.

    Returns:
        (waves, lengths) after augmentation, zero past each new length.
    """
    batch = tf.shape(waves)[0]
    if "speed" in names or "shift" in names:  # one resampling pass for both
        waves, lengths = _retime(waves, lengths, *(
            retime or retime_plan(key, lengths, names, rate)))
    for name in ORDER:
        if name in names and name not in ("speed", "shift"):
            extra = {"bank": bank} if name == "noise" else {}
            waves, lengths = FUNCTIONS[name](waves, lengths, *_draw(key, name, batch),
                                             STRENGTHS[name], rate, **extra)
    return waves, lengths


def preview(waves: list, rate: int, seed: int = 0) -> dict:
    """Each augmentation applied alone, to every utterance, for a look at what it does.

    Returns:
        name (`none` first, then each augmentation) -> list of float32 waveforms.
    """
    lengths = tf.constant([len(w) for w in waves], tf.int64)
    batch = tf.constant(np.stack([np.pad(w, (0, max(map(len, waves)) - len(w)))
                                  for w in waves]).astype(np.float32))
    out = {"none": list(waves)}
    everyone = tf.ones([len(waves)], tf.bool)
    for index, name in enumerate(ORDER):
        key = tf.constant([seed, index], tf.int64)
        changed, new = FUNCTIONS[name](batch, lengths, key, everyone, STRENGTHS[name], rate)
        out[name] = [w[:n] for w, n in zip(changed.numpy(), new.numpy())]
    return out
