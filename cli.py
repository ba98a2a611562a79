"""kerasaudio command line. Thin: options -> config -> library. TensorFlow is imported only
inside commands that need it, so `python cli.py --help` stays fast."""

import os
import sys

import click

from kerasaudio.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.errors import UserError


class Group(click.Group):
    """Prints a UserError as one line on stderr and exits with status 2 (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(2)


def _quiet_tensorflow():
    # TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) is noise to users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


@click.group(cls=Group)
def main():
    """Train, tune, evaluate and export Keras models on audio features."""


@main.command()
@click.option("--arch", default=ModelConfig.arch, show_default=True,
              help="Architecture (see `archs`).")
@click.option("--data", default=DataConfig.name, show_default=True,
              help="Built-in data set name.")
@click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs, show_default=True,
              help="Maximum epochs; early stopping on validation loss may stop sooner.")
@click.option("--batch-size", type=click.IntRange(min=1), default=TrainConfig.batch_size,
              show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=TrainConfig.lr,
              show_default=True, help="Adam learning rate.")
@click.option("--patience", type=click.IntRange(min=1), default=TrainConfig.patience,
              show_default=True, help="Early-stopping patience in epochs.")
@click.option("--hidden", callback=_parse_hidden,
              help="Hidden units: N, or N,N,... one per layer (dense). Default: the arch's.")
@click.option("--layers", type=click.IntRange(min=1), help="Stacked layers. Default: the arch's.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True),
              help="Dropout rate. Default: the arch's.")
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True,
              help="Seeds weights, dropout and shuffling.")
@click.option("--limit", type=click.IntRange(min=1),
              help="Keep at most N examples per split (quick experiments).")
@click.option("--out", default=RunConfig.out, show_default=True,
              help="Parent folder of run directories.")
def fit(arch, data, epochs, batch_size, lr, patience, hidden, layers, dropout, seed, limit, out):
    """Train a model and write a run directory."""
    from kerasaudio import models

    given = {"hidden": hidden, "layers": layers, "dropout": dropout}
    cfg = RunConfig(
        data=DataConfig(name=data, limit=limit),
        model=ModelConfig(arch=arch, hparams={k: v for k, v in given.items() if v is not None}),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                          seed=seed),
        out=out)
    models.resolve(cfg.model.arch, cfg.model.hparams)  # fail on a bad name before loading data
    _quiet_tensorflow()
    from kerasaudio import train

    run_dir, metrics = train.fit(cfg)
    test = metrics["test"]
    click.echo(f"test accuracy {test['accuracy']:.4f}  loss {test['loss']:.4f}  "
               f"(best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
               f"{metrics['seconds_per_epoch']:.1f} s/epoch, "
               f"{100 * metrics['padded_fraction']:.1f} % padded frames)")
    click.echo(f"run directory: {run_dir}")


@main.command()
def archs():
    """List architectures and their hyperparameters with defaults."""
    _quiet_tensorflow()
    from kerasaudio import models

    for name in models.ARCHITECTURES:
        params = ", ".join(f"{k}={v}" for k, v in models.hyperparameters(name).items())
        click.echo(f"{name}: {params}")


if __name__ == "__main__":
    sys.exit(main())
