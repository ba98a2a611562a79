import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from kerasaudio import config, runs, settings
from kerasaudio.config import AUGMENTATIONS, DataConfig, FeatureConfig, RunConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
FIT_CONFIG = settings.fit_config  # the real one, which fit_config_of stops after


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=900)


@pytest.mark.parametrize("argv", [["--help"], ["fit", "--help"], ["archs"], ["--version"],
                                  ["fit", "--arch", "nonsense"]])
def test_help_does_not_import_tensorflow(argv):
    code = ("import sys, cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'no TF')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip().endswith("no TF"), out.stdout + out.stderr


def test_bad_arch_is_one_line_and_exit_status_2(tmp_path):
    result = run_cli("fit", "--arch", "transformer", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown architecture 'transformer'; valid: dense, gru, gru_attention, lstm, "
        "bilstm, conv1d, minirocket, cnn2d, frame_mlp, bilstm_frames, bigru_labeller"]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_ctrl_c_before_a_command_handles_it_exits_with_status_130(tmp_path, monkeypatch):
    import cli

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "listing", interrupted)
    result = CliRunner().invoke(cli.main, ["runs", str(tmp_path)])
    assert result.exit_code == 130 and result.stderr == "\ninterrupted\n", result.output


def test_bad_hyperparameter_value_is_a_usage_error():
    result = run_cli("fit", "--hidden", "12,x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--hidden" in result.stderr


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, corpus_cache):
    """(`fit` output, run directory) of a two-epoch run on 40 examples per split."""
    out = tmp_path_factory.mktemp("runs")
    result = run_cli("fit", "--arch", "gru_attention", "--limit", "40", "--epochs", "2",
                     "--hidden", "16", "--layers", "1", "--out", str(out),
                     env={"KERASAUDIO_CACHE": str(corpus_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = out.iterdir()
    return result, run_dir


@pytest.mark.slow
def test_fit_smoke_run_writes_a_complete_run_directory(smoke_run):
    result, run_dir = smoke_run
    assert run_dir.name.endswith("-gru_attention-spoken-digits")
    assert f"run directory: {run_dir}" in result.stdout
    assert "test accuracy" in result.stdout
    for name in ("config.json", "history.csv", "best.keras", "metrics.json", "predictions.csv",
                 "report.md", "plots/learning_curves.png",
                 "plots/confusion_digit_test_normalised.png"):
        assert (run_dir / name).stat().st_size > 0, name
    assert any((run_dir / "tensorboard").rglob("*tfevents*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and metrics["epochs_run"] == 2
    # spoken-digits trains with every augmentation by default; they change lengths, so no
    # padded fraction is measured (the pipeline's tests measure it without augmentation).
    assert "padded_fraction" not in metrics
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["augment"] == list(AUGMENTATIONS)
    assert set(config["augmentation"]) == {*AUGMENTATIONS, "spec_augment"}
    assert config["train"]["spec_augment"] is True  # spoken-digits' default too
    # 100 ms time masks at 20 ms frames, as the model's layer has them
    layer = runs.load_model(run_dir, compile=False).get_layer("spec_augment")
    assert config["augmentation"]["spec_augment"] == {
        k: getattr(layer, k) for k in ("time_masks", "time_width", "freq_masks", "freq_width")}
    assert config["augmentation"]["spec_augment"]["time_width"] == 5
    assert config["features"]["hop_ms"] == 20.0
    assert config["model"]["hparams"] == {"hidden": 16, "layers": 1, "dropout": 0.1,
                                          "conv_layers": 2, "conv_filters": 128,
                                          "conv_kernel": 5}
    # Not given, so gru_attention's own training settings, not TrainConfig's 32 and 1e-3.
    assert (config["train"]["batch_size"], config["train"]["lr"],
            config["train"]["schedule"]) == (64, 2e-3, "cosine")
    assert config["dataset"]["examples"] == {"train": 40, "val": 40, "test": 40}
    assert json.loads((run_dir / "status.json").read_text()) == {"status": "complete"}
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "padded_fraction" not in history[0]
    assert len((run_dir / "predictions.csv").read_text().splitlines()) == 41
    # Not a terminal: one plain line per epoch, no progress-bar redraws.
    assert "\b" not in result.stdout and "\x1b" not in result.stdout and "\r" not in result.stdout
    assert sum(line.startswith("Epoch ") for line in result.stdout.splitlines()) == 2
    log = (run_dir / "train.log").read_text().splitlines()
    assert [line.split(" - ")[0].split(" ", 2)[2] for line in log] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_loss: " in line for line in log)


@pytest.mark.slow
def test_predict_a_folder_of_wavs_and_export_for_tflite(smoke_run, corpus_cache, tmp_path):
    _, run_dir = smoke_run
    env = {"KERASAUDIO_CACHE": str(corpus_cache)}
    result = run_cli("data", "audio", str(tmp_path / "wavs"), "--count", "5", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "wavs").glob("test-*.wav"))) == 5
    result = run_cli("predict", str(run_dir), str(tmp_path / "wavs"), "--out",
                     str(tmp_path / "predictions.csv"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("file,digit,digit_probability,digit_p_zero,") and len(lines) == 6
    # stdout is the table alone (predict RUN wavs > preds.tsv): a header and a row per file.
    table = result.stdout.splitlines()
    assert table[0] == "file\tdigit\tdigit_probability" and len(table) == 6
    assert all(row.count("\t") == 2 for row in table)
    assert "wrote" in result.stderr
    # A failed recording among them: one line naming it, or left out with --skip-bad.
    soundfile.write(tmp_path / "wavs" / "silent.wav", np.zeros(8000), 8000)
    result = run_cli("predict", str(run_dir), str(tmp_path / "wavs"), env=env)
    assert result.returncode == 2 and "silent.wav: every sample is 0" in result.stderr
    result = run_cli("predict", str(run_dir), str(tmp_path / "wavs"), "--skip-bad", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(result.stdout.splitlines()) == 6 and "skipped 1 of 6 files" in result.stderr
    result = run_cli("predict", str(run_dir), str(tmp_path / "wavs"), "--skip-bad",
                     "--submission", str(tmp_path / "s.csv"), env=env)
    assert result.returncode == 2 and "a --submission needs every file's Id" in result.stderr
    result = run_cli("export", str(run_dir), "--format", "tflite")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "export" / "model.tflite").stat().st_size > 0
    again = run_cli("export", str(run_dir), "--format", "tflite")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (run_dir / "export" / "model.tflite").stat().st_size > 0  # kept


@pytest.mark.slow
def test_data_info_prints_tables_and_writes_histograms(tmp_path, corpus_cache):
    result = run_cli("data", "info", "--limit", "30", "--out", str(tmp_path),
                     env={"KERASAUDIO_CACHE": str(corpus_cache)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| train | 30 |" in result.stdout and "random guess 0.1000" in result.stdout
    for name in ("classes_digit.png", "lengths.png", "example_features.png", "info.md"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.parametrize("argv", [["compare", "no/such/runs"], ["evaluate", "."],
                                  ["predict", ".", "no-such.wav"], ["export", "."]])
def test_bad_paths_for_reports_are_one_line_and_exit_status_2(argv):
    result = run_cli(*argv)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "error:" in result.stderr


@pytest.mark.slow
def test_multitask_fit_then_finetune_on_voice_attributes(tmp_path, corpus_cache):
    env = {"KERASAUDIO_CACHE": str(corpus_cache)}
    common = ["--data", "voice-attributes", "--limit", "48", "--out", str(tmp_path)]
    fit = run_cli("fit", "--arch", "dense", "--tasks", "rate,accent", "--task-weight",
                  "accent=0.5", "--epochs", "1", *common, env=env)
    assert fit.returncode == 0, fit.stderr
    assert "accent accuracy" in fit.stdout and "rate Spearman" in fit.stdout
    source = fit.stdout.strip().splitlines()[-1].removeprefix("run directory: ")
    # --data left out: the source run's data set, here with its own --limit.
    tuned = run_cli("finetune", "--from", source, "--tasks", "pitch", "--freeze-epochs", "1",
                    "--epochs", "2", "--limit", "40", "--out", str(tmp_path), env=env)
    assert tuned.returncode == 0, tuned.stderr
    assert "test Spearman" in tuned.stdout
    config = json.loads((Path(tuned.stdout.strip().splitlines()[-1].removeprefix(
        "run directory: ")) / "config.json").read_text())
    assert config["source_run"]["tasks"] == ["accent", "rate"] or \
        config["source_run"]["tasks"] == ["rate", "accent"]
    assert config["finetune"]["freeze_epochs"] == 1
    assert config["data"]["name"] == "voice-attributes" and config["data"]["limit"] == 40


@pytest.mark.slow
@pytest.mark.parametrize("option, message", [
    (["--tasks", "loudness"], "error: data set 'voice-attributes' has no target loudness; "
                              "valid: rate, pitch, noise, accent"),
    (["--task-weight", "loudness=2"], "error: --task-weight names no task of the model: "
                                      "loudness; tasks: rate, pitch, noise, accent")])
def test_unknown_task_names_are_one_line(tmp_path, corpus_cache, option, message):
    result = run_cli("fit", "--data", "voice-attributes", "--limit", "8", "--epochs", "1",
                     "--arch", "dense", "--out", str(tmp_path), *option,
                     env={"KERASAUDIO_CACHE": str(corpus_cache)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    assert list(tmp_path.iterdir()) == []  # no run directory for a run that cannot start


def test_fit_config_reruns_a_run_with_the_options_given_winning(tmp_path):
    out = tmp_path / "runs"
    first = run_cli("fit", "--data", "digits-images", "--arch", "dense", "--epochs", "2",
                    "--lr", "0.005", "--batch-size", "16", "--set", "hidden=12", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    (run_dir,) = out.iterdir()
    again = run_cli("fit", "--config", str(run_dir / "config.json"), "--epochs", "1")
    assert again.returncode == 0, again.stderr[-2000:]
    (second,) = [p for p in out.iterdir() if p != run_dir]  # --out came from the record
    before = json.loads((run_dir / "config.json").read_text())
    after = json.loads((second / "config.json").read_text())
    assert after["train"]["epochs"] == 1  # given: it wins
    assert after["train"] == {**before["train"], "epochs": 1}
    for key in ("data", "features", "model"):
        assert after[key] == before[key]
    for bad in ([str(tmp_path / "missing.json")], [str(run_dir / "metrics.json")]):
        result = run_cli("fit", "--config", *bad)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_mixup_run_evaluates_predicts_and_exports_from_a_fresh_process(tmp_path):
    out = tmp_path / "runs"
    fit = run_cli("fit", "--data", "digits-images", "--arch", "dense", "--epochs", "1",
                  "--mixup", "0.2", "--out", str(out))
    assert fit.returncode == 0, fit.stderr[-2000:]
    (run_dir,) = out.iterdir()
    n_features = json.loads((run_dir / "config.json").read_text())["dataset"]["n_features"]
    np.save(tmp_path / "digit.npy", np.zeros((8, n_features), np.float32))
    for command in (("evaluate", str(run_dir)),
                    ("predict", str(run_dir), str(tmp_path / "digit.npy")),
                    ("export", str(run_dir), "--format", "keras")):
        result = run_cli(*command)  # a new process: mixup's loss is found by its name
        assert result.returncode == 0, result.stderr[-2000:]


TENSORFLOW_NOISE = ("I0000", "E0000", "W0000", "absl", "oneDNN", "cuda", "cuInit", "NodeDef")


@pytest.mark.slow
def test_fit_tune_and_export_print_no_tensorflow_noise(tmp_path):
    out = tmp_path / "runs"
    common = ("--data", "digits-images", "--arch", "dense")
    fit = run_cli("fit", *common, "--epochs", "1", "--out", str(out))
    tune = run_cli("tune", *common, "--tuner", "random", "--max-trials", "1", "--max-epochs",
                   "1", "--out", str(tmp_path / "tuning"))
    (run_dir,) = out.iterdir()
    export = run_cli("export", str(run_dir), "--format", "keras")
    for result in (fit, tune, export):
        assert result.returncode == 0, result.stderr[-2000:]
        noise = [line for line in result.stderr.splitlines()
                 if any(word in line for word in TENSORFLOW_NOISE)]
        assert not noise, noise


class _Configured(Exception):
    """Raised once `fit` has its RunConfig, before any data is loaded."""


def invoke(*args):
    """`cli.main(ARGS)` in this process."""
    import cli

    return CliRunner().invoke(cli.main, list(args))


def fit_config_of(monkeypatch, *args):
    """The RunConfig `fit ARGS` would train with."""
    resolved = []

    def stop(options, given):
        resolved.append(FIT_CONFIG(options, given))
        raise _Configured

    monkeypatch.setattr(settings, "fit_config", stop)
    result = invoke("fit", *args)
    assert isinstance(result.exception, _Configured), result.output
    return resolved[0]


def test_fit_reads_a_data_set_with_its_own_feature_defaults(monkeypatch):
    # Any field a data set sets for itself, not only those whose options default to None.
    own = {"kind": "logmel", "n_mels": 64, "n_mfcc": 20, "beat_sync": True, "hop_ms": 16.0}
    monkeypatch.setitem(config.BUILTIN_FEATURES, "music-genres", own)
    cfg = fit_config_of(monkeypatch, "--data", "music-genres", "--arch", "lstm")
    assert cfg.features == config.feature_defaults("music-genres")
    assert cfg.features.n_mels == 64 and cfg.features.beat_sync
    assert fit_config_of(monkeypatch, "--data", "music-genres", "--arch", "lstm", "--n-mels",
                         "40", "--no-beat-sync").features == FeatureConfig(**{
                             **own, "n_mels": 40, "beat_sync": False})


def test_main_run_twice_in_one_process_shows_each_library_line_once():
    logger = logging.getLogger("kerasaudio")
    before = len(logger.handlers)
    invoke("archs")
    invoke("archs")
    assert len(logger.handlers) == before + 1


def test_spec_augment_defaults_per_data_set_unless_a_record_or_search_says(tmp_path,
                                                                           monkeypatch):
    spec = lambda *args: fit_config_of(monkeypatch, *args).train.spec_augment  # noqa: E731
    assert spec() is True  # spoken-digits
    assert spec("--no-spec-augment") is False
    assert spec("--data", "digits-images") is False
    assert spec("--data", "digits-images", "--spec-augment") is True
    # A run's record keeps what it trained with; an option given wins.
    record = tmp_path / "config.json"
    record.write_text(RunConfig(train=TrainConfig(spec_augment=False)).to_json())
    assert spec("--config", str(record)) is False
    assert spec("--config", str(record), "--spec-augment") is True
    # A search's best.json: its trials' setting; none recorded means none (older searches).
    best = {"arch": "gru", "hparams": {}, "train": {}, "epochs": 3}
    for extra, expected in [({}, False),
                            ({"data": asdict(DataConfig()),
                              "features": asdict(FeatureConfig())}, False),
                            ({"data": asdict(DataConfig()), "features": asdict(FeatureConfig()),
                              "spec_augment": True}, True)]:
        (tmp_path / "best.json").write_text(json.dumps({**best, **extra}))
        assert spec("--hparams", str(tmp_path / "best.json")) is expected
    # --data naming other data than the search's: that data's own default.
    (tmp_path / "best.json").write_text(json.dumps({
        **best, "data": asdict(DataConfig(name="digits-images")),
        "features": asdict(FeatureConfig())}))
    assert spec("--hparams", str(tmp_path / "best.json"), "--data", "spoken-digits") is True


def test_spoken_digits_frames_are_20_ms_apart_unless_told(monkeypatch):
    assert fit_config_of(monkeypatch).features.hop_ms == 20.0
    assert fit_config_of(monkeypatch, "--hop-ms", "10").features.hop_ms == 10.0
    assert fit_config_of(monkeypatch, "--data", "digits-images").features.hop_ms == 10.0
    result = invoke("fit", "--hop-ms", "30")
    assert result.exit_code == 2
    assert "--hop-ms 30 is longer than the 25 ms window" in result.output


@pytest.mark.parametrize(("options", "message"), [
    (["--n-mfcc", "80"], "--n-mfcc 80 is more than the 40 mel bands"),
    (["--max-hz", "5000"], "--max-hz 5000 is above 4000 Hz, half the 8000 Hz sample rate"),
    (["--sample-rate", "16000", "--max-hz", "9000"], "--max-hz 9000 is above 8000 Hz")])
def test_feature_settings_the_audio_cannot_fill_are_refused(options, message):
    result = invoke("fit", *options)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_more_mfccs_with_more_mel_bands_and_logmel_without_mfccs_are_fine(monkeypatch):
    assert fit_config_of(monkeypatch, "--n-mfcc", "60", "--n-mels", "64").features.n_mfcc == 60
    assert fit_config_of(monkeypatch, "--features", "logmel", "--n-mels", "8",
                         "--n-mfcc", "13").features.n_mels == 8


def test_feature_options_on_data_that_comes_as_features_are_refused(monkeypatch, tmp_path):
    # An X_TRAIN.ts holds its frames already: --hop-ms would be ignored without a word.
    path = tmp_path / "Toy_TRAIN.ts"
    path.write_text("@problemName Toy\n@univariate true\n@classLabel true a b\n@data\n"
                    "1,2,3:a\n")
    for options, named in ([["--hop-ms", "30"], "--hop-ms"],
                           [["--features", "logmel", "--n-mfcc", "20"], "--features, --n-mfcc"]):
        result = invoke("fit", "--data", str(path), *options, "--out", str(tmp_path / "out"))
        assert result.exit_code == 2, result.output
        assert f"{named}: {path} comes as features, not audio" in result.stderr
    result = invoke("fit", "--data", "digits-images", "--deltas")
    assert result.exit_code == 2 and "--deltas: digits-images comes as features" in result.stderr
    assert not (tmp_path / "out").exists()
    # --cmvn normalises the given features inside the model: it applies.
    assert fit_config_of(monkeypatch, "--data", str(path), "--cmvn").features.cmvn is True
    # `given`, the kind such data is recorded with, names it: as if left out. Audio has none.
    assert fit_config_of(monkeypatch, "--data", str(path), "--features", "given") == \
        fit_config_of(monkeypatch, "--data", str(path))
    result = invoke("fit", "--features", "given", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "--features given: spoken-digits is audio" in result.stderr
    result = invoke("data", "info", "--data", str(tmp_path / "gone.ts"), "--features", "given")
    assert result.exit_code == 2 and "gone.ts" in result.stderr, result.output
    assert "is audio" not in result.stderr
