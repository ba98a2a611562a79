"""predict on audio files, and exported models that compute their own features."""

import errno
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf
from click.testing import CliRunner
from conftest import make_sequences
from test_models import SMALL

import cli
from kerasaudio import audio, export, features, models, predict, runs, train, transfer
from kerasaudio.config import DataConfig, FeatureConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.datasets.base import Dataset, make_task
from kerasaudio.errors import UserError
from kerasaudio.models.inputs import InputSpec

RATE = 16000
# Deltas are in the configuration so the in-graph deltas are checked against training's too.
FEATURES = FeatureConfig(deltas=True)
PITCHES = {"low": 220.0, "mid": 660.0, "high": 1980.0}


def tone(pitch: float, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def tones(n: int, seed: int = 0):
    """Waveforms of noisy tones of three pitches and random lengths, with their classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(PITCHES), n)
    waves = [tone(list(PITCHES.values())[k], rng.uniform(0.1, 0.4), rng) for k in labels]
    return waves, labels


@pytest.fixture(scope="module")
def tone_run(tmp_path_factory):
    """A gru_attention run trained on MFCCs (with deltas) of tones."""
    waves, labels = tones(90)
    frames, lengths = features.extract(np.concatenate(waves), np.array([len(w) for w in waves]),
                                       FEATURES)
    names = list(PITCHES)
    data = Dataset(name="tones", frames=frames, lengths=lengths,
                   targets={"pitch": labels.astype(np.int64)}, tasks=[make_task("pitch", names)],
                   class_names={"pitch": names},
                   split=np.array(["train", "val", "test"])[np.arange(90) % 3],
                   features=FEATURES)
    cfg = RunConfig(features=FEATURES, out=str(tmp_path_factory.mktemp("runs")),
                    model=ModelConfig("gru_attention", {"hidden": 16, "layers": 1}),
                    train=TrainConfig(epochs=8, batch_size=8, lr=0.01))
    run_dir, metrics = train.fit(cfg, data, verbose=0)
    assert metrics["test"]["accuracy"] > 0.8  # a model that has learnt something to compare
    return run_dir


@pytest.fixture(scope="module")
def wav_folder(tmp_path_factory):
    """Tone files as a user brings them: WAV at 16 kHz and at 22,050 Hz in stereo, FLAC."""
    folder = tmp_path_factory.mktemp("audio")
    waves, labels = tones(6, seed=1)
    names = list(PITCHES)
    for i, (wave, label) in enumerate(zip(waves, labels)):
        if i == 4:
            import soxr

            stereo = np.stack([wave, wave], axis=1)
            soundfile.write(folder / f"{i}-{names[label]}.wav", soxr.resample(stereo, RATE, 22050),
                            22050, subtype="FLOAT")
        else:
            suffix = "flac" if i == 5 else "wav"
            soundfile.write(folder / f"{i}-{names[label]}.{suffix}", wave, RATE)
    return folder


def probabilities(rows, header) -> np.ndarray:
    columns = [i for i, name in enumerate(header) if name.startswith("pitch_p_")]
    return np.array([[float(row[i]) for i in columns] for row in rows])


def test_predict_names_the_class_of_each_audio_file(tone_run, wav_folder):
    header, rows = predict.predict_files(tone_run, [wav_folder])
    assert header[:3] == ["file", "pitch", "pitch_probability"]
    assert len(rows) == 6
    right = [row[1] == row[0].rsplit("-", 1)[1].split(".")[0] for row in rows]
    assert sum(right) >= 5
    np.testing.assert_allclose(probabilities(rows, header).sum(axis=1), 1.0, atol=1e-5)


def test_predict_takes_feature_arrays_and_checks_them(tone_run, tmp_path):
    wave = tone(PITCHES["high"], 0.3, np.random.default_rng(2))
    frames, _ = features.extract(wave, np.array([len(wave)]), FEATURES)
    np.save(tmp_path / "high.npy", frames)
    header, (row,) = predict.predict_files(tone_run, [tmp_path / "high.npy"])
    assert row[1] == "high"
    np.save(tmp_path / "bad.npy", frames[:, :13])
    with pytest.raises(UserError, match=r"bad.npy: expected a \(time, 39\) array"):
        predict.predict_files(tone_run, [tmp_path / "bad.npy"])
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(UserError, match="empty.wav: not a readable audio file"):
        predict.predict_files(tone_run, [tmp_path / "empty.wav"])
    # A failed recording is refused, not given a class with confidence.
    soundfile.write(tmp_path / "silent.wav", np.zeros(4000), 16000)
    with pytest.raises(UserError, match=r"silent.wav: every sample is 0 \(silence\)"):
        predict.predict_files(tone_run, [tmp_path / "silent.wav"])
    # A muted microphone's hiss of a step or two of 16 bits is no recording either.
    hiss = np.random.default_rng(4).integers(-1, 2, 4000).astype(np.int16)
    soundfile.write(tmp_path / "hiss.wav", hiss, 16000, subtype="PCM_16")
    with pytest.raises(UserError, match=r"hiss.wav: its loudest sample is -90.\d dBFS \(about "
                                         r"its mean\), below -60"):
        predict.predict_files(tone_run, [tmp_path / "hiss.wav"])
    soundfile.write(tmp_path / "offset.wav", np.full(4000, 0.01), 16000)  # DC alone: -40 dBFS
    with pytest.raises(UserError, match=r"offset.wav: its loudest sample is -inf dBFS"):
        predict.predict_files(tone_run, [tmp_path / "offset.wav"])
    quiet = (wave * 10 ** (-50 / 20) / np.max(np.abs(wave))).astype(np.float32)  # -50 dBFS
    soundfile.write(tmp_path / "quiet.wav", quiet, 16000, subtype="FLOAT")
    _, (row,) = predict.predict_files(tone_run, [tmp_path / "quiet.wav"])  # quiet, but sound
    soundfile.write(tmp_path / "click.wav", wave[:100], 16000)
    with pytest.raises(UserError, match=r"click.wav: 6.25 ms long, shorter than one analysis"):
        predict.predict_files(tone_run, [tmp_path / "click.wav"])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda dataset: dataset["class_names"]["pitch"].append("extra"),
     "has 3 outputs for task 'pitch', where config.json says 4 classes"),
    (lambda dataset: dataset.update(n_features=13), "takes 39 features a frame, where "
                                                   "config.json says 13"),
])
def test_a_model_that_is_not_its_run_s_is_refused(tone_run, tmp_path, edit, message):
    # As a best.keras copied from another run would be: its probabilities printed under the
    # wrong class names, or fed frames it cannot take.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.keras").write_bytes((tone_run / "best.keras").read_bytes())
    config = json.loads((tone_run / "config.json").read_text())
    edit(config["dataset"])
    (run_dir / "config.json").write_text(json.dumps(config))
    np.save(tmp_path / "frames.npy", np.ones((20, config["dataset"]["n_features"]), np.float32))
    with pytest.raises(UserError, match=message):
        predict.predict_files(run_dir, [tmp_path / "frames.npy"])


@pytest.mark.parametrize("status", ["interrupted", "running", "failed"])
def test_a_run_that_did_not_complete_is_used_with_a_warning(tone_run, tmp_path, caplog,
                                                             status):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("best.keras", "config.json"):
        (run_dir / name).write_bytes((tone_run / name).read_bytes())
    runs.write_json(run_dir / "status.json", {"status": status})
    wave = tone(PITCHES["low"], 0.3, np.random.default_rng(3))
    soundfile.write(tmp_path / "low.wav", wave, RATE)
    result = CliRunner().invoke(cli.main, ["predict", str(run_dir), str(tmp_path / "low.wav"),
                                           "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(f"the run is {status}, not complete") == 1, result.stderr
    with caplog.at_level(logging.WARNING, logger="kerasaudio"):
        predict.predict_files(tone_run, [tmp_path / "low.wav"])
    assert "not complete" not in caplog.text


def test_a_run_without_best_keras_is_named_with_the_likely_cause(tone_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tone_run, run_dir)
    (run_dir / "best.keras").unlink()
    with pytest.raises(UserError, match="has no best.keras \\(it was moved or deleted since"):
        runs.load_run(run_dir)
    runs.write_json(run_dir / "status.json", {"status": "interrupted"})
    with pytest.raises(UserError, match="has no best.keras \\(the run never finished an"):
        runs.load_run(run_dir)


def test_evaluating_a_run_that_did_not_complete_warns(tone_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tone_run, run_dir)
    runs.write_json(run_dir / "status.json", {"status": "interrupted"})
    result = CliRunner().invoke(cli.main, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("the run is interrupted, not complete") == 1, result.stderr
    # and report.md, read later and elsewhere, says so too (a finished run's does not)
    assert "**Not complete** (the run is interrupted)" in (run_dir / "report.md").read_text()
    assert "Not complete" not in (tone_run / "report.md").read_text()
    # Interrupted before its test predictions were written: one line, not a warning that
    # the best model is used followed by an error that it is not.
    (run_dir / "predictions.csv").unlink()
    result = CliRunner().invoke(cli.main, ["evaluate", str(run_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {run_dir / 'predictions.csv'}: no such file (has the run finished?)"]


def test_predict_never_writes_over_its_inputs_or_the_runs_record(tone_run, wav_folder,
                                                                tmp_path):
    wav = sorted(wav_folder.glob("*.wav"))[0]
    twin = tmp_path / "other" / wav.name  # a second file of the same name, elsewhere
    twin.parent.mkdir()
    twin.write_bytes(wav.read_bytes())
    kept = {path: path.read_bytes() for path in (wav, Path(tone_run) / "config.json", twin)}
    for paths, options, message in [
            ([wav_folder], ["--out", wav], "is one of the files to predict"),
            ([wav], ["--out", Path(tone_run) / "config.json"], "already exists"),
            ([wav], ["--out", twin], "already exists"),  # any file, not only a run's
            ([wav], ["--out", tmp_path / "nowhere" / "p.csv"], "does not exist"),
            ([wav], ["--out", tmp_path / "p.csv", "--submission", tmp_path / "p.csv"],
             "given for both"),
            ([wav], ["--out", tmp_path / "p.csv", "--submission", tmp_path / "no" / "s.csv"],
             "does not exist"),
            ([wav, twin], ["--out", tmp_path / "p.csv", "--submission", tmp_path / "s.csv"],
             f"{wav.name!r} names 2 files")]:
        result = CliRunner().invoke(cli.main, ["predict", str(tone_run), *map(str, paths),
                                               *map(str, options)])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert not (tmp_path / "p.csv").exists()  # nothing written before the submission failed


@pytest.mark.parametrize(("fmt", "writer", "error"), [
    ("keras", "shutil.copyfile", OSError(28, "No space left on device", "best.keras")),
    ("savedmodel", "kerasaudio.export._write_savedmodel",
     tf.errors.ResourceExhaustedError(None, None, "tmp/saved_model.pb; No space left on device")),
])
def test_an_export_on_a_full_disk_is_one_line_naming_the_export(tone_run, tmp_path,
                                                                monkeypatch, fmt, writer, error):
    def full(*_):
        raise error

    monkeypatch.setattr(writer, full)
    out = tmp_path / "exports" / "v2" / ("m.keras" if fmt == "keras" else "sm")
    result = CliRunner().invoke(cli.main, ["export", str(tone_run), "--format", fmt,
                                           "--out", str(out)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"error: {out}: No space left on device"), result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-made left, nor the folders made for it
    # Nor when the disk fills while the folders are made.
    made = Path.mkdir

    for full_at in ("v2", "exports"):  # the deepest folder, or one above it
        def mkdir_then_full(path, *args, full_at=full_at, **kwargs):
            if path.name == full_at:  # once the folders above it are made
                path.parent.mkdir(parents=True, exist_ok=True)
                raise OSError(28, "No space left on device", str(path))
            made(path, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir_then_full)
        result = CliRunner().invoke(cli.main, ["export", str(tone_run), "--format", fmt,
                                               "--out", str(out)])
        assert result.exit_code == 2 and "No space left" in result.stderr, result.output
        assert list(tmp_path.iterdir()) == []
    # A folder named through one that does not exist is that folder: kept, and none made.
    monkeypatch.setattr(Path, "mkdir", made)
    (tmp_path / "kept").mkdir()
    result = CliRunner().invoke(cli.main, ["export", str(tone_run), "--format", fmt, "--out",
                                           str(tmp_path / "x" / ".." / "kept" / out.name)])
    assert result.exit_code == 2 and "No space left" in result.stderr, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    (tmp_path / "kept" / out.name).mkdir()  # what is there is never written over
    result = CliRunner().invoke(cli.main, ["export", str(tone_run), "--format", fmt, "--out",
                                           str(tmp_path / "x" / ".." / "kept" / out.name)])
    assert result.exit_code == 2 and "already exists" in result.stderr, result.output


def test_tables_the_user_asks_for_never_replace_a_file(tone_run, tmp_path):
    victim = tmp_path / "best.keras"  # another run's model, say
    victim.write_bytes(b"a model")
    result = CliRunner().invoke(cli.main, ["compare", str(tone_run), "--csv", str(victim)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "already exists" in result.stderr and victim.read_bytes() == b"a model"
    result = CliRunner().invoke(cli.main, ["compare", str(tone_run), "--csv",
                                           str(tmp_path / "table.csv")])
    assert result.exit_code == 0 and tone_run.name in (tmp_path / "table.csv").read_text()
    # Two predicts of one run in the same second: each keeps its table.
    first = runs.write_numbered(tmp_path, "predict-20260101-000000", ".csv", "first\n")
    second = runs.write_numbered(tmp_path, "predict-20260101-000000", ".csv", "second\n")
    assert (first.name, second.name) == ("predict-20260101-000000.csv",
                                         "predict-20260101-000000-2.csv")
    assert (first.read_text(), second.read_text()) == ("first\n", "second\n")
    assert not list(tmp_path.glob("*.tmp"))
    # A link, even to nothing, is not written through.
    (tmp_path / "link.csv").symlink_to(tmp_path / "nothing")
    with pytest.raises(UserError, match="link.csv: already exists"):
        runs.check_new_file(tmp_path / "link.csv", "--out")


def test_a_new_file_is_written_where_hard_links_are_not_made(tmp_path, monkeypatch):
    def no_links(*_):  # vfat, exFAT, some network and FUSE mounts
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    runs.write_new_text(tmp_path / "p.csv", "a,b\n")
    assert (tmp_path / "p.csv").read_text() == "a,b\n"
    with pytest.raises(FileExistsError) as raised:  # the output named, not a temporary file
        runs.write_new_text(tmp_path / "p.csv", "c,d\n")
    assert raised.value.filename == str(tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == "a,b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


def test_finetune_warns_when_its_test_split_holds_the_source_s_training_files(tmp_path,
                                                                              caplog):
    # The source's files in another form (a CSV of them) draw splits of their own.
    files = [str(tmp_path / "recordings" / f"{i}.wav") for i in range(9)]
    source = tmp_path / "source"
    source.mkdir()
    runs.write_json(source / "splits.json", {"train": files[:5], "val": files[5:7],
                                             "test": files[7:]})
    data = make_sequences(9)  # every third example is a test one: 2, 5 and 8
    data.info = {"file": np.array(files)}
    with caplog.at_level(logging.WARNING, logger="kerasaudio"):
        train._warn_reused(str(source), data.subset("test"))
    assert f"2 of the 3 test examples were in the training or validation split of {source}" \
        in caplog.text


def test_finetune_on_the_source_s_data_keeps_the_source_s_splits(tone_run, tmp_path,
                                                                  monkeypatch):
    # Other shares or folds would draw a test split holding examples the backbone trained on.
    source = tmp_path / "source"
    source.mkdir()
    (tmp_path / "recordings").mkdir()
    config = json.loads((tone_run / "config.json").read_text())
    config["data"].update(name=str(tmp_path / "recordings"), test_fraction=0.1,
                          val_fraction=0.3, folds=5, fold=2)
    config["train"]["spec_augment"] = True
    (source / "config.json").write_text(json.dumps(config))
    (source / "best.keras").write_bytes((tone_run / "best.keras").read_bytes())
    cfg = transfer.finetune_config(source, DataConfig(name="x"), TrainConfig(epochs=4), 1,
                                   str(tmp_path), own_data=True)
    assert (cfg.data.test_fraction, cfg.data.val_fraction, cfg.data.folds, cfg.data.fold) == \
        (0.1, 0.3, 5, 2)
    # The source's SpecAugment layer comes with its backbone, and the record says so.
    assert cfg.train.spec_augment
    # Named as --data, the source's data set keeps its splits too.
    named = transfer.finetune_config(source, DataConfig(name=config["data"]["name"]),
                                     TrainConfig(epochs=4), 1, str(tmp_path))
    assert (named.data.test_fraction, named.data.fold) == (0.1, 2)
    # However its path is spelt.
    monkeypatch.chdir(tmp_path)
    spelt = transfer.finetune_config(source, DataConfig(name="recordings/"),
                                     TrainConfig(epochs=4), 1, str(tmp_path))
    assert (spelt.data.name, spelt.data.test_fraction, spelt.data.fold) == (
        str(tmp_path / "recordings"), 0.1, 2)
    # A fold ensemble's own data has no example that none of its members trained on.
    config["ensemble"] = {"of": "folds", "members": ["a", "b"]}
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="an ensemble of fold models"):
        transfer.finetune_config(source, DataConfig(name="x"), TrainConfig(epochs=4), 1,
                                 str(tmp_path), own_data=True)


def test_finetune_records_a_source_from_before_a_hyperparameter_as_it_was_built(tone_run,
                                                                               tmp_path):
    # A gru_attention run from before conv_layers had no convolutions, whatever today's
    # default: the fine-tuned run's record must not say it has.
    source = tmp_path / "source"
    source.mkdir()
    config = json.loads((tone_run / "config.json").read_text())
    config["model"] = {"arch": "gru_attention",
                       "hparams": {"hidden": 8, "layers": 1, "dropout": 0.1}}
    (source / "config.json").write_text(json.dumps(config))
    (source / "best.keras").write_bytes((tone_run / "best.keras").read_bytes())
    cfg = transfer.finetune_config(source, DataConfig(name="x"), TrainConfig(epochs=4), 1,
                                   str(tmp_path))
    assert cfg.model.hparams == {**models.hyperparameters("gru_attention"), "hidden": 8,
                                 "layers": 1, "conv_layers": 0}


def test_an_ensemble_s_batch_norm_stays_frozen_when_its_backbones_are_unfrozen():
    member = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4),
                               keras.layers.BatchNormalization()], name="member_0_backbone")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="label")(member(inputs)))
    transfer.set_backbone_trainable(model, [make_task("label", ["a", "b"])], True)
    assert member.layers[0].trainable and not member.layers[1].trainable


def test_finetune_says_when_the_backbone_would_never_unfreeze(tone_run, tmp_path, caplog,
                                                             monkeypatch):
    # A CLI test earlier in the session may have made kerasaudio's logger print on its own.
    monkeypatch.setattr(logging.getLogger("kerasaudio"), "propagate", True)
    cfg = transfer.finetune_config(tone_run, DataConfig(name="x"), TrainConfig(epochs=2), 5,
                                   str(tmp_path), own_data=True)
    assert cfg.finetune.freeze_epochs == 5
    assert "--freeze-epochs 5 is not below --epochs 2" in caplog.text
    caplog.clear()
    transfer.finetune_config(tone_run, DataConfig(name="x"), TrainConfig(epochs=6), 5,
                             str(tmp_path), own_data=True)
    assert "freeze" not in caplog.text


def serve_inputs(paths):
    """The files as the serving signature takes them: zero-padded batch and lengths."""
    waves = [audio.read(p, RATE) for p in paths]
    batch = np.zeros((len(waves), max(map(len, waves))), np.float32)
    for row, wave in enumerate(waves):
        batch[row, :len(wave)] = wave
    return batch, np.array([len(w) for w in waves], np.int32)


def test_savedmodel_computes_features_in_graph_and_matches_predict(tone_run, wav_folder,
                                                                   tmp_path):
    header, rows = predict.predict_files(tone_run, [wav_folder])
    path = export.export(tone_run, "savedmodel", tmp_path / "savedmodel")
    serve = tf.saved_model.load(str(path)).signatures["serve"]
    waveform, num_samples = serve_inputs([row[0] for row in rows])
    out = serve(waveform=tf.constant(waveform), num_samples=tf.constant(num_samples))
    np.testing.assert_allclose(out["pitch"].numpy(), probabilities(rows, header), atol=1e-4)
    assert [list(PITCHES)[k] for k in out["pitch_class"].numpy()] == [r[1] for r in rows]
    assert [b.decode() for b in out["pitch_label"].numpy()] == [r[1] for r in rows]
    with pytest.raises(UserError, match="already exists"):
        export.export(tone_run, "savedmodel", path)
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(UserError, match="notes.txt is a file, not a folder"):
        export.export(tone_run, "keras", tmp_path / "notes.txt" / "sub" / "m.keras")


def test_tflite_model_matches_predict(tone_run, wav_folder, tmp_path):
    header, rows = predict.predict_files(tone_run, [wav_folder])
    path = export.export(tone_run, "tflite", tmp_path / "model.tflite")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serve")
    got = []
    for row in rows:  # one file at a time, as an on-device caller would
        waveform, num_samples = serve_inputs([row[0]])
        got.append(runner(waveform=waveform, num_samples=num_samples)["pitch"][0])
    np.testing.assert_allclose(np.array(got), probabilities(rows, header), atol=1e-4)


def test_onnx_model_matches_the_keras_model_on_the_run_s_features(tone_run, wav_folder,
                                                                  tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")  # in requirements-dev.txt: CI runs it
    path = export.export(tone_run, "onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["features", "mask"]
    # The files' features as predict extracts them, zero-padded into one batch with a mask.
    record = runs.load_run(tone_run)
    files = predict.input_files([wav_folder])
    _, sequences = predict.featurize(files, record.config, record.dataset.n_features)
    width = max(len(x) for x in sequences)
    batch = np.zeros((len(sequences), width, sequences[0].shape[1]), np.float32)
    mask = np.zeros((len(sequences), width), bool)
    for row, x in enumerate(sequences):
        batch[row, :len(x)], mask[row, :len(x)] = x, True
    (got,) = session.run(None, {"features": batch, "mask": mask})
    want = runs.load_model(tone_run)({"features": batch, "mask": mask})
    want = np.asarray(want["pitch"] if isinstance(want, dict) else want)
    np.testing.assert_allclose(got, want, atol=1e-5)
    header, rows = predict.predict_files(tone_run, [wav_folder])
    np.testing.assert_allclose(  # and predict's probabilities, file by file
        got[[files.index(Path(r[0])) for r in rows]], probabilities(rows, header), atol=1e-4)


def test_keras_export_loads_in_safe_mode_and_librosa_features_cannot_be_exported(tone_run,
                                                                                 tmp_path):
    import keras

    with pytest.raises(UserError, match=r"model.h5: the keras format is a .keras archive"):
        export.export(tone_run, "keras", tmp_path / "model.h5")
    assert not (tmp_path / "model.h5").exists()
    path = export.export(tone_run, "keras", tmp_path / "model.keras")
    model = keras.models.load_model(path, safe_mode=True)
    assert set(model.output_names) == {"pitch"} or "pitch" in model.output
    with pytest.raises(UserError, match="chroma features are computed by librosa"):
        export.serving_function(model, RunConfig(features=FeatureConfig(kind="mfcc+chroma")),
                                {"pitch": list(PITCHES)})


def test_onnx_without_tf2onnx_is_one_line_before_anything_is_written(tone_run, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if it were not installed
    with pytest.raises(UserError, match="pip install tf2onnx onnx"):
        export.export(tone_run, "onnx", tmp_path / "out" / "model.onnx")
    assert not (tmp_path / "out").exists()


def _examples(n_features: int) -> tuple:
    """Training sequences for the architectures that adapt to them (minirocket)."""
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((length, n_features)).astype(np.float32)
                 for length in (12, 20, 16))


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_every_architecture_exports_to_onnx_with_the_keras_model_s_outputs(arch):
    onnxruntime = pytest.importorskip("onnxruntime")
    level = models.label_level(arch)
    task = make_task("label", ["a", "b", "c"], level=level)
    n = features.width("mfcc", FEATURES)
    spec = InputSpec(n, np.full(n, 0.5, np.float32), np.full(n, 2.0, np.float32),
                     examples=_examples(n))
    model = models.build(arch, spec, [task], **SMALL[arch])
    session = onnxruntime.InferenceSession(export._onnx_bytes(model))
    rng = np.random.default_rng(0)
    inputs = {}
    for i in model.inputs:  # sequences of 9 frames (the last 3 padding), or windows
        shape = [2, *[d or 9 for d in i.shape[1:]]]
        inputs[i.name] = (np.arange(9)[None, :] < [[9], [6]]) if i.dtype == "bool" \
            else rng.standard_normal(shape).astype(np.float32)
    (got,) = session.run(None, inputs)
    want = model(inputs)
    want = np.asarray(want["label"] if isinstance(want, dict) else want)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_every_architecture_exports_to_tflite_builtins(arch):
    """TFLite without the Flex delegate runs each architecture as the serving graph does."""
    level = models.label_level(arch)
    task = make_task("label", ["a", "b", "c"], level=level)
    n = features.width("mfcc", FEATURES)
    model = models.build(arch, InputSpec(n, np.zeros(n, np.float32), np.ones(n, np.float32),
                                         examples=_examples(n)), [task], **SMALL[arch])
    cfg = RunConfig(features=FEATURES, model=ModelConfig(arch, SMALL[arch]))
    names = {"label": ["a", "b", "c"]}
    runner = tf.lite.Interpreter(model_content=export._tflite_bytes(model, cfg, names)) \
        .get_signature_runner("serve")
    waveform = tone(PITCHES["mid"], 0.2, np.random.default_rng(3))[None, :]
    num_samples = np.array([waveform.shape[1] - 300], np.int32)  # with some zero padding
    got = runner(waveform=waveform, num_samples=num_samples)
    expected = tf.function(export.serving_function(model, cfg, names))(
        tf.constant(waveform), tf.constant(num_samples))["label"].numpy()
    assert got["label"].shape == expected.shape == ((1, 20, 3) if level == "frame" else (1, 3))
    np.testing.assert_allclose(got["label"], expected, atol=1e-5)
    # The class names come out with the indices: a caller needs no list of its own.
    assert [names["label"][k] for k in got["label_class"].ravel()] == \
        [b.decode() for b in got["label_label"].ravel()]
