"""Built-in music corpus `music-genres`, composed at random and rendered offline, so that every
label is exact.

Each song is drawn from a genre as musicians would describe it: a tempo range, a metre (a
waltz in 3/4, a march in 2/4), a drum pattern (backbeat, four-on-the-floor, swing ride,
bossa clave, one-drop, march snare), a bass line and a comping style, instruments to draw
from, and how often its key is major. Within a genre everything else varies: key, tempo,
instruments, mix levels, loudness, humanised timing and velocity, whether a lead melody or the
drums play, a room's reverberation, noise, and the overall level, so that no single cue gives
a genre away.

Each song also has three targets in [0, 1] like the music course project's emotion
regression, each a documented function of how the song was made plus a little noise
(`targets`): valence (mode, tempo, loudness), energy (loudness, note density, tempo) and
danceability (how steady and dance-like its beat is, and how close its tempo is to 120 bpm).

A song is 30 s cut into three 10 s clips; all clips of a song are in one split (by song,
stratified by genre).

Rendering: the notes become a Standard MIDI File (pretty_midi), rendered with the General MIDI
soundfont `TimGM6mb.sf2` that pretty_midi's wheel ships (Tim Brechbill, GPL-2; it is read, never
copied into the project) by midirenderer (MIT; TinySoundFont behind a Rust binding, installed
by pip alone). Rendering has no state between songs, so each song depends only on the seed
and its index, whichever process renders it.
"""

import importlib.metadata
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasaudio import cache, processes, progress
from kerasaudio.errors import UserError

# 2: reggae's eighths straight (swung, beat trackers took 2.5x its tempo); 3: shared
# instruments, dropped and ghost drum hits, more noise (v2's genres: 100 % after two epochs);
# 4: power chords with their octave (v3 doubled the root), walking bass approach notes a
# semitone from the next root (v3's could wrap an octave away).
CORPUS_VERSION = 4
SAMPLE_RATE = 16000
CLIP_SECONDS = 10.0
CLIPS_PER_SONG = 3
SONGS_PER_GENRE = 30
SPLIT_SONGS = {"train": 21, "val": 3, "test": 6}  # of each genre
RENDER_RATE = 48000  # what midirenderer writes
STEPS_PER_BEAT = 4   # the drum grid: sixteenth notes
TEMPO_SPAN = (60.0, 200.0)  # bpm mapped to 0..1 in the targets
DENSEST = 25.0  # notes per second that count as the densest (energy 1 from density)
TARGET_NOISE = 0.05
TARGETS = ("valence", "energy", "danceability")

# General MIDI percussion keys.
KICK, RIM, SNARE, CLAP, HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 39, 42, 44, 46, 49, 51
SHAKER = 70


@dataclass(frozen=True)
class Genre:
    """What makes a genre recognisable.

    Attributes:
        tempo: range of beats per minute.
        metre: beats per bar.
        drums: GM drum key -> the sixteenth-note steps it plays in `pattern_bars` bars.
        bass: (step, length in steps, chord tone) per bar; tone 0 root, 1 fifth, 2 octave,
            "walk" a walking line (a scale tone per beat, the last leading to the next root).
        comp: (step, length in steps) where the comping instrument plays the chord, per bar.
        instruments: part (bass, comp, lead) -> the GM programs (0-based) to draw from.
        major: probability that a song is in a major key.
        regularity: how steady and dance-like the beat is (0..1), for danceability.
        velocity: range of the song's loudness (MIDI velocity).
        swing: where an off-beat eighth falls within the beat (0.5 straight, 2/3 triplet).
        sevenths: chords with their sevenths (jazz, bossa).
        pattern_bars: bars the drum pattern spans.
        drum_probability: share of songs with drums.
        voicing: "triad", or "power" (root, fifth, octave).
    """

    tempo: tuple
    metre: int
    drums: dict
    bass: tuple
    comp: tuple
    instruments: dict
    major: float
    regularity: float
    velocity: tuple
    swing: float = 0.5
    sevenths: bool = False
    pattern_bars: int = 1
    drum_probability: float = 0.85
    voicing: str = "triad"


EIGHTHS_4 = tuple(range(0, 16, 2))
GENRES = {
    "rock": Genre(
        tempo=(100, 145), metre=4,
        drums={KICK: (0, 8, 10), SNARE: (4, 12), HAT: EIGHTHS_4},
        bass=tuple((s, 2, 0) for s in EIGHTHS_4), comp=tuple((s, 2) for s in EIGHTHS_4),
        instruments={"bass": (33, 34), "comp": (29, 30), "lead": (29, 30, 81)},
        major=0.5, regularity=0.8, velocity=(90, 120), voicing="power"),
    "disco": Genre(
        tempo=(115, 130), metre=4,
        drums={KICK: (0, 4, 8, 12), CLAP: (4, 12), OPEN_HAT: (2, 6, 10, 14),
               HAT: (1, 3, 5, 7, 9, 11, 13, 15)},
        bass=tuple((s, 2, 0 if s % 4 == 0 else 2) for s in EIGHTHS_4),
        comp=((2, 1), (6, 1), (10, 1), (14, 1)),
        instruments={"bass": (38, 39), "comp": (48, 49, 50, 4), "lead": (81, 62, 80)},
        major=0.5, regularity=1.0, velocity=(85, 115)),
    "jazz": Genre(
        tempo=(110, 200), metre=4, swing=2 / 3, sevenths=True,
        drums={RIDE: (0, 4, 6, 8, 12, 14), PEDAL_HAT: (4, 12)},
        bass=((0, 4, "walk"), (4, 4, "walk"), (8, 4, "walk"), (12, 4, "walk")),
        comp=((6, 2), (12, 3)),
        instruments={"bass": (32,), "comp": (0, 1, 4), "lead": (65, 66, 56, 11)},
        major=0.7, regularity=0.5, velocity=(55, 90)),
    "waltz": Genre(
        tempo=(84, 180), metre=3, drum_probability=0.3,
        drums={KICK: (0,), HAT: (4, 8)},
        bass=((0, 4, 0),), comp=((4, 3), (8, 3)),
        instruments={"bass": (32, 42, 58), "comp": (0, 21, 48), "lead": (40, 73, 21, 71)},
        major=0.8, regularity=0.55, velocity=(55, 95)),
    "bossa": Genre(
        tempo=(110, 145), metre=4, sevenths=True, pattern_bars=2,
        # The bossa clave (3-2) on the rim, the kick's "boom ... ba-boom", the hi-hat's foot
        # on 2 and 4.
        drums={RIM: (0, 6, 12, 20, 26), KICK: (0, 7, 8, 15, 16, 23, 24, 31),
               PEDAL_HAT: (4, 12, 20, 28), SHAKER: tuple(range(0, 32, 2))},
        bass=((0, 6, 0), (6, 2, 1), (8, 6, 1), (14, 2, 0)),
        comp=((0, 2), (3, 2), (6, 2), (10, 2), (13, 2)),
        instruments={"bass": (32, 33), "comp": (24,), "lead": (73, 65, 52)},
        major=0.6, regularity=0.75, velocity=(50, 85)),
    "reggae": Genre(
        tempo=(66, 90), metre=4,
        # The one-drop: kick and rim together on the third beat only.
        drums={KICK: (8,), RIM: (8,), HAT: EIGHTHS_4},
        bass=((0, 3, 0), (4, 2, 1), (7, 1, 0), (10, 2, 2), (12, 3, 1)),
        comp=((2, 1), (6, 1), (10, 1), (14, 1)),
        instruments={"bass": (33, 34), "comp": (27, 16, 17), "lead": (16, 22, 65)},
        major=0.4, regularity=0.75, velocity=(70, 100)),
    "march": Genre(
        tempo=(108, 128), metre=2,
        drums={KICK: (0, 4), SNARE: (0, 2, 3, 4, 6), CRASH: (0,)},
        bass=((0, 4, 0), (4, 4, 1)), comp=((2, 2), (6, 2)),
        instruments={"bass": (58, 57), "comp": (61, 57, 60), "lead": (56, 72, 61)},
        major=0.9, regularity=0.85, velocity=(90, 122)),
    "ballad": Genre(
        tempo=(60, 80), metre=4, drum_probability=0.6,
        drums={KICK: (0, 10), RIM: (8,), HAT: (0, 4, 8, 12)},
        bass=((0, 16, 0),), comp=tuple((s, 2) for s in EIGHTHS_4),
        instruments={"bass": (32, 33, 35), "comp": (0, 4, 46), "lead": (48, 73, 0, 40)},
        major=0.5, regularity=0.3, velocity=(40, 75)),
}
GENRE_NAMES = tuple(GENRES)
# Instruments of no genre in particular, which half of the parts take instead of their genre's.
SHARED_INSTRUMENTS = {"bass": (32, 33, 34, 38), "comp": (0, 4, 16, 25, 27, 48, 88),
                      "lead": (0, 40, 56, 65, 73, 81)}

MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
# Chord progressions as scale degrees (0 = the tonic's chord), one chord a bar.
PROGRESSIONS = {"major": ((0, 4, 5, 3), (0, 3, 4, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 0, 4)),
                "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4))}
BASS_OCTAVE, COMP_LOW, LEAD_LOW = 36, 52, 67  # MIDI notes: C2, E3, G4


def song_table(seed: int) -> list[dict]:
    """Every song's genre and split: SONGS_PER_GENRE of each genre, split SPLIT_SONGS."""
    rng = np.random.default_rng([seed, 1])
    songs = []
    for genre in GENRE_NAMES:
        order = rng.permutation(SONGS_PER_GENRE)
        bounds = np.cumsum([0] + list(SPLIT_SONGS.values()))
        split = np.empty(SONGS_PER_GENRE, dtype=object)
        for name, lo, hi in zip(SPLIT_SONGS, bounds[:-1], bounds[1:]):
            split[order[lo:hi]] = name
        songs += [{"genre": genre, "split": s} for s in split]
    return songs


def _scale_note(scale, tonic: int, degree: int) -> int:
    """The semitone (from C) of a scale degree, counting on past the octave."""
    return tonic + scale[degree % 7] + 12 * (degree // 7)


def _chord(scale, tonic: int, degree: int, sevenths: bool) -> list:
    """The chord on `degree`: stacked thirds of the scale, in semitones from C."""
    thirds = (0, 2, 4, 6) if sevenths else (0, 2, 4)
    return [_scale_note(scale, tonic, degree + k) for k in thirds]


def _in_register(note: int, low: int) -> int:
    """`note` moved by octaves into [low, low + 12)."""
    return low + (note - low) % 12


def draw_song(genre_name: str, rng) -> dict:
    """A song's generating settings, drawn within its genre."""
    genre = GENRES[genre_name]
    mode = "major" if rng.random() < genre.major else "minor"
    progression = PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))]
    return {
        "genre": genre_name, "mode": mode, "tonic": int(rng.integers(12)),
        "tempo": float(rng.uniform(*genre.tempo)), "progression": progression,
        # Half the parts take an instrument any genre might use: the instruments alone must
        # not give the genre away.
        "programs": {part: int(rng.choice(SHARED_INSTRUMENTS[part] if rng.random() < 0.5
                                          else choices))
                     for part, choices in genre.instruments.items()},
        "velocity": float(rng.uniform(*genre.velocity)),
        "levels": {part: int(rng.integers(75, 128)) for part in ("bass", "comp", "lead", "drums")},
        "lead": bool(rng.random() < 0.7), "drums": bool(rng.random() < genre.drum_probability),
        "drum_drop": float(rng.uniform(0.0, 0.25)), "ghosts": float(rng.uniform(0.0, 0.08)),
        "timing_ms": float(rng.uniform(0.0, 15.0)),    # humanised timing: std of each onset
        "velocity_spread": float(rng.uniform(2.0, 14.0)),
        "reverb_s": float(rng.uniform(0.2, 1.6)) if rng.random() < 0.5 else 0.0,
        "snr_db": float(rng.uniform(10.0, 40.0)), "gain_db": float(rng.uniform(-12.0, 0.0)),
        "target_noise": rng.normal(0.0, TARGET_NOISE, size=len(TARGETS)),
    }


def _walking(step: int, bar_steps: int, chord: list, next_root: int, key: tuple, rng) -> int:
    """A walking bass line's MIDI note: the root on the bar's first beat, scale tones between,
    and a semitone below or above the next bar's root on its last beat. `key`: (scale,
    tonic, the chord's degree)."""
    if step == 0:
        return _in_register(chord[0], BASS_OCTAVE)
    if step == bar_steps - STEPS_PER_BEAT:  # moved into the register before the semitone
        return _in_register(next_root, BASS_OCTAVE) + int(rng.choice((-1, 1)))
    scale, tonic, degree = key
    return _in_register(_scale_note(scale, tonic, degree + int(rng.integers(1, 6))),
                        BASS_OCTAVE)


def _drum_bar(genre: Genre, song: dict, bar: int, rng) -> list:
    """(step, GM drum key, accent) of the drums' hits in one bar: the genre's pattern, each
    hit left out with the song's `drum_drop` probability, and soft ghost hits on any step with
    its `ghosts` probability, so that no two bars, nor two songs, play the same pattern."""
    bar_steps = genre.metre * STEPS_PER_BEAT
    hits = []
    for drum, steps in genre.drums.items():
        for step in steps:
            if step // bar_steps == bar % genre.pattern_bars and \
                    rng.random() >= song["drum_drop"]:
                hits.append((step % bar_steps, drum,
                             1.0 if step % STEPS_PER_BEAT == 0 else 0.6))
    for step in np.flatnonzero(rng.random(bar_steps) < song["ghosts"]):
        hits.append((int(step), int(rng.choice((HAT, SNARE, KICK))), 0.4))
    return hits


def compose(song: dict, seconds: float, rng) -> dict:
    """The song's notes: part -> list of (start s, end s, MIDI key, velocity)."""
    genre = GENRES[song["genre"]]
    beat = 60.0 / song["tempo"]
    bar_steps = genre.metre * STEPS_PER_BEAT
    bars = int(np.ceil(seconds / (beat * genre.metre))) + 1
    scale = MAJOR if song["mode"] == "major" else MINOR

    def when(bar: int, step: float) -> float:
        beat_index, within = divmod(step, STEPS_PER_BEAT)
        # Swing delays the off-beat eighth (the third sixteenth of a beat).
        offset = genre.swing * STEPS_PER_BEAT if within == 2 else within
        return (bar * genre.metre + beat_index + offset / STEPS_PER_BEAT) * beat

    def note(bar, step, length, key, loudness=1.0):
        start = when(bar, step) + rng.normal(0.0, song["timing_ms"] / 1000)
        velocity = song["velocity"] * loudness + rng.normal(0.0, song["velocity_spread"])
        return (max(start, 0.0), max(start, 0.0) + length * beat / STEPS_PER_BEAT * 0.95,
                int(key), int(np.clip(velocity, 1, 127)))

    parts = {"bass": [], "comp": [], "lead": [], "drums": []}
    melody = 0  # the lead's scale degree, a random walk
    for bar in range(bars):
        degree = song["progression"][bar % len(song["progression"])]
        chord = _chord(scale, song["tonic"], degree, genre.sevenths)
        next_root = _chord(scale, song["tonic"],
                           song["progression"][(bar + 1) % len(song["progression"])], False)[0]
        for step, length, tone in genre.bass:
            if tone == "walk":
                key = _walking(step, bar_steps, chord, next_root,
                               (scale, song["tonic"], degree), rng)
            else:  # root, the fifth above it, or its octave
                key = _in_register(chord[0], BASS_OCTAVE) + (0, 7, 12)[tone]
            parts["bass"].append(note(bar, step, length, key, 0.9))
        root = _in_register(chord[0], COMP_LOW)
        voicing = ([root, root + 7, root + 12] if genre.voicing == "power"
                   else [_in_register(k, COMP_LOW) for k in chord])
        for step, length in genre.comp:
            for key in voicing:
                parts["comp"].append(note(bar, step, length, key, 0.75))
        if song["lead"]:
            for step in sorted(rng.choice(np.arange(0, bar_steps, 2),
                                          size=int(rng.integers(1, genre.metre + 2)),
                                          replace=False)):
                melody = int(np.clip(melody + rng.integers(-2, 3), -3, 9))
                key = _in_register(_scale_note(scale, song["tonic"], melody), LEAD_LOW) + \
                    12 * (melody >= 7)
                parts["lead"].append(note(bar, step, 2, key, 0.85))
        if song["drums"]:
            parts["drums"] += [note(bar, step, 1, drum, accent)
                               for step, drum, accent in _drum_bar(genre, song, bar, rng)]
    return {part: [n for n in notes if n[0] < seconds] for part, notes in parts.items()}


def targets(song: dict, notes: dict, seconds: float) -> dict:
    """valence, energy and danceability in [0, 1], from how the song was made:

    - valence = 0.5 major + 0.3 tempo + 0.2 loudness
    - energy = 0.4 loudness + 0.35 density + 0.25 tempo
    - danceability = 0.6 steadiness + 0.4 (1 - |tempo - 120 bpm| / 60 bpm)

    where tempo is (bpm - 60) / 140, loudness the mean velocity / 127, density the notes a
    second / 25, and steadiness the genre's regularity, halved without drums and lowered by
    humanised timing (1 - timing ms / 30); each clipped to [0, 1], then N(0, 0.05) noise
    added to each target and the result clipped to [0, 1] again."""
    every = [n for part in notes.values() for n in part]
    tempo = np.clip((song["tempo"] - TEMPO_SPAN[0]) / (TEMPO_SPAN[1] - TEMPO_SPAN[0]), 0, 1)
    loudness = np.mean([n[3] for n in every]) / 127 if every else 0.0
    density = min(len(every) / seconds / DENSEST, 1.0)
    steadiness = GENRES[song["genre"]].regularity * (1.0 if song["drums"] else 0.5) * \
        max(0.0, 1 - song["timing_ms"] / 30)
    values = (0.5 * (song["mode"] == "major") + 0.3 * tempo + 0.2 * loudness,
              0.4 * loudness + 0.35 * density + 0.25 * tempo,
              0.6 * steadiness + 0.4 * max(0.0, 1 - abs(song["tempo"] - 120) / 60))
    noisy = np.clip(np.array(values) + song["target_noise"], 0.0, 1.0)
    return dict(zip(TARGETS, noisy.astype(np.float32)))


def to_midi(song: dict, notes: dict) -> bytes:
    """The notes as a Standard MIDI File: one channel per part (drums on GM's channel 10),
    each part's mix level as its channel volume."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=song["tempo"])
    for part, part_notes in notes.items():
        drums = part == "drums"
        instrument = pretty_midi.Instrument(program=0 if drums else song["programs"][part],
                                            is_drum=drums, name=part)
        instrument.control_changes.append(pretty_midi.ControlChange(7, song["levels"][part], 0))
        instrument.notes = [pretty_midi.Note(velocity=v, pitch=k, start=s, end=e)
                            for s, e, k, v in part_notes]
        midi.instruments.append(instrument)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def soundfont_path() -> Path:
    """The General MIDI soundfont in pretty_midi's wheel (found without importing it).

    Raises:
        UserError: when pretty_midi is not installed.
    """
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("music-genres needs the package pretty_midi: pip install -r "
                        "requirements.txt")
    return Path(spec.submodule_search_locations[0]) / "TimGM6mb.sf2"


def render(midi: bytes, seconds: float) -> np.ndarray:
    """The MIDI rendered to mono float64 at SAMPLE_RATE, exactly `seconds` long."""
    import midirenderer
    import soundfile
    import soxr

    wav = midirenderer.render_wave_from(_soundfont_bytes(), midi)
    stereo, rate = soundfile.read(io.BytesIO(wav), dtype="float64", always_2d=True)
    mono = soxr.resample(stereo.mean(axis=1), rate, SAMPLE_RATE)
    length = int(seconds * SAMPLE_RATE)
    return np.pad(mono[:length], (0, max(0, length - len(mono))))


_SOUNDFONT = {}


def _soundfont_bytes() -> bytes:
    """The soundfont's 6 MB, read once per process."""
    if "bytes" not in _SOUNDFONT:
        _SOUNDFONT["bytes"] = soundfont_path().read_bytes()
    return _SOUNDFONT["bytes"]


def _room(signal: np.ndarray, rt60: float, rng) -> np.ndarray:
    """`signal` in a room: convolved with exponentially decaying noise (60 dB down after
    `rt60` s), mixed with the dry signal."""
    from scipy.signal import fftconvolve

    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    wet = fftconvolve(signal, response)[:len(signal)]
    wet *= np.sqrt(np.mean(signal ** 2) / (np.mean(wet ** 2) + 1e-12))
    return signal + wet * rng.uniform(0.2, 0.7)


def make_song(args) -> dict:
    """One song: composed, rendered, through a room and noise, cut into clips."""
    seed, index, genre = args
    rng = np.random.default_rng([seed, 2, index])
    seconds = CLIP_SECONDS * CLIPS_PER_SONG
    song = draw_song(genre, rng)
    notes = compose(song, seconds, rng)
    audio = render(to_midi(song, notes), seconds)
    if song["reverb_s"]:
        audio = _room(audio, song["reverb_s"], rng)
    power = np.mean(audio ** 2)
    audio = audio + rng.standard_normal(len(audio)) * np.sqrt(power / 10 ** (song["snr_db"] / 10))
    audio *= 0.9 * 10 ** (song["gain_db"] / 20) / (np.max(np.abs(audio)) + 1e-12)
    clip = int(CLIP_SECONDS * SAMPLE_RATE)
    return {"clips": [np.round(audio[k * clip:(k + 1) * clip] * 32767).astype(np.int16)
                      for k in range(CLIPS_PER_SONG)],
            "song": song, "targets": targets(song, notes, seconds)}


def synthesize(seed: int, songs: list[int] | None = None) -> dict:
    """Renders the corpus (or only the songs with the given indices), on every usable core.

    Returns:
        dict of arrays, one row per clip: `waves` (int16 at SAMPLE_RATE, all clips end to
        end), `lengths`, `genre` (index into GENRE_NAMES), `song`, `split`, `tempo` (bpm),
        `metre` (beats per bar), `tonic` (0 = C), `mode`, `drums` (whether they play), and
        the targets `valence`, `energy`, `danceability`.
    """
    table = song_table(seed)
    indices = list(range(len(table))) if songs is None else list(songs)
    jobs = [(seed, i, table[i]["genre"]) for i in indices]
    preload = [__name__, "scipy.signal", "soxr", "pretty_midi", "midirenderer"]
    with processes.pool(preload, min(processes.usable_cores(), len(jobs))) as pool:
        made = list(progress.each(pool.imap(make_song, jobs), "Rendering music-genres",
                                  len(jobs)))
    per_clip = np.repeat(np.arange(len(indices)), CLIPS_PER_SONG)
    songs_made = [m["song"] for m in made]

    def column(key):  # a song setting, repeated for each of the song's clips
        return np.array([s[key] for s in songs_made])[per_clip]

    return {
        "waves": np.concatenate([c for m in made for c in m["clips"]]),
        "lengths": np.array([len(c) for m in made for c in m["clips"]], np.int64),
        "genre": np.array([GENRE_NAMES.index(g) for g in column("genre")], np.int64),
        "song": np.array(indices, np.int64)[per_clip],
        "split": np.array([table[i]["split"] for i in indices])[per_clip],
        "tempo": column("tempo").astype(np.float32),
        "metre": np.array([GENRES[s["genre"]].metre for s in songs_made])[per_clip],
        "tonic": column("tonic"), "mode": column("mode"), "drums": column("drums"),
        **{t: np.array([m["targets"][t] for m in made], np.float32)[per_clip] for t in TARGETS},
    }


def version() -> str:
    """What the corpus's cache files are named by: its version and those of the renderer and
    of the package whose soundfont it uses.

    Raises:
        UserError: when either package or the soundfont is missing.
    """
    try:
        packages = [importlib.metadata.version(p) for p in ("midirenderer", "pretty_midi")]
    except importlib.metadata.PackageNotFoundError as error:
        raise UserError(f"music-genres needs the package {error.name}: pip install -r "
                        "requirements.txt") from None
    soundfont = soundfont_path()
    if not soundfont.is_file():
        raise UserError(f"{soundfont}: no such file; music-genres renders with the "
                        "soundfont pretty_midi's wheel ships (reinstall pretty_midi)")
    return "-".join([f"v{CORPUS_VERSION}"] + packages)


def load_corpus(seed: int = 0) -> dict:
    """music-genres for `seed`, rendered on first use and cached.

    Raises:
        UserError: when what it is rendered with is missing (`version`).
    """
    path = cache.cache_dir() / f"music-genres-{version()}-seed{seed}.npz"
    cached = cache.load_npz(path)
    if cached is not None:
        return cached
    made = synthesize(seed)
    cache.save_npz_atomic(path, **made)
    return made
