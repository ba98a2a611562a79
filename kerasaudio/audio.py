"""Reading audio files: any format libsndfile reads (WAV, FLAC, OGG, ...), mixed down to mono
and resampled with soxr to the rate the features were computed at."""

import re
from pathlib import Path

import numpy as np

from kerasaudio import userfiles
from kerasaudio.errors import UserError

# What the pinned soundfile wheel's libsndfile (1.2) reads, MP3 included.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".caf")
MAX_AMPLITUDE = 100.0
# libsndfile's log of a file whose samples are not what its header gives, and in what: a
# WAV file's data chunk, an AIFF file's SSND chunk, an AU file's data size (bytes); a W64
# file's size (bytes: such files are often named .wav); an RF64 file's frame count. (Its
# other formats either fail to decode when cut, as FLAC does, or log no such line: NIST's,
# see NIST_FIELDS.)
# Each with whether its sizes have 32 bits (True) or 64 (False), or count frames (None):
# which sizes a streaming writer leaves as placeholders (`_streamed`).
CUT_SHORT_LOGS = (
    (re.compile(r"^\s*(?:data|SSND|Data Size)\s*: (?P<promised>\d+) "
                r"\(should be (?P<held>\d+)\)", re.MULTILINE), "bytes of samples", True),
    # W64's sizes have 64 bits: a size past 2 GiB is streamed only at WavPack's 32-bit
    # placeholder (0x7FFFF000 bytes of data) or past any disk. (ffmpeg writes -1, which
    # this line never matches.)
    (re.compile(r"^riff : (?P<promised>\d+) \(should be (?P<held>\d+)\)", re.MULTILINE),
     "bytes", False),
    # RF64 exists for files past 4 GiB, and its ds64 chunk holds their true length.
    (re.compile(r"Calculated frame count (?P<held>\d+) does not match value from 'ds64' "
                r"chunk of (?P<promised>\d+)"), "frames", None),
)
# A W64 size from which the file cannot be on any disk: a placeholder.
W64_STREAMED_FROM = 2 ** 62
# A NIST SPHERE file's text header (TIMIT's .WAV files are such) gives its size in bytes,
# then its samples: their count, channels and bytes each.
# (Integers are "-i N"; libsndfile writes mu-law's and A-law's sample_n_bytes as "-s1 1".)
NIST_FIELDS = re.compile(rb"^(sample_count|channel_count|sample_n_bytes) -(?:i|s\d+) (\d+)\s*$",
                         re.MULTILINE)
# Writers that stream (to a pipe, or recording as they go) leave the size 0 or about 2 or
# 4 GiB: they did not know it. ffmpeg writes 0xFFFFFFFF, arecord 0x7FFFFFFF, and sox
# 0x7FFFF000 rounded down to whole frames (a frame, blockAlign, is at most 0xFFFF bytes).
STREAMED_FROM = 0x7FFFF000 - 0xFFFF
# A recording whose loudest sample is below this (-60 dBFS) holds no sound a model could
# classify: a microphone left muted or unplugged records hiss of a few 16-bit steps, which
# per-utterance normalisation would scale up into a confident class. Speech peaks tens of
# decibels higher even when recorded quietly.
SILENCE_DBFS = -60.0
# One step of 8-bit audio is louder than that (-42 dBFS): an 8-bit microphone left muted
# idles on two or three neighbouring levels, which hold no more sound, in whatever format
# the file was saved.
IDLE_LEVELS, IDLE_SPAN = 3, 2 / 128


def is_audio(path: Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def read(path, sample_rate: int, min_samples: int = 1) -> np.ndarray:
    """A file's samples as float32 mono in [-1, 1] at `sample_rate` Hz.

    Args:
        min_samples: the fewest samples at `sample_rate` that make a recording (the
            features' analysis window): a shorter file would be classified all the same,
            from padding.

    Raises:
        UserError: naming the file, if it is missing, unreadable, cut short, empty, shorter than
            `min_samples`, silent (every sample 0, none above SILENCE_DBFS about the mean,
            or every channel on IDLE_LEVELS neighbouring 8-bit levels) or not finite.
    """
    import soundfile
    import soxr

    path = Path(path)
    userfiles.check_readable(path)  # libsndfile would say "System error" for each
    try:
        with soundfile.SoundFile(path) as f:
            # All frames, counted: formats libsndfile cannot seek in (GSM 6.10, G.72x)
            # refuse a read of unknown length.
            samples = f.read(f.frames, dtype="float32", always_2d=True)
            rate, log, container = f.samplerate, f.extra_info, f.format
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise UserError(f"{path}: not a readable audio file ({error})") from None
    _check_whole(path, log, container)
    if samples.shape[0] == 0:
        raise UserError(f"{path}: holds no samples")
    if not np.all(np.isfinite(samples)):
        raise UserError(f"{path}: holds NaN or infinite samples")
    # Floating-point files may hold any value; beyond a few times full scale (1.0) it is
    # not sound but damage, and squared to power it overflows the features.
    loudest = float(np.max(np.abs(samples)))
    if loudest > MAX_AMPLITUDE:
        raise UserError(f"{path}: holds samples up to {loudest:.3g}, far beyond full scale "
                        f"(1.0); not audio that can be trusted")
    mono = samples.mean(axis=1)
    # A file of zeros is a failed recording, not a class's example; a model would still
    # name a class for it, with confidence. (After the mixdown: channels may cancel.)
    if not np.any(mono):
        raise UserError(f"{path}: every sample is 0 (silence); no sound to learn or classify")
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    if len(mono) < min_samples:
        raise UserError(f"{path}: {1000 * samples.shape[0] / rate:.3g} ms long, shorter than "
                        f"one analysis window ({1000 * min_samples / sample_rate:.3g} ms)")
    # At the features' rate, about the mean: sound resampled away, or a constant (DC)
    # offset, is no sound either.
    swing = float(np.max(np.abs(mono - mono.mean())))
    peak_dbfs = 20 * np.log10(swing) if swing > 0 else -np.inf
    if peak_dbfs < SILENCE_DBFS:
        raise UserError(f"{path}: its loudest sample is {peak_dbfs:.1f} dBFS (about its mean), "
                        f"below {SILENCE_DBFS:.0f} (near silence); no sound to learn or "
                        "classify (raise its level if it is a real recording)")
    if _idles(samples):
        raise UserError(f"{path}: every channel stays on {IDLE_LEVELS} neighbouring 8-bit levels "
                        "or fewer (near silence, an idle microphone's); no sound to learn or "
                        "classify")
    return mono


def _check_whole(path: Path, log: str, container: str) -> None:
    """Raises UserError for a WAV, W64, RF64, AIFF, AU or NIST file cut short (a partial
    copy or download), which libsndfile reads without complaint as the samples that are
    there: its log compares the size the header gives with what the file holds (a NIST
    header is read here). Streamed files, and writers that count a pad byte, are whole."""
    if container == "NIST":
        _check_nist_whole(path)
    for pattern, unit, sizes_of_32_bits in CUT_SHORT_LOGS:
        found = pattern.search(log)
        if not found:
            continue
        promised, held = int(found["promised"]), int(found["held"])
        if not _streamed(promised, sizes_of_32_bits) and held < promised - 1:
            raise UserError(f"{path}: cut short: its header gives {promised} {unit}, the "
                            f"file holds {held} (a partial copy or download?)")


def _streamed(promised: int, sizes_of_32_bits: bool | None) -> bool:
    """Whether a size is a streaming writer's placeholder: 0 or past STREAMED_FROM in
    32-bit sizes; in W64's 64-bit ones, 0, WavPack's 32-bit placeholder, or past any disk;
    never in RF64's frame counts (None)."""
    if sizes_of_32_bits is None:
        return False
    if sizes_of_32_bits:
        return promised == 0 or promised >= STREAMED_FROM
    return (promised == 0 or STREAMED_FROM <= promised <= 0x80000000 + 0xFFFF
            or promised >= W64_STREAMED_FROM)


def _check_nist_whole(path: Path) -> None:
    """Raises UserError for a NIST SPHERE file cut short, of which libsndfile logs nothing:
    its header's sample count against the bytes after the header."""
    with open(path, "rb") as f:
        head = f.read(4096)
    lines = head.split(b"\n", 2)
    if len(lines) < 3 or not lines[1].strip().isdigit():
        return  # a header libsndfile read some other way: nothing to compare
    header_bytes = int(lines[1])
    fields = {name.decode(): int(value)
              for name, value in NIST_FIELDS.findall(head[:header_bytes])}
    if len(fields) < 3:
        return
    promised = fields["sample_count"] * fields["channel_count"] * fields["sample_n_bytes"]
    held = path.stat().st_size - header_bytes
    if held < promised:
        raise UserError(f"{path}: cut short: its header gives {promised} bytes of samples, "
                        f"the file holds {held} (a partial copy or download?)")


def _idles(samples: np.ndarray) -> bool:
    """Every channel of (samples, channels) takes at most IDLE_LEVELS values of the 8-bit
    grid within IDLE_SPAN: quantisation noise alone. (The span first, channel by channel: it
    is cheap, and rules out any sound; an axis reduction over a long stereo file is not.)"""
    channels = samples.T
    if any(c.max() - c.min() > IDLE_SPAN + 1e-6 for c in channels):
        return False
    levels = [np.unique(c) for c in channels]
    return all(len(v) <= IDLE_LEVELS and np.allclose(v * 128, np.round(v * 128), atol=1e-4)
               for v in levels)
