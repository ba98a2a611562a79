"""Task heads: one named output per task, with its loss and metrics."""

import keras

from kerasaudio.config import Task


def outputs(x, tasks: list[Task]) -> dict:
    """One output layer per task, named after the task, on the backbone output `x`."""
    heads = {}
    for task in tasks:
        if task.kind != "classification":
            raise ValueError(f"unsupported task kind {task.kind!r}")
        heads[task.name] = keras.layers.Dense(task.num_classes, activation="softmax",
                                              name=task.name)(x)
    return heads


def losses(tasks: list[Task]) -> dict:
    # Keras computes cross-entropy from the softmax's logits, so probabilities as outputs
    # cost no numerical stability (the seed's "softmax before cross-entropy" bug cannot happen).
    return {task.name: keras.losses.SparseCategoricalCrossentropy() for task in tasks}


def metrics(tasks: list[Task]) -> dict:
    return {task.name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")] for task in tasks}
