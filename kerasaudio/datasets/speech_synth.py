"""Built-in speech corpora synthesised with eSpeak NG (through the `espeakng-loader` wheel).

`spoken-digits` is shaped like the seed's Spoken Arabic Digit set: 88 speakers (eSpeak English
voice + voice variant pairs, male and female), 10 takes of each digit per speaker with varied
speaking rate and pitch, resampled to 16 kHz, mixed with noise at a random SNR, and split by
speaker (60 train, 6 validation, 22 test).

eSpeak NG keeps synthesis state between calls (pitch flutter phase, echo buffers), so the same
text does not give the same samples twice in one process; a fresh process replaying the same
calls does, once eSpeak's own noise generator is seeded (it is seeded from the clock at
initialisation). Each speaker is therefore synthesised in a fresh process (forkserver, one task per
child), which makes the corpus bit-identical for a seed whatever the core count.
"""

import ctypes
import importlib.metadata
import multiprocessing
import os
from pathlib import Path

import click
import numpy as np

from kerasaudio import cache

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# eSpeak NG's English voices (en-Shaw is left out: it reads the Shavian alphabet).
VOICES = ("en", "en-US", "en-029", "en-GB-scotland", "en-GB-x-rp", "en-GB-x-gbclan",
          "en-GB-x-gbcwmd", "en-US-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5")
SPEAKERS_PER_VOICE = 11
SPLIT_SPEAKERS = {"train": 60, "val": 6, "test": 22}
TAKES = 10
SAMPLE_RATE = 16000
ESPEAK_RATE = 22050
RATE_RANGE = (120, 230)      # words per minute; eSpeak's default is 175
PITCH_RANGE = (20, 80)       # eSpeak pitch 0..99; default 50
SNR_DB_RANGE = (-5.0, 20.0)  # white noise; low SNRs keep the task from being trivial
PAD_MS_RANGE = (0, 250)      # noise-only lead-in and tail, so onsets are not aligned
# Bump when anything above or the generation code changes: it names the cache file.
GENERATOR_VERSION = 1

_EVENT_LIST_TERMINATED = 0
_PARAM_RATE, _PARAM_PITCH = 1, 3
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class Espeak:
    """A minimal ctypes binding of libespeak-ng: text in, int16 samples at 22,050 Hz out."""

    def __init__(self, seed: int = 0):
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self._lib.espeak_Info.restype = ctypes.c_char_p
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                           espeakng_loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"eSpeak NG failed to initialise (returned {rate})")
        # espeak_Initialize seeds eSpeak's noise generator (breathy voices) from the clock.
        self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        self._chunks = []
        self._callback = _Callback(self._collect)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def version(self) -> str:
        return self._lib.espeak_Info(None).decode()

    def synth(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        """Speaks `text`; returns int16 samples at 22,050 Hz."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        data = text.encode()
        self._chunks = []
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        self._lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def speaker_table(seed: int) -> list[dict]:
    """The 88 speakers: voice, variant, gender and split, fixed by `seed`."""
    speakers = []
    for v, voice in enumerate(VOICES):
        # Each voice drops two variants, a different pair per voice, so every
        # voice has 11 speakers and the combinations are spread over all variants.
        dropped = {(2 * v) % len(VARIANTS), (2 * v + 1) % len(VARIANTS)}
        for i, variant in enumerate(VARIANTS):
            if i not in dropped:
                speakers.append({"voice": voice, "variant": variant,
                                 "gender": "female" if variant.startswith("f") else "male"})
    assert len(speakers) == sum(SPLIT_SPEAKERS.values())
    order = np.random.default_rng(seed).permutation(len(speakers))
    bounds = np.cumsum([0] + list(SPLIT_SPEAKERS.values()))
    for split, lo, hi in zip(SPLIT_SPEAKERS, bounds[:-1], bounds[1:]):
        for idx in order[lo:hi]:
            speakers[idx]["split"] = split
    return speakers


def _add_noise(speech: np.ndarray, snr_db: float, pad: tuple, rng) -> np.ndarray:
    """Pads `speech` with silence, then adds white noise `snr_db` below the speech power."""
    signal = np.concatenate([np.zeros(pad[0]), speech, np.zeros(pad[1])])
    power = np.mean(speech ** 2) + 1e-12
    noise = rng.standard_normal(len(signal)) * np.sqrt(power / 10 ** (snr_db / 10))
    mixed = signal + noise
    return mixed / (np.max(np.abs(mixed)) + 1e-12) * 0.9


def _synth_speaker(args) -> dict:
    """Synthesises every take of one speaker; runs in a fresh process (see module docstring)."""
    import soxr

    seed, index, speaker = args
    engine = Espeak(seed=seed * 1000 + index)
    rng = np.random.default_rng([seed, index])
    voice = f"{speaker['voice']}+{speaker['variant']}"
    waves, rows = [], []
    for digit, word in enumerate(DIGITS):
        for _ in range(TAKES):
            rate = int(rng.integers(*RATE_RANGE, endpoint=True))
            pitch = int(rng.integers(*PITCH_RANGE, endpoint=True))
            snr = float(rng.uniform(*SNR_DB_RANGE))
            pad = tuple(int(ms * SAMPLE_RATE / 1000) for ms in rng.integers(*PAD_MS_RANGE, size=2))
            raw = engine.synth(word, voice, rate, pitch).astype(np.float64) / 32768.0
            speech = soxr.resample(raw, ESPEAK_RATE, SAMPLE_RATE)
            mixed = _add_noise(speech, snr, pad, rng)
            waves.append(np.round(mixed * 32767).astype(np.int16))
            rows.append((digit, rate, pitch, snr))
    digit, rate, pitch, snr = map(np.array, zip(*rows))
    return {"waves": waves, "digit": digit, "rate": rate, "pitch": pitch, "snr": snr,
            "version": engine.version()}


def synthesize_digits(seed: int, speakers: list[int] | None = None) -> dict:
    """Synthesises the spoken-digits corpus (or only the speakers with the given indices).

    Returns:
        dict of arrays: `waves` (int16, all utterances concatenated), `lengths`, `digit`,
        `speaker`, `voice`, `variant`, `gender`, `rate`, `pitch`, `snr_db`, `split`, `espeak`.
    """
    table = speaker_table(seed)
    indices = list(range(len(table))) if speakers is None else list(speakers)
    jobs = [(seed, i, table[i]) for i in indices]
    ctx = multiprocessing.get_context("forkserver")
    parts = []
    with ctx.Pool(min(os.cpu_count() or 1, len(jobs)), maxtasksperchild=1) as pool:
        results = pool.imap(_synth_speaker, jobs)
        with click.progressbar(results, length=len(jobs), label="Synthesising spoken-digits",
                               item_show_func=lambda _: None, file=None) as bar:
            parts = list(bar)
    waves = [w for part in parts for w in part["waves"]]
    per = len(DIGITS) * TAKES
    speaker_of = np.repeat(indices, per)
    return {
        "waves": np.concatenate(waves),
        "lengths": np.array([len(w) for w in waves], np.int64),
        "digit": np.concatenate([p["digit"] for p in parts]).astype(np.int64),
        "speaker": speaker_of.astype(np.int64),
        "voice": np.array([table[s]["voice"] for s in speaker_of]),
        "variant": np.array([table[s]["variant"] for s in speaker_of]),
        "gender": np.array([table[s]["gender"] for s in speaker_of]),
        "rate": np.concatenate([p["rate"] for p in parts]).astype(np.int64),
        "pitch": np.concatenate([p["pitch"] for p in parts]).astype(np.int64),
        "snr_db": np.concatenate([p["snr"] for p in parts]).astype(np.float32),
        "split": np.array([table[s]["split"] for s in speaker_of]),
        "espeak": np.array(parts[0]["version"]),
    }


def load_digits(seed: int = 0) -> dict:
    """The spoken-digits corpus for `seed`, synthesised on first use and cached."""
    # The wheel's version pins the bundled libespeak-ng and voices, so it names the cache too.
    loader = importlib.metadata.version("espeakng-loader")
    path = cache.cache_dir() / f"spoken-digits-v{GENERATOR_VERSION}-seed{seed}-espeakng{loader}.npz"
    if not path.exists():
        cache.save_npz_atomic(path, **synthesize_digits(seed))
    return cache.load_npz(path)


def write_wavs(folder, split: str = "test", count: int = 20, seed: int = 0) -> list:
    """Writes `count` utterances of one split of the spoken-digits corpus, picked at random,
    as 16-bit WAV files `<split>-<index>-<digit>.wav`: audio to try `predict` on.

    Raises:
        UserError: if one of the files already exists (nothing is overwritten).
    """
    import soundfile

    from kerasaudio.errors import UserError

    corpus = load_digits(seed)
    members = np.flatnonzero(corpus["split"] == split)
    picked = np.sort(np.random.default_rng(seed).choice(members, min(count, len(members)),
                                                         replace=False))
    folder = Path(folder)
    paths = [folder / f"{split}-{i:05d}-{DIGITS[corpus['digit'][i]]}.wav" for i in picked]
    for path in paths:
        if path.exists():
            raise UserError(f"{path}: already exists; choose an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum(corpus["lengths"])])
    for i, path in zip(picked, paths):
        soundfile.write(path, corpus["waves"][offsets[i]:offsets[i + 1]], SAMPLE_RATE,
                        subtype="PCM_16")
    return paths
