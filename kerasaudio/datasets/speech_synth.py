"""Built-in speech corpora synthesised with eSpeak NG (through the `espeakng-loader` wheel)
and, for spoken-digits, SVOX Pico (the `ttspico` package).

`spoken-digits`, shaped like the digit course project's Spoken Arabic Digit set: each of the 8
English eSpeak voices (accents) spoken by 28 speakers whose voice variant is drawn (vocal-tract
length, formants, pitch, breath, roughness, flutter, sometimes a Klatt synthesiser), and each
of Pico's 2 English voices by 48 speakers whose vocal-tract length and pitch are drawn; 3 takes
of each digit per speaker at varied rate and pitch, each take through a drawn recording channel
(room, white to brown noise, sometimes a telephone line), split by speaker (220 train, 20
validation, 80 test).

eSpeak NG and Pico keep synthesis state between calls (eSpeak's pitch flutter phase and echo
buffers), so the same text does not give the same samples twice in one process; a fresh
process replaying the same calls does, once eSpeak's own noise generator is seeded (it is
seeded from the clock at initialisation). Each speaker is therefore synthesised in a fresh
process (forkserver, one task per child), which makes the corpus bit-identical for a seed
whatever the core count.

Two more corpora come from 88 speakers (the 8 voices x 11 of eSpeak's own variants):

- `spoken-phonemes`: random digit strings and short phrases, with eSpeak's phoneme events (the
  sample where each phoneme starts), so every frame's phoneme is known exactly;
- `voice-attributes`: digit strings whose speaking rate, pitch and noise level (the drawn
  synthesis settings) are regression targets, and whose accent (the eSpeak voice) is a class.
"""

import ctypes
import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from kerasaudio import cache, features, processes, progress
from kerasaudio.errors import UserError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# eSpeak NG's English voices (en-Shaw is left out: it reads the Shavian alphabet).
VOICES = ("en", "en-US", "en-029", "en-GB-scotland", "en-GB-x-rp", "en-GB-x-gbclan",
          "en-GB-x-gbcwmd", "en-US-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5")
SPEAKERS_PER_VOICE = 11
SPLIT_SPEAKERS = {"train": 60, "val": 6, "test": 22}
TAKES = 3  # of each digit by each spoken-digits speaker
SAMPLE_RATE = 16000
ESPEAK_RATE = 22050
RATE_RANGE = (120, 230)      # words per minute; eSpeak's default is 175
PITCH_RANGE = (20, 80)       # eSpeak pitch 0..99; default 50
SNR_DB_RANGE = (-5.0, 20.0)  # white noise; low SNRs keep the task from being trivial
# spoken-digits' takes reach clean recordings too: a real prompt or a quiet room is 30-40 dB
# above its noise, and a model that never heard one misreads it (issue 19: Asterisk's speaker
# 6 -> 9 of 10 at 10 epochs).
DIGIT_SNR_DB_RANGE = (-5.0, 40.0)
PAD_MS_RANGE = (0, 250)      # noise-only lead-in and tail, so onsets are not aligned
# Bump a corpus's version when anything it is made from changes: it names the cache file.
CORPUS_VERSIONS = {"spoken-digits": 4, "spoken-phonemes": 1, "voice-attributes": 1}

# spoken-digits draws its own voices from two engines, because a model trained on one
# synthesiser learns that synthesiser: each of eSpeak's 8 English voices (accents) spoken by
# DIGIT_SPEAKERS_PER_VOICE speakers whose voice variants (formants, pitch, breath, roughness,
# the Klatt synthesiser) are drawn at random, rather than eSpeak's 13 fixed variants; and
# SVOX Pico's two English voices (statistical voices learnt from recordings of two women),
# each spoken by PICO_SPEAKERS_PER_VOICE speakers whose vocal-tract length and pitch are
# drawn, half of them male.
DIGIT_SPEAKERS_PER_VOICE = 28
PICO_VOICES = ("en-US", "en-GB")
PICO_SPEAKERS_PER_VOICE = 48
PICO_SPEED_RANGE = (70, 140)  # percent of the Pico voice's own speaking rate
# Pico's own rate as eSpeak counts words: its ten digits take 3.3 s, eSpeak's 2.84 s at 175.
PICO_WORDS_PER_MINUTE = 150
DIGIT_SPLIT_SPEAKERS = {"train": 220, "val": 20, "test": 80}
# How often a take goes through each channel effect, and their ranges.
REVERB_PROBABILITY, RT60_RANGE_S = 0.3, (0.15, 0.8)
TELEPHONE_PROBABILITY, TELEPHONE_BAND_HZ = 0.3, (300.0, 3400.0)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power falls as 1 / f^exponent

# spoken-phonemes and voice-attributes: utterances per speaker, and how their speakers split.
SENTENCES = {"spoken-phonemes": 20, "voice-attributes": 16}
DIGIT_STRING_WORDS = (3, 5)
PHRASES = ("good morning", "thank you very much", "see you later", "open the door",
           "call me back", "turn left here", "what time is it", "this is fine", "please wait",
           "not right now", "very good", "come back soon", "where is the station",
           "I would like some water", "the weather is nice today", "have a good day")
# voice-attributes classifies the accent, so every voice needs speakers in every split.
SPLIT_SPEAKERS_PER_VOICE = {"train": 7, "val": 1, "test": 3}

_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PHONEME_EVENTS = 1  # espeakINITIALIZE_PHONEME_EVENTS
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
    """A minimal ctypes binding of libespeak-ng: text in, int16 samples at 22,050 Hz out.

    `data_path` is eSpeak's data folder (default: the wheel's); a copy with voice variants
    of our own lets `synth` use them by name."""

    def __init__(self, seed: int = 0, phoneme_events: bool = False,
                 data_path: str | None = None):
        import espeakng_loader

        data_path = data_path or espeakng_loader.get_data_path()
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self._lib.espeak_Info.restype = ctypes.c_char_p
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                           data_path.encode(),
                                           _PHONEME_EVENTS if phoneme_events else 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"eSpeak NG failed to initialise (returned {rate})")
        # espeak_Initialize seeds eSpeak's noise generator (breathy voices) from the clock.
        self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        self._chunks, self._phonemes = [], []
        self._callback = _Callback(self._collect)  # keep a reference: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, events):
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                # `sample` counts from the start of this espeak_Synth call.
                self._phonemes.append((events[i].sample, events[i].id.decode("ascii", "replace")))
            i += 1
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
        self._chunks, self._phonemes = [], []
        status = self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        self._lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def phonemes(self) -> list:
        """(start sample, eSpeak phoneme mnemonic) of the last `synth` call, in order; only
        with `phoneme_events`."""
        return list(self._phonemes)


def speaker_table(seed: int, by_voice: bool = False) -> list[dict]:
    """The 88 speakers: voice, variant, gender and split, fixed by `seed`.

    Args:
        seed: draws which speakers go to which split.
        by_voice: split each voice's 11 speakers 7 / 1 / 3 (every accent in every split)
            instead of all 88 speakers 60 / 6 / 22.
    """
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
    if by_voice:
        rng = np.random.default_rng([seed, len(VOICES)])
        splits = np.repeat(list(SPLIT_SPEAKERS_PER_VOICE), list(SPLIT_SPEAKERS_PER_VOICE.values()))
        for voice in VOICES:
            members = [s for s in speakers if s["voice"] == voice]
            for speaker, split in zip(members, rng.permutation(splits)):
                speaker["split"] = str(split)
        return speakers
    order = np.random.default_rng(seed).permutation(len(speakers))
    bounds = np.cumsum([0] + list(SPLIT_SPEAKERS.values()))
    for split, lo, hi in zip(SPLIT_SPEAKERS, bounds[:-1], bounds[1:]):
        for idx in order[lo:hi]:
            speakers[idx]["split"] = split
    return speakers


def digit_speaker_table(seed: int) -> list[dict]:
    """spoken-digits' speakers, half male and half female, split by speaker as
    DIGIT_SPLIT_SPEAKERS says: DIGIT_SPEAKERS_PER_VOICE per eSpeak English voice, each with
    a voice variant drawn for it (`variant` names it, `variant_text` is its eSpeak voice
    file), then PICO_SPEAKERS_PER_VOICE per Pico voice (`voice` is `pico-<language>`), each
    with its drawn `tract` and `pitch_factor` (see `draw_pico_speaker`)."""
    rng = np.random.default_rng([seed, 2])
    speakers = []
    for voice in VOICES:
        for i in range(DIGIT_SPEAKERS_PER_VOICE):
            gender = "female" if i % 2 else "male"
            name = f"ka{seed}-{len(speakers)}"
            speakers.append({"engine": "espeak", "voice": voice, "variant": name,
                             "gender": gender, "variant_text": draw_variant(rng, name, gender)})
    for voice in PICO_VOICES:
        for i in range(PICO_SPEAKERS_PER_VOICE):
            gender = "female" if i % 2 else "male"
            speakers.append({"engine": "pico", "voice": f"pico-{voice}",
                             "variant": f"pico{seed}-{len(speakers)}", "gender": gender,
                             **draw_pico_speaker(rng, gender)})
    # Each engine's men and women are split in the same shares, so that every split hears
    # both engines and both genders.
    assert sum(DIGIT_SPLIT_SPEAKERS.values()) == len(speakers)
    for group in sorted({(s["engine"], s["gender"]) for s in speakers}):
        members = [s for s in speakers if (s["engine"], s["gender"]) == group]
        shares = [len(members) * n // len(speakers) for n in DIGIT_SPLIT_SPEAKERS.values()]
        assert sum(shares) == len(members), "the split's shares must divide every group"
        splits = np.repeat(list(DIGIT_SPLIT_SPEAKERS), shares)
        for speaker, split in zip(members, rng.permutation(splits)):
            speaker["split"] = str(split)
    return speakers


def draw_variant(rng, name: str, gender: str) -> str:
    """An eSpeak NG voice variant file: pitch, formant frequencies, strengths and widths
    (percent of the voice's own), breathiness, roughness, flutter, and sometimes one of the
    Klatt synthesisers, drawn around what eSpeak's own male and female variants use."""
    female = gender == "female"
    base = rng.uniform(150, 230) if female else rng.uniform(75, 135)
    lines = ["language variant", f"name {name}", f"gender {gender}", "",
             f"pitch {base:.0f} {base + rng.uniform(30, 110):.0f}"]
    # One vocal-tract length for all formants (shorter tracts: higher formants), each
    # formant then moved a little on its own.
    tract = rng.uniform(1.0, 1.22) if female else rng.uniform(0.86, 1.06)
    for k in range(9):
        frequency = 100 * tract * rng.uniform(0.95, 1.05) if k else 100
        lines.append(f"formant {k} {frequency:.0f} {rng.uniform(70, 130):.0f} "
                     f"{rng.uniform(70, 160):.0f}")
    if rng.random() < 0.3:
        lines.append("breath " + " ".join(str(int(v)) for v in rng.integers(0, 4, size=8)))
    lines += [f"roughness {int(rng.integers(0, 5))}", f"flutter {int(rng.integers(0, 30))}",
              f"consonants {int(rng.integers(80, 130))}"]
    if rng.random() < 0.3:
        lines.append(f"klatt {int(rng.integers(1, 7))}")
    return "\n".join(lines) + "\n"


def draw_pico_speaker(rng, gender: str) -> dict:
    """A speaker made from a Pico voice: `tract`, the factor every frequency of the voice is
    moved by (below 1, a longer vocal tract: a man), and `pitch_factor`, the speaker's pitch
    over the voice's own (about 170 Hz for en-US, 180 for en-GB, over the ten digits): men
    speak at about 110-165 Hz, women at 160-260."""
    if gender == "female":
        tract, pitch = rng.uniform(0.95, 1.12), rng.uniform(0.95, 1.45)
    else:
        tract, pitch = rng.uniform(0.78, 0.9), rng.uniform(0.65, 0.9)
    return {"tract": float(tract), "pitch_factor": float(pitch)}


def pico_engine(voice: str):
    """A ttspico engine speaking Pico's English `voice` ("en-US" or "en-GB").

    Raises:
        UserError: when ttspico is not installed or cannot find its voice files.
    """
    # Pico's FFT functions (Ooura's rdft and its helpers) share their names with TensorFlow's:
    # loaded plainly into a process that has TensorFlow, Pico would call TensorFlow's and
    # crash. Bound to its own symbols first, it is safe in any process.
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
    try:
        import ttspico
    except ImportError as error:
        raise UserError(f"spoken-digits needs the package ttspico (SVOX Pico's voices): pip "
                        f"install -r requirements.txt ({error})") from None
    finally:
        sys.setdlopenflags(flags)
    try:
        # Its own voice files before a system copy in /usr/share/pico/lang, which it would
        # otherwise look in first.
        return ttspico.TtsEngine(voice, lang_dir=ttspico._LANG_DIR)
    except RuntimeError:
        raise UserError(f"ttspico cannot find its {voice} voice files in {ttspico._LANG_DIR}: "
                        f"reinstall it with pip install -r requirements.txt") from None


def corpus_key(corpus: str) -> str:
    """What a speech corpus is made from: its version and its engines' (each pins its voices),
    which name its cache files and its features'.

    Raises:
        UserError: when spoken-digits' second engine, Pico, is missing or cannot speak.
    """
    key = f"v{CORPUS_VERSIONS[corpus]}-espeakng{importlib.metadata.version('espeakng-loader')}"
    if corpus == "spoken-digits":
        check_pico()
        key += f"-ttspico{importlib.metadata.version('ttspico')}"
    return key


def check_pico() -> None:
    """Raises UserError unless Pico can speak with each of its English voices; a check in the
    calling process, so that a broken install is one clear line, not a synthesis worker's
    traceback after every eSpeak speaker is done."""
    for voice in PICO_VOICES:
        pico_engine(voice)


def espeak_data_with(folder: Path, name: str, text: str) -> str:
    """Lays out in `folder` eSpeak's data folder with one voice variant of our own added
    (`voices/!v/<name>`, holding `text`), and returns its path.

    Everything else is a symbolic link into the wheel's folder. One variant per folder,
    because eSpeak lists at most 349 voices and variants: all of spoken-digits' would
    crowd out its own."""
    import espeakng_loader

    source = Path(espeakng_loader.get_data_path())
    data = folder / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for entry in (source / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    (variants / name).write_text(text)
    return str(data)


def _coloured_noise(n: int, exponent: float, rng) -> np.ndarray:
    """Unit-power noise whose power spectrum falls as 1 / f^exponent (0 white, 1 pink,
    2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    # Nothing below 50 Hz: otherwise nearly all of brown noise's power lies where speech has
    # none, and the SNR it is scaled to would overstate the noise in the speech band.
    shape = np.where(frequency >= 50.0, np.maximum(frequency, 50.0) ** (-exponent / 2), 0.0)
    noise = np.fft.irfft(spectrum * shape, n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _reverberate(signal: np.ndarray, rt60: float, rng) -> np.ndarray:
    """`signal` in a simulated room: convolved with exponentially decaying noise whose level
    falls by 60 dB in `rt60` seconds (a direct path first), cut to the signal's length."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    response[0] = 0.0
    # Direct path to reverberant energy between +5 and -5 dB: a room, not a cave.
    direct_to_reverberant_db = rng.uniform(-5.0, 5.0)
    response *= np.sqrt(1.0 / (np.sum(response ** 2) * 10 ** (direct_to_reverberant_db / 10)))
    response[0] = 1.0
    wet = fftconvolve(signal, response)[:len(signal)]
    return wet / np.sqrt(np.sum(response ** 2))  # the same energy as the dry signal


def _telephone(signal: np.ndarray) -> np.ndarray:
    """`signal` through a telephone line: 300-3400 Hz, 8 kHz, mu-law (G.711), back to
    16 kHz."""
    import soxr
    from scipy.signal import butter, sosfilt

    band = butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = soxr.resample(sosfilt(band, signal), SAMPLE_RATE, 8000)
    peak = np.max(np.abs(narrow)) + 1e-12
    mu = 255.0
    coded = np.sign(narrow / peak) * np.log1p(mu * np.abs(narrow / peak)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127  # 8 bits
    decoded = np.sign(coded) * ((1 + mu) ** np.abs(coded) - 1) / mu * peak
    return soxr.resample(decoded, 8000, SAMPLE_RATE)[:len(signal)]


def _channel(speech: np.ndarray, snr_db: float, pad: tuple, rng) -> tuple[np.ndarray, str]:
    """spoken-digits' recording conditions: noise-only padding, reverberation (sometimes),
    noise of a drawn colour at `snr_db`, and a telephone line (sometimes); returns the
    waveform scaled to 0.9 of full scale and the channel's description."""
    signal = np.concatenate([np.zeros(pad[0]), speech, np.zeros(pad[1])])
    effects = []
    if rng.random() < REVERB_PROBABILITY:
        signal = _reverberate(signal, rng.uniform(*RT60_RANGE_S), rng)
        effects.append("reverb")
    colour = list(NOISE_COLOURS)[rng.integers(len(NOISE_COLOURS))]
    # The speech's power as the microphone hears it: after the room, without the padding.
    power = np.mean(signal[pad[0]:len(signal) - pad[1]] ** 2) + 1e-12
    signal = signal + _coloured_noise(len(signal), NOISE_COLOURS[colour], rng) * np.sqrt(
        power / 10 ** (snr_db / 10))
    effects.append(f"{colour} noise")
    if rng.random() < TELEPHONE_PROBABILITY:
        signal = _telephone(signal)
        effects.append("telephone")
    return signal / (np.max(np.abs(signal)) + 1e-12) * 0.9, "+".join(effects)


def _add_noise(speech: np.ndarray, snr_db: float, pad: tuple, rng) -> np.ndarray:
    """Pads `speech` with silence, then adds white noise `snr_db` below the speech power."""
    signal = np.concatenate([np.zeros(pad[0]), speech, np.zeros(pad[1])])
    power = np.mean(speech ** 2) + 1e-12
    noise = rng.standard_normal(len(signal)) * np.sqrt(power / 10 ** (snr_db / 10))
    mixed = signal + noise
    return mixed / (np.max(np.abs(mixed)) + 1e-12) * 0.9


def _draw_padding(rng) -> tuple[int, int]:
    """A take's noise-only lead-in and tail, in samples at 16 kHz."""
    return tuple(int(ms * SAMPLE_RATE / 1000) for ms in rng.integers(*PAD_MS_RANGE, size=2))


def _take(engine: Espeak, rng, text: str, voice: str, channel: bool = False) -> dict:
    """One take of `text`: draws its speaking rate, pitch, SNR and noise-only padding, speaks
    it, resamples it to 16 kHz and mixes in the noise.

    Returns:
        dict: `wave` (int16), `rate`, `pitch`, `snr`, `channel` (the effects applied:
        with `channel`, also reverberation, coloured noise and telephone lines drawn for
        the take), and with phoneme events `phonemes`:
        (start sample at 16 kHz, mnemonic) pairs, the lead-in padding included.
    """
    import soxr

    rate = int(rng.integers(*RATE_RANGE, endpoint=True))
    pitch = int(rng.integers(*PITCH_RANGE, endpoint=True))
    snr = float(rng.uniform(*(DIGIT_SNR_DB_RANGE if channel else SNR_DB_RANGE)))
    pad = _draw_padding(rng)
    raw = engine.synth(text, voice, rate, pitch).astype(np.float64) / 32768.0
    speech = soxr.resample(raw, ESPEAK_RATE, SAMPLE_RATE)
    if channel:
        mixed, effects = _channel(speech, snr, pad, rng)
    else:
        mixed, effects = _add_noise(speech, snr, pad, rng), "white noise"
    scale = SAMPLE_RATE / ESPEAK_RATE
    phonemes = [(pad[0] + int(round(sample * scale)), name) for sample, name in engine.phonemes()]
    return {"wave": np.round(mixed * 32767).astype(np.int16), "rate": rate, "pitch": pitch,
            "snr": snr, "phonemes": phonemes, "channel": effects}


def _pico_take(engine, rng, text: str, speaker: dict) -> dict:
    """One take of `text` by a Pico speaker, as `_take` returns it (without phonemes), `rate`
    and `pitch` on eSpeak's scales: words per minute as heard, and 50 for the voice's own
    pitch."""
    import soxr

    speed = int(rng.integers(*PICO_SPEED_RANGE, endpoint=True))
    jitter = rng.uniform(0.92, 1.08)  # each take's pitch moves a little around the speaker's
    snr = float(rng.uniform(*DIGIT_SNR_DB_RANGE))
    pad = _draw_padding(rng)
    tract = speaker["tract"]
    # Pico's pitch is set so that after the resampling below it is the speaker's pitch.
    pitch = int(np.clip(round(100 * speaker["pitch_factor"] * jitter / tract), 50, 200))
    engine.set_property("rate", speed)
    engine.set_property("pitch", pitch)
    raw = np.frombuffer(engine.speak(text), np.int16).astype(np.float64) / 32768.0
    # Played as if recorded at tract x 16 kHz: every frequency moves by `tract` (a shorter
    # or longer vocal tract), and the take's duration by its inverse.
    speech = soxr.resample(raw, SAMPLE_RATE * tract, SAMPLE_RATE)
    mixed, effects = _channel(speech, snr, pad, rng)
    return {"wave": np.round(mixed * 32767).astype(np.int16),
            "rate": round(PICO_WORDS_PER_MINUTE * speed / 100 * tract),
            "pitch": round(50 * speaker["pitch_factor"] * jitter), "snr": snr,
            "channel": effects}


def _speaker_takes(take_of) -> dict:
    """TAKES takes of every digit, `take_of(word)` making each one."""
    waves, rows = [], []
    for digit, word in enumerate(DIGITS):
        for _ in range(TAKES):
            take = take_of(word)
            waves.append(take["wave"])
            rows.append((digit, take["rate"], take["pitch"], take["snr"], take["channel"]))
    digit, rate, pitch, snr, channel = map(np.array, zip(*rows))
    return {"waves": waves, "digit": digit, "rate": rate, "pitch": pitch, "snr": snr,
            "channel": channel}


def _synth_speaker(args) -> dict:
    """Synthesises every take of one spoken-digits speaker; runs in a fresh process (see the
    module docstring: Pico, too, keeps state between calls)."""
    seed, index, speaker, scratch = args
    rng = np.random.default_rng([seed, index])
    if speaker["engine"] == "pico":
        engine = pico_engine(speaker["voice"].removeprefix("pico-"))
        return _speaker_takes(lambda word: _pico_take(engine, rng, word, speaker))
    voice = f"{speaker['voice']}+{speaker['variant']}"
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        data_path = espeak_data_with(Path(folder), speaker["variant"], speaker["variant_text"])
        engine = Espeak(seed=seed * 1000 + index, data_path=data_path)
        takes = _speaker_takes(lambda word: _take(engine, rng, word, voice, channel=True))
    return {**takes, "version": engine.version()}


def _run_speakers(worker, jobs: list, label: str) -> list:
    """`worker(job)` for every speaker's job, each in a fresh process, with a progress bar."""
    # Each speaker's process forks from the server with these already imported: imported
    # afresh (SciPy's signal module above all) they cost more than a speaker's synthesis.
    preload = [__name__, "scipy.signal", "scipy.fft", "soxr"]
    with processes.pool(preload, min(processes.usable_cores(), len(jobs)),
                        maxtasksperchild=1) as pool:
        results = pool.imap(worker, jobs)
        return list(progress.each(results, f"Synthesising {label}", len(jobs)))


def synthesize_digits(seed: int, speakers: list[int] | None = None) -> dict:
    """Synthesises the spoken-digits corpus (or only the speakers with the given indices).

    Returns:
        dict of arrays: `waves` (int16, all utterances concatenated), `lengths`, `digit`,
        `speaker`, `voice`, `variant`, `gender`, `rate`, `pitch`, `snr_db`, `split`, `espeak`.
    """
    table = digit_speaker_table(seed)
    indices = list(range(len(table))) if speakers is None else list(speakers)
    if any(table[i]["engine"] == "pico" for i in indices):
        check_pico()
    # The workers' voice folders live in one the parent removes: a Ctrl-C terminates the
    # workers, which then remove nothing themselves.
    with tempfile.TemporaryDirectory(prefix="kerasaudio-espeak-") as scratch:
        parts = _run_speakers(_synth_speaker, [(seed, i, table[i], scratch) for i in indices],
                              "spoken-digits")
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
        "channel": np.concatenate([p["channel"] for p in parts]),
        "split": np.array([table[s]["split"] for s in speaker_of]),
        "espeak": np.array(next((p["version"] for p in parts if "version" in p), "")),
    }


def _sentence(corpus: str, rng) -> str:
    """A random digit string (and, for spoken-phonemes, every other time a short phrase)."""
    if corpus == "spoken-phonemes" and rng.random() < 0.5:
        return PHRASES[rng.integers(len(PHRASES))]
    words = rng.integers(DIGIT_STRING_WORDS[0], DIGIT_STRING_WORDS[1], endpoint=True)
    return " ".join(DIGITS[d] for d in rng.integers(0, len(DIGITS), size=words))


def _synth_sentences(args) -> dict:
    """Synthesises one speaker's utterances of a sentence corpus, with phoneme events; runs
    in a fresh process (see the module docstring)."""
    corpus, seed, index, speaker = args
    engine = Espeak(seed=seed * 1000 + index, phoneme_events=True)
    # The corpus's position in SENTENCES keeps its draws apart from the other corpora's.
    rng = np.random.default_rng([seed, index, 1 + list(SENTENCES).index(corpus)])
    voice = f"{speaker['voice']}+{speaker['variant']}"
    takes = []
    for _ in range(SENTENCES[corpus]):
        text = _sentence(corpus, rng)
        takes.append({**_take(engine, rng, text, voice), "text": text})
    return {"takes": takes, "version": engine.version()}


def synthesize_sentences(corpus: str, seed: int, speakers: list[int] | None = None) -> dict:
    """Synthesises spoken-phonemes or voice-attributes (or only the given speakers).

    Returns:
        dict of arrays: `waves` (int16, all utterances concatenated), `lengths`, `text`,
        `speaker`, `voice`, `variant`, `gender`, `rate`, `pitch`, `snr_db`, `split`,
        `espeak`, and the phonemes of all utterances end to end: `phoneme_start` (sample at
        16 kHz), `phoneme` (eSpeak mnemonic), with `phoneme_count` per utterance.
    """
    table = speaker_table(seed, by_voice=corpus == "voice-attributes")
    indices = list(range(len(table))) if speakers is None else list(speakers)
    parts = _run_speakers(_synth_sentences, [(corpus, seed, i, table[i]) for i in indices],
                          corpus)
    takes = [t for part in parts for t in part["takes"]]
    speaker_of = np.repeat(indices, SENTENCES[corpus])
    phonemes = [p for t in takes for p in t["phonemes"]]
    return {
        "waves": np.concatenate([t["wave"] for t in takes]),
        "lengths": np.array([len(t["wave"]) for t in takes], np.int64),
        "text": np.array([t["text"] for t in takes]),
        "speaker": speaker_of.astype(np.int64),
        **{key: np.array([table[s][key] for s in speaker_of])
           for key in ("voice", "variant", "gender", "split")},
        "rate": np.array([t["rate"] for t in takes], np.int64),
        "pitch": np.array([t["pitch"] for t in takes], np.int64),
        "snr_db": np.array([t["snr"] for t in takes], np.float32),
        "phoneme_start": np.array([p[0] for p in phonemes], np.int64),
        "phoneme": np.array([p[1] for p in phonemes]),
        "phoneme_count": np.array([len(t["phonemes"]) for t in takes], np.int64),
        "espeak": np.array(parts[0]["version"]),
    }


def phoneme_class(mnemonic: str) -> str:
    """An eSpeak phoneme mnemonic without its stress marks; pauses (`_`, `_:`) are `sil`."""
    if mnemonic.startswith("_"):
        return SILENCE
    return mnemonic.lstrip("',") or SILENCE


SILENCE = "sil"


def frame_labels(starts: np.ndarray, names: list, num_samples: int, frame_step: int,
                 frame_length: int) -> np.ndarray:
    """The phoneme of every analysis frame of an utterance: the one sounding at the frame's
    centre sample. Before the first phoneme (the noise-only lead-in) and after the last one
    the label is `sil`; pauses are `sil` too.

    Args:
        starts: sample (at the utterance's rate) where each phoneme starts, ascending.
        names: eSpeak mnemonic of each phoneme.
        num_samples: the utterance's length in samples.
        frame_step: hop between frames in samples (frames start at multiples of it).
        frame_length: analysis window in samples.

    Returns:
        str array, one label per frame: ceil(num_samples / frame_step) frames, as the
        features have.
    """
    centres = features.frame_centres(-(-num_samples // frame_step), frame_step, frame_length)
    # eSpeak ends every utterance with a pause event, so the noisy tail is `sil` too.
    labels = np.array([SILENCE] + [phoneme_class(n) for n in names])
    return labels[np.searchsorted(np.asarray(starts), centres, side="right")]


def load_corpus(corpus: str, seed: int = 0) -> dict:
    """A built-in corpus (spoken-digits, spoken-phonemes, voice-attributes) for `seed`,
    synthesised on first use and cached."""
    path = cache.cache_dir() / f"{corpus}-seed{seed}-{corpus_key(corpus)}.npz"
    cached = cache.load_npz(path)
    if cached is not None:
        return cached
    made = synthesize_digits(seed) if corpus == "spoken-digits" else \
        synthesize_sentences(corpus, seed)
    cache.save_npz_atomic(path, **made)
    return made


def write_wavs(folder, split: str = "test", count: int = 20, seed: int = 0) -> list:
    """Writes `count` utterances of one split of the spoken-digits corpus, picked at random,
    as 16-bit WAV files `<split>-<index>-<digit>.wav`: audio to try `predict` on.

    Raises:
        UserError: if one of the files already exists (nothing is overwritten).
    """
    import soundfile

    corpus = load_corpus("spoken-digits", seed)
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
