"""Architecture registry: one module per architecture, each with
`build(spec, tasks, **hparams) -> keras.Model`; frame classifiers that take a window of
frames say `INPUT = "window"`, sequence labellers (a whole sequence in, a label per frame out)
`LEVEL = "frame"`; `TRAINING` holds training settings of its own (e.g. a batch size). Modules
are imported only when used, so listing names does not import Keras."""

import importlib
import inspect

from kerasaudio.errors import UserError

ARCHITECTURES = {
    "dense": "kerasaudio.models.dense",
    "gru": "kerasaudio.models.gru",
    "gru_attention": "kerasaudio.models.gru_attention",
    "lstm": "kerasaudio.models.lstm",
    "bilstm": "kerasaudio.models.bilstm",
    "conv1d": "kerasaudio.models.conv1d",
    "cnn2d": "kerasaudio.models.cnn2d",
    "frame_mlp": "kerasaudio.models.frame_mlp",
    "bilstm_frames": "kerasaudio.models.bilstm_frames",
    "bigru_labeller": "kerasaudio.models.bigru_labeller",
}


def _module(name: str):
    if name not in ARCHITECTURES:
        raise UserError(f"unknown architecture {name!r}; valid: {', '.join(ARCHITECTURES)}")
    return importlib.import_module(ARCHITECTURES[name])


def input_kind(name: str) -> str:
    """`sequence` (whole padded sequences, one label each) or `window` (a window of frames
    around each labelled frame)."""
    return getattr(_module(name), "INPUT", "sequence")


def label_level(name: str) -> str:
    """`sequence` (one label per sequence) or `frame` (one label per frame): what the
    architecture's outputs predict."""
    default = "frame" if input_kind(name) == "window" else "sequence"
    return getattr(_module(name), "LEVEL", default)


def training_defaults(name: str) -> dict:
    """Training settings (TrainConfig fields) the architecture trains best with, where they
    differ from TrainConfig's: what `fit` uses for options the user does not give."""
    return dict(getattr(_module(name), "TRAINING", {}))


def hyperparameters(name: str) -> dict:
    """The architecture's hyperparameters with their default values."""
    params = list(inspect.signature(_module(name).build).parameters.values())[2:]
    return {p.name: p.default for p in params}


def resolve(name: str, given: dict) -> dict:
    """The defaults of `name` overridden by `given`; unknown names are a UserError."""
    defaults = hyperparameters(name)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"architecture {name!r} has no hyperparameter {', '.join(unknown)}; "
                        f"valid: {', '.join(defaults)}")
    return {**defaults, **given}


def build(name: str, spec, tasks, **hparams):
    """Builds architecture `name` for inputs `spec` and targets `tasks`."""
    return _module(name).build(spec, tasks, **resolve(name, hparams))
