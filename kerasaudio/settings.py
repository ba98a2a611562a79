"""Where a `fit`'s settings come from, decided in one place: an option given on the command
line wins, then a tune best.json's setting, then the architecture's own (its module's
`TRAINING`), then the option's default (TrainConfig's)."""

import dataclasses
import json
from pathlib import Path

from kerasaudio import models
from kerasaudio.config import DataConfig, FeatureConfig, RunConfig, TrainConfig, with_defaults
from kerasaudio.errors import UserError
from kerasaudio.features import GIVEN

# What `fit --hparams` needs of the best.json that tuning/search.py's `export` writes.
BEST_KEYS = ("arch", "hparams", "train", "epochs")
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def read_best(path) -> dict:
    """A tune best.json, checked for the keys `fit` uses.

    Raises:
        UserError: naming the file, when it is missing, not JSON, or not a best.json.
    """
    try:
        best = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    missing = [k for k in BEST_KEYS if k not in best] if isinstance(best, dict) else BEST_KEYS
    if missing:
        raise UserError(f"{path}: not a tune best.json (missing {', '.join(missing)})")
    unknown = sorted(set(best["train"]) - TRAIN_FIELDS)
    if unknown:
        raise UserError(f"{path}: unknown training settings {', '.join(unknown)}")
    if isinstance(best["hparams"].get("hidden"), list):
        best["hparams"]["hidden"] = tuple(best["hparams"]["hidden"])
    return best


def earlier(best: dict | None, record: RunConfig | None) -> dict | None:
    """The settings an earlier search or run gives: {"arch", "hparams", "train"} from a
    best.json (its training settings and best epoch count) or a run's config.json."""
    if best is not None:
        return {"arch": best["arch"], "hparams": best["hparams"],
                "train": {**best["train"], "epochs": best["epochs"]}}
    if record is not None:
        return {"arch": record.model.arch, "hparams": record.model.hparams,
                "train": dataclasses.asdict(record.train)}
    return None


def model(arch: str, hparams: dict, arch_given: bool, before: dict | None) -> tuple[str, dict]:
    """(architecture, hyperparameters): the earlier settings' unless given; their
    hyperparameters only for their own architecture."""
    if before is None:
        return arch, hparams
    arch = arch if arch_given else before["arch"]
    return arch, {**(before["hparams"] if arch == before["arch"] else {}), **hparams}


def training(arch: str, options: dict, given: set, before: dict | None) -> dict:
    """TrainConfig's keyword arguments from `options` (every training option's value, given
    or default), each one not in `given` taken from the earlier settings (`earlier`), else
    from the architecture's own settings."""
    chosen = {**models.training_defaults(arch), **(before["train"] if before else {})}
    return {name: value if name in given else chosen.get(name, value)
            for name, value in options.items()}


# `fit` options (click's parameter names) -> the DataConfig and FeatureConfig fields they set.
DATA_OPTIONS = {"data": "name", "data_format": "format", "data_part": "part",
                "skip_bad": "skip_bad", "limit": "limit", "tasks": "tasks",
                "val_fraction": "val_fraction", "test_fraction": "test_fraction"}
FEATURE_OPTIONS = {"feature_kind": "kind", "deltas": "deltas", "beat_sync": "beat_sync",
                   "n_mfcc": "n_mfcc", "n_mels": "n_mels", "max_hz": "max_hz",
                   "sample_rate": "sample_rate", "cmvn": "cmvn"}


def read_run_config(path) -> RunConfig:
    """The RunConfig a run's config.json records (`fit --config`).

    Raises:
        UserError: naming the file, when it is missing, not JSON, not a run's record, or
            the record of a fine-tuning (which `finetune` reruns).
    """
    try:
        record = with_defaults(json.loads(Path(path).read_text()))
        cfg = RunConfig.from_dict(record)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise UserError(f"{path}: not a run's config.json ({type(error).__name__}: "
                        f"{error})") from None
    if cfg.finetune is not None:
        raise UserError(f"{path}: the record of a fine-tuning run; rerun it with `finetune "
                        f"--from {cfg.finetune.source}`")
    return cfg


def record_data(record: RunConfig, data: DataConfig, given: set) -> DataConfig:
    """The record's data settings, with those of the options in `given`."""
    return dataclasses.replace(record.data, **{
        field: getattr(data, field) for option, field in DATA_OPTIONS.items() if option in given})


def record_features(record: RunConfig, features: FeatureConfig, given: set) -> FeatureConfig:
    """The record's feature settings, with those of the options in `given`; features that
    came with the data (`given`) are the data's again, as `features` has them."""
    if record.features.kind == GIVEN:
        return features
    return dataclasses.replace(record.features, **{
        field: getattr(features, field) for option, field in FEATURE_OPTIONS.items()
        if option in given})
