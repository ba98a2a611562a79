"""Search spaces: one per architecture, plus the training settings every search shares.

This is the only module that calls `hp.*`. Every range is discrete (integer steps, float steps
or a list of values), so a search can always be compared with the full grid over the same
values. Ranges come from the course projects (../shared/SEEDS.md): hidden 32-256, 1-3 layers,
dropout 0-0.5, learning rate 1e-4 to 1e-2 on a log grid, and their batch sizes scaled to this
corpus.

Users reshape a space without editing code (see `Overrides`): fix a value, narrow a range, or
give the exact values of a grid axis.
"""

import math
from dataclasses import dataclass, field, replace

from kerasaudio import models, settings
from kerasaudio.config import OPTIMIZERS, DataConfig
from kerasaudio.errors import UserError
from kerasaudio.runs import slug


@dataclass(frozen=True)
class Param:
    """One searchable value.

    Attributes:
        kind: `int`, `float` or `choice`.
        low, high, step: the range of `int` and `float` (inclusive, on a grid of `step`).
        values: the options of `choice`.
        searched: searched by default; if False it stays at its default unless a user opens
            it with a range or grid values.
        default: the value when not searched (None: the architecture's default).
    """

    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    values: tuple = ()
    searched: bool = True
    default: object = None

    def grid(self) -> list:
        """Every value this parameter can take."""
        if self.kind == "choice":
            return list(self.values)
        count = int(round((self.high - self.low) / self.step)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 10) for v in values]


def _int(low, high, step=1):
    return Param("int", low, high, step)


def _float(low, high, step):
    return Param("float", low, high, step)


def _choice(*values, searched=True, default=None):
    return Param("choice", values=values, searched=searched, default=default)


DROPOUT = _float(0.0, 0.5, 0.1)
RECURRENT = {"hidden": _int(32, 256, 32), "layers": _int(1, 3), "dropout": DROPOUT}

# Training settings of every search; the names are TrainConfig fields.
TRAINING = {
    "lr": _choice(1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    "batch_size": _choice(16, 32, 64, 128),
    "optimizer": _choice("adam", "adamw", "sgd", searched=False, default="adam"),
}

# Architecture hyperparameters; the names are keyword arguments of each `build`.
ARCHITECTURES = {
    "dense": {"hidden": _int(16, 256, 16), "layers": _int(1, 3), "dropout": DROPOUT},
    "gru": RECURRENT,
    # Convolutions before the GRUs: searched only when opened with --fix or --grid.
    "gru_attention": {**RECURRENT, "conv_layers": _choice(0, 1, 2, searched=False)},
    "lstm": RECURRENT,
    "bilstm": RECURRENT,
    "conv1d": {"filters": _int(32, 256, 32), "kernel": _choice(3, 5, 7), "layers": _int(1, 4),
               "dropout": DROPOUT},
    "cnn2d": {"kernel": _choice(3, 5), "dropout": DROPOUT},
    "minirocket": {"l2": _choice(0.001, 0.01, 0.1, 1.0), "dropout": DROPOUT},
    "frame_mlp": {"window": _choice(5, 11, 17, 21), "width": _int(128, 1024, 128),
                  "depth": _int(1, 6), "dropout": DROPOUT},
    "bilstm_frames": {"window": _choice(5, 11, 17), "hidden": _int(32, 256, 32),
                      "layers": _int(1, 3), "width": _int(128, 512, 128), "dropout": DROPOUT},
    "bigru_labeller": {**RECURRENT, "cell": _choice("gru", "lstm")},
}


def _parse_number(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _same_type(values: list) -> list:
    """KerasTuner's Choice wants one type: 0,0.1,0.5 become floats."""
    if any(isinstance(v, float) for v in values) and all(isinstance(v, int | float)
                                                         for v in values):
        return [float(v) for v in values]
    return values


@dataclass(frozen=True)
class Overrides:
    """What the user changed: `fixed` name -> value (`--fix hidden=128`), `ranges` name ->
    (low, high) (`--range dropout=0:0.3`), `grid` name -> values (`--grid lr=0.1,0.01`).
    The name `arch` in `grid` makes the architecture itself an axis."""

    fixed: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, fix=(), ranges=(), grid=()) -> "Overrides":
        """From the CLI's `name=value`, `name=low:high` and `name=a,b,c` strings."""
        def split(item, option):
            name, sep, value = item.partition("=")
            if not sep or not name or not value:
                raise UserError(f"{option} expects name=value, got {item!r}")
            return name.strip(), value.strip()

        fixed = {n: _parse_number(v) for n, v in (split(i, "--fix") for i in fix)}
        bounds = {}
        for name, value in (split(i, "--range") for i in ranges):
            low, sep, high = value.partition(":")
            low, high = _parse_number(low), _parse_number(high)
            if not sep or not all(isinstance(x, int | float) for x in (low, high)) or low > high:
                raise UserError(f"--range expects name=low:high with low <= high, got "
                                f"{name}={value}")
            bounds[name] = (low, high)
        values = {n: _same_type([_parse_number(x) for x in v.split(",")])
                  for n, v in (split(i, "--grid") for i in grid)}
        return cls(fixed, bounds, values)


TUNERS = ("hyperband", "bayesian", "random", "grid")
# Trials of a random or Bayesian search when --max-trials is not given.
DEFAULT_TRIALS = 20


def trial_budget(tuner: str, max_trials: int | None) -> int | None:
    """Trials a search runs: `max_trials` for random, Bayesian and grid searches (random and
    Bayesian: DEFAULT_TRIALS when not given; grid: None, the whole grid). Hyperband's budget
    is its --max-epochs.

    Raises:
        UserError: for a trial count given to Hyperband, which would silently ignore it.
    """
    if max_trials is not None and tuner == "hyperband":
        raise UserError("--max-trials does not apply to hyperband, whose budget is set by "
                        "--max-epochs (with a factor of 3: brackets of 1, 3, 9, ... epochs up to "
                        "it); use --max-epochs, or --tuner random/bayesian/grid for a count")
    if max_trials is None and tuner in ("bayesian", "random"):
        return DEFAULT_TRIALS
    return max_trials


def search_name(archs: list, data_name: str, tuner: str) -> str:
    """The folder a search is kept in when --name is not given."""
    return f"{'+'.join(archs)}-{slug(data_name)}-{tuner}"


def archs(arch: str | None, overrides: Overrides, data: DataConfig) -> list:
    """The architectures searched: `arch`, or the values of a grid axis `arch`, or the data's
    default architecture (as `fit`'s).

    Raises:
        UserError: for `arch` fixed or ranged (it would be ignored), for an `arch` that is
            not among the grid's, and for unknown names.
    """
    if "arch" in overrides.fixed or "arch" in overrides.ranges:
        raise UserError("the architecture is chosen with --arch NAME, or searched with "
                        "--grid arch=A,B; not with --fix or --range")
    grid = overrides.grid.get("arch")
    if grid and arch and arch not in grid:
        raise UserError(f"--arch {arch} is not among --grid arch={','.join(map(str, grid))}; "
                        "give one or the other")
    names = grid or [arch or settings.default_arch(data)]
    for name in names:
        if name not in ARCHITECTURES:
            raise UserError(f"no search space for architecture {name!r}; valid: "
                            f"{', '.join(ARCHITECTURES)}")
    return names


def resolve(arch_names: list, overrides: Overrides, grid_search: bool = False) -> dict:
    """name -> (Param, archs it applies to or None for all) after the user's overrides.

    In a grid search only the `--grid` axes vary (the course projects' grid); every other
    value stays at its default, since a grid over the whole space would be far too large.

    Raises:
        UserError: for a name no searched architecture has, or a range outside the space.
    """
    space = {}
    for name, param in TRAINING.items():
        space[name] = (param, None)
    for arch in arch_names:
        for name, param in ARCHITECTURES[arch].items():
            _add(space, name, param, arch)
    valid = {hp_name(key) for key in space} | {"arch"}
    for name in [*overrides.fixed, *overrides.ranges, *overrides.grid]:
        if name not in valid:
            raise UserError(f"{name!r} is not in the search space of {', '.join(arch_names)}; "
                            f"valid: {', '.join(sorted(valid))}")
    out = {}
    for key, (param, owners) in space.items():
        name = hp_name(key)
        if name in overrides.fixed:
            param = replace(param, kind="choice", values=(overrides.fixed[name],), searched=True)
        elif name in overrides.grid:
            param = replace(param, kind="choice", values=tuple(overrides.grid[name]),
                            searched=True)
        elif name in overrides.ranges:
            param = _narrow(name, param, *overrides.ranges[name])
        elif grid_search or not param.searched:
            param = replace(param, searched=False)
        out[key] = (param, owners)
    for key, (param, owners) in out.items():
        for value in param.grid():
            _check_value(hp_name(key), value, owners)
    for arch in arch_names:
        _check_layers(arch, out)
    return out


def _check_layers(arch: str, space: dict) -> None:
    """Refuses a searched `layers` of an architecture whose `hidden` stays at default
    widths (dense's 100,10, in a grid search): `layers` repeats one width, and every trial
    would fail."""
    searched = {hp_name(k) for k, (param, owners) in space.items()
                if owners and arch in owners and param.searched}
    widths = models.hyperparameters(arch).get("hidden")
    if "layers" in searched and "hidden" not in searched and isinstance(widths, tuple):
        raise UserError(f"{arch}: layers repeats one width, and hidden stays at its default "
                        f"{','.join(map(str, widths))}; give hidden too (--fix hidden=64, "
                        "or --grid hidden=32,64)")


def _add(space: dict, name: str, param: Param, arch: str) -> None:
    """Adds `arch`'s `name` to the space: to the entry of the architectures that define it
    alike, else as an entry of its own, `name:arch` (conv1d's layers go to 4, gru's to 3),
    which is declared under that key in `arch`'s conditional scope."""
    for key, (other, owners) in space.items():
        if hp_name(key) == name and owners is not None and other == param:
            space[key] = (param, owners + [arch])
            return
    space[name if name not in space else f"{name}:{arch}"] = (param, [arch])


def hp_name(key: str) -> str:
    """The hyperparameter a key of a resolved space declares (`layers:gru` -> `layers`)."""
    return key.split(":")[0]


def _check_value(name: str, value, owners: list | None) -> None:
    """Refuses a value no trial could train with (`--fix hidden=abc`, `--grid lr=0,nan`)
    now, before a search is started or an earlier one replaced, not inside a trial."""
    if owners is not None:
        for arch in owners:
            models.resolve(arch, {name: value})
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "lr" and not (number and math.isfinite(value) and value > 0):
        raise UserError(f"lr={value!r}: expected a positive number")
    if name == "batch_size" and not (isinstance(value, int) and value >= 1):
        raise UserError(f"batch_size={value!r}: expected a whole number of at least 1")
    if name == "optimizer" and value not in OPTIMIZERS:
        raise UserError(f"optimizer={value!r}: valid: {', '.join(OPTIMIZERS)}")


def _narrow(name: str, param: Param, low, high) -> Param:
    """`param` within [low, high]: a range narrows the space, never widens it."""
    if param.kind == "choice":
        values = tuple(v for v in param.values if isinstance(v, int | float) and low <= v <= high)
        if not values:
            raise UserError(f"--range {name}={low}:{high} keeps none of {list(param.values)}")
        return replace(param, values=values, searched=True)
    if high < param.low or low > param.high:
        raise UserError(f"--range {name}={low}:{high} lies outside the space's "
                        f"{param.low}:{param.high} (use --grid {name}=... for other values)")
    low, high = max(low, param.low), min(high, param.high)
    step = param.step
    low = param.low + math.ceil(round((low - param.low) / step, 9)) * step
    if low > high:
        raise UserError(f"--range {name}: no value of step {step} between the bounds")
    high = low + math.floor(round((high - low) / step, 9)) * step
    return replace(param, low=low, high=high, searched=True)


def grid_size(space: dict, arch_names: list) -> int:
    """How many configurations a full grid over the searched values holds."""
    total = 0
    for arch in arch_names:
        count = 1
        for param, owners in space.values():
            if param.searched and (owners is None or arch in owners):
                count *= len(param.grid())
        total += count
    return total


def define(hp, arch_names: list, space: dict) -> dict:
    """Declares the space on `hp` and returns the values of this trial:
    {"arch": name, "model": {...}, "train": {...}}.

    Architecture hyperparameters live in conditional scopes of `arch`, so a search over
    several architectures only varies the values that the chosen one uses.
    """
    arch = hp.Choice("arch", arch_names) if len(arch_names) > 1 else hp.Fixed("arch",
                                                                             arch_names[0])
    values = {"arch": arch, "model": {}, "train": {}}
    for key, (param, owners) in space.items():
        name = hp_name(key)
        if owners is None:
            values["train"][name] = _declare(hp, name, param, default=param.default)
            continue
        # Declared by its key: KerasTuner keeps values by name, so two architectures'
        # different `layers` need two names (`layers`, `layers:gru`), mapped back here.
        with hp.conditional_scope("arch", owners):
            value = _declare(hp, key, param, default=models.hyperparameters(arch).get(name))
        if arch in owners:
            values["model"][name] = value
    values["model"] = {k: v for k, v in values["model"].items() if v is not None}
    values["train"] = {k: v for k, v in values["train"].items() if v is not None}
    return values


def _declare(hp, name: str, param: Param, default):
    if not param.searched:
        return default  # not a hyperparameter of this search: the default applies
    if param.kind == "choice":
        return hp.Choice(name, list(param.values)) if len(param.values) > 1 else \
            hp.Fixed(name, param.values[0])
    if param.kind == "int":
        return hp.Int(name, int(param.low), int(param.high), step=int(param.step))
    # Steps of 0.1 accumulate binary round-off (0.30000000000000004); the grid is what counts.
    return round(hp.Float(name, param.low, param.high, step=param.step), 10)
