"""Waveform -> frame features.

MFCCs are computed with tf.signal rather than librosa so that the very same function can run
inside an exported serving graph: what training saw and what serving computes cannot drift.
"""

import numpy as np

from kerasaudio.config import FeatureConfig

# Utterances per tf.signal call: large enough to amortise the call, small enough to keep the
# zero-padded batch (up to the longest utterance in it) cheap.
EXTRACT_BATCH = 256
LOG_OFFSET = 1e-6  # keeps log() finite on digital silence


def frame_count(num_samples, cfg: FeatureConfig):
    """Frames of an utterance of `num_samples` samples: one per hop, the last one zero-padded."""
    return -(-np.asarray(num_samples) // cfg.frame_step)


def mfcc(waveforms, cfg: FeatureConfig):
    """MFCCs of a batch of waveforms with tf.signal.

    Args:
        waveforms: float32 tensor (batch, samples) in [-1, 1] at `cfg.sample_rate`.
        cfg: the feature configuration.

    Returns:
        float32 tensor (batch, frames, cfg.n_mfcc); frames = ceil(samples / hop).
    """
    import tensorflow as tf

    stft = tf.signal.stft(waveforms, frame_length=cfg.frame_length, frame_step=cfg.frame_step,
                          fft_length=cfg.fft_length, pad_end=True)
    power = tf.math.square(tf.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=cfg.n_mels, num_spectrogram_bins=cfg.fft_length // 2 + 1,
        sample_rate=cfg.sample_rate, lower_edge_hertz=20.0, upper_edge_hertz=cfg.sample_rate / 2)
    log_mel = tf.math.log(tf.tensordot(power, mel_matrix, 1) + LOG_OFFSET)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : cfg.n_mfcc]


def extract(waves: np.ndarray, lengths: np.ndarray, cfg: FeatureConfig, label: str = "features"):
    """Features of many utterances stored end to end.

    Zero-padding a batch to its longest member leaves every utterance's own frames unchanged
    (stft pads the end with zeros anyway), so batches give the same frames as one at a time.

    Args:
        waves: int16 or float array of all utterances concatenated.
        lengths: samples per utterance.
        cfg: the feature configuration.
        label: progress bar label.

    Returns:
        (frames, frame_lengths): float32 (total_frames, n_features) and frames per utterance.
    """
    import click
    import tensorflow as tf

    if cfg.kind != "mfcc":
        from kerasaudio.errors import UserError

        raise UserError(f"unknown feature type {cfg.kind!r}; valid: mfcc")
    compute = tf.function(lambda x: mfcc(x, cfg), reduce_retracing=True)
    scale = 1 / 32768.0 if waves.dtype == np.int16 else 1.0
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n_frames = frame_count(lengths, cfg)
    order = np.argsort(lengths, kind="stable")  # similar lengths per batch: little padding
    out = [None] * len(lengths)
    starts = range(0, len(order), EXTRACT_BATCH)
    with click.progressbar(starts, label=f"Extracting {label}", file=None) as bar:
        for start in bar:
            idx = order[start:start + EXTRACT_BATCH]
            batch = np.zeros((len(idx), lengths[idx].max()), np.float32)
            for row, i in enumerate(idx):
                batch[row, : lengths[i]] = waves[offsets[i]:offsets[i + 1]] * scale
            feats = compute(tf.constant(batch)).numpy()
            for row, i in enumerate(idx):
                out[i] = feats[row, : n_frames[i]]
    return np.concatenate(out).astype(np.float32), n_frames.astype(np.int64)
