"""Search spaces, KerasTuner searches on toy data, their export, resuming and distribution."""

import csv
import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_sequences

import cli
from kerasaudio import models, runs, settings
from kerasaudio.config import DataConfig, RunConfig, TrainConfig
from kerasaudio.errors import UserError
from tuning import search, spaces

ROOT = Path(__file__).resolve().parents[1]


def test_overrides_fix_narrow_and_grid_the_space():
    o = spaces.Overrides.parse(fix=["hidden=64"], ranges=["dropout=0.05:0.3", "lr=1e-4:1e-3"],
                               grid=["batch_size=16,32"])
    space = spaces.resolve(["gru_attention"], o)
    assert space["hidden"][0].grid() == [64]
    assert space["dropout"][0].grid() == [0.1, 0.2, 0.3]  # snapped onto the 0.1 grid
    assert space["lr"][0].grid() == [1e-4, 3e-4, 1e-3]
    assert space["batch_size"][0].grid() == [16, 32]
    assert space["layers"][0].grid() == [1, 2, 3]
    assert not space["optimizer"][0].searched  # stays adam unless opened
    assert spaces.grid_size(space, ["gru_attention"]) == 1 * 3 * 3 * 2 * 3
    assert not space["conv_layers"][0].searched  # none unless opened
    opened = spaces.resolve(["gru_attention"], spaces.Overrides.parse(grid=["conv_layers=0,2"]))
    assert opened["conv_layers"][0].grid() == [0, 2]
    with pytest.raises(UserError, match="'conv_layers' is not in the search space of gru"):
        spaces.resolve(["gru"], spaces.Overrides.parse(fix=["conv_layers=2"]))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fix": ["window=5"]}, "'window' is not in the search space of gru"),
    ({"ranges": ["dropout=0.3:0.1"]}, "low <= high"),
    ({"ranges": ["lr=0.5:0.9"]}, "keeps none of"),
    ({"ranges": ["hidden=300:400"]}, r"hidden=300:400 lies outside the space's 32:256"),
    ({"grid": ["lr"]}, "--grid expects name=value"),
])
def test_bad_overrides_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        spaces.resolve(["gru"], spaces.Overrides.parse(**kwargs))


def test_a_searched_layers_needs_a_searched_width():
    # A grid keeps dense's default widths 100,10, which layers cannot repeat.
    with pytest.raises(UserError, match="dense: layers repeats one width"):
        spaces.resolve(["dense"], spaces.Overrides.parse(grid=["layers=1,2"]), grid_search=True)
    spaces.resolve(["dense"], spaces.Overrides.parse(grid=["layers=1,2", "hidden=32,64"]),
                   grid_search=True)
    spaces.resolve(["dense"], spaces.Overrides.parse())  # random: both searched


def test_a_range_narrows_the_space_and_never_widens_it():
    space = spaces.resolve(["gru"], spaces.Overrides.parse(ranges=["dropout=0.35:0.95",
                                                                   "hidden=200:400"]))
    assert space["dropout"][0].grid() == [0.4, 0.5]
    assert space["hidden"][0].grid() == [224, 256]


@pytest.mark.parametrize(("arch", "kwargs", "message"), [
    ("gru", {"fix": ["arch=lstm"]}, "chosen with --arch NAME, or searched with --grid arch"),
    ("gru", {"ranges": ["arch=1:2"]}, "chosen with --arch NAME"),
    ("lstm", {"grid": ["arch=dense,gru"]}, "--arch lstm is not among --grid arch=dense,gru"),
])
def test_the_architecture_is_never_silently_replaced(arch, kwargs, message):
    with pytest.raises(UserError, match=message):
        spaces.archs(arch, spaces.Overrides.parse(**kwargs), DataConfig())


def test_architectures_that_share_a_name_keep_their_own_ranges(tmp_path):
    # conv1d's layers go from 1 to 4, gru's from 1 to 3: each in its own conditional scope.
    space = spaces.resolve(["conv1d", "gru", "lstm"], spaces.Overrides.parse())
    assert space["layers"][0].grid() == [1, 2, 3, 4] and space["layers"][1] == ["conv1d"]
    assert space["layers:gru"][0].grid() == [1, 2, 3]
    assert space["layers:gru"][1] == ["gru", "lstm"]  # alike: one entry
    hp = kt.HyperParameters()
    hp.Choice("arch", ["conv1d", "gru", "lstm"])
    hp.values["arch"] = "gru"
    names = ["conv1d", "gru", "lstm"]
    values = spaces.define(hp, names, space)
    assert values["arch"] == "gru" and "filters" not in values["model"]
    layers = [p for p in hp.space if spaces.hp_name(p.name) == "layers"]
    assert [(p.name, p.max_value, hp.is_active(p)) for p in layers] == \
        [("layers", 4, False), ("layers:gru", 3, True)]
    # KerasTuner keeps values by name: each oracle must give both their own values. (Seed 1:
    # KerasTuner takes 0 for no seed and draws one from Python's `random`.)
    for oracle_class in (kt.oracles.RandomSearchOracle, kt.oracles.BayesianOptimizationOracle):
        oracle = oracle_class(objective=kt.Objective("val_accuracy", "max"), seed=1,
                              hyperparameters=hp, max_trials=8)
        oracle._set_project_dir(str(tmp_path), oracle_class.__name__)
        drawn = set()
        for n in range(8):
            trial = oracle.create_trial(f"t{n}")
            values = spaces.define(trial.hyperparameters.copy(), names, space)
            drawn.add((values["arch"], values["model"]["layers"]))
            oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
            oracle.end_trial(trial)
        assert {arch for arch, _ in drawn} == {"conv1d", "gru", "lstm"}
        assert all(n <= (4 if arch == "conv1d" else 3) for arch, n in drawn)


def test_grid_search_varies_only_the_grid_axes_and_arch_can_be_one():
    o = spaces.Overrides.parse(grid=["arch=dense,gru", "lr=0.1,0.01", "dropout=0,0.5"])
    names = spaces.archs(None, o, DataConfig())
    space = spaces.resolve(names, o, grid_search=True)
    assert names == ["dense", "gru"]
    assert spaces.archs("gru", o, DataConfig()) == names
    assert spaces.grid_size(space, names) == 2 * (2 * 2)
    hp = kt.HyperParameters()
    values = spaces.define(hp, names, space)
    assert values["arch"] == "dense"
    assert values["model"] == {"dropout": 0.0, "hidden": (100, 10)}  # the rest: defaults
    assert values["train"] == {"lr": 0.1, "optimizer": "adam"}
    assert {p.name for p in hp.space} == {"arch", "lr", "dropout"}


def toy_search(tmp_path, tuner="random", **options) -> search.SearchConfig:
    overrides = spaces.Overrides.parse(
        fix=options.pop("fix", ["hidden=8", "layers=1"]), grid=options.pop("grid", []))
    run = RunConfig(data=DataConfig(name="toy"), train=TrainConfig(patience=2))
    return search.SearchConfig(run=run, archs=["gru"], overrides=overrides, tuner=tuner,
                               name="toy", out=str(tmp_path), **options)


def test_the_epoch_count_follows_the_trials_a_hyperband_trial_continues():
    # 0001 peaked at its 2nd epoch of 3; 0007 continued from that checkpoint (epochs
    # numbered from 3) and peaked at its 4th; 0010 continued 0007 from 9, peaking at once.
    rows = [{"trial": "0001", "initial_epoch": 0, "from_trial": None, "best_step": 1},
            {"trial": "0007", "initial_epoch": 3, "from_trial": "0001", "best_step": 3},
            {"trial": "0010", "initial_epoch": 9, "from_trial": "0007", "best_step": 0},
            {"trial": "0011", "initial_epoch": 3, "from_trial": "0099", "best_step": 0}]
    assert [search.epochs_at_best(rows, r) for r in rows] == [2, 2 + 4, 2 + 4 + 1, 3 + 1]


def test_a_torn_line_of_a_trial_s_executions_is_left_out(tmp_path):
    path = tmp_path / search.EXECUTIONS
    path.write_text('{"tuner": "chief", "epochs": 3}\n{"tuner": "chief", "ep')  # killed
    assert search._executions(path) == [{"tuner": "chief", "epochs": 3}]
    # The trial run again after the kill: its record is not swallowed by the torn line.
    search.append_execution(path, {"tuner": "chief", "epochs": 2})
    assert search._executions(path) == [{"tuner": "chief", "epochs": 3},
                                        {"tuner": "chief", "epochs": 2}]


def test_best_json_gives_fit_the_training_settings_the_trials_had(tmp_path):
    # Trials of gru_attention train with its own cosine schedule, as `fit` would.
    cfg = toy_search(tmp_path)
    winner = {"lr": 0.01, "batch_size": 16, "hidden": 8, "score": 0.9}
    assert search._trial_training(cfg, "gru_attention", winner, ["lr", "batch_size"]) == \
        {"lr": 0.01, "batch_size": 16, "schedule": "cosine"}
    assert search._trial_training(cfg, "gru", winner, ["lr", "batch_size"]) == \
        {"lr": 0.01, "batch_size": 16}
    # Retrained for all of the decay's epochs (fit keeps the best one), or the decay would
    # reach zero sooner than the trial's did; without a schedule, for the best epoch's.
    rows = [{"trial": "0001", "initial_epoch": 0, "from_trial": None, "best_step": 2}]
    assert search.retrain_epochs(cfg, rows, rows[0], {"schedule": "cosine"}) == \
        cfg.max_epochs == 20
    assert search.retrain_epochs(cfg, rows, rows[0], {"lr": 0.01}) == 3


def test_a_continued_trial_goes_on_down_its_schedule(tmp_path):
    cfg = dataclasses.replace(toy_search(tmp_path, tuner="hyperband", max_epochs=4),
                              archs=["gru_attention"])
    hypermodel = search.AudioHyperModel(cfg, make_sequences(60),
                                        spaces.resolve(cfg.archs, cfg.overrides))
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, epochs=3, initial_epoch=2, verbose=0)
    schedule = model.optimizer._learning_rate
    # A cosine decay over the longest trial's 4 epochs, of which this trial ran the third,
    # after the two of the trial it continues: 3 epochs' steps in all, not 1.
    assert schedule.__class__.__name__ == "CosineDecay"
    assert int(model.optimizer.iterations) * 4 == schedule.decay_steps * 3


def test_an_earlier_search_trained_at_a_constant_rate_is_not_continued(tmp_path):
    cfg = dataclasses.replace(toy_search(tmp_path), archs=["gru_attention"])
    search.check_resumable(cfg, overwrite=False)
    record = json.loads((cfg.directory / "search.json").read_text())
    assert record.pop("arch_training") == {"gru_attention": {
        "batch_size": 64, "lr": 2e-3, "schedule": "cosine"}}
    (cfg.directory / "search.json").write_text(json.dumps(record))  # as searches had it
    with pytest.raises(UserError, match=r"other settings \(arch_training differ\)"):
        search.check_resumable(cfg, overwrite=False)
    # Searches of architectures without training settings of their own keep their record.
    assert "arch_training" not in search._settings_record(toy_search(tmp_path))


def test_an_earlier_search_whose_trials_built_other_defaults_is_not_continued(tmp_path):
    # Recorded before search.json held the architectures' defaults: a gru_attention search
    # of then built no convolutions, which today's trials would.
    cfg = dataclasses.replace(toy_search(tmp_path), archs=["gru_attention"])
    search.check_resumable(cfg, overwrite=False)
    record = json.loads((cfg.directory / "search.json").read_text())
    assert record["arch_hparams"]["gru_attention"]["conv_layers"] == 2
    del record["arch_hparams"]
    (cfg.directory / "search.json").write_text(json.dumps(record))
    with pytest.raises(UserError, match=r"other settings "
                       r"\(arch_hparams\.gru_attention\.conv_layers differ\)"):
        search.check_resumable(cfg, overwrite=False)
    # gru's defaults have not changed: its earlier searches are continued.
    gru = toy_search(tmp_path / "gru")
    search.check_resumable(gru, overwrite=False)
    record = json.loads((gru.directory / "search.json").read_text())
    del record["arch_hparams"]
    (gru.directory / "search.json").write_text(json.dumps(record))
    search.check_resumable(gru, overwrite=False)


def test_random_search_exports_trials_best_and_parallel_coordinates(tmp_path):
    cfg = dataclasses.replace(toy_search(tmp_path, max_trials=3, max_epochs=2),
                              archs=["gru_attention"])
    search.check_resumable(cfg, overwrite=False)
    search.search(cfg, make_sequences(60), verbose=0)
    best = search.export(cfg)
    with open(cfg.directory / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 3 and {t["status"] for t in trials} == {"COMPLETED"}
    assert {"lr", "batch_size", "dropout", "hidden", "epochs", "score"} <= set(trials[0])
    scores = [float(t["score"]) for t in trials]
    assert best["objective"]["value"] == max(scores)
    # Every hyperparameter the winner built with, searched or not (conv_layers is not):
    # fit --hparams must build it so even after a default changes.
    assert best["arch"] == "gru_attention" and best["hparams"] == {
        **models.hyperparameters("gru_attention"), "hidden": 8, "layers": 1,
        "dropout": best["hparams"]["dropout"]}
    # The searched training settings and gru_attention's own (its batch 64 searched over).
    assert set(best["train"]) == {"lr", "batch_size", "schedule"} and 1 <= best["epochs"] <= 2
    assert best["search"]["epochs_trained"] == sum(int(t["epochs"]) for t in trials)
    # fit --hparams retrains on the search's data (its path resolved: it may run from
    # another folder), features and augmentation.
    searched = settings.read_best(cfg.directory / "best.json")["searched"]
    assert searched.data == dataclasses.replace(cfg.run.data, name=str(Path("toy").resolve()))
    assert searched.features == cfg.run.features
    assert (cfg.directory / "parallel.png").read_bytes()[:4] == b"\x89PNG"
    # The top quartile gets its own plot only when it holds two trials or more.
    top = sum(s >= np.quantile(scores, 0.75) for s in scores)
    assert (cfg.directory / "parallel_top_quartile.png").exists() == (top >= 2)
    assert len(list((cfg.directory / "tensorboard").iterdir())) == 3  # one log dir per trial


def test_hyperband_spends_fewer_epochs_than_the_grid(tmp_path):
    cfg = toy_search(tmp_path, tuner="hyperband", max_epochs=4)
    search.check_resumable(cfg, overwrite=False)
    search.search(cfg, make_sequences(60), verbose=0)
    best = search.export(cfg)
    assert best["search"]["completed"] >= 4
    assert 0 < best["search"]["epochs_trained"] < best["search"]["grid_epochs"]
    with open(cfg.directory / "trials.csv") as f:
        trials = {t["trial"]: t for t in csv.DictReader(f)}
    assert any(int(t["initial_epoch"]) > 0 for t in trials.values())  # warm starts happened
    # The best epoch count includes the epochs a warm-started trial inherited.
    row = trials[best["trial"]]
    assert best["epochs"] == int(row["initial_epoch"]) + int(row["best_step"]) + 1 <= 4


def test_grid_search_runs_every_combination_once(tmp_path):
    cfg = toy_search(tmp_path, tuner="grid", max_epochs=1,
                     grid=["lr=0.1,0.01", "optimizer=sgd,adam"])
    search.check_resumable(cfg, overwrite=False)
    search.search(cfg, make_sequences(45), verbose=0)
    rows = search.trial_rows(cfg.directory)
    assert sorted((r["lr"], r["optimizer"]) for r in rows) == [
        (0.01, "adam"), (0.01, "sgd"), (0.1, "adam"), (0.1, "sgd")]


def test_changed_settings_under_the_same_name_are_refused(tmp_path):
    search.check_resumable(toy_search(tmp_path, max_trials=2), overwrite=False)
    with pytest.raises(UserError, match=r"other settings \(max_trials differ\)"):
        search.check_resumable(toy_search(tmp_path, max_trials=5), overwrite=False)
    search.check_resumable(toy_search(tmp_path, max_trials=5), overwrite=True)
    # A changed default (SpecAugment on spoken-digits) names the setting, not all of `train`.
    changed = toy_search(tmp_path, max_trials=5)
    changed = dataclasses.replace(changed, run=dataclasses.replace(
        changed.run, train=dataclasses.replace(changed.run.train, spec_augment=True)))
    with pytest.raises(UserError, match=r"other settings \(train.spec_augment differ\)"):
        search.check_resumable(changed, overwrite=False)


def test_a_search_of_data_named_another_way_is_continued(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tones").mkdir()
    cfg = toy_search(tmp_path, max_trials=2)
    for name in ("tones/", str(tmp_path / "tones"), "./tones"):
        search.check_resumable(dataclasses.replace(cfg, run=dataclasses.replace(
            cfg.run, data=DataConfig(name=name))), overwrite=False)
    with pytest.raises(UserError, match=r"other settings \(data.name differ\)"):
        search.check_resumable(dataclasses.replace(cfg, run=dataclasses.replace(
            cfg.run, data=DataConfig(name="other/"))), overwrite=False)
    # and so is its record of what was read: `--skip-bad` names the files it left out as
    # the command named the data.
    data = make_sequences(30)
    skipping = {name: dataclasses.replace(cfg, name="skipping", run=dataclasses.replace(
        cfg.run, data=DataConfig(name=name, skip_bad=True))) for name in ("tones", "./tones")}
    for name, given in skipping.items():
        data.skipped = [f"{name}/mid/9.wav: not a sound file"]
        search.check_resumable(given, overwrite=False, dataset=data)
    # A search recorded before the data's fingerprint has only its counts and these lines
    # to tell a different bad file from the same one.
    path = skipping["tones"].directory / search.SETTINGS_FILE
    record = runs.read_json(path)
    del record["dataset"]["fingerprint"]
    runs.write_json(path, record)
    data.skipped = ["tones/mid/9.wav: not a sound file"]
    search.check_resumable(skipping["tones"], overwrite=False, dataset=data)
    data.skipped = ["tones/low/3.wav: not a sound file"]
    with pytest.raises(UserError, match=r"a search of other examples \(their files, "):
        search.check_resumable(skipping["tones"], overwrite=False, dataset=data)


def test_differences_name_settings_to_the_leaf():
    earlier = {"train": {"lr": 1, "seed": 0}, "dataset": {"examples": 3}, "tuner": "grid"}
    later = {"train": {"lr": 2, "seed": 0, "clipnorm": None}, "dataset": {"examples": 4},
             "tuner": "grid"}
    # A setting only one side has counts even when it is None; a data set's record is one.
    assert runs.differences(earlier, later) == ["dataset", "train.clipnorm", "train.lr"]
    assert runs.differences(earlier, earlier) == []


def test_a_search_is_not_continued_on_changed_data(tmp_path):
    # The same --data path holding more files: trials scored on other validation examples.
    cfg = toy_search(tmp_path, max_trials=2)
    search.check_resumable(cfg, False, make_sequences(60))
    search.check_resumable(cfg, False, make_sequences(60))
    with pytest.raises(UserError, match=r"a search of other examples \(their files, "):
        search.check_resumable(cfg, False, make_sequences(90))
    # and so is the same path holding other examples in the same numbers
    changed = make_sequences(60)
    changed.frames[0] += 1.0
    with pytest.raises(UserError, match=r"a search of other examples \(their files, "):
        search.check_resumable(cfg, False, changed)
    # A search recorded before searches recorded the data's fingerprint is compared on its
    # counts, and one recorded before they recorded their data on the rest.
    record = runs.read_json(cfg.directory / search.SETTINGS_FILE)
    del record["dataset"]["fingerprint"]
    runs.write_json(cfg.directory / search.SETTINGS_FILE, record)
    search.check_resumable(cfg, False, changed)
    del record["dataset"]
    runs.write_json(cfg.directory / search.SETTINGS_FILE, record)
    search.check_resumable(cfg, False, make_sequences(90))


def test_a_search_never_starts_among_other_files(tmp_path):
    # Else its files would sit beside the user's, and a later --overwrite would delete both.
    cfg = toy_search(tmp_path, max_trials=2)
    cfg.directory.mkdir(parents=True)
    (cfg.directory / "keep.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(UserError, match="no search.json"):
            search.check_resumable(cfg, overwrite=overwrite)
    assert sorted(p.name for p in cfg.directory.iterdir()) == ["keep.txt"]
    (cfg.directory / "keep.txt").unlink()
    search.check_resumable(cfg, overwrite=False)  # an empty folder is no one's


def test_a_corrupt_state_file_is_named_before_resuming(tmp_path):
    cfg = toy_search(tmp_path, max_trials=2)
    search.check_resumable(cfg, overwrite=False)
    (cfg.directory / "trial_0000").mkdir()
    bad = cfg.directory / "trial_0000" / "trial.json"
    bad.write_text('{"trial_id": "00')  # what a full disk leaves
    with pytest.raises(UserError, match=f"{bad}: not valid JSON"):
        search.check_resumable(cfg, overwrite=False)
    search.check_resumable(cfg, overwrite=True)  # starting again is still possible


TUNE = ["tune", "--arch", "gru", "--limit", "24", "--fix", "hidden=8", "--fix", "layers=1",
        "--fix", "batch_size=8"]


def tune_cli(tmp_path, corpus_cache, *args, **popen):
    return subprocess.Popen(
        [sys.executable, "cli.py", *TUNE, "--out", str(tmp_path), *args], cwd=ROOT,
        env={**os.environ, "KERASAUDIO_CACHE": str(corpus_cache)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, **popen)


def completed_trials(directory: Path) -> dict:
    out = {}
    for path in directory.glob("trial_*/trial.json"):
        text = path.read_text()  # whole, never half-written: the search replaces it atomically
        trial = json.loads(text)
        if trial["status"] == "COMPLETED":
            out[trial["trial_id"]] = text
    return out


def spawned_children(pid: int) -> list:
    """Processes started by `pid` through multiprocessing's spawn (the trial processes)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except FileNotFoundError:  # it ended while we looked
            pass
    return found


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a killed orphan that nobody reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


ORPHAN_PARENT = """
import os, sys, time
from concurrent import futures
import multiprocessing
sys.path.insert(0, sys.argv[1])
from tuning import trial_process
pool = futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=trial_process.start, initargs=(os.getpid(),))
pool.submit(time.sleep, 300)
print(*pool._processes, flush=True)
time.sleep(1)  # the task is queued; the worker is still importing Keras
os._exit(0)
"""


def test_a_trial_process_whose_search_died_during_its_start_up_exits(tmp_path):
    # The parent dies before the worker could ask to be killed with it: the worker must notice
    # on its own rather than run the queued task.
    parent = subprocess.run([sys.executable, "-c", ORPHAN_PARENT, str(ROOT)],
                            capture_output=True, text=True, timeout=120)
    assert parent.returncode == 0, parent.stderr[-2000:]
    worker = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 90
    while running(worker):
        assert time.monotonic() < deadline, "the orphaned trial process ran its task"
        time.sleep(0.2)


def test_ctrl_c_while_a_trial_runs_stops_its_process_too(ctrl_c_as_at_a_terminal):
    # Sent to the search's process alone (`kill -INT`), the trial's would train on to its end.
    pool = futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(time.sleep, 60)
    (worker,) = pool._processes.values()
    while not future.running():
        time.sleep(0.05)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    # The kernel hands the signal to another thread, as it may in a process with many
    # (TensorFlow's): the main thread, asleep in its wait, is not woken by it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            search._result(pool, future)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    pool.shutdown()
    assert time.monotonic() - started < 30 and not worker.is_alive()


@pytest.mark.slow
def test_a_killed_search_resumes_without_redoing_finished_trials(tmp_path, corpus_cache):
    args = ("--tuner", "random", "--max-trials", "4", "--max-epochs", "3", "--name", "resume")
    directory = tmp_path / "resume"
    first = tune_cli(tmp_path, corpus_cache, *args)
    deadline = time.monotonic() + 600
    trial_processes = []
    while not (completed_trials(directory) and trial_processes):
        assert time.monotonic() < deadline, "no trial finished, or none ran in its own process"
        time.sleep(0.2)
        trial_processes = spawned_children(first.pid)
    first.send_signal(signal.SIGKILL)  # no chance to clean up: the worst interruption
    first.wait()
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in trial_processes):
        assert time.monotonic() < deadline, "a trial kept training after its search was killed"
        time.sleep(0.2)
    finished = completed_trials(directory)
    assert 1 <= len(finished) < 4
    second = tune_cli(tmp_path, corpus_cache, *args)
    output = second.communicate(timeout=900)[0]
    assert second.returncode == 0, output[-3000:]
    after = completed_trials(directory)
    assert len(after) == 4
    assert all(after[t] == text for t, text in finished.items())  # untouched, not rerun
    with open(directory / "trials.csv") as f:
        assert len(list(csv.DictReader(f))) == 4


@pytest.mark.slow
def test_an_interrupted_search_exports_its_best_so_far(tmp_path, corpus_cache, caplog,
                                                      ctrl_c_as_at_a_terminal):
    args = ("--tuner", "random", "--max-trials", "3", "--max-epochs", "2", "--name", "stop")
    directory = tmp_path / "stop"
    first = tune_cli(tmp_path, corpus_cache, *args)
    deadline = time.monotonic() + 600
    while not completed_trials(directory):
        assert time.monotonic() < deadline, "no trial finished"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)  # Ctrl-C
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert f"completed trials so far: {directory / 'best.json'}" in output
    best = json.loads((directory / "best.json").read_text())
    assert best["search"]["finished"] is False
    assert best["search"]["completed"] == len(completed_trials(directory)) < 3
    # fit --hparams can use it meanwhile, and says what it is
    with caplog.at_level("WARNING", logger="kerasaudio"):
        assert settings.read_best(directory / "best.json")["arch"] == "gru"
    assert "a search that was interrupted" in caplog.text
    second = tune_cli(tmp_path, corpus_cache, *args)
    output = second.communicate(timeout=900)[0]
    assert second.returncode == 0, output[-3000:]
    best = json.loads((directory / "best.json").read_text())
    assert best["search"]["finished"] is True and best["search"]["completed"] == 3


@pytest.mark.slow
def test_distributed_chief_and_two_workers_run_every_trial_once(tmp_path, corpus_cache):
    proc = tune_cli(tmp_path, corpus_cache, "--tuner", "grid", "--grid", "lr=0.1,0.01,0.001",
                    "--grid", "optimizer=sgd,adam", "--max-epochs", "1", "--workers", "2",
                    "--name", "dist")
    output = proc.communicate(timeout=900)[0]
    assert proc.returncode == 0, output[-3000:]
    directory = tmp_path / "dist"
    rows = search.trial_rows(directory)
    combos = [(r["lr"], r["optimizer"]) for r in rows]
    assert len(rows) == 6 and len(set(combos)) == 6
    assert {r["status"] for r in rows} == {"COMPLETED"}
    assert [r["runs"] for r in rows] == [1] * 6  # each trial ran once, in one worker
    assert {r["tuner"] for r in rows} <= {"tuner0", "tuner1"}
    assert "best val_accuracy" in output


@pytest.mark.slow
def test_fit_retrains_the_winner_from_best_json(tmp_path, corpus_cache):
    # Explicit options win over best.json, which wins over the arch's own training settings.
    # The search's data, features and augmentation come with it (here: 20 MFCCs, none).
    features = {**dataclasses.asdict(settings.features_for(DataConfig(), None)), "n_mfcc": 20}
    best = {"arch": "gru_attention", "hparams": {"hidden": 12, "layers": 1, "dropout": 0.2},
            "train": {"lr": 0.003, "batch_size": 16}, "epochs": 2,
            "data": dataclasses.asdict(DataConfig()), "features": features, "augment": []}
    (tmp_path / "best.json").write_text(json.dumps(best))
    result = subprocess.run(
        [sys.executable, "cli.py", "fit", "--hparams", str(tmp_path / "best.json"), "--limit",
         "20", "--batch-size", "8", "--out", str(tmp_path / "runs")], cwd=ROOT,
        capture_output=True, text=True,
        env={**os.environ, "KERASAUDIO_CACHE": str(corpus_cache)}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    config = json.loads((run_dir / "config.json").read_text())
    # best.json's values; it is from a search before gru_attention had convolutions (its
    # hparams lack conv_layers), and so it had none, whatever today's default.
    assert config["model"] == {"arch": "gru_attention", "hparams": {
        **best["hparams"], "conv_layers": 0, "conv_filters": 128, "conv_kernel": 5}}
    assert config["train"]["lr"] == 0.003 and config["train"]["batch_size"] == 8
    assert config["train"]["epochs"] == 2
    assert config["features"]["n_mfcc"] == 20 and config["train"]["augment"] == []
    # The trials had no SpecAugment (searches before it was recorded), though spoken-digits
    # trains with it by default.
    assert config["train"]["spec_augment"] is False


def test_a_failing_chief_stops_the_workers_that_wait_for_it(tmp_path):
    """Workers wait for the chief's oracle without end; the launcher must not wait for them."""
    script = ("import os, sys, time\n"
              "sys.exit(3) if os.environ['KERASTUNER_TUNER_ID'] == 'chief' else time.sleep(600)")
    start = time.monotonic()
    with pytest.raises(UserError, match="tuning chief failed"):
        search.launch_distributed(["-c", script], 2, tmp_path / "logs")
    assert time.monotonic() - start < 60


def test_a_cross_validated_search_scores_the_mean_of_its_folds(tmp_path):
    cfg = toy_search(tmp_path, tuner="hyperband", max_epochs=3, folds=2)
    search.check_resumable(cfg, overwrite=False)
    search.search(cfg, make_sequences(90), verbose=0)
    search.export(cfg)
    with open(cfg.directory / "trials.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "COMPLETED"]
    assert rows and all(r["score_fold0"] and r["score_fold1"] for r in rows)
    for row in rows:
        mean = (float(row["score_fold0"]) + float(row["score_fold1"])) / 2
        assert float(row["score"]) == pytest.approx(mean)
    # Each fold keeps its own checkpoint, which a Hyperband continuation starts from.
    trial_dirs = [p for p in cfg.directory.glob("trial_*") if (p / "trial.json").exists()]
    for folder in trial_dirs:
        names = {p.name for p in folder.iterdir()}
        assert {"fold0-checkpoint.weights.h5", "fold1-checkpoint.weights.h5"} <= names
    continued = [r for r in rows if int(r["initial_epoch"]) > 0]
    assert continued  # Hyperband's later rounds ran, from the folds' own checkpoints
    record = json.loads((cfg.directory / "search.json").read_text())
    assert record["folds"] == 2


def test_each_fold_model_adapts_to_its_own_training_frames_only(tmp_path):
    data = make_sequences(90)
    hypermodel = search.AudioHyperModel(toy_search(tmp_path, folds=3), data, {})
    for spec, (trained, held_out) in zip(hypermodel.specs, hypermodel.fold_splits,
                                         strict=True):
        np.testing.assert_allclose(spec.mean, trained.frame_statistics()[0], rtol=1e-5)
        held_out_frames = {s.tobytes() for s in held_out.sequences()}
        assert spec.examples and not any(e.tobytes() in held_out_frames
                                         for e in spec.examples)


def test_a_search_too_small_for_its_folds_is_refused_before_it_starts(tmp_path):
    cfg = toy_search(tmp_path, folds=80)
    with pytest.raises(UserError, match="fewer than --folds 80"):
        search.AudioHyperModel(cfg, make_sequences(90), {})


@pytest.mark.parametrize(("data", "given", "expected"), [
    ("spoken-digits", None, True), ("spoken-digits", False, False), ("toy", None, False),
    ("toy", True, True)])
def test_a_search_trains_with_spec_augment_as_fit_would(tmp_path, data, given, expected):
    cfg = search.configure(DataConfig(name=data), "mfcc", "none", given, 3, 0, ["gru"],
                           overrides=spaces.Overrides.parse(), name="s", out=str(tmp_path))
    assert cfg.run.train.spec_augment is expected
    # and the winner is retrained as the trials were trained
    settings.write_best(tmp_path / "best.json", "gru", {}, {}, 2,
                        data=dataclasses.asdict(cfg.run.data),
                        features=dataclasses.asdict(cfg.run.features), augment=[],
                        spec_augment=cfg.run.train.spec_augment)
    best = settings.read_best(tmp_path / "best.json")
    assert settings.searched_source(best, DataConfig(), set()).train.spec_augment is expected


def test_a_search_takes_fit_s_feature_options(tmp_path):
    cfg = search.configure(DataConfig(name="spoken-digits"), None, "none", None, 3, 0, ["gru"],
                           {"hop_ms": 10.0, "n_mfcc": 20, "deltas": None},
                           overrides=spaces.Overrides.parse(), name="s", out=str(tmp_path))
    features = cfg.run.features
    assert (features.hop_ms, features.n_mfcc, features.deltas) == (10.0, 20, False)
    assert features.sample_rate == 8000  # the data set's own default where none is given
    result = CliRunner().invoke(cli.main, ["tune", "--hop-ms", "40", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--hop-ms 40 is longer than the 25 ms window" in \
        result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_search_on_bad_data_leaves_no_folder_or_lock(tmp_path):
    import soundfile

    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        soundfile.write(tmp_path / "data" / label / "0.wav", np.zeros(4000), 16000)
    result = CliRunner().invoke(cli.main, ["tune", "--data", str(tmp_path / "data"),
                                           "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "0.wav: every sample is 0" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_fit_hparams_takes_the_search_s_data_unless_given_other_data(tmp_path,
                                                                      monkeypatch):
    best = {"arch": "gru", "hparams": {}, "train": {}, "epochs": 3, "augment": ["noise"],
            "data": {**dataclasses.asdict(DataConfig(name="my_audio")), "limit": 50},
            "features": dataclasses.asdict(settings.features_for(DataConfig(), None))}
    (tmp_path / "best.json").write_text(json.dumps(best))
    best = settings.read_best(tmp_path / "best.json")
    searched = settings.searched_source(best, DataConfig(), given=set())
    assert searched.data.name == "my_audio" and searched.train.augment == ("noise",)
    assert searched.train.spec_augment is False  # searches before it was recorded: off
    assert searched.data.limit is None  # a quick search's --limit is not the retrain's
    assert settings.searched_source(best, DataConfig(name="my_audio"), {"data"}) == searched
    assert settings.searched_source(best, DataConfig(name="other"), {"data"}) is None
    # The searched folder named another way is the same data, and keeps the search's settings.
    monkeypatch.chdir(tmp_path)
    again = DataConfig(name=str(tmp_path / "my_audio") + "/")
    assert settings.searched_source(best, again, {"data"}) == searched


@pytest.mark.parametrize(("change", "message"), [
    ({"hparams": []}, "hparams is \\[\\], expected a dict"),
    ({"train": {"lr": "x"}}, "training setting lr='x' is of the wrong kind"),
    ({"train": {"speed": 2}}, "unknown training settings speed"),
    ({"epochs": "3"}, "epochs is '3', expected a whole number"),
    ({"arch": ["gru"]}, "arch is \\['gru'\\], expected a str"),
    ({"spec_augment": "yes", "data": {}, "features": {}},
     "spec_augment is 'yes', expected true or false"),
    ({"epochs": None, "arch": None}, None),
])
def test_a_best_json_of_the_wrong_shape_is_one_line(tmp_path, change, message):
    best = {"arch": "gru", "hparams": {"hidden": 8}, "train": {"lr": 0.01, "batch_size": 16},
            "epochs": 3}
    path = tmp_path / "best.json"
    if message is None:  # a missing key
        best = {k: v for k, v in best.items() if k not in change}
        message = "not a tune best.json \\(missing arch, epochs\\)"
    else:
        best.update(change)
    path.write_text(json.dumps(best))
    with pytest.raises(UserError, match=f"best.json: {message}"):
        settings.read_best(path)
