"""kerasaudio command line. Thin: options -> config -> library. TensorFlow is imported only
inside commands that need it, so `python cli.py --help` stays fast."""

import contextlib
import errno
import functools
import logging
import math
import os
import sys
from pathlib import Path

import click

import kerasaudio
from kerasaudio import progress, quiet
from kerasaudio.config import (
    AUGMENTATIONS,
    DATA_FORMATS,
    EXPORT_FORMATS,
    OPTIMIZERS,
    SCHEDULES,
    SPECTROGRAM_PARTS,
    SPLITS,
    WINDOW_EDGES,
    DataConfig,
    FeatureConfig,
    FinetuneConfig,
    RunConfig,
    TrainConfig,
)
from kerasaudio.distribute import STRATEGIES
from kerasaudio.errors import FULL_DISK, UserError, is_full_disk
from tuning.spaces import TUNERS


class Group(click.Group):
    """Prints a UserError, a bad option and a disk failure as one line on stderr and exits
    with status 2 (no traceback)."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as error:
            error.show()  # `cli.py` alone: the help, as usual
            sys.exit(error.exit_code)
        except click.UsageError as error:
            # Click would print the usage and a hint around the message: three lines.
            command = f"{error.ctx.command_path}: " if error.ctx else ""
            click.echo(f"error: {command}{error.format_message()} (see --help)", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort as error:
            if isinstance(error.__cause__, KeyboardInterrupt):  # before a command handled it
                click.echo("interrupted", err=True)  # (click printed a new line first)
                sys.exit(130)  # as for any program a SIGINT stops
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(2)
        except OSError as error:
            if error.errno not in DISK_ERRORS:
                raise
            where = f"{error.filename}: " if error.filename else ""
            hint = (f"; free some space and {ctx.meta.get(RERUN, 'run the same command again')}"
                    if is_full_disk(error) else "")
            click.echo(f"error: {where}{error.strerror}{hint}", err=True)
            ctx.exit(2)


# ctx.meta's key for what rerunning an interrupted command does, which fit and tune set.
RERUN = "kerasaudio.rerun"


def _rerun_advice(ctx, resumes: bool, instead: str = "") -> str:
    """What to run after an interruption or a full disk, kept in ctx.meta for `invoke`:
    the same command again, or (`instead`) it without an option that would start anew;
    only when the command `resumes` does it continue where it stopped."""
    rerun = f"run the same command again{instead}"
    ctx.meta[RERUN] = f"{rerun} (it continues where it stopped)" if resumes else rerun
    return ctx.meta[RERUN]


# Failures of the disk or its permissions, which a user fixes, not a bug in kerasaudio.
DISK_ERRORS = (*FULL_DISK, errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
               errno.EEXIST)  # an output another process made meanwhile


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan and inf, which compare false with any bound."""

    name = "float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# Seeds go to NumPy and TensorFlow, which take unsigned 32-bit integers.
SEED = click.IntRange(0, 2**32 - 1)


def _parse_hidden(ctx, param, value):
    """--hidden takes one width (128) or one width per layer (100,10)."""
    if value is None:
        return None
    try:
        widths = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected N or N,N,...; got {value!r}") from None
    if any(w < 1 for w in widths):
        raise click.BadParameter("widths must be positive")
    return widths[0] if len(widths) == 1 else widths


def _parse_value(text: str):
    """A --set value: int, float, true/false, or a comma-separated tuple of those."""
    if "," in text:
        return tuple(_parse_value(part) for part in text.split(","))
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_sets(ctx, param, values):
    """--set key=value, repeatable, into a dict of hyperparameters."""
    hparams = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}")
        hparams[key.strip()] = _parse_value(value.strip())
    return hparams


def _parse_names(ctx, param, value):
    """A comma-separated list of names into a tuple (empty: none given)."""
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _parse_weights(ctx, param, values):
    """--task-weight name=w, repeatable, into a dict."""
    weights = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"expected name=weight, got {item!r}") from None
        if not sep or not name.strip() or not math.isfinite(weights[name.strip()]):
            raise click.BadParameter(f"expected name=weight, got {item!r}")
    return weights


AUGMENT_HELP = ("Waveform augmentations of the training batches, on the fly: none, default "
                "(all), or names joined by '+' from " + ", ".join(AUGMENTATIONS)
                + " [default: all for spoken-digits with mfcc or logmel features, none "
                  "otherwise].")
SPEC_AUGMENT_HELP = ("Random time and feature masks on the training batches (SpecAugment) "
                     "[default: on for spoken-digits, off otherwise].")


def data_options(command):
    """--data and how to read it (--format, --part, --skip-bad, --limit), handed to the
    command as one DataConfig `data`; and --features, as fit, tune and data info share them."""

    @functools.wraps(command)
    def with_data_config(*args, data, data_format, data_part, skip_bad, limit, tasks,
                         val_fraction, test_fraction, train_fraction, **kwargs):
        fractions = {k: v for k, v in {"val_fraction": val_fraction,
                                       "test_fraction": test_fraction,
                                       "train_fraction": train_fraction}.items() if v is not None}
        config = DataConfig(name=data, limit=limit, format=data_format, part=data_part,
                            skip_bad=skip_bad, tasks=tasks, **fractions)
        return command(*args, data=config, **kwargs)

    options = [
        click.option(
            "--data", default=DataConfig.name, show_default=True,
            help="Built-in data set (spoken-digits, spoken-phonemes, voice-attributes, "
                 "music-genres, digits-images), or a path: X_TRAIN.ts (a "
                 "UEA/UCR archive pair), a folder of audio files in class subfolders "
                 "(optionally under train/ val/ test/), a path,label[,group] CSV of audio "
                 "files, a folder of frame features (feat/*.npy, train_labels.txt, "
                 "*_split.txt), of spectrograms (train_labels.txt, .npy[.gz]), or of images "
                 "in class subfolders."),
        click.option("--format", "data_format", type=click.Choice(DATA_FORMATS),
                     help="How to read a --data path [default: told from the path]."),
        click.option("--part", "data_part", type=click.Choice(SPECTROGRAM_PARTS),
                     default=DataConfig.part, show_default=True,
                     help="Rows of a fused mel+chroma spectrogram to keep."),
        click.option("--skip-bad", is_flag=True,
                     help="Leave out bad examples of a --data path (unreadable files, bad "
                          "lines) and list them, instead of stopping at the first."),
        click.option("--tasks", callback=_parse_names, default="",
                     help="Targets to train on, comma-separated (e.g. rate,pitch,noise); "
                          "several make a multitask model [default: every target of the data]."),
        click.option("--features", "feature_kind",
                     help="mfcc, logmel, chroma, or several joined by '+' (logmel+chroma) "
                          "[default: mfcc; logmel for voice-attributes and music-genres]."),
        click.option("--limit", type=click.IntRange(min=1),
                     help="Keep at most N examples per split (quick experiments)."),
        click.option("--val-fraction", type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
                     help="Share of the training data drawn (by group when the data has "
                          "groups) for validation, for data without a val split [default: "
                          f"{DataConfig.val_fraction}]."),
        click.option("--test-fraction", type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
                     help="Share of the data drawn for testing, for data without a test split "
                          f"[default: {DataConfig.test_fraction}]."),
        click.option("--train-fraction", type=FiniteFloatRange(0, 1, min_open=True),
                     help="Train on this share of the training examples only (whole groups, "
                          "else stratified by class, every class kept; the same draw for every "
                          "--seed), validation and test kept whole: learning curves, transfer "
                          "with little data "
                          f"[default: {DataConfig.train_fraction}]."),
    ]
    for option in reversed(options):
        with_data_config = option(with_data_config)
    return with_data_config


def feature_options(command):
    """The feature settings fit and tune share beside --features (settings.FEATURE_OPTIONS).
    They default to None, not to FeatureConfig's values: a value passed on would override
    the data set's own defaults (config.BUILTIN_FEATURES) as if the user had typed it."""
    options = [
        click.option("--deltas/--no-deltas", default=None,
                     help="Add MFCC deltas and delta-deltas (13 -> 39) [default: no; yes "
                          "for spoken-phonemes]."),
        click.option("--beat-sync/--no-beat-sync", default=None,
                     help="Median of the frames between detected beats [default: no]."),
        click.option("--n-mfcc", type=click.IntRange(min=1),
                     help=f"MFCCs per frame [default: {FeatureConfig.n_mfcc}]."),
        click.option("--n-mels", type=click.IntRange(min=1),
                     help="Mel bands (logmel, and under the MFCCs) [default: "
                          f"{FeatureConfig.n_mels}]."),
        click.option("--max-hz", type=FiniteFloatRange(min=20, min_open=True),
                     help="Upper edge of the mel bands in Hz [default: half the sample rate; "
                          "4000 for spoken-digits, which telephone and 8 kHz recordings "
                          "fill]."),
        click.option("--sample-rate", type=click.IntRange(8000, 48000),
                     help="Rate in Hz the audio is resampled to before its features "
                          "[default: 16000; 8000 for spoken-digits, whose features stop at "
                          "4 kHz]."),
        click.option("--cmvn/--no-cmvn", default=None,
                     help="Normalise each utterance over its own frames (mean and "
                          "variance), inside the model [default: no; yes for spoken-digits]."),
        click.option("--hop-ms", type=FiniteFloatRange(min=1),
                     help="Step between frames in milliseconds, at most the window [default: "
                          "10; 20 for spoken-digits; 32 for music-genres]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def verbosity_option(command):
    """--quiet, handed to the command as the Keras `verbose` of its training: a progress bar
    on a terminal, one plain line per epoch when the output is a file or a pipe."""

    @functools.wraps(command)
    def with_verbose(*args, quiet, **kwargs):
        verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
        return command(*args, verbose=verbose, **kwargs)

    return click.option("--quiet", is_flag=True,
                        help="No per-epoch output (the run's train.log still has a line per "
                             "epoch).")(with_verbose)


class _Lowercase(logging.Formatter):
    def format(self, record):
        if record.levelno == logging.INFO:
            return record.getMessage()
        return f"{record.levelname.lower()}: {record.getMessage()}"


@contextlib.contextmanager
def _progress_bar(label: str, total: int):
    """The library's progress (kerasaudio/progress.py) as a bar on stderr when that is a
    terminal; in a file or a pipe, nothing: a log keeps its lines for epochs and errors, and
    stdout for data (`predict RUN wavs > preds.tsv`)."""
    if not sys.stderr.isatty():
        yield lambda n=1: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


class _Terminal(logging.StreamHandler):
    """The handler that shows the library's messages on stderr."""


def _show_library_messages() -> None:
    """The library logs (logger `kerasaudio`); its news and warnings reach the terminal on
    stderr, warnings as `warning: ...` lines."""
    logger = logging.getLogger("kerasaudio")
    # One handler, however often main() runs in a process (a notebook, a test): each call
    # would otherwise print every line once more, the older ones to a stale stderr.
    for earlier in [h for h in logger.handlers if isinstance(h, _Terminal)]:
        logger.removeHandler(earlier)
    handler = _Terminal(sys.stderr)
    handler.setFormatter(_Lowercase())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    progress.set_reporter(_progress_bar)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(kerasaudio.__version__, prog_name="kerasaudio")
def main():
    """Train, tune, evaluate and export Keras models on audio features."""
    _show_library_messages()


@main.command()
@click.option("--arch", help="Architecture (see `archs`) [default: --hparams' or --config's; "
                            "else minirocket for a .ts time-series file, gru_attention otherwise].")
@data_options
@feature_options
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs, show_default=True,
              help="Maximum epochs; early stopping on validation loss may stop sooner.")
@click.option("--min-epoch-steps", type=click.IntRange(min=1),
              default=TrainConfig.min_epoch_steps, show_default=True,
              help="Optimizer steps per epoch at least: on data of fewer batches an epoch "
                   "spans several passes, so that --epochs and --patience still mean enough "
                   "training (1: an epoch is always one pass).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size,
              show_default=True, help="Examples per batch; an arch may have its own default "
                                      "(gru_attention: 64; see `archs`).")
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=TrainConfig.lr,
              show_default=True, help="(Initial) learning rate; an arch may have its own "
                                      "default (gru_attention: 2e-3; see `archs`).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS),
              default=TrainConfig.optimizer, show_default=True)
@click.option("--momentum", type=FiniteFloatRange(0, 1), default=TrainConfig.momentum,
              show_default=True, help="SGD momentum.")
@click.option("--weight-decay", type=FiniteFloatRange(min=0), default=TrainConfig.weight_decay,
              show_default=True, help="Decoupled weight decay.")
@click.option("--clipnorm", type=FiniteFloatRange(min=0, min_open=True),
              help="Clip each gradient to this norm.")
@click.option("--schedule", type=click.Choice(SCHEDULES),
              default=TrainConfig.schedule, show_default=True,
              help="Learning-rate schedule; an arch may have its own default (gru_attention: "
                   "cosine; see `archs`).")
@click.option("--t0", type=click.IntRange(min=1), default=TrainConfig.t0, show_default=True,
              help="cosine-restarts: first period in epochs.")
@click.option("--t-mult", type=FiniteFloatRange(min=1), default=TrainConfig.t_mult,
              show_default=True, help="cosine-restarts: growth of each period.")
@click.option("--monitor", default=TrainConfig.monitor, show_default=True,
              help="Metric for the best checkpoint and early stopping (e.g. val_accuracy).")
@click.option("--patience", type=click.IntRange(min=1), default=TrainConfig.patience,
              show_default=True, help="Early-stopping patience in epochs.")
@click.option("--class-weights/--no-class-weights", default=TrainConfig.class_weights,
              show_default=True, help="Weigh examples by inverse class frequency.")
@click.option("--overfit-batches", type=click.IntRange(min=1),
              help="Sanity check: train on N batches only; the loss should go to ~0.")
@click.option("--mixup", type=FiniteFloatRange(min=0), default=TrainConfig.mixup,
              show_default=True,
              help="Mixup's alpha: train on pairs of examples mixed with a Beta(alpha, alpha) "
                   "weight, their targets mixed alike (0: off; 0.2-0.4 is usual).")
@click.option("--label-smoothing", type=FiniteFloatRange(0, 1, max_open=True),
              default=TrainConfig.label_smoothing, show_default=True,
              help="Move each class target this far towards uniform (0: off; 0.1 is usual).")
@click.option("--spec-augment/--no-spec-augment", default=None, help=SPEC_AUGMENT_HELP)
@click.option("--augment", "augment_names", help=AUGMENT_HELP)
@click.option("--window-edge", type=click.Choice(WINDOW_EDGES),
              default=TrainConfig.window_edge, show_default=True,
              help="Frame windows: fill past an utterance's ends by repeating, or zeros.")
@click.option("--hidden", callback=_parse_hidden,
              help="Hidden units: N, or N,N,... one per layer (dense). Default: the arch's.")
@click.option("--layers", type=click.IntRange(min=1), help="Stacked layers. Default: the arch's.")
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True),
              help="Dropout rate. Default: the arch's.")
@click.option("--set", "sets", multiple=True, callback=_parse_sets, metavar="KEY=VALUE",
              help="Any hyperparameter of the arch (repeatable), e.g. --set window=21.")
@click.option("--task-weight", "task_weights", multiple=True, callback=_parse_weights,
              metavar="NAME=W", help="Weight of a task's loss in a multitask model's summed "
                                    "loss (repeatable; default 1 each).")
@click.option("--seed", type=SEED, default=TrainConfig.seed, show_default=True,
              help="Seeds weights, dropout and shuffling.")
@click.option("--out", default=RunConfig.out, show_default=True,
              help="Parent folder of run directories.")
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs with seeds SEED..SEED+N-1, grouped in one experiment directory.")
@click.option("--folds", type=click.IntRange(min=2),
              help="K-fold cross-validation: the training and validation data dealt into K "
                   "folds (stratified; by speaker or group where the data has them), one run "
                   "per fold in one experiment directory, with out-of-fold predictions.")
@click.option("--ensemble", type=click.IntRange(min=0), is_flag=False, flag_value=0,
              help="Average the members' probabilities in one model (EXPERIMENT/ensemble, a "
                   "run directory): --ensemble N trains N seeds; --ensemble alone averages "
                   "the --folds models or the --repeats runs.")
@click.option("--strategy", type=click.Choice(STRATEGIES),
              default=TrainConfig.strategy, show_default=True,
              help="tf.distribute: one device, every local GPU (or logical CPU), or the "
                   "machines of TF_CONFIG; --batch-size is per replica.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue an interrupted run (or --repeats experiment) of the same settings "
                   "under --out from its last completed epoch.")
@click.option("--hparams", "hparams_file", type=click.Path(dir_okay=False),
              help="A tune best.json: its arch, hyperparameters, training settings and best "
                   "epoch count (options given explicitly still win).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A run's config.json: rerun it, or vary it with the options given, which "
                   "win over its settings (data, features, model, training, --out).")
@click.pass_context
@verbosity_option
def fit(ctx, repeats, folds, ensemble, resume, verbose, **options):
    """Train a model and write a run directory."""
    from kerasaudio import settings  # NumPy and more: not for --help

    explicit = {p for p in ctx.params
                if ctx.get_parameter_source(p) != click.core.ParameterSource.DEFAULT}
    repeats, members_of = settings.ensemble_plan(repeats, folds, ensemble)
    cfg = settings.fit_config(options, explicit)
    # --no-resume starts anew; a multiworker run is never resumed (every worker would have
    # to find the same state).
    rerun = _rerun_advice(ctx, resume and cfg.train.strategy != "multiworker")
    from kerasaudio import crossval, interrupts, runs, train

    if folds:
        crossval.check_folds(cfg, folds)
    try:
        with interrupts.remembered():
            if folds:
                experiment, _ = crossval.fit_folds(cfg, folds, verbose, resume=resume,
                                                   ensemble=bool(members_of))
            elif repeats == 1:
                run_dir, metrics = train.fit(cfg, verbose=verbose, resume=resume)
            else:
                experiment, _ = train.fit_repeats(cfg, repeats, verbose=verbose, resume=resume,
                                                  ensemble=bool(members_of))
            if members_of:
                members = [p for p in runs.experiment_runs(experiment) if runs.is_complete(p)]
                ensemble_dir = crossval.write_ensemble(experiment, members, members_of)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; {rerun}", err=True)
        sys.exit(130)
    if not folds and repeats == 1:
        click.echo(_summary(metrics))
        if "diverged" in metrics:
            at = metrics["diverged"]
            click.echo(f"warning: training diverged (loss {at['loss']}) in epoch {at['epoch']} "
                       f"and stopped; the test is of the best epoch before that", err=True)
        click.echo(f"run directory: {run_dir}")
        return
    from kerasaudio import compare as compare_lib

    # The experiment's ensemble comes with it (runs.discover).
    click.echo(compare_lib.markdown(compare_lib.table([experiment])), nl=False)
    click.echo(f"experiment directory: {experiment}")
    if members_of:
        click.echo(f"ensemble (a run directory): {ensemble_dir}")


@main.command()
@click.option("--from", "source", required=True, type=click.Path(file_okay=False),
              help="Run directory whose best model gives the backbone; its heads are replaced.")
@data_options
@click.option("--freeze-epochs", type=click.IntRange(min=0),
              default=FinetuneConfig.freeze_epochs, show_default=True,
              help="Epochs training the new heads alone before the backbone is unfrozen "
                   "(then at --lr times 0.1).")
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs,
              show_default=True, help="Maximum epochs in all, frozen ones included.")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size,
              show_default=True)
@click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=TrainConfig.lr,
              show_default=True, help="Learning rate while the backbone is frozen.")
@click.option("--monitor", default=TrainConfig.monitor, show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=TrainConfig.patience,
              show_default=True)
@click.option("--task-weight", "task_weights", multiple=True, callback=_parse_weights,
              metavar="NAME=W", help="Weight of a task's loss (repeatable; default 1 each).")
@click.option("--spec-augment/--no-spec-augment", default=None,
              help="Whether the --from model's SpecAugment layer masks the training batches "
                   "[default: as it did in the --from run].")
@click.option("--seed", type=SEED, default=TrainConfig.seed, show_default=True)
@click.option("--out", default=RunConfig.out, show_default=True,
              help="Parent folder of run directories.")
@click.pass_context
@verbosity_option
def finetune(ctx, source, data, feature_kind, freeze_epochs, epochs, batch_size, lr, monitor,
             patience, task_weights, spec_augment, seed, out, verbose):
    """Fine-tune an earlier run's model on new tasks (transfer learning).

    Keeps the run's backbone, puts one new head on it per task (--tasks), trains the heads
    with the backbone frozen for --freeze-epochs, then everything at a lower learning rate.
    --data defaults to the run's own data set."""
    own_data = ctx.get_parameter_source("data") == click.core.ParameterSource.DEFAULT
    shares = [f"--{name.replace('_', '-')}" for name in ("val_fraction", "test_fraction")
              if getattr(data, name) != getattr(DataConfig(), name)]
    if own_data and shares:
        raise UserError(f"{', '.join(shares)}: fine-tuning on the --from run's own data keeps "
                        "the shares that drew its splits; give them with other --data")
    quiet.import_tensorflow()
    from kerasaudio import interrupts, train, transfer

    cfg = transfer.finetune_config(
        source, data,
        TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, monitor=monitor,
                    patience=patience, task_weights=task_weights, seed=seed),
        freeze_epochs, out, feature_kind, own_data, spec_augment)
    try:
        with interrupts.remembered():
            run_dir, metrics = train.fit(cfg, verbose=verbose)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    click.echo(_summary(metrics))
    click.echo(f"run directory: {run_dir}")


# finetune's --data, left out, is the source run's data set, not data_options' default.
next(p for p in finetune.params if p.name == "data").show_default = "the --from run's data"


def _summary(metrics: dict) -> str:
    test = metrics["test"]
    report = metrics["evaluation"]["test"]
    scores = [f"{name + ' ' if len(report['tasks']) > 1 else ''}"
              + (f"accuracy {r['accuracy']:.4f}" if "accuracy" in r else
                 f"Spearman {r['spearman']:.4f}")
              for name, r in report["tasks"].items()]
    if "mean_spearman" in report and len(report["tasks"]) > 1:
        scores.append(f"mean Spearman {report['mean_spearman']:.4f}")
    text = (f"test {'  '.join(scores)}  loss {test['loss']:.4f}  "
            f"(best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
            f"{metrics['seconds_per_epoch']:.1f} s/epoch")
    if "padded_fraction" in metrics:
        text += f", {100 * metrics['padded_fraction']:.1f} % padded frames"
    text += ")"
    if "overfit_batches" in metrics:
        text += (f"\noverfit check on {metrics['overfit_batches']} batches: training loss "
                 f"{metrics['first_train_loss']:.4f} -> {metrics['final_train_loss']:.4f}")
    return text


@main.command()
def archs():
    """List architectures, their hyperparameters with defaults, and the training settings
    an architecture has of its own."""
    from kerasaudio import models

    for name in models.ARCHITECTURES:
        about = models.summary(name)
        params = ", ".join(f"{k}={'(unset)' if v is None else v}"
                           for k, v in about["hyperparameters"].items())
        training = ", ".join(f"{k}={v}" for k, v in about["training"].items())
        click.echo(f"{name}: {about['description']}\n    {params}"
                   + (f"; trains with {training}" if training else ""))


@main.command()
@click.option("--arch", help="Architecture to search (or --grid arch=a,b) [default: as fit's: "
                            "minirocket for a .ts time-series file, gru_attention otherwise].")
@data_options
@feature_options
@click.option("--tuner", type=click.Choice(TUNERS),
              default="hyperband", show_default=True)
@click.option("--max-epochs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Epochs of the longest trial (Hyperband) or of every trial.")
@click.option("--max-trials", type=click.IntRange(min=1),
              help="Trials of bayesian/random (default 20) and grid (default: all); hyperband's "
                   "budget is --max-epochs instead.")
@click.option("--objective", default="val_accuracy", show_default=True,
              help="Validation metric to optimise (a loss is minimised).")
@click.option("--patience", type=click.IntRange(min=1), default=TrainConfig.patience,
              show_default=True, help="Early stopping inside each trial.")
@click.option("--fix", multiple=True, metavar="NAME=VALUE", help="Fix a value (repeatable).")
@click.option("--range", "ranges", multiple=True, metavar="NAME=LOW:HIGH",
              help="Narrow a range (repeatable).")
@click.option("--grid", multiple=True, metavar="NAME=A,B,...",
              help="Exact values of an axis (repeatable); with --tuner grid only these vary.")
@click.option("--augment", "augment_names", help=AUGMENT_HELP)
@click.option("--spec-augment/--no-spec-augment", default=None, help=SPEC_AUGMENT_HELP)
@click.option("--name", help="Search folder under --out [default: ARCH-DATA-TUNER].")
@click.option("--out", default="results/tuning", show_default=True)
@click.option("--overwrite", is_flag=True, help="Start the search named --name afresh.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Run a KerasTuner chief and N workers on this machine.")
@click.option("--seed", type=SEED, default=TrainConfig.seed, show_default=True)
@click.option("--folds", type=click.IntRange(min=2),
              help="Cross-validated search: each trial trains once per fold (as fit --folds) "
                   "and scores the mean of the folds' objectives.")
@verbosity_option
def tune(arch, data, feature_kind, tuner, max_epochs, max_trials, objective, patience, fix,
         ranges, grid, augment_names, spec_augment, name, out, overwrite, workers, seed, folds,
         verbose, **feature_settings):
    """Search hyperparameters with KerasTuner; rerun the same command to resume."""
    from kerasaudio import runs
    from tuning import spaces

    # What needs no TensorFlow is checked before its seconds of import.
    overrides = spaces.Overrides.parse(fix, ranges, grid)
    archs = spaces.archs(arch, overrides, data)
    max_trials = spaces.trial_budget(tuner, max_trials)
    name = spaces.search_name(archs, data.name, tuner) if name is None else name
    quiet.import_tensorflow()
    from tuning import search

    cfg = search.configure(data, feature_kind, augment_names, spec_augment, patience, seed,
                           archs, feature_settings, overrides=overrides, tuner=tuner,
                           max_epochs=max_epochs, max_trials=max_trials, objective=objective,
                           name=name, out=out, folds=folds)
    # --overwrite starts afresh: until the earlier search is emptied, the same command does.
    _rerun_advice(click.get_current_context(), not overwrite)
    role = os.environ.get("KERASTUNER_TUNER_ID")
    # Read and checked before the search's folder and lock are made: bad data leaves none.
    dataset = search.load_data(cfg)
    if role is None:
        with runs.locked(cfg.directory):
            # Everything is checked before an earlier search is replaced.
            best = _tune_here(cfg, dataset, overwrite, workers, verbose)
    else:  # one process of a distributed search; they share the directory
        if role == "chief":
            search.check_resumable(cfg, False, dataset)
        _search_or_exit(cfg, dataset, verbose)
        return  # the launcher (or the user) exports at the end
    s = best["search"]
    click.echo(f"best {cfg.objective} {best['objective']['value']:.4f}: {best['arch']} "
               f"{best['hparams']} {best['train']} at epoch {best['epochs']}")
    click.echo(f"{s['completed']} trials, {s['epochs_trained']} epochs trained; a full grid "
               f"over the same values: {s['grid_configurations']} configurations, "
               f"{s['grid_epochs']} epochs")
    click.echo(f"search directory: {cfg.directory}")


def _tune_here(cfg, dataset, overwrite: bool, workers: int | None, verbose: int) -> dict:
    """Runs (or resumes) the search from this process, or launches a chief and workers, and
    exports its results; the caller holds the search directory's lock."""
    from tuning import search

    search.check_resumable(cfg, overwrite, dataset)
    if overwrite:  # emptied: from now on the search to continue is this one
        _rerun_advice(click.get_current_context(), True, " without --overwrite")
    if workers:
        argv = [a for a in sys.argv if a != "--overwrite"]
        argv = _without_option(argv, "--workers")
        try:
            search.launch_distributed(argv, workers, cfg.directory / "workers")
        except KeyboardInterrupt:  # the chief and workers are stopped by now
            _exit_interrupted(cfg, export=True)
    else:
        _search_or_exit(cfg, dataset, verbose, export=True)
    return search.export(cfg)


def _search_or_exit(cfg, dataset, verbose: int, export: bool = False) -> None:
    """Runs the search; on Ctrl-C exits with status 130 (`_exit_interrupted`)."""
    from kerasaudio import interrupts
    from tuning import search

    try:
        with interrupts.remembered():
            search.search(cfg, dataset, verbose)
    except KeyboardInterrupt:
        _exit_interrupted(cfg, export)


def _exit_interrupted(cfg, export: bool) -> None:
    """Says what rerunning does, exports (with `export`) the trials completed so far, whose
    best `fit --hparams` can use meanwhile, and exits with status 130."""
    click.echo(f"\n{cfg.directory}: interrupted; "
               f"{click.get_current_context().meta[RERUN]}", err=True)
    if export:
        _export_so_far(cfg)
    sys.exit(130)


def _export_so_far(cfg) -> None:
    from tuning import search

    try:
        best = search.export(cfg, finished=False)
    except UserError:  # no trial completed: nothing to export
        return
    except Exception as error:  # a trial's state torn by the interruption, say
        click.echo(f"the completed trials were not exported ({error}); resuming the search "
                   "exports them at its end", err=True)
        return
    click.echo(f"the best of its {best['search']['completed']} completed trials so far: "
               f"{cfg.directory / 'best.json'}", err=True)


def _without_option(argv: list, option: str) -> list:
    """argv without `option VALUE` or `option=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(SPLITS), default="test",
              show_default=True, help="Which split to report on (val/train run the model).")
@click.option("--data", "data_path", type=click.Path(),
              help="Score the run on every file of another audio data set with the same "
                   "classes instead (a folder of class subfolders, or of split folders "
                   "of them, or a path,label CSV; `7` matches `seven`); writes "
                   "RUN_DIR/evaluations/<data>/.")
def evaluate(run_dir, split, data_path):
    """Classification report, confusion matrices and report.md of a finished run."""
    quiet.import_tensorflow()
    from kerasaudio import evaluate as evaluate_lib
    from kerasaudio import runs

    if data_path is not None:
        from kerasaudio import crosseval

        if not data_path.strip():
            raise UserError("--data: an empty path")
        if split != "test":
            raise UserError(f"--split {split} chooses among the run's own splits; --data "
                            "scores every file of its data set: give one or the other")

        out, metrics = crosseval.evaluate_on(run_dir, data_path)
        for task, r in metrics["tasks"].items():
            click.echo(f"{task} on {data_path} ({metrics['examples']} files): accuracy "
                       f"{r['accuracy']:.4f}  macro F1 {r['macro']['f1']:.4f}  (random "
                       f"{metrics['baselines']['random']:.4f})")
        click.echo(f"report: {out / 'report.md'}")
        return

    report = evaluate_lib.evaluate_run(run_dir, split)
    runs.warn_if_incomplete(run_dir)  # after: a run without a test split's predictions fails
    for task, r in report.items():
        if "accuracy" in r:
            click.echo(f"{task} on {split}: accuracy {r['accuracy']:.4f}  macro F1 "
                       f"{r['macro']['f1']:.4f}  weighted F1 {r['weighted']['f1']:.4f}")
        else:
            click.echo(f"{task} on {split}: MSE {r['mse']:.4f}  MAE {r['mae']:.4f}  "
                       f"Spearman {r['spearman']:.4f}")
    click.echo(f"report: {os.path.join(run_dir, 'report.md')}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--out", "csv_path", type=click.Path(dir_okay=False),
              help="CSV of the predictions [default: RUN_DIR/predict-TIME.csv]; never "
                   "overwritten.")
@click.option("--submission", type=click.Path(dir_okay=False),
              help="Also write a Kaggle-style submission CSV here: Id (the file's name) and "
                   "one column per task, the predicted value or class "
                   "(e.g. Id,valence,energy,danceability).")
@click.option("--skip-bad", is_flag=True,
              help="Leave out files that cannot be predicted (unreadable, silent, too short) "
                   "and list them on stderr, instead of stopping at the first.")
def predict(run_dir, paths, csv_path, submission, skip_bad):
    """Predict audio files, folders of them, or .npy feature arrays with a run's best model.

    Audio goes through the feature extraction the run was trained with."""
    import time

    quiet.import_tensorflow()
    from kerasaudio import predict as predict_lib
    from kerasaudio import runs
    from kerasaudio.datasets.base import Problems

    # The folders are searched once: predict_files takes the files found here.
    files = predict_lib.input_files(paths)
    outputs = {"--out": csv_path} if csv_path else {}
    outputs.update({"--submission": submission} if submission else {})
    predict_lib.check_outputs(run_dir, files, outputs)
    if not csv_path:
        runs.check_writable(run_dir, "--out (by default the run directory)")
    if skip_bad and submission:
        raise UserError("--skip-bad leaves files out, and a --submission needs every file's "
                        "Id; fix or remove the bad files instead")
    problems = Problems(skip_bad)
    header, rows = predict_lib.predict_files(run_dir, files, problems)
    if problems.found:
        click.echo(f"skipped {len(problems.found)} of {len(files)} files (--skip-bad):\n  "
                   + "\n  ".join(problems.found), err=True)
    # Both files' contents first: a submission that cannot be made leaves --out as it was.
    table = predict_lib.submission(header, rows) if submission else None
    shown = [i for i, name in enumerate(header) if "_p_" not in name]
    click.echo("\t".join(header[i] for i in shown))
    for row in rows:
        click.echo("\t".join(str(row[i]) for i in shown))
    text = predict_lib.to_csv(header, rows)
    if csv_path:
        path = Path(csv_path)
        runs.write_new_text(path, text)
    else:  # never another predict's of the same second
        path = runs.write_numbered(Path(run_dir), f"predict-{time.strftime('%Y%m%d-%H%M%S')}",
                                   ".csv", text)
    # The table is the data on stdout (`predict RUN wavs > preds.tsv`); the rest is status.
    click.echo(f"wrote {path}", err=True)
    if submission:
        runs.write_new_text(Path(submission), predict_lib.to_csv(*table))
        click.echo(f"wrote {submission}", err=True)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS),
              default="savedmodel", show_default=True)
@click.option("--out", type=click.Path(),
              help="Where to write it [default: RUN_DIR/export/model.keras|savedmodel|"
                   "model.tflite|model.onnx]; never overwritten.")
def export(run_dir, fmt, out):
    """Export a run's best model; savedmodel and tflite take raw waveforms and compute the
    features inside the graph; keras and onnx take the features and their mask."""
    quiet.import_tensorflow()
    from kerasaudio import export as export_lib

    path = export_lib.export(run_dir, fmt, out)
    click.echo(f"wrote {path}")


@main.command(name="runs")
@click.argument("folder", default=RunConfig.out, type=click.Path())
def runs_command(folder):
    """List the runs and experiments in FOLDER, newest first: one line each."""
    from kerasaudio import runs

    for row in runs.listing(folder):
        scores = [] if row["score"] is None else [
            f"test {row['metric']} {row['score']:.4f}" + (" (mean)" if row["kind"] != "run"
                                                           else "")]
        if row["ensemble_score"] is not None:
            scores.append(f"ensemble {row['ensemble_metric']} {row['ensemble_score']:.4f}")
        score = ", ".join(scores)
        data = [f"limit {row['limit']}"] if row["limit"] else []
        if row["train_fraction"] not in (None, 1):
            data.append(f"train fraction {row['train_fraction']:g}")
        limit = ", ".join(data) or "all data"
        epochs = f"{row['epochs']} epochs" if row["epochs"] is not None else ""
        fields = [row["name"], row["kind"], row["arch"] or "?", row["data"] or "?", limit,
                  epochs, score, row["status"]]
        click.echo("  ".join(str(f) for f in fields if f != ""))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--sort", help="Column to sort by (e.g. test_accuracy, lr, arch).")
@click.option("--desc", is_flag=True, help="Sort in descending order.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False),
              help="Also write the table as CSV to this file (never overwritten).")
def compare(paths, sort, desc, csv_path):
    """One table of runs and experiments (mean ± 95 % CI) with the baselines.

    PATHS are run directories, experiment directories, or folders holding them.
    """
    from kerasaudio import compare as compare_lib
    from kerasaudio import runs

    if csv_path:
        runs.check_new_file(Path(csv_path), "--csv")
    left_out = []
    rows = compare_lib.table(list(paths), sort=sort, descending=desc, left_out=left_out)
    for line in left_out:
        click.echo(f"warning: {line}", err=True)
    click.echo(compare_lib.markdown(rows), nl=False)
    if csv_path:
        runs.write_new_text(Path(csv_path), compare_lib.to_csv(rows))


@main.group()
def data():
    """Inspect data sets."""


@data.command()
@data_options
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for info.md, info.json and the PNGs [default: results/data/NAME].")
def info(data, feature_kind, out):
    """Examples per split, class and length histograms, feature sizes, baselines."""
    from kerasaudio import features as feature_lib
    from kerasaudio import settings

    cfg = settings.features_for(data, feature_kind)
    feature_lib.kinds(cfg)
    quiet.import_tensorflow()
    from kerasaudio import datainfo, datasets, runs

    dataset = datasets.load(data, cfg)
    info, figures = datainfo.write(dataset, Path(out or Path("results", "data",
                                                              runs.slug(data.name))))
    click.echo(datainfo.markdown(info), nl=False)
    for figure in figures:
        click.echo(f"wrote {figure}")


@data.command("augment-preview")
@data_options
@click.option("--count", type=click.IntRange(min=1, max=12), default=3, show_default=True,
              help="Training utterances to show, picked at random.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="The PNG [default: results/data/NAME/augment_preview.png].")
def augment_preview(data, feature_kind, count, out):
    """Spectrograms of a few training utterances before and after each augmentation."""
    from kerasaudio import features as feature_lib
    from kerasaudio import settings

    cfg = settings.features_for(data, feature_kind)
    feature_lib.kinds(cfg)
    quiet.import_tensorflow()
    from kerasaudio import datainfo, datasets, runs

    path = Path(out or Path("results", "data", runs.slug(data.name), "augment_preview.png"))
    runs.check_writable(path.parent, "--out")
    dataset = datasets.load(data, cfg)
    click.echo(f"wrote {datainfo.augment_preview(dataset, path, count, data.seed)}")


@data.command("audio")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--split", type=click.Choice(SPLITS), default="test",
              show_default=True)
@click.option("--count", type=click.IntRange(min=1), default=20, show_default=True,
              help="Utterances, picked at random from the split.")
def audio(folder, split, count):
    """Write spoken-digits utterances as WAV files, e.g. to try `predict` on."""
    from kerasaudio.datasets import speech_synth

    for path in speech_synth.write_wavs(folder, split, count):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
