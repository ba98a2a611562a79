"""Which way a logged metric improves: the one place that decides it, for the best-epoch
checkpoint, early stopping, plateau schedules, tuning objectives and plots."""

# Suffixes of the metrics Keras logs that are errors: a loss, mean absolute or squared error.
_LOWER_IS_BETTER = ("loss", "mae", "mse", "error")


def mode(metric: str) -> str:
    """`min` when a lower value of `metric` (e.g. `val_loss`, `val_rate_mae`) is better,
    else `max` (accuracy); Keras callbacks' and KerasTuner's name for the direction."""
    return "min" if metric.endswith(_LOWER_IS_BETTER) else "max"


def lower_is_better(metric: str) -> bool:
    return mode(metric) == "min"
