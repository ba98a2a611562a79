"""fit survives being killed: rerunning it continues the run to the result it would have had."""

import dataclasses
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import make_sequences

from kerasaudio import datasets, interrupts, models, resume, runs, settings, train
from kerasaudio.config import DataConfig, ModelConfig, RunConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# Dropout and SpecAugment draw random numbers every batch, so a resumed run only matches an
# uninterrupted one if their generators' states are restored too.
CONFIG = dict(model=ModelConfig("gru_attention", {"hidden": 8, "layers": 1, "dropout": 0.3}),
              train=TrainConfig(epochs=6, batch_size=8, spec_augment=True, patience=3))

KILLED_RUN = """
import os, signal, sys
sys.path[:0] = [{tests!r}, {root!r}]
import keras
from conftest import make_sequences
from kerasaudio import runs, train
from kerasaudio.config import ModelConfig, RunConfig, TrainConfig

class KillMidEpoch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)

cfg = RunConfig(out={out!r}, model=ModelConfig("gru_attention", {hparams!r}),
                train=TrainConfig(**{train!r}))
train.fit(cfg, make_sequences(120), verbose=0, callbacks=[KillMidEpoch()])
"""


def config(out) -> RunConfig:
    return RunConfig(out=str(out), **CONFIG)


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C at the start of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def history_epochs(run_dir: Path) -> list:
    rows = (run_dir / "history.csv").read_text().splitlines()[1:]
    return [int(row.split(",")[0]) for row in rows]


def test_a_killed_fit_resumes_to_the_uninterrupted_result(tmp_path):
    # 40 training sequences are 5 batches; an epoch is 50 steps (min_epoch_steps), so the
    # kill at step 123 falls in epoch 3, in the middle of a pass over the data.
    data = make_sequences(120)
    _, uninterrupted = train.fit(config(tmp_path / "whole"), data, verbose=0)

    out = tmp_path / "killed"
    script = KILLED_RUN.format(tests=str(ROOT / "tests"), root=str(ROOT), out=str(out),
                               kill_at=123, hparams=CONFIG["model"].hparams,
                               train={"epochs": 6, "batch_size": 8, "spec_augment": True,
                                      "patience": 3})
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "running"
    saved = json.loads((run_dir / "resume" / "state.json").read_text())
    assert 1 <= saved["epoch"] < 6

    resumed_dir, resumed = train.fit(config(out), data, verbose=0)
    assert resumed_dir == run_dir
    assert resumed["resumed_after_epoch"] == saved["epoch"]
    assert history_epochs(run_dir) == list(range(6))
    assert resumed["test"] == uninterrupted["test"]
    assert resumed["final_train_loss"] == uninterrupted["final_train_loss"]
    assert json.loads((run_dir / "status.json").read_text()) == {"status": "complete"}
    assert not (run_dir / "resume").exists()
    # A complete run is never continued: the same command again starts a new one.
    assert train.fit(config(out), data, verbose=0)[0] != run_dir


def test_an_interrupted_fit_is_marked_and_resumed_only_with_the_same_settings(tmp_path,
                                                                              caplog):
    data = make_sequences(60)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config(tmp_path), data, verbose=0, callbacks=[InterruptAt(2)])
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    assert history_epochs(run_dir) == [0, 1]

    other = RunConfig(out=str(tmp_path), model=CONFIG["model"],
                      train=TrainConfig(epochs=6, batch_size=8, spec_augment=True, patience=3,
                                        lr=0.01))
    with caplog.at_level("INFO", logger="kerasaudio.resume"):
        assert train.fit(other, data, verbose=0)[0] != run_dir  # different settings: a new run
    # and the user hears which setting kept the interrupted run from being continued
    assert f"not resuming {run_dir}: its train.lr differ" in caplog.text
    assert train.fit(config(tmp_path), data, verbose=0, resume=False)[0] != run_dir

    # `evaluate --split val` of the interrupted run predicted with the best model so far;
    # once training goes on, those predictions are no longer the run's.
    (run_dir / "predictions_val.csv").write_text("id,label\n")
    resumed_dir, metrics = train.fit(config(tmp_path), data, verbose=0)
    assert resumed_dir == run_dir and metrics["resumed_after_epoch"] == 2
    assert history_epochs(run_dir)[:2] == [0, 1]
    assert not (run_dir / "predictions_val.csv").exists()


def test_a_resumed_run_records_the_bad_files_its_own_session_left_out(tmp_path):
    """The same examples, another bad file left out (one deleted, another gone bad)."""
    first = dataclasses.replace(make_sequences(60), skipped=["tones/mid/9.wav: cut short"])
    with pytest.raises(KeyboardInterrupt):
        train.fit(config(tmp_path), first, verbose=0, callbacks=[InterruptAt(2)])
    (run_dir,) = tmp_path.iterdir()
    now = dataclasses.replace(first, skipped=["tones/low/3.wav: holds no samples"])
    assert train.fit(config(tmp_path), now, verbose=0)[0] == run_dir
    recorded = runs.read_json(run_dir / "config.json")
    assert recorded["dataset"]["skipped"] == ["tones/low/3.wav: holds no samples"]


class CtrlCTurnedInto(keras.callbacks.Callback):
    """Ctrl-C at the start of epoch 2, coming out of TensorFlow as `error`."""

    def __init__(self, error):
        super().__init__()
        self.error = error

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                raise self.error from None


@pytest.mark.parametrize("error", [OSError(errno.EIO, "Input/output error"),
                                   SystemError("error return without exception set")])
def test_a_ctrl_c_that_came_out_as_another_error_leaves_a_run_to_continue(
        tmp_path, error, ctrl_c_as_at_a_terminal):
    # Marked failed, the run would never be continued: rerunning would start it again.
    data = make_sequences(60)
    with pytest.raises(KeyboardInterrupt), interrupts.remembered():
        train.fit(config(tmp_path), data, verbose=0, callbacks=[CtrlCTurnedInto(error)])
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    resumed_dir, metrics = train.fit(config(tmp_path), data, verbose=0)
    assert resumed_dir == run_dir and metrics["resumed_after_epoch"] == 2


@pytest.mark.parametrize("older", ["mixup", "spec_augment masks", "fingerprint"])
def test_a_run_recorded_by_an_older_kerasaudio_is_continued(tmp_path, older, caplog):
    data = make_sequences(60)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config(tmp_path), data, verbose=0, callbacks=[InterruptAt(2)])
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "config.json").read_text())
    # as an older kerasaudio wrote it: before mixup existed, before SpecAugment's masks
    # or the data's fingerprint were recorded
    section, key = {"mixup": ("train", "mixup"),
                    "spec_augment masks": ("augmentation", "spec_augment"),
                    "fingerprint": ("dataset", "fingerprint")}[older]
    written = json.loads(json.dumps(record))
    del record[section][key]
    (run_dir / "config.json").write_text(json.dumps(record))
    # Another option names that option alone: what it never recorded is no setting to give.
    with caplog.at_level("INFO", logger="kerasaudio.resume"):
        assert resume.find(tmp_path, {**written, "train": {**written["train"], "lr": 0.5}}) \
            is None
    assert f"not resuming {run_dir}: its train.lr differ;" in caplog.text
    resumed_dir, metrics = train.fit(config(tmp_path), data, verbose=0)
    assert resumed_dir == run_dir and metrics["resumed_after_epoch"] == 2


def changed_with_the_same_counts(data):
    """`data` with one frame of its first example changed: every count the same."""
    frames = data.frames.copy()
    frames[0] += 1.0
    return dataclasses.replace(data, frames=frames)


def test_an_interrupted_fit_is_never_continued_on_data_changed_with_the_same_counts(
        tmp_path, caplog):
    data = make_sequences(60)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config(tmp_path), data, verbose=0, callbacks=[InterruptAt(2)])
    (run_dir,) = tmp_path.iterdir()
    with caplog.at_level("WARNING", logger="kerasaudio.resume"):
        again, metrics = train.fit(config(tmp_path), changed_with_the_same_counts(data),
                                   verbose=0)
    assert again != run_dir and "resumed_after_epoch" not in metrics
    assert f"not resuming {run_dir}: the examples it trained on changed since" in caplog.text
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    # the data it trained on continues it
    assert train.fit(config(tmp_path), data, verbose=0)[1]["resumed_after_epoch"] == 2


class InterruptSecondRun(keras.callbacks.Callback):
    """Ctrl-C at the start of an epoch (the second) of the second run it is given to."""

    def __init__(self, epoch=1):
        super().__init__()
        self.runs, self.epoch = 0, epoch

    def on_train_begin(self, logs=None):
        self.runs += 1

    def on_epoch_begin(self, epoch, logs=None):
        if self.runs == 2 and epoch == self.epoch:
            raise KeyboardInterrupt


def interrupted_experiment(out, repeats: int, epochs: int, at_epoch: int = 1):
    """`fit --repeats` of a small dense model stopped by Ctrl-C in its second run: its data,
    its config and the experiment directory it left."""
    data = make_sequences(60)
    cfg = RunConfig(out=str(out), model=ModelConfig("dense", {"hidden": 8}),
                    train=TrainConfig(epochs=epochs, batch_size=16, seed=5))
    with pytest.raises(KeyboardInterrupt):
        train.fit_repeats(cfg, repeats, data, verbose=0,
                          callbacks=[InterruptSecondRun(epoch=at_epoch)])
    (experiment,) = Path(out).iterdir()
    return data, cfg, experiment


def test_an_interrupted_experiment_keeps_its_finished_runs_and_resumes_the_rest(tmp_path):
    data, cfg, experiment = interrupted_experiment(tmp_path, repeats=3, epochs=3)
    first, second = sorted(p for p in experiment.iterdir() if p.is_dir())
    first_written = (first / "metrics.json").read_text()

    again, results = train.fit_repeats(cfg, 3, data, verbose=0)
    assert again == experiment and len(results) == 3
    assert (first / "metrics.json").read_text() == first_written  # not run again
    assert results[1]["resumed_after_epoch"] == 1
    assert sorted(runs.read_json(p / "config.json")["train"]["seed"]
                  for p in runs.experiment_runs(experiment)) == [5, 6, 7]
    # Every hyperparameter, given or default, as the runs' config.json: a default changed
    # later must not make the record say another model.
    assert runs.read_json(experiment / "experiment.json")["config"]["model"]["hparams"] == \
        json.loads(json.dumps(models.resolve("dense", {"hidden": 8})))


def test_an_interrupted_experiment_is_never_continued_on_changed_data(tmp_path, caplog):
    # Its finished runs would be averaged with runs on the new data as one experiment.
    data, cfg, experiment = interrupted_experiment(tmp_path, repeats=2, epochs=2)
    with caplog.at_level("WARNING", logger="kerasaudio.resume"):
        again, _ = train.fit_repeats(cfg, 2, changed_with_the_same_counts(data), verbose=0)
    assert again != experiment and len(runs.experiment_runs(again)) == 2
    assert f"not continuing {experiment}: the examples it trained on changed since" in \
        caplog.text
    assert len(runs.experiment_runs(experiment)) == 2  # as it was left


def test_a_member_stopped_in_its_first_epoch_starts_again_in_its_own_directory(tmp_path,
                                                                              caplog):
    data, cfg, experiment = interrupted_experiment(tmp_path, repeats=3, epochs=2, at_epoch=0)
    _, second = runs.experiment_runs(experiment)
    with caplog.at_level("INFO", logger="kerasaudio.train"):
        again, results = train.fit_repeats(cfg, 3, data, verbose=0)
    assert f"starting {second} again" in caplog.text
    # Three runs, all complete: none left behind that `runs` would count as unfinished.
    assert again == experiment and len(results) == 3
    assert second in runs.experiment_runs(experiment)
    assert len(runs.experiment_runs(experiment)) == 3
    assert all(runs.is_complete(p) for p in runs.experiment_runs(experiment))
    assert runs.listing(tmp_path)[0]["status"] == "3/3 complete"


def test_a_run_whose_saved_state_is_lost_is_never_started_again_over_its_epochs(tmp_path):
    data = make_sequences(60)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config(tmp_path), data, verbose=0, callbacks=[InterruptAt(2)])
    (run_dir,) = tmp_path.iterdir()
    history = (run_dir / "history.csv").read_text()
    (run_dir / resume.STATE_DIR / resume.STATE_FILE).write_text("")  # a power cut's leftover
    again, _ = train.fit(config(tmp_path), data, verbose=0)
    assert again != run_dir and (run_dir / "history.csv").read_text() == history


class FailAt(keras.callbacks.Callback):
    """A crash (not an interruption) at the start of an epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("disk on fire")


def test_a_failed_fit_is_marked_failed_and_never_resumed(tmp_path):
    data = make_sequences(60)
    with pytest.raises(RuntimeError):
        train.fit(config(tmp_path), data, verbose=0, callbacks=[FailAt()])
    (failed,) = tmp_path.iterdir()
    status = json.loads((failed / "status.json").read_text())
    assert status["status"] == "failed" and "disk on fire" in status["error"]
    assert not runs.is_complete(failed)
    run_dir, _ = train.fit(config(tmp_path), data, verbose=0)
    assert run_dir != failed and runs.is_complete(run_dir)


def test_runs_started_in_the_same_second_never_share_a_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.time, "strftime", lambda _: "20261123-120000")
    made = [runs.create(tmp_path, "gru", "spoken-digits") for _ in range(3)]
    assert len(set(made)) == 3 and all(p.is_dir() and not any(p.iterdir()) for p in made)
    assert [p.name for p in made] == ["20261123-120000-gru-spoken-digits",
                                      "20261123-120000-gru-spoken-digits-2",
                                      "20261123-120000-gru-spoken-digits-3"]


def test_an_interrupted_finetune_is_never_continued_by_a_plain_fit():
    # Their records can match in everything else (the README's music-genres comparison).
    plain = json.loads(config("runs").to_json())
    tuned = {**plain, "finetune": {"source": "runs/source", "freeze_epochs": 5}}
    assert resume.comparable(plain) != resume.comparable(tuned)


def test_a_run_from_before_its_architecture_gained_a_hyperparameter_is_continued(tmp_path):
    """gru_attention gained conv_layers, and every run recorded before had no convolutions,
    whatever today's default: such an interrupted run is the same model as conv_layers=0,
    and must neither start anew nor be continued with convolutions."""
    def record(hparams):
        return json.loads(RunConfig(data=DataConfig(name="toy"), out=str(tmp_path),
                                    model=ModelConfig("gru_attention", hparams)).to_json())

    plain = record(models.resolve("gru_attention", {"conv_layers": 0}))
    today = record(models.resolve("gru_attention", {}))  # as config.json records it
    older = record({k: v for k, v in plain["model"]["hparams"].items()
                    if not k.startswith("conv_")})
    assert resume.comparable(older) == resume.comparable(plain)
    assert resume.comparable(older) != resume.comparable(today)
    # ...and so is an interrupted experiment (fit --repeats), which recorded only the
    # hyperparameters given.
    earlier = runs.create_experiment(tmp_path, "gru_attention", "toy", [0, 1], record({}))
    assert resume.unfinished_experiment(tmp_path, today, [0, 1], None) is None
    assert resume.unfinished_experiment(tmp_path, plain, [0, 1], None) == earlier


def test_an_unfinished_experiment_of_other_settings_is_named_not_continued(tmp_path, caplog):
    cfg = RunConfig(data=DataConfig(name="toy"), out=str(tmp_path))
    config = json.loads(cfg.to_json())
    earlier = runs.create_experiment(tmp_path, "gru", "toy", [0, 1, 2], config)  # no run done
    other_lr = json.loads(dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, lr=0.01)).to_json())
    with caplog.at_level("INFO", logger="kerasaudio.resume"):
        assert resume.unfinished_experiment(tmp_path, other_lr, [0, 1, 2], None) is None
        assert f"not continuing {earlier}: its train.lr differ" in caplog.text
        assert resume.unfinished_experiment(tmp_path, config, [0, 1], None) is None  # --repeats 2
        assert f"not continuing {earlier}: its seeds differ" in caplog.text
        other_data = json.loads(dataclasses.replace(cfg, data=DataConfig(name="other")).to_json())
        caplog.clear()
        assert resume.unfinished_experiment(tmp_path, other_data, [0, 1, 2], None) is None
        assert "not continuing" not in caplog.text  # another data set's is no near miss
    assert resume.unfinished_experiment(tmp_path, config, [0, 1, 2], None) == earlier


def test_a_path_named_another_way_continues_the_same_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tones").mkdir()
    given = RunConfig(data=DataConfig(name="../" + tmp_path.name + "/tones/"), out="runs")
    earlier = runs.create_experiment("runs", "gru", given.data.name, [0, 1],
                                     json.loads(given.to_json()), folds=2)
    assert earlier.name.endswith("-gru-tones-cv2")  # the folder's name, not the slash's
    again = RunConfig(data=DataConfig(name=str(tmp_path / "tones")), out=str(tmp_path / "runs"))
    assert resume.unfinished_experiment(again.out, json.loads(again.to_json()), [0, 1], None,
                                      folds=2) == tmp_path / "runs" / earlier.name
    # and a single run's resume compares the same way, the data's record included
    records = [{**json.loads(c.to_json()), "dataset": {"name": c.data.name, "examples": 3}}
               for c in (given, again)]
    assert resume.comparable(records[0]) == resume.comparable(records[1])


def test_the_files_skip_bad_left_out_are_compared_only_in_records_without_a_fingerprint(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def record(name: str, bad: str, fingerprint: str | None) -> dict:
        dataset = {"name": name, "examples": 3, "skipped": [f"{name}/{bad}: not a sound file"]}
        if fingerprint:
            dataset["fingerprint"] = fingerprint
        config = RunConfig(data=DataConfig(name=name, skip_bad=True), out="runs")
        return {**json.loads(config.to_json()), "dataset": dataset}

    def interrupted_run(config: dict) -> Path:
        run_dir = Path("runs") / "20260101-000000-gru_attention-tones"
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_json(run_dir / "config.json", config)
        runs.write_json(run_dir / "status.json", {"status": "interrupted"})
        return run_dir

    (tmp_path / "tones").mkdir()
    here = str(tmp_path / "tones")
    # `--skip-bad` names the file as the command named the data: the same examples named
    # another way continue the run, their fingerprint the same.
    run_dir = interrupted_run(record("tones", "mid/9.wav", "f"))
    assert resume.find("runs", record(here, "mid/9.wav", "f"))[0] == run_dir
    assert resume.find("runs", record(here, "mid/9.wav", "g")) is None
    # A record from before the fingerprint has only its counts and these lines to tell a
    # different bad file from the same one.
    interrupted_run(record("tones", "mid/9.wav", None))
    assert resume.find("runs", record("tones", "mid/9.wav", "f"))[0] == run_dir
    assert resume.find("runs", record("tones", "low/3.wav", "f")) is None


def test_relative_paths_in_a_record_name_folders_where_it_was_written(tmp_path, monkeypatch,
                                                                      caplog):
    for place in ("a", "b"):
        (tmp_path / place / "tones").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    given = RunConfig(data=DataConfig(name="tones"), out="runs")
    written = runs.with_cwd(json.loads(given.to_json()))
    earlier = runs.create_experiment("runs", "gru", "tones", [0, 1], written, folds=2)
    record = {**written, "dataset": {"name": "tones", "examples": 3}}
    monkeypatch.chdir(tmp_path / "b")
    # From b, the same words name b's folders, other data: nothing to continue.
    here = runs.with_cwd(json.loads(given.to_json()))
    assert resume.unfinished_experiment(tmp_path / "a" / "runs", here, [0, 1], None,
                                        folds=2) is None
    assert resume.comparable(record) != resume.comparable({**here, "dataset": record["dataset"]})
    # a's folders named from b are a's experiment
    there = runs.with_cwd(json.loads(RunConfig(data=DataConfig(name="../a/tones"),
                                               out="../a/runs").to_json()))
    assert resume.unfinished_experiment("../a/runs", there, [0, 1], None, folds=2) == Path(
        "../a/runs") / earlier.name
    assert resume.comparable(record) == resume.comparable({**there, "dataset": {
        "name": "../a/tones", "examples": 3}})
    # and a later command reads the data the record names, wherever it runs
    assert datasets.recorded(given.data, written["cwd"]).name == str(tmp_path / "a" / "tones")
    assert datasets.recorded(DataConfig(), written["cwd"]).name == "spoken-digits"
    runs.write_json(tmp_path / "config.json", written)
    assert settings.read_run_config(tmp_path / "config.json").data.name == \
        str(tmp_path / "a" / "tones")  # fit --config reruns it on a's data
    # A folder recorded that is gone since (the project moved): as from here, as before,
    # and the user hears which folder is read, in case here holds other data of that name.
    with caplog.at_level("WARNING", logger="kerasaudio.datasets"):
        assert datasets.recorded(given.data, str(tmp_path / "gone")).name == \
            str(tmp_path / "b" / "tones")
    assert f"{tmp_path / 'gone'}, the folder the run was made in, is gone" in caplog.text
    assert f"reading its data tones from here, {tmp_path / 'b' / 'tones'}" in caplog.text


def test_a_run_whose_process_is_gone_is_called_stopped_not_running(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    status = {"status": "running", "pid": int(ended.stdout), "host": socket.gethostname()}
    runs.write_json(tmp_path / "status.json", status)
    assert runs.incomplete(tmp_path) == "the run is stopped (its process is gone)"
    assert resume.interrupted(tmp_path)  # and the same command continues it
    runs.write_json(tmp_path / "status.json", {**status, "pid": os.getpid()})
    assert runs.incomplete(tmp_path) == "the run is running"
    assert not resume.interrupted(tmp_path)
