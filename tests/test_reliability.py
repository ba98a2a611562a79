"""Nothing lost, no silent wrong result, one line for every bad input (issue 18): option
values, names that are paths, --overwrite before validation, divergence, metric direction,
locks, atomic writes and full disks."""

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_sequences

import cli
from kerasaudio import inference, interrupts, monitor, runs, train
from kerasaudio.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.errors import UserError
from tuning import search, spaces

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def one_line_exit_2(result) -> str:
    """The one stderr line of a refused command (and that it was refused so)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def tree(folder: Path) -> dict:
    """Every file under `folder` with its bytes: what a refused command must leave as it was
    (a search's lock file, `.NAME.lock` beside it, may be left; it holds no work)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not (p.name.startswith(".") and p.name.endswith(".lock"))}


@pytest.fixture
def finished_search(tmp_path) -> Path:
    """`out/` holding a search named `victim` and another named `other`."""
    out = tmp_path / "out"
    for name in ("victim", "other"):
        (out / name / "trial_0000").mkdir(parents=True)
        (out / name / search.SETTINGS_FILE).write_text("{}")
        (out / name / "trial_0000" / "trial.json").write_text('{"score": 0.9}')
    return out


# `tune --name victim --overwrite --out OUT --max-epochs 1` with these: each must be refused
# in one line with the finished search `victim` (and every other) left as it was.
TUNE_OVERWRITE_CASES = [
    ["--data", "digits-imagez"],                      # a typo in --data
    ["--data", "digits-images", "--objective", "val_nonsense"],
    ["--name", ".."], ["--name", "."], ["--name", "../victim"], ["--name", "a/b"],
    ["--name", ""], ["--tuner", "hyperbandd"], ["--arch", "nonsense"],
    ["--fix", "hidden=abc"], ["--seed", "-1"], ["--max-trials", "2"],
]
# `fit --out OUT` with these: one line, exit 2, nothing written.
FIT_OPTION_CASES = [
    ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-1"], ["--dropout", "nan"],
    ["--dropout", "1"], ["--momentum", "nan"], ["--clipnorm", "inf"], ["--weight-decay", "nan"],
    ["--t-mult", "nan"], ["--seed", "-1"], ["--seed", "99999999999"], ["--epochs", "0"],
    ["--set", "hidden=abc"], ["--set", "dropout=1.5"], ["--set", "dropout=nan"],
    ["--set", "layers=0"], ["--set", "layers=2.5"], ["--set", "nonsense=1"],
    ["--hidden", "0"], ["--task-weight", "digit=nan"], ["--task-weight", "digit"],
    ["--arch", "dense", "--set", "hidden=100,0"], ["--nonsense"], ["--batch-size", "x"],
    ["--augment", "echo"], ["--augment", "speed+speed"], ["--max-hz", "10"],
    ["--folds", "1"], ["--folds", "3", "--repeats", "2"], ["--ensemble", "1"], ["--ensemble"],
    ["--folds", "3", "--ensemble", "4"], ["--ensemble", "3", "--repeats", "2"],
    ["--val-fraction", "0.3"], ["--val-fraction", "1"], ["--test-fraction", "nan"],
    ["--sample-rate", "100"], ["--min-epoch-steps", "0"], ["--mixup", "nan"], ["--mixup", "inf"],
]


@pytest.mark.parametrize("options", TUNE_OVERWRITE_CASES, ids=lambda o: " ".join(o))
def test_tune_overwrite_deletes_nothing_when_anything_is_wrong(finished_search, options):
    before = tree(finished_search.parent)
    result = run_cli("tune", "--name", "victim", "--overwrite", "--out", str(finished_search),
                     "--max-epochs", "1", *options)
    one_line_exit_2(result)
    assert tree(finished_search.parent) == before


def test_overwrite_refuses_a_folder_that_is_not_a_search(tmp_path):
    (tmp_path / "runs" / "20260101-run").mkdir(parents=True)
    (tmp_path / "runs" / "20260101-run" / "best.keras").write_text("a model")
    before = tree(tmp_path / "runs")
    result = run_cli("tune", "--name", "runs", "--overwrite", "--out", str(tmp_path),
                     "--data", "digits-images", "--arch", "dense", "--max-epochs", "1")
    assert "is not a search" in one_line_exit_2(result)
    assert tree(tmp_path / "runs") == before


def test_a_search_directory_is_locked_against_a_second_process(tmp_path):
    directory = tmp_path / "search"
    with runs.locked(directory):
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from kerasaudio import runs\n"
             "from kerasaudio.errors import UserError\n"
             f"try:\n    runs.locked({str(directory)!r}).__enter__()\n"
             "except UserError as e:\n    print(e)"],
            cwd=ROOT, capture_output=True, text=True)
        assert f"is in use by process {os.getpid()}" in child.stdout, child.stderr
    with runs.locked(directory):  # released on exit: free again
        pass


def test_tune_names_the_process_that_holds_the_search(tmp_path):
    (tmp_path / "busy").mkdir()
    with runs.locked(tmp_path / "busy"):
        result = run_cli("tune", "--name", "busy", "--out", str(tmp_path), "--data",
                         "digits-images", "--arch", "dense", "--max-epochs", "1")
    assert f"in use by process {os.getpid()}" in one_line_exit_2(result)


@pytest.mark.parametrize("options", FIT_OPTION_CASES, ids=lambda o: " ".join(o))
def test_bad_fit_options_are_one_line_and_write_nothing(tmp_path, options):
    one_line_exit_2(run_cli("fit", "--out", str(tmp_path / "runs"), *options))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("make", ["file", "file-parent"])
def test_an_out_that_is_a_file_is_one_line(tmp_path, make):
    (tmp_path / "taken").write_text("not a folder")
    out = tmp_path / "taken" if make == "file" else tmp_path / "taken" / "runs"
    line = one_line_exit_2(run_cli("fit", "--data", "digits-images", "--arch", "dense",
                                   "--epochs", "1", "--out", str(out)))
    assert "is a file, not a folder" in line
    assert (tmp_path / "taken").read_text() == "not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_out_where_no_folder_can_be_made_is_one_line(tmp_path):
    # /proc refuses mkdir with ENOENT, even to root, whom os.access lets write anything.
    for command in (["fit", "--data", "digits-images", "--arch", "dense", "--epochs", "1"],
                    ["tune", "--data", "digits-images", "--arch", "dense", "--max-epochs", "1"]):
        line = one_line_exit_2(run_cli(*command, "--out", "/proc/kerasaudio-test/runs"))
        assert "/proc/kerasaudio-test" in line, line


def test_finetune_on_the_source_s_own_data_refuses_other_shares(tmp_path):
    line = one_line_exit_2(run_cli("finetune", "--from", str(tmp_path), "--val-fraction", "0.3"))
    assert "--val-fraction: fine-tuning on the --from run's own data keeps the shares" in line


def test_the_direction_of_every_metric_is_decided_in_one_place():
    for name in ("loss", "val_loss", "val_rate_mae", "val_rate_loss", "mae", "val_mse"):
        assert monitor.mode(name) == "min", name
    for name in ("accuracy", "val_accuracy", "val_accent_accuracy"):
        assert monitor.mode(name) == "max", name
    assert search.objective("val_rate_mae").direction == "min"
    assert search.objective("val_accuracy").direction == "max"


def test_a_checkpoint_on_mae_keeps_the_lowest(tmp_path):
    checkpoint = train.BestCheckpoint(tmp_path / "best.keras", "val_rate_mae")
    checkpoint.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    for epoch, mae in enumerate([0.3, 0.2, 0.25, 0.1, 0.4]):
        checkpoint.on_epoch_end(epoch, {"val_rate_mae": mae})
    assert checkpoint.best_epoch == 4


def toy_run(tmp_path, **train_options) -> RunConfig:
    return RunConfig(model=ModelConfig("dense", {"hidden": (8,)}),
                     train=TrainConfig(**{"epochs": 3, "batch_size": 8, **train_options}),
                     out=str(tmp_path))


def test_a_loss_that_becomes_nan_at_once_stops_with_one_line_and_keeps_the_history(tmp_path):
    with pytest.raises(train.Diverged, match="diverged: the loss became nan in epoch 1"):
        train.fit(toy_run(tmp_path, optimizer="sgd", lr=1e30), make_sequences(60), verbose=0)
    run_dir = the_run(tmp_path)
    assert runs.read_json(run_dir / "status.json")["status"] == "diverged"
    assert (run_dir / "config.json").exists() and (run_dir / "history.csv").exists()
    assert not (run_dir / "best.keras").exists() and not (run_dir / "resume").exists()
    assert len((run_dir / "history.csv").read_text().splitlines()) == 2  # stopped in epoch 1


class AtEpoch(keras.callbacks.Callback):
    """Calls `action(model)` when epoch `epoch` (0-based) begins: a mishap mid-run."""

    def __init__(self, epoch: int, action):
        super().__init__()
        self.epoch, self.action = epoch, action

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            self.action(self.model)


def poison(model):
    """Every weight NaN: a divergence later on."""
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])


def fill_the_disk(model):
    raise OSError(errno.ENOSPC, "No space left on device", "best.keras")


def test_a_divergence_after_a_good_epoch_tests_the_good_epoch(tmp_path):
    run_dir, metrics = train.fit(toy_run(tmp_path, epochs=5), make_sequences(60), verbose=0,
                                 callbacks=[AtEpoch(2, poison)])
    assert metrics["diverged"]["epoch"] == 3 and metrics["diverged"]["batch"] == 1
    assert metrics["epochs_run"] == 3 and metrics["best_epoch"] <= 2
    assert np.isfinite(metrics["test"]["loss"])
    assert runs.read_json(run_dir / "status.json")["status"] == "complete"


def test_a_write_that_fails_leaves_no_temporary_file_and_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    runs.write_json(path, {"accuracy": 0.9})
    assert (path.stat().st_mode & 0o777) == 0o644  # not mkstemp's private 0600

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        runs.write_json(path, {"accuracy": 0.1})
    assert os.listdir(tmp_path) == ["metrics.json"]
    assert runs.read_json(path) == {"accuracy": 0.9}


def test_a_full_disk_is_one_line_with_exit_status_2(tmp_path, monkeypatch):
    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runs, "write_text", full_disk)
    result = CliRunner().invoke(cli.main, ["data", "info", "--data", "digits-images",
                                           "--out", str(tmp_path / "info")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {tmp_path / 'info' / 'info.json'}: No space left "
                                     "on device; free some space and run the same command "
                                     "again")  # only fit and tune continue where they stopped


def test_a_full_disk_says_what_rerunning_fit_or_tune_does(tmp_path, monkeypatch):
    def full_disk(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device", "best.keras")

    real_search = search.search
    monkeypatch.setattr(train, "fit", full_disk)
    monkeypatch.setattr(search, "search", full_disk)
    fit = ["fit", "--data", "digits-images", "--arch", "dense", "--out", str(tmp_path)]
    tune = ["tune", "--data", "digits-images", "--arch", "dense", "--out", str(tmp_path)]
    for command, advice in [
            (fit, "again (it continues where it stopped)"),
            (fit + ["--no-resume"], "again"),  # which starts anew
            (tune, "again (it continues where it stopped)"),
            # the earlier search emptied: the new one is continued without --overwrite
            (tune + ["--overwrite"], "again without --overwrite (it continues where it stopped)")]:
        result = CliRunner().invoke(cli.main, command)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert result.stderr == ("error: best.keras: No space left on device; free some space "
                                 f"and run the same command {advice}\n"), command
    # A full disk in a trial's process ends the search with the same line, not trial after
    # trial failing with KerasTuner's tracebacks.
    # (Not monkeypatch.undo(): it would also undo conftest's restoring of the library's
    # logger, which the CLI stops propagating, and later tests would capture no log.)
    monkeypatch.setattr(search, "search", real_search)
    monkeypatch.setattr(search, "_result", full_disk)
    result = CliRunner().invoke(cli.main, tune + ["--tuner", "random", "--max-trials", "2",
                                                  "--max-epochs", "1"])
    assert result.exit_code == 2 and result.stderr == (
        "error: best.keras: No space left on device; free some space and run the same "
        "command again (it continues where it stopped)\n"), result.output
    # A full disk before the earlier search is emptied (the data's feature cache, say):
    # the same command, --overwrite included, still has everything to do.
    monkeypatch.setattr(search, "load_data", full_disk)
    result = CliRunner().invoke(cli.main, tune + ["--overwrite"])
    assert result.stderr.endswith("free some space and run the same command again\n")


def test_an_interrupted_distributed_search_says_what_rerunning_does(tmp_path, monkeypatch):
    def ctrl_c(*_, **__):  # the launcher stops its chief and workers, then raises
        raise KeyboardInterrupt

    monkeypatch.setattr(search, "launch_distributed", ctrl_c)
    result = CliRunner().invoke(cli.main, ["tune", "--data", "digits-images", "--arch", "dense",
                                           "--out", str(tmp_path), "--workers", "2"])
    assert result.exit_code == 130, result.output
    assert result.stderr.endswith(": interrupted; run the same command again (it continues "
                                  "where it stopped)\n"), result.stderr


def test_the_search_space_passes_the_hyperparameter_checks():
    """Every value a search may draw is a valid value for fit (dropout 0 is an int there)."""
    for arch in spaces.ARCHITECTURES:
        space = spaces.resolve([arch], spaces.Overrides.parse())
        checked = 0
        for key, (param, owners) in space.items():
            if owners is not None:
                for value in param.grid():
                    train.models.resolve(arch, {spaces.hp_name(key): value})
                    checked += 1
        assert checked, arch


def test_tune_refuses_an_unknown_objective_before_replacing_a_search(tmp_path):
    cfg = search.SearchConfig(
        run=RunConfig(data=DataConfig(name="digits-images")), archs=["dense"],
        overrides=spaces.Overrides.parse(), objective="val_nonsense", name="s",
        out=str(tmp_path))
    with pytest.raises(UserError, match="cannot monitor 'val_nonsense'"):
        search.load_data(cfg)
    with pytest.raises(UserError, match="--objective accuracy: a search is scored on the "
                                        "validation data; use val_accuracy"):
        search.validate(dataclasses.replace(cfg, objective="accuracy"))


def test_tune_refuses_an_architecture_the_data_cannot_train_before_any_trial(tmp_path):
    cfg = search.SearchConfig(
        run=RunConfig(data=DataConfig(name="digits-images")), archs=["dense", "frame_mlp"],
        overrides=spaces.Overrides.parse(), name="s", out=str(tmp_path))
    with pytest.raises(UserError, match="'frame_mlp' predicts one label per frame"):
        search.load_data(cfg)


def test_evaluate_split_val_scores_the_recorded_examples_after_the_data_grew(tmp_path):
    """The run's validation split is read from splits.json, not drawn again from the data,
    which after new files would put training examples into "validation"."""
    from test_readers import write_audio_folder, write_tone

    from kerasaudio import datasets, evaluate
    from kerasaudio.config import FeatureConfig

    root = write_audio_folder(tmp_path / "tones", per_class=8)
    cfg = RunConfig(data=DataConfig(name=str(root)), out=str(tmp_path / "runs"),
                    model=ModelConfig("dense", {"hidden": (8,)}),
                    train=TrainConfig(epochs=1, batch_size=8))
    run_dir, _ = train.fit(cfg, verbose=0)
    recorded = runs.read_json(run_dir / inference.SPLITS_FILE)
    assert len(recorded["val"]) > 0 and not set(recorded["val"]) & set(recorded["train"])
    rng = np.random.default_rng(5)
    for n in range(8, 14):  # the data grows
        write_tone(root / "low" / f"{n}.wav", 220.0, rng)
    grown = datasets.load(cfg.data, FeatureConfig())
    assert sorted(grown.subset("val").ids()) != sorted(recorded["val"])  # redrawn: the bug
    assert inference.recorded_split(run_dir, grown, "val").ids().tolist() == recorded["val"]
    report = evaluate.evaluate_run(run_dir, "val")
    assert sum(c["support"] for c in report["class"]["classes"].values()) == \
        len(recorded["val"])
    for old in recorded["val"][:1]:
        Path(old).unlink()  # an example of the split is gone: refused, not redrawn
    with pytest.raises(UserError, match="examples of the run's val split are no longer"):
        inference.recorded_split(run_dir, datasets.load(cfg.data, FeatureConfig()), "val")


def test_evaluate_split_val_of_a_folder_named_relatively_works_from_anywhere(tmp_path,
                                                                           monkeypatch):
    from test_readers import write_audio_folder

    from kerasaudio import evaluate

    write_audio_folder(tmp_path / "tones", per_class=8)
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig(data=DataConfig(name="tones"), out="runs",
                    model=ModelConfig("dense", {"hidden": (8,)}),
                    train=TrainConfig(epochs=1, batch_size=8))
    run_dir, _ = train.fit(cfg, verbose=0)
    val = len(runs.read_json(run_dir / inference.SPLITS_FILE)["val"])
    (tmp_path / "elsewhere" / "tones").mkdir(parents=True)  # the same words name other data
    for here in (tmp_path, tmp_path / "elsewhere"):
        monkeypatch.chdir(here)
        report = evaluate.evaluate_run(tmp_path / run_dir, "val")
        assert sum(c["support"] for c in report["class"]["classes"].values()) == val


@pytest.fixture
def small_run(tmp_path):
    run_dir, _ = train.fit(toy_run(tmp_path / "runs", epochs=1), make_sequences(45), verbose=0)
    return run_dir


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated", b"not a model at all"])
def test_a_damaged_best_keras_is_named_and_never_exported(small_run, tmp_path, damage):
    from kerasaudio import export

    (small_run / "best.keras").write_bytes(damage)
    with pytest.raises(UserError, match="best.keras: not a loadable Keras model") as error:
        runs.load_model(small_run)
    assert "not found" not in str(error.value)  # Keras's words for a file that is no zip
    for fmt, out in (("keras", "new/model.keras"), ("savedmodel", "new/savedmodel")):
        with pytest.raises(UserError, match="not a loadable Keras model"):
            export.export(small_run, fmt, tmp_path / out)
        assert not (tmp_path / "new").exists()  # not even the folder it would go in
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_compare_leaves_out_a_damaged_run_and_says_so(tmp_path):
    from kerasaudio import compare

    good, _ = train.fit(toy_run(tmp_path / "runs"), make_sequences(45), verbose=0)
    bad, _ = train.fit(toy_run(tmp_path / "runs", seed=1), make_sequences(45), verbose=0)
    (bad / "config.json").write_text('{"model": ')
    left_out = []
    rows = compare.table([str(tmp_path / "runs")], left_out=left_out)
    assert [r["run"] for r in rows if r.get("run") and "baseline" not in r["run"]] == \
        [good.name]
    assert len(left_out) == 1 and str(bad) in left_out[0]
    (good / "status.json").write_text("{broken")  # a damaged status: not counted on
    with pytest.raises(UserError):
        compare.table([str(tmp_path / "runs")], left_out=[])


def test_a_damaged_cache_file_is_made_again(tmp_path, monkeypatch):
    from kerasaudio import cache

    path = tmp_path / "features.npz"
    cache.save_npz_atomic(path, frames=np.ones(3))
    path.write_bytes(path.read_bytes()[:20])  # cut short
    assert cache.load_npz(path) is None and not path.exists()
    cache.save_npz_atomic(path, frames=np.ones(3))
    np.testing.assert_array_equal(cache.load_npz(path)["frames"], np.ones(3))


def test_a_damaged_resume_state_is_one_line(tmp_path):
    from kerasaudio import resume

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # after the first epoch's state was saved
                raise KeyboardInterrupt

    data = make_sequences(45)
    with pytest.raises(KeyboardInterrupt):
        train.fit(toy_run(tmp_path, epochs=3), data, verbose=0, callbacks=[Stop()])
    run_dir = the_run(tmp_path)
    state = resume.read_state(run_dir)
    (run_dir / resume.STATE_DIR / state["arrays"]).write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(UserError, match="damaged training state"):
        train.fit(toy_run(tmp_path, epochs=3), data, verbose=0)


@pytest.mark.parametrize("content", ['[1, 2]', '{"trial_id": "00"}', '"text"'])
def test_a_kerastuner_state_of_the_wrong_shape_is_named(tmp_path, content):
    cfg = search.SearchConfig(run=RunConfig(data=DataConfig(name="toy")), archs=["gru"],
                              overrides=spaces.Overrides.parse(), name="s", out=str(tmp_path))
    search.check_resumable(cfg, overwrite=False)
    (cfg.directory / "trial_0000").mkdir()
    (cfg.directory / "trial_0000" / "trial.json").write_text(content)
    with pytest.raises(UserError, match="trial.json: not a KerasTuner trial state"):
        search.check_resumable(cfg, overwrite=False)


def the_run(folder: Path) -> Path:
    """The one run directory under `folder` (hidden files beside it aside)."""
    (run_dir,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return run_dir


def run_stopped_by_a_full_disk(folder: Path, data) -> Path:
    """A 3-epoch toy run that a full disk stopped as its second epoch began."""
    with pytest.raises(OSError):
        train.fit(toy_run(folder, epochs=3), data, verbose=0,
                  callbacks=[AtEpoch(1, fill_the_disk)])
    return the_run(folder)


def test_a_full_disk_leaves_a_run_that_the_same_command_continues(tmp_path):
    data = make_sequences(45)
    run_dir = run_stopped_by_a_full_disk(tmp_path, data)
    assert runs.read_json(run_dir / "status.json")["status"] == "interrupted"
    resumed_dir, metrics = train.fit(toy_run(tmp_path, epochs=3), data, verbose=0)
    assert resumed_dir == run_dir and metrics["resumed_after_epoch"] == 1
    assert metrics["epochs_run"] == 3


def test_a_checkpoint_on_a_full_disk_leaves_no_partial_model_and_names_best_keras(tmp_path):
    class ModelOnAFullDisk:
        def save(self, path):
            Path(path).write_bytes(b"half a zip archive")
            raise OSError(errno.ENOSPC, "No space left on device")  # Keras names no file

    checkpoint = train.BestCheckpoint(tmp_path / "best.keras")
    checkpoint.set_model(ModelOnAFullDisk())
    with pytest.raises(OSError) as raised:
        checkpoint.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    assert raised.value.filename == str(tmp_path / "best.keras")
    assert list(tmp_path.iterdir()) == []

    class InterruptedSave:
        def save(self, path):
            Path(path).write_bytes(b"half a zip archive")
            raise KeyboardInterrupt

    checkpoint = train.BestCheckpoint(tmp_path / "best.keras")
    checkpoint.set_model(InterruptedSave())
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    assert list(tmp_path.iterdir()) == []


def test_a_run_being_resumed_elsewhere_is_not_resumed_twice(tmp_path):
    data = make_sequences(45)
    run_dir = run_stopped_by_a_full_disk(tmp_path, data)
    with runs.locked(run_dir, inside=True):
        with pytest.raises(UserError, match=f"is in use by process {os.getpid()}"):
            train.fit(toy_run(tmp_path, epochs=3), data, verbose=0)


class _Referent:
    pass


class _SwallowedInterrupt(keras.callbacks.Callback):
    """Presses Ctrl-C while a weakref callback runs, at the second batch: Python prints the
    KeyboardInterrupt raised there and drops it, as it does when a user's Ctrl-C lands in
    one of the many finalisers TensorFlow and Keras run while training."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == 2:
            target = _Referent()
            weakref.finalize(target, signal.raise_signal, signal.SIGINT)
            del target  # the last reference: the finaliser runs here


def _fit_pressing_ctrl_c(callbacks: list) -> _SwallowedInterrupt:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    presser = _SwallowedInterrupt()
    model.fit(np.zeros((32, 3)), np.zeros((32, 2)), batch_size=4, epochs=3, verbose=0,
              callbacks=[presser, *callbacks])
    return presser


# Python reports the swallowed KeyboardInterrupt as an unraisable exception.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_that_python_swallows_still_stops_training(ctrl_c_as_at_a_terminal):
    # Without the remembered signal, training runs to its end: 3 epochs of 8 batches.
    assert _fit_pressing_ctrl_c([]).batches == 24
    with pytest.raises(KeyboardInterrupt), interrupts.remembered():
        _fit_pressing_ctrl_c([interrupts.StopOnInterrupt()])
    # Nothing stays behind: the handler is Python's again, and no Ctrl-C is remembered.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    interrupts.check()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_that_no_later_batch_sees_lets_the_command_end(
        ctrl_c_as_at_a_terminal):
    # After the last batch the work is done: reporting it interrupted would have the user
    # redo it. (Here no callback looks after any batch.)
    with interrupts.remembered():
        _fit_pressing_ctrl_c([])


def test_an_exception_that_a_ctrl_c_turned_into_is_an_interruption(ctrl_c_as_at_a_terminal):
    # TensorFlow can turn a KeyboardInterrupt raised inside it into another exception.
    with pytest.raises(KeyboardInterrupt), interrupts.remembered():
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise SystemError("error return without exception set") from None
    with pytest.raises(SystemError), interrupts.remembered():
        raise SystemError("no Ctrl-C: an error like any other")


def test_an_ignored_sigint_stays_ignored():
    # As for `command &` in a script: Python then installs no handler of its own.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.remembered():
            signal.raise_signal(signal.SIGINT)
            assert not interrupts.requested()
    finally:
        signal.signal(signal.SIGINT, previous)
