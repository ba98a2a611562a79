"""Where a `fit`'s settings come from, decided in one place: an option given on the command
line wins, then a tune best.json's or a run's config.json's setting, then the architecture's
own (its module's `TRAINING`), then the option's default (TrainConfig's); features,
augmentation and SpecAugment default per data set."""

import dataclasses
import json
import logging
import typing
from pathlib import Path

from kerasaudio import datasets, models, quiet, runs
from kerasaudio.config import (
    BUILTIN_AUGMENT,
    BUILTIN_SPEC_AUGMENT,
    DataConfig,
    FeatureConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    feature_defaults,
    fft_length_for,
    parse_augment,
    with_defaults,
)
from kerasaudio.errors import UserError
from kerasaudio.features import GIVEN, KINDS, TF_KINDS, kinds

log = logging.getLogger(__name__)

# What `fit --hparams` needs of the best.json that tuning/search.py's `export` writes.
BEST_KEYS = ("arch", "hparams", "train", "epochs")
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def write_best(path, arch: str, hparams: dict, train: dict, epochs: int, **about) -> dict:
    """Writes a search's best.json as `read_best` reads it back for `fit --hparams`: the
    winner's architecture, hyperparameters, training settings and epoch count, then what
    else the search says of it (`about`: objective, trial, search). Returns the record."""
    record = {"arch": arch, "hparams": hparams, "train": train, "epochs": epochs, **about}
    runs.write_json(Path(path), record)
    return record


def _of_field_type(name: str, value) -> bool:
    """Whether `value` fits TrainConfig's field `name` as JSON gives it (an int for a
    float, a list for a tuple; never a bool for a number)."""
    kind = next(f.type for f in dataclasses.fields(TrainConfig) if f.name == name)
    allowed = set(typing.get_args(kind)) or {kind}
    if float in allowed:
        allowed.add(int)
    if tuple in allowed:
        allowed.add(list)
    if isinstance(value, bool):
        return bool in allowed
    return value is None and type(None) in allowed or isinstance(value, tuple(allowed))


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
    expected = {"arch": str, "hparams": dict, "train": dict}
    for key, kind in expected.items():
        if not isinstance(best[key], kind):
            raise UserError(f"{path}: {key} is {best[key]!r}, expected a {kind.__name__}")
    epochs = best["epochs"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"{path}: epochs is {epochs!r}, expected a whole number of at least 1")
    unknown = sorted(set(best["train"]) - TRAIN_FIELDS)
    if unknown:
        raise UserError(f"{path}: unknown training settings {', '.join(unknown)}")
    for name, value in best["train"].items():
        if not _of_field_type(name, value):
            raise UserError(f"{path}: training setting {name}={value!r} is of the wrong kind")
    if isinstance(best["hparams"].get("hidden"), list):
        best["hparams"]["hidden"] = tuple(best["hparams"]["hidden"])
    if "data" in best:  # searches since the data was recorded
        best["searched"] = _searched_run(path, best)
    search = best.get("search")
    if isinstance(search, dict) and search.get("finished") is False:
        log.warning(f"{path}: the best of {search.get('completed', '?')} trials of a search "
                    "that was interrupted; run its tune command again to finish it")
    return best


def _searched_run(path, best: dict) -> RunConfig:
    """The data, features and augmentation the search's trials had, as a RunConfig."""
    spec_augment = best.get("spec_augment", False)  # searches before it was recorded: off
    if not isinstance(spec_augment, bool):
        raise UserError(f"{path}: spec_augment is {spec_augment!r}, expected true or false")
    try:
        # A quick search's --limit or --train-fraction is not the retrain's.
        data = {**best["data"], "limit": None, "train_fraction": 1.0}
        recorded = with_defaults({"data": data, "features": best["features"]})
        return RunConfig.from_dict({
            "data": recorded["data"], "features": recorded["features"],
            "model": {"arch": best["arch"]}, "out": "",
            "train": {"augment": tuple(best.get("augment", ())),
                      "spec_augment": spec_augment}})
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{path}: its data or features are not a search's record "
                        f"({error})") from None


def earlier(best: dict | None, record: RunConfig | None) -> dict | None:
    """The settings an earlier search or run gives: {"arch", "hparams", "train"} from a
    best.json (its training settings and best epoch count) or a run's config.json."""
    # A record from before its architecture gained a hyperparameter built the model without
    # it, which today's default need not do (gru_attention's convolutions).
    if best is not None:
        return {"arch": best["arch"],
                "hparams": models.recorded_hyperparameters(best["arch"], best["hparams"]),
                "train": {**best["train"], "epochs": best["epochs"]}}
    if record is not None:
        return {"arch": record.model.arch,
                "hparams": models.recorded_hyperparameters(record.model.arch,
                                                           record.model.hparams),
                "train": dataclasses.asdict(record.train)}
    return None


# The architecture by data format when --arch is not given: MiniRocket's features for UEA/UCR
# time series, ahead of conv1d on three of the five small sets measured, level on one, two
# test series behind on one, and ahead of gru_attention on all (results/README.md, "Small real
# data sets"); gru_attention for everything else.
DEFAULT_ARCHS = {"ts": "minirocket"}


def default_arch(data: DataConfig) -> str:
    """The architecture `fit` and `tune` use on `data` when --arch is not given.

    Raises:
        UserError: if `data` is a path that does not exist or whose format cannot be told.
    """
    return DEFAULT_ARCHS.get(datasets.format_of(data), ModelConfig.arch)


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
                "val_fraction": "val_fraction", "test_fraction": "test_fraction",
                "train_fraction": "train_fraction"}
FEATURE_OPTIONS = {"feature_kind": "kind", "deltas": "deltas", "beat_sync": "beat_sync",
                   "n_mfcc": "n_mfcc", "n_mels": "n_mels", "max_hz": "max_hz",
                   "sample_rate": "sample_rate", "cmvn": "cmvn", "hop_ms": "hop_ms"}


def read_run_config(path) -> RunConfig:
    """The RunConfig a run's config.json records (`fit --config`).

    Raises:
        UserError: naming the file, when it is missing, not JSON, not a run's record, or
            the record of a fine-tuning (which `finetune` reruns).
    """
    config, cfg = runs.read_config(path)
    # Its data as it named them, from where it ran (a relative path names a folder there).
    cfg = dataclasses.replace(cfg, data=datasets.recorded(cfg.data, config.get(runs.CWD)))
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


def features_for(data: DataConfig, kind: str | None, **given) -> FeatureConfig:
    """The data set's feature defaults (built-in sets have their own), overridden by the
    options the user gave (None: not given)."""
    explicit = {k: v for k, v in {"kind": kind, **given}.items() if v is not None}
    if explicit.get("kind") == GIVEN:
        # What config.json and compare call frames that came with the data: it names the
        # data, and computes nothing.
        if not datasets.comes_as_features(data):
            datasets.format_of(data)  # a path missing or of no known format says so
            raise UserError(f"--features {GIVEN}: {data.name} is audio, whose features are "
                            f"computed; choose {', '.join(KINDS)}")
        del explicit["kind"]
    # Options on how audio becomes features would be ignored without a word (--cmvn is
    # the model's, and normalises given features too).
    computing = [k for k in explicit if k != "cmvn"]
    if computing and datasets.comes_as_features(data):
        names = ", ".join("--" + ("features" if k == "kind" else k.replace("_", "-"))
                          for k in computing)
        raise UserError(f"{names}: {data.name} comes as features, not audio; feature options "
                        "change how features are computed from audio, so leave them out")
    features = dataclasses.replace(feature_defaults(data.name), **explicit)
    if "sample_rate" in explicit:  # the FFT covers the window at any rate
        features = dataclasses.replace(features, fft_length=fft_length_for(features))
    if features.hop_ms > features.frame_ms:
        raise UserError(f"--hop-ms {features.hop_ms:g} is longer than the {features.frame_ms:g} "
                        "ms window: the audio between frames would never be heard")
    # Both would be cut silently to what the audio holds, and recorded as given.
    if "mfcc" in kinds(features) and features.n_mfcc > features.n_mels:
        raise UserError(f"--n-mfcc {features.n_mfcc} is more than the {features.n_mels} mel "
                        "bands the coefficients are computed from; raise --n-mels")
    if features.max_hz is not None and features.max_hz > features.sample_rate / 2:
        raise UserError(f"--max-hz {features.max_hz:g} is above {features.sample_rate / 2:g} Hz, "
                        f"half the {features.sample_rate} Hz sample rate: no audio is there")
    return features


def augment_for(names: str | None, data: DataConfig, features: FeatureConfig) -> tuple:
    """--augment as given, else the data set's default set (spoken-digits: all) when its
    features are computed in TensorFlow, which augmentation on the fly needs."""
    if names is not None:
        return parse_augment(names)
    in_graph = set(features.kind.split("+")) <= set(TF_KINDS)
    return BUILTIN_AUGMENT.get(data.name, ()) if in_graph and not features.beat_sync else ()


def spec_augment_for(given: bool | None, data: DataConfig) -> bool:
    """--spec-augment or --no-spec-augment as given, else the data set's default (on for
    spoken-digits)."""
    return data.name in BUILTIN_SPEC_AUGMENT if given is None else given


def ensemble_plan(repeats: int, folds: int | None, ensemble: int | None) -> tuple:
    """(runs with seeds, what an ensemble averages: `folds`, `seeds` or None) from --repeats,
    --folds and --ensemble, refusing combinations that mean nothing."""
    if folds and repeats > 1:
        raise UserError("--folds and --repeats: give one (each fold is one run)")
    if ensemble is None:
        return repeats, None
    if folds:
        if ensemble:
            raise UserError(f"--folds {folds} --ensemble: the ensemble is the {folds} fold "
                            "models; give --ensemble without a number")
        return repeats, "folds"
    if ensemble and repeats > 1 and ensemble != repeats:
        raise UserError(f"--ensemble {ensemble} and --repeats {repeats} disagree on the "
                        "number of seeds; give one")
    seeds = ensemble or repeats
    if ensemble == 1 or seeds < 2:
        raise UserError("--ensemble needs members: --ensemble N (seeds), or with --folds K "
                        "or --repeats N")
    return seeds, "seeds"


def searched_source(best: dict | None, data: DataConfig, given: set) -> RunConfig | None:
    """The search's data, features and augmentation (a best.json's) for `fit --hparams`,
    unless --data names other data, which then has its own defaults."""
    searched = (best or {}).get("searched")
    if searched is None or ("data" in given and datasets.data_location(data.name)
                            != datasets.data_location(searched.data.name)):
        return None
    return searched


def fit_config(options: dict, given: set) -> RunConfig:
    """A `fit`'s RunConfig from its options (click's parameter names -> values, given or
    default; `data` already a DataConfig) and the names of those given on the command line,
    with --hparams (a best.json) or --config (a run's config.json) as the earlier settings.

    Raises:
        UserError: for both --hparams and --config, an unreadable file, or an unknown
            architecture (found before TensorFlow is imported).
    """
    if options["hparams_file"] and options["config_file"]:
        raise UserError("--hparams and --config: give one")
    record = read_run_config(options["config_file"]) if options["config_file"] else None
    best = read_best(options["hparams_file"]) if options["hparams_file"] else None
    before = earlier(best, record)
    layered = {k: options[k] for k in ("hidden", "layers", "dropout") if options[k] is not None}
    # The data's default architecture unless given, or an earlier run's or search's.
    arch = options["arch"] or (None if before else default_arch(options["data"]))
    arch, hparams = model(arch, {**layered, **options["sets"]}, "arch" in given, before)
    models.check_name(arch)  # a typo fails at once, before TensorFlow's seconds of import
    quiet.import_tensorflow()  # the architecture's module imports Keras
    # The data, features and augmentation of the run, or of the search's trials: a winner
    # found on one data set is not retrained on the built-in corpus without a word.
    source = record or searched_source(best, options["data"], given)
    data = record_data(source, options["data"], given) if source else options["data"]
    features = features_for(data, options["feature_kind"], **{
        k: options[k] for k in FEATURE_OPTIONS if k != "feature_kind"})
    augment = augment_for(options["augment_names"], data, features)
    spec_augment = spec_augment_for(options["spec_augment"], data)
    out = options["out"]
    if source is not None:
        features = record_features(source, features, given)
        augment = augment if "augment_names" in given else source.train.augment
        spec_augment = spec_augment if "spec_augment" in given else source.train.spec_augment
    elif best is not None and "searched" not in best and "spec_augment" not in given:
        spec_augment = False  # a search from before best.json recorded its data trained without
    if record is not None:
        out = out if "out" in given else record.out
    train = {k: v for k, v in options.items() if k in TRAIN_FIELDS}
    cfg = RunConfig(data=data, features=features, model=ModelConfig(arch, hparams),
                    train=TrainConfig(**{**training(arch, train, given, before),
                                         "augment": augment, "spec_augment": spec_augment}),
                    out=out)
    # Bad hyperparameters or feature names fail here, before any data is loaded.
    models.resolve(cfg.model.arch, cfg.model.hparams)
    kinds(cfg.features)
    return cfg
