"""What makes a spoken-digits model hear real people (issue 19): drawn voices, recording
channels, telephone-band features, per-utterance normalisation, and scoring a run on another
data set with the same classes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from conftest import make_sequences

import cli
from kerasaudio import crosseval, evaluate, features, inference, models
from kerasaudio.config import FeatureConfig, feature_defaults
from kerasaudio.datasets import audio_folder, speech_synth
from kerasaudio.datasets.audio_folder import labelled_files
from kerasaudio.errors import UserError
from kerasaudio.models.inputs import InputSpec
from kerasaudio.models.layers import UtteranceNormalization

ROOT = Path(__file__).resolve().parents[1]


def test_digit_speakers_are_many_distinct_drawn_voices_of_two_engines_split_by_speaker():
    table = speech_synth.digit_speaker_table(seed=0)
    espeak = [s for s in table if s["engine"] == "espeak"]
    pico = [s for s in table if s["engine"] == "pico"]
    assert len(espeak) == len(speech_synth.VOICES) * speech_synth.DIGIT_SPEAKERS_PER_VOICE
    assert len(pico) == len(speech_synth.PICO_VOICES) * speech_synth.PICO_SPEAKERS_PER_VOICE
    assert len(table) == len(espeak) + len(pico)
    assert len({s["variant_text"].split("\n", 2)[2] for s in espeak}) == len(espeak)
    assert len({(s["tract"], s["pitch_factor"]) for s in pico}) == len(pico)
    assert len({s["variant"] for s in table}) == len(table)
    splits = [s["split"] for s in table]
    assert {k: splits.count(k) for k in ("train", "val", "test")} == \
        speech_synth.DIGIT_SPLIT_SPEAKERS
    for split in ("train", "val", "test"):
        members = [s for s in table if s["split"] == split]
        assert {(s["engine"], s["gender"]) for s in members} == \
            {(e, g) for e in ("espeak", "pico") for g in ("male", "female")}
    assert table == speech_synth.digit_speaker_table(seed=0)  # deterministic for a seed
    assert splits != [s["split"] for s in speech_synth.digit_speaker_table(seed=1)]


def test_drawn_variants_keep_female_pitch_and_formants_above_male():
    table = speech_synth.digit_speaker_table(seed=0)

    def pitch(speaker):
        line = next(x for x in speaker["variant_text"].splitlines() if x.startswith("pitch"))
        return float(line.split()[1])

    espeak = [s for s in table if s["engine"] == "espeak"]
    female = [pitch(s) for s in espeak if s["gender"] == "female"]
    male = [pitch(s) for s in espeak if s["gender"] == "male"]
    assert min(female) > max(male)


def test_a_pico_speaker_speaks_at_its_drawn_pitch_whatever_its_tract(monkeypatch):
    import librosa

    # In this process, which has loaded TensorFlow: Pico must not call TensorFlow's FFT
    # functions, whose names its own share (a crash, not a failure, if it did).
    assert "tensorflow" in sys.modules
    # Without the recording channel, to hear the voice itself.
    monkeypatch.setattr(speech_synth, "_channel", lambda speech, snr, pad, rng: (speech, ""))
    engine = speech_synth.pico_engine("en-US")

    def take(tract, pitch_factor):
        speaker = {"tract": tract, "pitch_factor": pitch_factor}
        done = speech_synth._pico_take(engine, np.random.default_rng(0), "nine", speaker)
        f0, voiced, _ = librosa.pyin(done["wave"] / 32768.0, fmin=50, fmax=400, sr=16000)
        return np.median(f0[voiced]), len(done["wave"]), done["pitch"]

    low, long, low_setting = take(tract=0.8, pitch_factor=0.7)
    high, short, high_setting = take(tract=1.1, pitch_factor=1.4)
    # The same take's draws (speed, pitch jitter): only the speaker differs. Pico's pitch is
    # set so that resampling by the tract lands on the drawn pitch: twice as high here.
    assert high / low == pytest.approx(2.0, rel=0.1)
    assert high_setting / low_setting == pytest.approx(2.0, rel=0.02)  # as recorded
    assert long > short  # the longer vocal tract is the slower resampling


def test_pico_speakers_are_deterministic_for_a_seed(corpus_cache):
    table = speech_synth.digit_speaker_table(seed=0)
    pico = [i for i, s in enumerate(table) if s["engine"] == "pico"][:2]
    first = speech_synth.synthesize_digits(seed=0, speakers=pico)
    again = speech_synth.synthesize_digits(seed=0, speakers=pico)
    np.testing.assert_array_equal(first["waves"], again["waves"])
    assert set(first["voice"].tolist()) <= {f"pico-{v}" for v in speech_synth.PICO_VOICES}
    assert len(first["lengths"]) == 2 * len(speech_synth.DIGITS) * speech_synth.TAKES
    other = speech_synth.synthesize_digits(seed=1, speakers=pico)
    assert not np.array_equal(first["lengths"], other["lengths"])


def test_spoken_digits_without_a_working_ttspico_is_one_clear_error(monkeypatch, tmp_path):
    import ttspico

    monkeypatch.setattr(ttspico, "_LANG_DIR", str(tmp_path))  # no voice files there
    with pytest.raises(UserError, match=r"ttspico cannot find its en-US voice files in "):
        speech_synth.corpus_key("spoken-digits")
    monkeypatch.setitem(sys.modules, "ttspico", None)  # as if not installed
    with pytest.raises(UserError, match="needs the package ttspico.*pip install -r "
                                        "requirements.txt"):
        speech_synth.synthesize_digits(seed=0, speakers=[len(speech_synth.VOICES) *
                                                         speech_synth.DIGIT_SPEAKERS_PER_VOICE])
    speech_synth.corpus_key("spoken-phonemes")  # the other corpora need no Pico


def test_fit_without_ttspico_exits_2_with_one_line(tmp_path):
    code = ("import sys, cli\nsys.modules['ttspico'] = None\n"
            "cli.main(['fit', '--arch', 'dense', '--epochs', '1'])")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "KERASAUDIO_CACHE": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: spoken-digits needs the package ttspico (SVOX Pico's voices): pip install -r "
        "requirements.txt (import of ttspico halted; None in sys.modules)"]
    assert not list(tmp_path.iterdir())  # nothing synthesised or cached


def _band_energy(wave, low, high, rate=16000):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    frequency = np.fft.rfftfreq(len(wave), 1 / rate)
    return spectrum[(frequency >= low) & (frequency < high)].sum() / spectrum.sum()


def test_telephone_line_keeps_only_its_band():
    wave = np.random.default_rng(0).standard_normal(16000)
    assert _band_energy(wave, 4000, 8000) > 0.4
    line = speech_synth._telephone(wave)
    assert len(line) == len(wave)
    assert _band_energy(line, 4000, 8000) < 0.01
    assert _band_energy(line, 0, 200) < 0.02


def test_coloured_noise_has_its_slope_and_reverb_keeps_the_length():
    rng = np.random.default_rng(0)
    white, brown = (speech_synth._coloured_noise(32000, e, rng) for e in (0.0, 2.0))
    assert np.mean(white ** 2) == pytest.approx(1.0) == np.mean(brown ** 2)
    assert _band_energy(brown, 0, 500) > 5 * _band_energy(white, 0, 500)
    dry = np.zeros(8000)
    dry[100] = 1.0
    wet = speech_synth._reverberate(dry, 0.4, rng)
    assert len(wet) == len(dry) and np.abs(wet[2000:]).sum() > 0  # a tail after the click


def test_channel_and_voices_are_deterministic_for_a_seed(corpus_cache):
    first = speech_synth.synthesize_digits(seed=0, speakers=[7])
    again = speech_synth.synthesize_digits(seed=0, speakers=[7])
    np.testing.assert_array_equal(first["waves"], again["waves"])
    np.testing.assert_array_equal(first["channel"], again["channel"])
    assert len(set(first["channel"].tolist())) > 1  # conditions vary within a speaker


def test_max_hz_leaves_the_band_above_it_out_of_the_features():
    rate = 16000
    t = np.arange(rate // 2) / rate
    high = (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    low = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    band = FeatureConfig(kind="logmel", max_hz=4000.0)
    # Inner frames: the last one's cut-off sine leaks into every band.
    quiet = features.extract(high, np.array([len(high)]), band)[0][2:-3]
    loud = features.extract(low, np.array([len(low)]), band)[0][2:-3]
    assert quiet.max() < np.log(1e-3) < loud.max()  # 6 kHz is outside every band
    full = features.extract(high, np.array([len(high)]), FeatureConfig(kind="logmel"))[0]
    assert full[2:-3].max() > np.log(1e-3)


def test_spoken_digits_reads_the_telephone_band_with_per_utterance_normalisation():
    assert feature_defaults("spoken-digits").max_hz == 4000.0
    assert feature_defaults("spoken-digits").cmvn
    assert not feature_defaults("spoken-phonemes").cmvn


def test_utterance_normalisation_uses_each_sequence_s_real_frames_only():
    rng = np.random.default_rng(0)
    x = np.zeros((2, 9, 3), np.float32)
    x[0, :5] = rng.normal(4.0, 3.0, (5, 3))
    x[1] = rng.normal(-2.0, 0.5, (9, 3))
    x[0, 5:] = 1e3  # garbage in the padding
    mask = np.array([[True] * 5 + [False] * 4, [True] * 9])
    out = keras.ops.convert_to_numpy(UtteranceNormalization(epsilon=0.0)(x, mask=mask))
    np.testing.assert_allclose(out[0, :5].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out[0, :5].std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(out[1].std(axis=0), 1, atol=1e-4)
    assert (out[0, 5:] == 0).all()


def test_a_cmvn_model_ignores_a_constant_channel_offset():
    keras.utils.set_random_seed(0)
    data = make_sequences(30)
    mean, variance = data.subset("train").frame_statistics()
    spec = InputSpec(data.n_features, mean, variance, utterance_norm=True)
    model = models.build("gru_attention", spec, data.tasks, hidden=8)
    seq = data.sequences()[0][None]
    batch = {"features": seq, "mask": np.ones(seq.shape[:2], bool)}
    shifted = {**batch, "features": seq + np.array([3.0, -1.0, 0.5, 2.0, -4.0], np.float32)}
    np.testing.assert_allclose(model.predict(batch, verbose=0)["label"],
                               model.predict(shifted, verbose=0)["label"], atol=1e-5)


def test_frame_classifiers_refuse_cmvn():
    data = make_sequences(9)
    mean, variance = data.frame_statistics()
    with pytest.raises(UserError, match="--cmvn"):
        models.build("frame_mlp", InputSpec(5, mean, variance, utterance_norm=True), data.tasks)


def test_labels_match_the_run_s_classes_as_digits_or_words():
    classes = list(speech_synth.DIGITS)
    np.testing.assert_array_equal(
        crosseval.match_classes(["7", "seven", " Seven ", "0"], classes, "x"), [7, 7, 7, 0])
    with pytest.raises(UserError, match="'eleven' are not among the run's classes"):
        crosseval.match_classes(["7", "eleven"], classes, "x")
    with pytest.raises(UserError, match="'²' are not among the run's classes"):
        crosseval.match_classes(["²"], classes, "x")  # a digit int() cannot read
    # Classes apart by case only match exactly; a label that could be either is refused.
    np.testing.assert_array_equal(crosseval.match_classes(["c", "C"], ["C", "c"], "x"), [1, 0])
    with pytest.raises(UserError, match="or match several of them"):
        crosseval.match_classes([" c"], ["C", "c"], "x")


def test_an_evaluation_replaces_only_an_earlier_one_of_the_same_data(tmp_path):
    run_dir = tmp_path / "run"
    first, second = tmp_path / "a" / "test", tmp_path / "b" / "test"
    folder = crosseval._evaluation_folder(run_dir, first)
    assert folder == run_dir / "evaluations" / "test"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"data": "x", "source": str(first)}))
    assert crosseval._evaluation_folder(run_dir, first) == folder  # the same data again
    assert crosseval._evaluation_folder(run_dir, second) == run_dir / "evaluations" / "test-2"
    # An older record holds the path as typed: relative to a directory unknown now.
    (folder / "metrics.json").write_text(json.dumps({"data": "test"}))
    assert crosseval._evaluation_folder(run_dir, first) == run_dir / "evaluations" / "test-2"
    # A file of that name is the user's, and stays.
    (run_dir / "evaluations" / "test-2").write_text("notes")
    assert crosseval._evaluation_folder(run_dir, first) == run_dir / "evaluations" / "test-3"


def test_evaluate_data_counts_the_files_the_run_trained_on(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trained, validated, new = (tmp_path / "data" / n for n in ("a.wav", "b.wav", "c.wav"))
    (run_dir / "splits.json").write_text(json.dumps(
        {"train": [str(trained), "3f2a9c0d1e4b5a6c"], "val": [str(validated)],
         "test": [str(new)]}))
    monkeypatch.chdir(tmp_path)  # the files named as the user may type them
    assert inference.trained_on(run_dir, ["data/a.wav", str(validated), str(new)]) == 2
    assert inference.trained_on(run_dir, ["3f2a9c0d1e4b5a6c", "0123456789abcdef"]) == 1
    assert inference.trained_on(tmp_path, [str(trained)]) == 0  # no splits.json: nothing known
    # Relative to the directory fit ran in, wherever the check runs from.
    (run_dir / "splits.json").write_text(json.dumps(
        {"train": ["data/a.wav"], "val": [], "test": [], "relative_to": str(tmp_path)}))
    monkeypatch.chdir(run_dir)
    assert inference.trained_on(run_dir, [str(trained), "data/a.wav"]) == 1
    # A project moved since (the folder fit ran in is gone): from here, as its data is read.
    (run_dir / "splits.json").write_text(json.dumps(
        {"train": ["data/a.wav"], "val": [], "test": [], "relative_to": str(tmp_path / "old")}))
    monkeypatch.chdir(tmp_path)
    assert inference.trained_on(run_dir, [str(trained)]) == 1


def test_a_test_folder_alone_is_a_data_set_to_score_on_but_not_to_train_on(tmp_path):
    for name in ("3/a.wav", "three/b.wav"):
        (tmp_path / "test" / name).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(tmp_path / "test" / name, np.zeros(800), 8000)
    files, labels = labelled_files(tmp_path)
    assert sorted(labels) == ["3", "three"] and all(f.is_file() for f in files)
    with pytest.raises(UserError, match="has test/ but no train/"):
        audio_folder._from_folders(tmp_path)


def test_evaluate_data_refuses_a_split_it_would_ignore(tmp_path):
    for options, message in ((["--data", str(tmp_path), "--split", "val"], "--split val"),
                             (["--data", ""], "--data: an empty path")):
        result = CliRunner().invoke(cli.main, ["evaluate", str(tmp_path / "run"), *options])
        assert result.exit_code == 2 and message in result.stderr, result.output


def test_averages_leave_out_classes_absent_from_the_data_and_the_predictions():
    classes = list(speech_synth.DIGITS)
    perfect = evaluate.classification_metrics(np.zeros(5, int), np.zeros(5, int), classes)
    assert perfect["macro"]["f1"] == 1.0 and len(perfect["classes"]) == 10
    # A class predicted but absent from the data still counts against the model.
    wrong = evaluate.classification_metrics(np.array([0, 0]), np.array([0, 3]), classes)
    assert wrong["macro"]["f1"] == pytest.approx((2 / 3 + 0) / 2)


@pytest.mark.slow
def test_evaluate_a_run_on_another_data_set(tmp_path, corpus_cache):
    """A small run on the built-in corpus scored on an audio folder named by digits."""
    env = {"KERASAUDIO_CACHE": str(corpus_cache)}
    out = tmp_path / "runs"
    fit = subprocess.run([sys.executable, "cli.py", "fit", "--limit", "40", "--epochs", "1",
                          "--hidden", "8", "--layers", "1", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, **env})
    assert fit.returncode == 0, fit.stderr[-2000:]
    (run_dir,) = out.iterdir()
    corpus = speech_synth.load_corpus("spoken-digits", 0)
    offsets = np.concatenate([[0], np.cumsum(corpus["lengths"])])
    for i in np.flatnonzero(corpus["split"] == "test")[:12]:
        folder = tmp_path / "mine" / str(corpus["digit"][i])
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{i}.wav", corpus["waves"][offsets[i]:offsets[i + 1]], 16000)
    result = subprocess.run([sys.executable, "cli.py", "evaluate", str(run_dir), "--data",
                             str(tmp_path / "mine")], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir / "evaluations" / "mine" / "metrics.json").read_text())
    assert metrics["examples"] == 12
    predicted = metrics["predicted"]["digit"]
    truth = {f: speech_synth.DIGITS[int(Path(f).parent.name)] for f in predicted}
    accuracy = np.mean([predicted[f] == truth[f] for f in predicted])
    assert metrics["tasks"]["digit"]["accuracy"] == pytest.approx(accuracy)
    assert f"accuracy {accuracy:.4f}" in result.stdout
    for name in ("report.md", "predictions.csv", "confusion_counts.png", "confusion_norm.png"):
        assert (run_dir / "evaluations" / "mine" / name).stat().st_size > 0
    bad = tmp_path / "bad" / "eleven"
    bad.mkdir(parents=True)
    soundfile.write(bad / "x.wav", np.zeros(1600, np.float32), 16000)
    refused = subprocess.run([sys.executable, "cli.py", "evaluate", str(run_dir), "--data",
                              str(tmp_path / "bad")], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "not among the run's classes" in refused.stderr
