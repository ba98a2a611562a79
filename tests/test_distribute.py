"""Training with tf.distribute strategies: mirrored over two logical CPU devices."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_frames, make_sequences

from kerasaudio import distribute, pipeline, train
from kerasaudio.config import ModelConfig, RunConfig, TrainConfig
from kerasaudio.errors import UserError

ROOT = Path(__file__).resolve().parent.parent

# Logical devices must be set before TensorFlow starts, hence a process of its own.
MIRRORED_RUN = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")  # as pytest puts it: conftest and the tests as top-level modules
from conftest import make_sequences
from test_distribute import small_config
from kerasaudio import train
run_dir, metrics = train.fit(small_config(sys.argv[1], "mirrored"), make_sequences(152),
                             verbose=0)
print(json.dumps({"run_dir": str(run_dir), "accuracy": metrics["test"]["accuracy"]}))
"""


def small_config(out, strategy: str) -> RunConfig:
    return RunConfig(out=str(out), model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                     train=TrainConfig(epochs=6, batch_size=8, lr=0.01, strategy=strategy))


def test_mirrored_on_two_devices_learns_as_well_as_one(tmp_path):
    _, alone = train.fit(small_config(tmp_path / "one", "default"), make_sequences(152),
                         verbose=0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MIRRORED_RUN, str(tmp_path / "two")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    mirrored = json.loads(done.stdout.strip().splitlines()[-1])
    config = json.loads((Path(mirrored["run_dir"]) / "config.json").read_text())
    assert config["distribution"] == {"strategy": "mirrored", "replicas": 2,
                                      "global_batch_size": 16}
    assert alone["test"]["accuracy"] >= 0.9
    assert abs(mirrored["accuracy"] - alone["test"]["accuracy"]) <= 0.1


@pytest.mark.parametrize("bucketing", [True, False])
def test_batches_split_evenly_over_replicas_and_their_count_is_exact(bucketing):
    data = make_sequences(61).subset("train")
    batches, steps = pipeline.training_batches(data, batch_size=6, seed=0, bucketing=bucketing,
                                               replicas=2)
    served = list(batches.take(3 * steps))
    assert all(len(labels["label"]) % 2 == 0 and 0 < len(labels["label"]) <= 6
               for _, labels in served)
    buckets = len(pipeline.bucket_boundaries(data.lengths, 6)) + 1 if bucketing else 1
    for epoch in range(3):
        # A sequence is known by its first frame: an epoch serves each at most once, and
        # leaves out fewer than `replicas` per bucket.
        firsts = [tuple(x) for inputs, _ in served[epoch * steps:(epoch + 1) * steps]
                  for x in inputs["features"][:, 0, :].numpy()]
        assert len(set(firsts)) == len(firsts) >= len(data.lengths) - buckets
    alone, alone_steps = pipeline.training_batches(data, batch_size=6, seed=0,
                                                   bucketing=bucketing)
    assert sum(len(b[1]["label"]) for b in alone.take(alone_steps)) == len(data.lengths)


def test_frame_windows_split_evenly_over_replicas():
    data = make_frames(7).subset("train")
    batches, steps = pipeline.window_training_batches(data, 3, batch_size=4, seed=0, replicas=4)
    sizes = [len(b[1]["phone"]) for b in batches.take(steps)]
    assert sizes == [4] * (int(data.lengths.sum()) // 4)


def test_strategy_names_and_cluster_descriptions_are_checked(monkeypatch):
    with pytest.raises(UserError, match="unknown strategy 'tpu'; valid: default, mirrored"):
        distribute.make("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distribute.make("multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(UserError, match="TF_CONFIG: not JSON with 'cluster' and 'task'"):
        distribute.is_chief("multiworker")


def test_only_the_chief_worker_writes_the_run(monkeypatch):
    cluster = {"worker": ["a:1", "b:1"]}
    for task, chief in [({"type": "worker", "index": 0}, True),
                        ({"type": "worker", "index": 1}, False)]:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        assert distribute.is_chief("multiworker") is chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {**cluster, "chief": ["c:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief("multiworker")
    assert distribute.is_chief("mirrored") and distribute.is_chief("default")


def test_an_unknown_strategy_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UserError, match="unknown strategy"):
        train.fit(small_config(tmp_path, "tpu"), make_sequences(30))
    assert not any(tmp_path.iterdir())


MULTIWORKER_RUN = """
import json, sys
sys.path.insert(0, "tests")  # as pytest puts it: conftest and the tests as top-level modules
from conftest import make_sequences
from test_distribute import small_config
from kerasaudio import train
run_dir, metrics = train.fit(small_config(sys.argv[1], "multiworker"), make_sequences(152),
                             verbose=0)
print(json.dumps({"run_dir": str(run_dir), "accuracy": metrics["test"]["accuracy"]}))
"""


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_on_two_local_processes_keeps_the_chiefs_run_only(tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps(tf_config)}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", MULTIWORKER_RUN, str(tmp_path / "runs")], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    chief, worker = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [Path(chief["run_dir"]).name]
    assert not Path(worker["run_dir"]).exists()  # the worker's copy is deleted
    config = json.loads((Path(chief["run_dir"]) / "config.json").read_text())
    assert config["distribution"]["replicas"] == 2
    assert chief["accuracy"] >= 0.85  # chance is 1/3
