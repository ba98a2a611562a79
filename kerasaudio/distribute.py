"""Training on several devices or machines with tf.distribute, chosen by name.

- `default`: one device, TensorFlow's default placement.
- `mirrored`: MirroredStrategy, one replica per visible GPU (per logical CPU device when there
  is no GPU), gradients all-reduced every step.
- `multiworker`: MultiWorkerMirroredStrategy across the machines TF_CONFIG describes; every
  machine runs the same command, and only the chief writes the run directory.

`--batch-size` is per replica: a step takes batch_size x replicas examples in all, split
evenly over the replicas, so each device sees the batch size it would see alone.
"""

import functools
import json
import os

from kerasaudio.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")


def _cluster() -> dict:
    """TF_CONFIG, parsed; a clear error when it is missing or not a cluster description."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                        "machine's task); see the README's multi-machine example")
    try:
        config = json.loads(text)
        config["cluster"], config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise UserError("TF_CONFIG: not JSON with 'cluster' and 'task' {'type', 'index'}") \
            from None
    return config


@functools.cache
def make(name: str):
    """The tf.distribute strategy called `name`, made once per process.

    MultiWorkerMirroredStrategy must exist before TensorFlow runs its first op and only once,
    so call this before loading data.

    Raises:
        UserError: for an unknown name, or `multiworker` without a valid TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    if name == "multiworker":
        _cluster()
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    reduce_scalars_across_workers()
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(name: str) -> bool:
    """Whether this process writes the run: always, except on a multiworker cluster's
    non-chief workers (the chief is task `chief`, or `worker` 0 when there is none)."""
    if name != "multiworker":
        return True
    config = _cluster()
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


def build_from_one_replica(model) -> None:
    """Makes `model.fit` and `model.evaluate` under a strategy build from the first replica's
    part of the first batch instead of the mean over replicas.

    Keras 3's TensorFlow trainer (`_maybe_symbolic_build`) averages that batch across the
    replicas only to learn its shapes; averaging fails on boolean inputs such as the masks,
    and on parts of different sizes (a last batch that does not split evenly). One replica's
    part has the shapes it needs.
    """
    import tensorflow as tf

    strategy = model.distribute_strategy

    def first_replica(value):
        return strategy.experimental_local_results(value)[0]

    def build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(first_replica, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build


def reduce_scalars_across_workers() -> None:
    """Lets Keras 3's `fit` report its logs under MultiWorkerMirroredStrategy.

    Keras averages each step's logs across workers with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on the scalar logs every model returns ("Invalid reduction dimension 0 for
    input with 0 dimensions", tensorflow/tensorflow#72388). A scalar is averaged over the
    workers as it is; everything else goes through Keras unchanged.
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "handles_scalars", False):
        return
    keras_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        import tensorflow as tf

        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(
                strategy):
            return keras_reduce(values, strategy, reduction)

        def reduce(value):
            if value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica.handles_scalars = True
    trainer.reduce_per_replica = reduce_per_replica
