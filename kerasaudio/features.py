"""Waveform -> frame features: MFCC (optionally with deltas), log-mel, chroma, their
concatenations, and beat-synchronous versions of any of them.

MFCC and log-mel are computed with tf.signal rather than librosa so that the very same
function can run inside an exported serving graph: what training saw and what serving
computes cannot drift. Chroma and beat tracking come from librosa, in a pool of processes.
"""

import concurrent.futures
import functools

import numpy as np

from kerasaudio import processes, progress
from kerasaudio.config import FeatureConfig
from kerasaudio.errors import UserError

TF_KINDS = ("mfcc", "logmel")
# The kind of a data set whose frames came with it (a .ts file, arrays): no audio to compute
# them from, so neither `predict` on audio nor a waveform serving graph can.
GIVEN = "given"
LIBROSA_KINDS = ("chroma",)
KINDS = TF_KINDS + LIBROSA_KINDS
# Zero-padded samples per tf.signal call (about 256 spoken digits, or 6 minutes of music at
# 22,050 Hz): large enough to amortise the call, small enough to keep the STFT's memory low.
EXTRACT_SAMPLES = 2**23
LIBROSA_CHUNK = 64
LOG_OFFSET = 1e-6  # keeps log() finite on digital silence
DELTA_WIDTH = 5  # HTK's +-2 frames
TEMPO_WINDOW_S = 2.0  # tempo autocorrelation window; librosa's 8 s default costs 100x more


def frame_step_ms(cfg: FeatureConfig) -> float | None:
    """The features' frame step in milliseconds, as whole samples make it (`--hop-ms 1.06`
    at 8 kHz steps 8 samples, 1 ms); None when frames have no fixed step (they came with the
    data, or are the spans between detected beats)."""
    if cfg.kind == GIVEN or cfg.beat_sync:
        return None
    return 1000.0 * cfg.frame_step / cfg.sample_rate


def frame_centres(count: int, frame_step: int, frame_length: int) -> np.ndarray:
    """The sample at the centre of each of `count` frames' analysis windows (frames start
    at multiples of `frame_step`): where a frame's label is read."""
    return np.arange(count) * frame_step + frame_length // 2


def frame_centres_s(cfg: FeatureConfig, count: int) -> np.ndarray | None:
    """`frame_centres` in seconds from the start of the audio; None as `frame_step_ms`."""
    if frame_step_ms(cfg) is None:
        return None
    return frame_centres(count, cfg.frame_step, cfg.frame_length) / cfg.sample_rate


def kinds(cfg: FeatureConfig) -> list:
    """The feature types of `cfg.kind`, e.g. "logmel+chroma" -> ["logmel", "chroma"]."""
    parts = cfg.kind.split("+")
    unknown = [p for p in parts if p not in KINDS]
    if unknown or len(set(parts)) != len(parts):
        raise UserError(f"bad feature type {cfg.kind!r}; valid: {', '.join(KINDS)}, "
                        "or several joined by '+' (e.g. logmel+chroma)")
    return parts


def width(kind: str, cfg: FeatureConfig) -> int:
    """Columns one feature kind takes in the concatenated frame."""
    if kind == "mfcc":
        return cfg.n_mfcc * (3 if cfg.deltas else 1)
    return cfg.n_mels if kind == "logmel" else 12


def frame_count(num_samples, cfg: FeatureConfig):
    """Frames of an utterance of `num_samples` samples: one per hop, the last one zero-padded."""
    return -(-np.asarray(num_samples) // cfg.frame_step)


def log_mel(waveforms, cfg: FeatureConfig, n_mels: int | None = None):
    """Log mel power spectrogram of a batch of waveforms with tf.signal.

    Args:
        waveforms: float32 tensor (batch, samples) in [-1, 1] at `cfg.sample_rate`.
        cfg: the feature configuration.
        n_mels: mel bands (default `cfg.n_mels`).

    Returns:
        float32 tensor (batch, frames, n_mels); frames = ceil(samples / hop).
    """
    import tensorflow as tf

    stft = tf.signal.stft(waveforms, frame_length=cfg.frame_length, frame_step=cfg.frame_step,
                          fft_length=cfg.fft_length, pad_end=True)
    power = tf.math.square(tf.abs(stft))
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=n_mels or cfg.n_mels, num_spectrogram_bins=cfg.fft_length // 2 + 1,
        sample_rate=cfg.sample_rate, lower_edge_hertz=20.0,
        upper_edge_hertz=min(cfg.max_hz or cfg.sample_rate / 2, cfg.sample_rate / 2))
    return tf.math.log(tf.tensordot(power, mel_matrix, 1) + LOG_OFFSET)


def mfcc(waveforms, cfg: FeatureConfig, num_samples=None):
    """MFCCs (batch, frames, n) of a batch of waveforms with tf.signal; n = cfg.n_mfcc, or
    3 * cfg.n_mfcc with deltas (which need each waveform's `num_samples` before padding)."""
    import tensorflow as tf

    x = tf.tensordot(log_mel(waveforms, cfg), _dct_matrix(cfg.n_mels, cfg.n_mfcc), 1)
    if not cfg.deltas:
        return x
    step = cfg.frame_step
    return deltas(x, (tf.cast(num_samples, tf.int32) + step - 1) // step)


def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """(n_mels, n_mfcc) float32: the first `n_mfcc` columns of the DCT-II that
    tf.signal.mfccs_from_log_mel_spectrograms applies, as one matrix product.

    tf.signal computes the DCT with an FFT of length 2 * n_mels, which TensorFlow Lite runs
    only for powers of two; the product runs everywhere and skips the unused coefficients."""
    from scipy.fft import dct

    return (dct(np.eye(n_mels), type=2, axis=-1)[:, :n_mfcc] / np.sqrt(2.0 * n_mels)).astype(
        np.float32)


def deltas(x, num_frames):
    """(batch, time, n) -> (batch, time, 3n): the features, their deltas and delta-deltas.

    The same Savitzky-Golay filters as librosa.feature.delta(width=5, mode="nearest"), in
    TensorFlow so that serving graphs compute them too. Each sequence's own last frame is
    repeated past its end, so the zero padding of a batch never leaks into its deltas.
    """
    import tensorflow as tf
    from scipy.signal import savgol_coeffs

    half = DELTA_WIDTH // 2
    time = tf.range(tf.shape(x)[1])[None, :]
    last = tf.cast(num_frames, tf.int32)[:, None] - 1
    neighbours = [tf.gather(x, tf.minimum(tf.maximum(time + offset, 0), last), batch_dims=1)
                  for offset in range(-half, half + 1)]
    out = [x]
    for order in (1, 2):
        weights = savgol_coeffs(DELTA_WIDTH, order, deriv=order, use="dot")
        out.append(tf.add_n([float(w) * n for w, n in zip(weights, neighbours)]))
    return tf.concat(out, axis=-1)


def in_graph(waveforms, num_samples, cfg: FeatureConfig):
    """The features of a zero-padded batch of waveforms, computed in TensorFlow alone, as
    training computed them: what an exported serving graph runs.

    Args:
        waveforms: float32 (batch, samples) in [-1, 1] at `cfg.sample_rate`, zero-padded.
        num_samples: int (batch,) samples of each waveform before padding.
        cfg: the feature configuration.

    Returns:
        (features (batch, frames, n_features), frames per waveform).

    Raises:
        UserError: if `cfg` needs librosa (chroma, beat-synchronous frames).
    """
    import tensorflow as tf

    if cfg.kind == GIVEN:
        raise UserError("the run's features came with its data set, not from audio, so a "
                        "serving graph cannot compute them from waveforms; export --format keras")
    wanted = kinds(cfg)
    outside = [k for k in wanted if k not in TF_KINDS] + (["beat-sync"] if cfg.beat_sync else [])
    if outside:
        raise UserError(f"{', '.join(outside)} features are computed by librosa, not in "
                        f"TensorFlow, so they cannot run inside a serving graph; in-graph "
                        f"features: {', '.join(TF_KINDS)} (with or without deltas)")
    parts = [mfcc(waveforms, cfg, num_samples) if k == "mfcc" else log_mel(waveforms, cfg)
             for k in wanted]
    step = cfg.frame_step
    return tf.concat(parts, axis=-1), (tf.cast(num_samples, tf.int32) + step - 1) // step


@functools.cache
def _compiled(kind: str, cfg: FeatureConfig):
    """`kind`'s features of a zero-padded batch as one TensorFlow graph, traced once per
    process for batches of every shape (tracing took longer than computing the features of
    a few thousand utterances)."""
    import tensorflow as tf

    def compute(waves, num_samples):
        return mfcc(waves, cfg, num_samples) if kind == "mfcc" else log_mel(waves, cfg)

    return tf.function(compute, input_signature=[tf.TensorSpec([None, None], tf.float32),
                                                 tf.TensorSpec([None], tf.int64)])


def _extract_batches(lengths: np.ndarray) -> list:
    """Utterance indices in batches of similar length whose zero-padded size stays within
    EXTRACT_SAMPLES (at least one utterance each)."""
    batches, batch = [], []
    for i in np.argsort(lengths, kind="stable"):  # ascending: the newest is the longest
        if batch and (len(batch) + 1) * lengths[i] > EXTRACT_SAMPLES:
            batches.append(np.array(batch))
            batch = []
        batch.append(i)
    return batches + [np.array(batch)] if batch else batches


def _tf_features(waves, lengths, cfg, wanted, label) -> dict:
    """kind -> list of (frames, n) arrays, for the tf.signal feature types in `wanted`.

    Batches run on a thread per core: TensorFlow's STFT kernels use one core per call and
    release the GIL, so concurrent calls are what put the second core to work."""
    import tensorflow as tf

    compute = {k: _compiled(k, cfg) for k in wanted}
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n_frames = frame_count(lengths, cfg)
    out = {k: [None] * len(lengths) for k in wanted}

    def run(idx):
        batch = np.zeros((len(idx), lengths[idx].max()), np.float32)
        for row, i in enumerate(idx):
            batch[row, : lengths[i]] = waves[offsets[i]:offsets[i + 1]]
        num_samples = tf.constant(lengths[idx], tf.int64)
        return idx, {k: fn(tf.constant(batch), num_samples).numpy() for k, fn in compute.items()}

    with concurrent.futures.ThreadPoolExecutor(processes.usable_cores()) as pool, \
            progress.task(f"Extracting {label}", len(lengths)) as advance:
        for idx, values in pool.map(run, _extract_batches(lengths)):
            for kind, batch in values.items():
                for row, i in enumerate(idx):
                    out[kind][i] = batch[row, : n_frames[i]]
            advance(len(idx))
    return out


def chroma_of(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, 12) chroma of one waveform, frames as tf.signal's (multiples of the hop, the
    end zero-padded)."""
    import librosa

    padded = np.pad(y, (0, cfg.fft_length))
    power = np.abs(librosa.stft(padded, n_fft=cfg.fft_length, hop_length=cfg.frame_step,
                                win_length=cfg.frame_length, center=False)) ** 2
    chroma = librosa.feature.chroma_stft(S=power, sr=cfg.sample_rate, n_fft=cfg.fft_length,
                                         tuning=0.0)
    return chroma.T[:int(frame_count(len(y), cfg))].astype(np.float32)


def beats_of(y: np.ndarray, cfg: FeatureConfig) -> tuple:
    """(tempo in beats per minute, frames where beats fall) of one waveform, as the
    beat-synchronous features find them."""
    import librosa

    n = int(frame_count(len(y), cfg))
    onset = librosa.onset.onset_strength(y=np.pad(y, (0, cfg.fft_length)), sr=cfg.sample_rate,
                                         hop_length=cfg.frame_step)[:n]
    tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=cfg.sample_rate,
                                        hop_length=cfg.frame_step, ac_size=TEMPO_WINDOW_S)[0])
    _, frames = librosa.beat.beat_track(onset_envelope=onset, sr=cfg.sample_rate,
                                        hop_length=cfg.frame_step, bpm=tempo)
    return tempo, frames[frames < n]


def _librosa_chunk(args):
    """Chroma and/or beat frames of a few utterances; runs in a worker process."""
    chunk, cfg, want_chroma, want_beats = args
    chromas = [chroma_of(y, cfg) for y in chunk] if want_chroma else []
    beats = [beats_of(y, cfg)[1] for y in chunk] if want_beats else []
    return chromas, beats


def _librosa_features(waves, lengths, cfg, want_chroma, want_beats, label):
    """(chromas, beats) per utterance, computed by a pool of processes over all cores."""
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    utterances = [waves[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    jobs = [(utterances[s:s + LIBROSA_CHUNK], cfg, want_chroma, want_beats)
            for s in range(0, len(utterances), LIBROSA_CHUNK)]
    with processes.pool([__name__], processes.usable_cores()) as pool:
        parts = list(progress.each(pool.imap(_librosa_chunk, jobs),
                                   f"Extracting {label} (librosa)", len(jobs)))
    return ([c for part in parts for c in part[0]], [b for part in parts for b in part[1]])


def beat_sync(x: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """(time, n) -> (segments, n): the median of the frames between consecutive beats."""
    import librosa

    return librosa.util.sync(x.T, beats, aggregate=np.median).T.astype(np.float32)


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
    wanted = kinds(cfg)
    waves = waves.astype(np.float32) / 32768.0 if waves.dtype == np.int16 else \
        waves.astype(np.float32)
    parts = _tf_features(waves, lengths, cfg, [k for k in wanted if k in TF_KINDS], label)
    if "chroma" in wanted or cfg.beat_sync:
        chromas, beats = _librosa_features(waves, lengths, cfg, "chroma" in wanted,
                                           cfg.beat_sync, label)
        if chromas:
            parts["chroma"] = chromas
    out = parts[wanted[0]] if len(wanted) == 1 else [
        np.concatenate([parts[k][i] for k in wanted], axis=1) for i in range(len(lengths))]
    if cfg.beat_sync:
        out = [beat_sync(x, b) for x, b in zip(out, beats)]
    return np.concatenate(out, dtype=np.float32), np.array([len(x) for x in out], np.int64)
