"""Task heads, built from the data set's list of tasks: one named output per task, with its
loss, metrics and loss weight. Several tasks on one backbone make a multitask model whose
outputs are a dict and whose loss is the weighted sum of the tasks' losses."""

import keras

from kerasaudio.config import Task
from kerasaudio.errors import UserError

KINDS = ("classification", "regression")
# The metric Keras logs for each kind of task, beside its loss.
METRIC = {"classification": "accuracy", "regression": "mae"}
# The layer every architecture's heads sit on; fine-tuning puts new heads on it.
BACKBONE = "backbone"


def _check(task: Task) -> None:
    if task.kind not in KINDS:
        raise UserError(f"task {task.name!r} is of unknown kind {task.kind!r}; valid: "
                        f"{', '.join(KINDS)}")


def output(x, task: Task, l2: float = 0.0):
    """The output layer of one task on the backbone output `x`, named after the task:
    softmax over the classes, or one value (sigmoid for a target in [0, 1], else linear).

    `x` may be (batch, units) or, for a sequence labeller, (batch, time, units). `l2`
    penalises the layer's squared weights (added to the loss)."""
    _check(task)
    penalty = keras.regularizers.L2(l2) if l2 else None
    if task.kind == "classification":
        return keras.layers.Dense(task.num_classes, activation="softmax",
                                  kernel_regularizer=penalty, name=task.name)(x)
    value = keras.layers.Dense(1, activation="sigmoid" if task.bounded else "linear",
                               kernel_regularizer=penalty, name=f"{task.name}_value")(x)
    # (..., 1) -> (...): one number per example, shaped like the targets.
    return keras.layers.Reshape(tuple(value.shape[1:-1]), name=task.name)(value)


def outputs(x, tasks: list[Task], l2: float = 0.0) -> dict:
    """One output per task, on the backbone output `x`, which is named `backbone` here."""
    return heads_on(keras.layers.Identity(name=BACKBONE)(x), tasks, l2)


def heads_on(backbone, tasks: list[Task], l2: float = 0.0) -> dict:
    """One output per task on the already named `backbone` tensor (fine-tuning's new heads)."""
    return {task.name: output(backbone, task, l2) for task in tasks}


def layer_names(task: Task) -> list:
    """The names of the layers `output` builds for `task`."""
    return [task.name] if task.kind == "classification" else [f"{task.name}_value", task.name]


def _crossentropy(classes, y_pred, label_smoothing: float):
    """Cross-entropy against class indices; with `label_smoothing`, against their one-hot
    targets moved that far towards uniform (Keras's sparse cross-entropy has no smoothing)."""
    if not label_smoothing:
        return keras.losses.sparse_categorical_crossentropy(classes, y_pred)
    targets = keras.ops.one_hot(keras.ops.cast(classes, "int32"), keras.ops.shape(y_pred)[-1])
    return keras.losses.categorical_crossentropy(targets, y_pred,
                                                 label_smoothing=label_smoothing)


@keras.saving.register_keras_serializable(package="kerasaudio")
class SmoothedCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy against targets smoothed by `label_smoothing`: the
    true class weighs 1 - label_smoothing + label_smoothing / classes, every other class
    label_smoothing / classes."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        return _crossentropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="kerasaudio")
class MixupCrossentropy(SmoothedCrossentropy):
    """Sparse categorical cross-entropy (smoothed as SmoothedCrossentropy's); against
    mixup's training targets (class, partner's class, lam), lam * CE(class) + (1 - lam) *
    CE(partner's class), which is the cross-entropy against the mixed one-hot targets.
    Validation and test targets stay classes, so the same compiled model scores them as
    usual."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "mixup_crossentropy",
                 **kwargs):
        super().__init__(label_smoothing, name=name, **kwargs)

    def call(self, y_true, y_pred):
        if len(y_true.shape) < len(y_pred.shape):
            return _crossentropy(y_true, y_pred, self.label_smoothing)
        lam = y_true[..., 2]
        return (lam * _crossentropy(y_true[..., 0], y_pred, self.label_smoothing)
                + (1 - lam) * _crossentropy(y_true[..., 1], y_pred, self.label_smoothing))


@keras.saving.register_keras_serializable(package="kerasaudio")
class MixupAccuracy(keras.metrics.SparseCategoricalAccuracy):
    """Accuracy; on mixup's training targets, against the class that weighs more."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if len(y_true.shape) == len(y_pred.shape):
            y_true = keras.ops.where(y_true[..., 2] >= 0.5, y_true[..., 0], y_true[..., 1])
        return super().update_state(y_true, y_pred, sample_weight)


def losses(tasks: list[Task], mixup: bool = False, label_smoothing: float = 0.0) -> dict:
    """Each task's loss; with `mixup`, one that also reads mixup's class targets; with
    `label_smoothing`, classes' targets smoothed."""
    # Keras computes cross-entropy from the softmax's logits, so probabilities as outputs
    # cost no numerical stability (the course project's "softmax before cross-entropy" bug
    # cannot happen).
    def crossentropy():
        if mixup:
            return MixupCrossentropy(label_smoothing)
        if label_smoothing:
            return SmoothedCrossentropy(label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()

    return {task.name: crossentropy() if task.kind == "classification"
            else keras.losses.MeanSquaredError() for task in tasks}


def metrics(tasks: list[Task], mixup: bool = False) -> dict:
    """Accuracy of a classification task; mean absolute error of a regression task (Spearman
    correlation is a rank statistic over the whole split, computed by evaluate)."""
    accuracy = MixupAccuracy if mixup else keras.metrics.SparseCategoricalAccuracy
    return {task.name: [accuracy(name=METRIC[task.kind]) if task.kind == "classification"
                        else keras.metrics.MeanAbsoluteError(name=METRIC[task.kind])]
            for task in tasks}


def metric_names(task: Task) -> list:
    """The names Keras logs for `task`'s output: its loss and metric."""
    return ["loss", METRIC[task.kind]]


def loss_weights(tasks: list[Task], given: dict) -> dict:
    """Each task's weight in the summed loss: 1, or as given (`--task-weight name=w`).

    Raises:
        UserError: for a weight of a task the model does not have, or a negative one.
    """
    names = [t.name for t in tasks]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"--task-weight names no task of the model: {', '.join(unknown)}; "
                        f"tasks: {', '.join(names)}")
    negative = [n for n, w in given.items() if w < 0]
    if negative:
        raise UserError(f"task weights must be >= 0, got {', '.join(negative)}")
    return {name: float(given.get(name, 1.0)) for name in names}


def regression_outputs(model) -> set:
    """The names of `model`'s outputs that are regression values (not class probabilities)."""
    layers = {layer.name for layer in model.layers}
    return {name for name in model.output_names if f"{name}_value" in layers}
