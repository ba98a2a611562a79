"""Architecture registry: one module per architecture, each with
`build(spec, tasks, **hparams) -> keras.Model`; frame classifiers that take a window of
frames say `INPUT = "window"`, sequence labellers (a whole sequence in, a label per frame out)
`LEVEL = "frame"`; `TRAINING` holds training settings of its own (e.g. a batch size);
`EARLIER` holds, for hyperparameters added since runs were recorded, the value that builds what
those runs built where it is not the default. Modules are imported only when used, so listing
names does not import Keras."""

import ast
import importlib
import importlib.util
import inspect
import math
from pathlib import Path

from kerasaudio.errors import UserError

ARCHITECTURES = {
    "dense": "kerasaudio.models.dense",
    "gru": "kerasaudio.models.gru",
    "gru_attention": "kerasaudio.models.gru_attention",
    "lstm": "kerasaudio.models.lstm",
    "bilstm": "kerasaudio.models.bilstm",
    "conv1d": "kerasaudio.models.conv1d",
    "minirocket": "kerasaudio.models.minirocket",
    "cnn2d": "kerasaudio.models.cnn2d",
    "frame_mlp": "kerasaudio.models.frame_mlp",
    "bilstm_frames": "kerasaudio.models.bilstm_frames",
    "bigru_labeller": "kerasaudio.models.bigru_labeller",
}


def check_name(name: str) -> None:
    """Raises UserError for a name that is no architecture, without importing Keras."""
    if name not in ARCHITECTURES:
        raise UserError(f"unknown architecture {name!r}; valid: {', '.join(ARCHITECTURES)}")


def _module(name: str):
    check_name(name)
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


def summary(name: str) -> dict:
    """What `archs` lists of an architecture, read from its module's source without
    importing it (importing Keras takes seconds): the docstring's first sentence, `build`'s
    hyperparameters with their defaults, and its own training settings."""
    tree = _source(name)
    doc = " ".join(ast.get_docstring(tree).split("\n\n")[0].split())
    return {"description": doc.split(": ", 1)[-1],
            "hyperparameters": _defaults(tree),
            "training": _assigned(tree, "TRAINING") or {}}


def recorded_hyperparameters(name: str, hparams: dict) -> dict:
    """A run's hyperparameters as its config.json holds them, with those the architecture has
    gained since filled in: with the value that builds what the run built (`EARLIER`, where a
    default has changed since), else the default. Read from source, without importing Keras.
    A name that is no architecture (any more) keeps its record: building it says what is
    wrong."""
    if not isinstance(name, str) or name not in ARCHITECTURES:
        return dict(hparams or {})
    tree = _source(name)
    return {**_defaults(tree), **(_assigned(tree, "EARLIER") or {}), **(hparams or {})}


def _source(name: str) -> ast.Module:
    check_name(name)
    return ast.parse(Path(importlib.util.find_spec(ARCHITECTURES[name]).origin).read_text())


def _defaults(tree: ast.Module) -> dict:
    """`build`'s hyperparameters (its arguments after spec and tasks) with their defaults."""
    build = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build")
    named = build.args.args[len(build.args.args) - len(build.args.defaults):]
    return {a.arg: ast.literal_eval(d) for a, d in zip(named, build.args.defaults)}


def _assigned(tree: ast.Module, variable: str):
    """The literal a module assigns to `variable` at its top level, or None."""
    value = next((n.value for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", None) == variable for t in n.targets)), None)
    return ast.literal_eval(value) if value is not None else None


def hyperparameters(name: str) -> dict:
    """The architecture's hyperparameters with their default values."""
    params = list(inspect.signature(_module(name).build).parameters.values())[2:]
    return {p.name: p.default for p in params}


def resolve(name: str, given: dict) -> dict:
    """The defaults of `name` overridden by `given`.

    Raises:
        UserError: for a name the architecture does not have, or a value of the wrong kind
            (`hidden=abc`) or out of range (`dropout=1.5`, `layers=0`).
    """
    defaults = hyperparameters(name)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"architecture {name!r} has no hyperparameter {', '.join(unknown)}; "
                        f"valid: {', '.join(defaults)}")
    for key, value in given.items():
        problem = _value_problem(key, value, defaults[key])
        if problem:
            raise UserError(f"{name}: {key}={value!r}: {problem}")
    return {**defaults, **given}


def _is_count(value, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _value_problem(key: str, value, default) -> str | None:
    """What is wrong with `value` for a hyperparameter whose default is `default`, or None.
    The default's type says what kind of value it takes (a tuple of widths also takes one)."""
    if value == default:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, tuple) or default is None or isinstance(default, int):
        several = isinstance(value, tuple | list) and not isinstance(default, int)
        counts = value if several else (value,)
        least = 0 if key in ("depth", "conv_layers") else 1  # 0: no such blocks
        if not counts or not all(_is_count(c, least) for c in counts):
            return f"expected a whole number of at least {least}" + (
                "" if isinstance(default, int) else " (or several, comma-separated)")
        return None
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            return "expected a finite number"
        if key == "dropout" and not 0 <= value < 1:
            return "a dropout rate must be in [0, 1)"
        return None
    if isinstance(default, str) and not isinstance(value, str):
        return "expected a name"
    return None


def build(name: str, spec, tasks, **hparams):
    """Builds architecture `name` for inputs `spec` and targets `tasks`."""
    return _module(name).build(spec, tasks, **resolve(name, hparams))
