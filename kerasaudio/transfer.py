"""Transfer learning: an earlier run's best model with its heads replaced by new tasks' heads,
and the switch between training the new heads alone and training everything."""

import dataclasses
import logging
from pathlib import Path

import keras

from kerasaudio import datasets, models, runs
from kerasaudio.config import FinetuneConfig, RunConfig
from kerasaudio.errors import UserError
from kerasaudio.models import heads
from kerasaudio.models.layers import SpecAugment

log = logging.getLogger(__name__)


def describe_source(run_dir) -> dict:
    """What a fine-tuned run's config.json records of the run it came from."""
    record = runs.load_run(run_dir, warn=False)  # finetune warned when it loaded the source
    return {"run_dir": str(Path(run_dir).resolve()), "arch": record.config.model.arch,
            "data": record.config.data.name, "tasks": [t.name for t in record.dataset.tasks],
            "test": runs.read_metrics(run_dir).get("test")}


def _backbone_output(model: keras.Model):
    """The tensor the source model's heads sit on; for an ensemble (kerasaudio/crossval.py),
    its members' backbone outputs side by side."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if members:
        cut = [keras.Model(m.input, _backbone_output(m), name=f"{m.name}_backbone")
               for m in members]
        return keras.layers.Concatenate(name=heads.BACKBONE)([c(model.input) for c in cut])
    try:
        return model.get_layer(heads.BACKBONE).output
    except ValueError:
        raise UserError(f"model {model.name!r} has no layer {heads.BACKBONE!r} to put new heads "
                        "on; it was trained before fine-tuning existed") from None


def _head_l2(model: keras.Model) -> float:
    """The L2 penalty the source's heads were trained with (minirocket's linear head has one:
    without it, its thousands of features overfit a small data set), so that the new heads
    train under the same. Heads are the only layers with a kernel regularizer."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # an ensemble's member
            return _head_l2(layer)
        penalty = getattr(layer, "kernel_regularizer", None)
        if isinstance(penalty, keras.regularizers.L2):
            return float(penalty.l2)
    return 0.0


def build(run_dir, tasks: list, n_features: int, spec_augment: bool = True) -> keras.Model:
    """The run's best model up to its backbone, with one new head per task.

    The source's input normalisation comes along: it is part of what the backbone learned on.
    So does its SpecAugment layer, which masks no frames unless `spec_augment`.

    Raises:
        UserError: if the data's frames are not as wide as the source model's input.
    """
    source = runs.load_model(run_dir)
    width = source.inputs[0].shape[-1]
    if width != n_features:
        raise UserError(f"{Path(run_dir) / 'best.keras'}: takes frames of {width} features, "
                        f"the data has {n_features}; "
                        "fine-tune on data read with the same features")
    new_heads = heads.heads_on(_backbone_output(source), tasks, _head_l2(source))
    model = keras.Model(source.inputs, new_heads, name=source.name)
    set_backbone_trainable(model, tasks, True)
    if not spec_augment:
        for masking in _layers_of(model, SpecAugment):
            masking.time_masks = masking.freq_masks = 0  # the identity, in training too
    return model


def set_backbone_trainable(model: keras.Model, tasks: list, trainable: bool) -> None:
    """Freezes (or unfreezes) every layer but the tasks' heads.

    A frozen BatchNormalization keeps its moving statistics and runs in inference mode
    (Keras's rule), so a frozen backbone computes exactly what it did in the source run.
    BatchNormalization layers stay frozen when the rest is unfrozen, as Keras's transfer
    learning guide advises: switching them to batch statistics would undo what the new
    heads learned on the frozen backbone's outputs."""
    head_layers = {name for task in tasks for name in heads.layer_names(task)}
    for layer in model.layers:
        if layer.name not in head_layers:
            layer.trainable = trainable
            # Also inside nested models (an ensemble's member backbones), which the
            # assignment above unfroze whole.
            for norm in _layers_of(layer, keras.layers.BatchNormalization):
                norm.trainable = False


def _spec_augment(run_dir, source: RunConfig, given: bool | None) -> bool:
    """Whether fine-tuning masks: the source's SpecAugment layer sits before its backbone
    and comes along, masking as in the source run unless turned off (`given`)."""
    if given and not source.train.spec_augment:
        raise UserError(f"{run_dir} trained without SpecAugment masking: it has none to "
                        "fine-tune with (leave --spec-augment out)")
    return source.train.spec_augment if given is None else given


def _layers_of(layer, kind) -> list:
    """The layers of class `kind` in `layer`, itself included, through nested models."""
    if isinstance(layer, kind):
        return [layer]
    return [found for inner in getattr(layer, "layers", []) for found in _layers_of(inner, kind)]


def finetune_config(run_dir, data, train, freeze_epochs: int, out: str,
                    feature_kind: str | None = None, own_data: bool = False,
                    spec_augment: bool | None = None):
    """The RunConfig of fine-tuning the run in `run_dir`: its architecture, hyperparameters
    and feature settings (the backbone only understands those), the data and tasks of `data`,
    and new training settings.

    Args:
        run_dir: the source run directory.
        data: the DataConfig to train on (its tasks, limit, ...).
        train: the TrainConfig of the new run; `train.lr` is the frozen phase's rate.
        freeze_epochs: epochs with the backbone frozen.
        out: parent folder of the new run directory.
        feature_kind: the --features the user gave, which must be the source's.
        own_data: read the source run's data set (its name, format, part and seed) instead
            of `data`'s. On the source's data set (so also when `data` names it) the shares
            and fold that drew the source's splits are kept: other shares would draw a test
            split holding examples the backbone trained on.
        spec_augment: whether the source's SpecAugment layer masks while fine-tuning (None:
            as it did in the source run).

    Raises:
        UserError: for a run directory that cannot be fine-tuned, or other features.
    """

    record = runs.load_run(run_dir)
    source = record.config
    # The same data however spelt (relative or absolute, a trailing slash, a link), and
    # from wherever the source ran.
    source_data = datasets.data_location(source.data.name, record.cwd)
    own_data = own_data or datasets.data_location(data.name) == source_data
    if own_data and record.ensemble and record.ensemble["of"] == "folds":
        raise UserError(f"{run_dir}: an ensemble of fold models, each of whose examples "
                        "outside the test split trained one of its members: its own data "
                        "has no clean validation split; fine-tune one fold run, or give "
                        "other --data")
    if freeze_epochs == 0:
        # No frozen phase: the whole model trains at once, at the unfrozen phase's rate,
        # which the record then says.
        train = dataclasses.replace(train, lr=train.lr * FinetuneConfig.lr_factor)
    if freeze_epochs >= train.epochs:
        log.warning(f"--freeze-epochs {freeze_epochs} is not below --epochs {train.epochs}: "
                    "the backbone stays frozen throughout, and only the new heads train")
    if feature_kind and feature_kind != source.features.kind:
        raise UserError(f"{run_dir} was trained on {source.features.kind} features; its "
                        f"backbone cannot read {feature_kind} (leave --features out)")
    if own_data:
        data = dataclasses.replace(data, name=source_data, format=source.data.format,
                                   part=source.data.part, seed=source.data.seed,
                                   val_fraction=source.data.val_fraction,
                                   test_fraction=source.data.test_fraction,
                                   folds=source.data.folds, fold=source.data.fold)
    train = dataclasses.replace(train, spec_augment=_spec_augment(run_dir, source, spec_augment))
    # The model as it was built: a source from before a hyperparameter existed lacks it.
    model = dataclasses.replace(source.model, hparams=models.recorded_hyperparameters(
        source.model.arch, source.model.hparams))
    return RunConfig(data=data, features=source.features, model=model, train=train,
                     out=out, finetune=FinetuneConfig(source=str(run_dir),
                                                      freeze_epochs=freeze_epochs))
