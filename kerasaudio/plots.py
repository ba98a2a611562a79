"""Figures as PNG files: matplotlib only (Agg backend, no display). Each function takes the data
and a path, writes the PNG there (through a temporary file) and returns the path."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FEATURE_AXES = {"mfcc": "MFCC coefficient", "logmel": "mel band", "chroma": "pitch class"}
PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def learning_curves(history: dict, path, title: str = "Learning curves",
                    best_epoch: int | None = None) -> Path:
    """Loss and every metric per epoch, training against validation, epochs counted from 1
    on whole-number ticks, the best epoch (1-based, the one best.keras kept) marked.

    Args:
        history: column name -> per-epoch values, as in history.csv (`loss`, `val_loss`, ...).
    """
    metrics = [k for k in history if not k.startswith("val_") and f"val_{k}" in history]
    metrics.sort(key=lambda k: (k != "loss", k))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False,
                             layout="constrained")
    epochs = np.arange(1, len(history[metrics[0]]) + 1)
    for ax, name in zip(axes[0], metrics):
        ax.plot(epochs, history[name], marker=".", label="training")
        ax.plot(epochs, history[f"val_{name}"], marker=".", label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1,
                       label=f"best epoch ({best_epoch})")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(name)
        ax.set_xlabel("epoch (from 1; history.csv counts from 0)")
        ax.set_ylabel(_metric_label(name))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def _metric_label(name: str) -> str:
    if "loss" in name:
        return "loss (cross-entropy in nats; MSE for regression)"
    if name.endswith("mae"):
        return f"{name} (target units)"
    return f"{name} (fraction)"


def regression_scatter(y_true, y_pred, path, title: str = "Predicted against true",
                       unit: str = "target units") -> Path:
    """Each example's predicted value against its true one, with the identity line."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    fig, ax = plt.subplots(figsize=(4.6, 4.4), layout="constrained")
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    low = min(y_true.min(), y_pred.min())
    high = max(y_true.max(), y_pred.max())
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="predicted = true")
    ax.set_xlabel(f"true value ({unit})")
    ax.set_ylabel(f"predicted value ({unit})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def confusion_matrix(counts: np.ndarray, class_names: list, path, normalised: bool = False,
                     title: str = "Confusion matrix") -> Path:
    """Rows are true classes, columns predicted; `normalised` divides each row by its total,
    so the diagonal is each class's recall."""
    counts = np.asarray(counts, dtype=float)
    values = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalised else counts
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 0.9 + 0.5 * n), layout="constrained")
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalised else None)
    fig.colorbar(image, ax=ax, label="fraction of the true class" if normalised else "examples")
    dark = 0.6 * (1.0 if normalised else values.max())
    if n <= 30:  # beyond that the numbers are unreadable
        for i in range(n):
            for j in range(n):
                text = f"{values[i, j]:.2f}" if normalised else f"{int(values[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] > dark else "black")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 12 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title + (" (row-normalised)" if normalised else " (counts)"), fontsize=10)
    return _save(fig, path)


def class_histogram(counts: dict, class_names: list, path, title: str = "Examples per class"):
    """Bars of examples per class, one group per split.

    Args:
        counts: split name -> examples per class (same order as `class_names`).
    """
    x = np.arange(len(class_names))
    width = 0.8 / max(len(counts), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(class_names)), 3.8), layout="constrained")
    for k, (split, values) in enumerate(counts.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=split)
    ax.set_xticks(x, class_names, rotation=90 if len(class_names) > 12 else 0)
    ax.set_xlabel("class")
    ax.set_ylabel("examples")
    ax.set_title(title)
    fig.legend(loc="outside right upper")  # beside the bars, never over one
    return _save(fig, path)


def length_histogram(seconds: dict, path, title: str = "Sequence lengths",
                     unit: str = "s") -> Path:
    """Histogram of sequence durations per split. `seconds`: split name -> durations in
    `unit` (seconds, or steps for features without a known frame rate)."""
    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    everything = np.concatenate([np.asarray(v, float) for v in seconds.values()])
    bins = np.histogram_bin_edges(everything, bins=30)
    for split, values in seconds.items():
        # Outlines, not filled bars: a small split stays visible in front of a large one.
        ax.hist(values, bins=bins, histtype="step", linewidth=1.6, label=split)
    ax.set_xlabel(f"length ({unit})")
    ax.set_ylabel("sequences")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def feature_image(frames: np.ndarray, kinds: list, widths: list, step: float, path,
                  title: str = "Features", unit: str = "s") -> Path:
    """One panel per feature kind of a (time, features) example, time on x.

    Args:
        kinds: the feature kinds in column order (`mfcc`, `logmel`, `chroma`, or other names).
        widths: how many columns each kind takes.
        step: a frame's length in `unit` (seconds; 1 for steps of unknown duration).
    """
    fig, axes = plt.subplots(len(kinds), 1, figsize=(7, 2.6 * len(kinds)), squeeze=False,
                             layout="constrained")
    seconds = frames.shape[0] * step
    start = 0
    for ax, kind, width in zip(axes[:, 0], kinds, widths):
        block = frames[:, start:start + width].T
        start += width
        image = ax.imshow(block, aspect="auto", origin="lower", cmap="magma",
                          extent=(0, seconds, -0.5, width - 0.5))
        fig.colorbar(image, ax=ax, label="normalised value" if kind == "chroma" else "value")
        ax.set_ylabel(FEATURE_AXES.get(kind, "feature"))
        if kind == "chroma" and width == 12:
            ax.set_yticks(range(12), PITCH_CLASSES, fontsize=7)
        else:
            ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(kind)
    axes[-1, 0].set_xlabel(f"time ({unit})")
    fig.suptitle(title)
    return _save(fig, path)


def _numeric_axis(values: list, name: str) -> tuple:
    """(each value's place in [0, 1], (tick places, tick labels)) of a numeric setting: log
    scale for learning rates and weight decay; integer settings labelled with integers (their
    own values when there are few), never 1.25 layers."""
    v = np.asarray(values, float)
    log = name in ("lr", "weight_decay") and np.all(v > 0)
    v = np.log10(v) if log else v
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if hi == lo:
        return np.full_like(v, 0.5), ([0.5], [f"{values[0]:.3g}"])
    integers = not log and all(isinstance(x, int) for x in values)
    distinct = sorted(set(values))
    if integers and len(distinct) <= 6:
        labels = np.asarray(distinct, float)
    elif integers:
        labels = np.unique(np.round(np.linspace(lo, hi, 5)))
    else:
        labels = np.linspace(lo, hi, 5)
    text = [f"{10 ** t:.2g}" if log else f"{int(t)}" if integers else f"{t:.3g}"
            for t in labels]
    return (v - lo) / (hi - lo), ((labels - lo) / (hi - lo), text)


def _text_axis(values: list) -> tuple:
    """(each value's place in [0, 1], (tick places, tick labels)) of a text setting: its
    values spread evenly, in sorted order."""
    levels = sorted({str(x) for x in values})
    if len(levels) == 1:
        return np.full(len(values), 0.5), ([0.5], levels)
    step = 1 / (len(levels) - 1)
    return (np.array([levels.index(str(x)) * step for x in values]),
            ([i * step for i in range(len(levels))], levels))


def parallel_coordinates(rows: list, columns: list, metric: str, path,
                         title: str = "Runs by setting", metric_range: tuple | None = None
                         ) -> Path:
    """One line per run across one vertical axis per setting, coloured by `metric`.

    Numeric settings are scaled to their own range (`_numeric_axis`); text settings are
    spread evenly with their values as tick labels.

    Args:
        rows: one dict per run holding every name in `columns` and `metric`.
        columns: the settings to draw, left to right; the metric is the last axis.
        metric_range: (low, high) of the colour bar (default: the rows' own), so that a plot
            of some of the runs colours them as the plot of all does.
    """
    axes_names = list(columns) + [metric]
    positions, ticks = [], []
    for name in axes_names:
        values = [r.get(name) for r in rows]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        scale, tick = _numeric_axis(values, name) if numeric else _text_axis(values)
        positions.append(scale)
        ticks.append(tick)
    positions = np.asarray(positions)
    scores = np.asarray([r[metric] for r in rows], float)
    fig, ax = plt.subplots(figsize=(1.6 * len(axes_names) + 2, 4.5), layout="constrained")
    cmap = plt.get_cmap("viridis")
    low, high = metric_range or (np.nanmin(scores), np.nanmax(scores))
    norm = matplotlib.colors.Normalize(low, high if high > low else low + 1e-9)
    for k in np.argsort(scores):  # best drawn last, on top
        ax.plot(range(len(axes_names)), positions[:, k], color=cmap(norm(scores[k])), alpha=0.8)
    for i, (where, labels) in enumerate(ticks):
        ax.axvline(i, color="grey", linewidth=0.8)
        for y, label in zip(where, labels):
            ax.text(i + 0.03, y, label, fontsize=7, va="center")
    ax.set_xticks(range(len(axes_names)), axes_names)
    ax.set_yticks([])
    ax.set_ylabel("position on each axis (scaled to its range)")
    ax.set_xlim(-0.2, len(axes_names) - 0.5)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    ax.set_title(title)
    return _save(fig, path)


def spectrogram_grid(columns: dict, step: float, path, title: str = "Augmentations") -> Path:
    """Log-mel spectrograms, one row per utterance and one column per version of it.

    Args:
        columns: version name (e.g. `none`, `reverb`) -> list of (time, mel bands) arrays, the
            same utterances in the same order in every column.
        step: a frame's length in seconds.
    """
    names = list(columns)
    rows = len(columns[names[0]])
    fig, axes = plt.subplots(rows, len(names), figsize=(2.2 * len(names), 1.8 * rows + 0.6),
                             squeeze=False, layout="constrained")
    low = min(float(np.percentile(x, 5)) for images in columns.values() for x in images)
    high = max(float(x.max()) for images in columns.values() for x in images)
    for col, name in enumerate(names):
        for row, frames in enumerate(columns[name]):
            ax = axes[row, col]
            image = ax.imshow(frames.T, aspect="auto", origin="lower", cmap="magma",
                              vmin=low, vmax=high,
                              extent=(0, frames.shape[0] * step, -0.5, frames.shape[1] - 0.5))
            if row == 0:
                ax.set_title(name, fontsize=9)
            if row == rows - 1:
                ax.set_xlabel("time (s)", fontsize=8)
            if col == 0:
                ax.set_ylabel("mel band", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, label="log mel power (natural log)", shrink=0.6)
    fig.suptitle(title)
    return _save(fig, path)
