"""`data info`: what a data set holds before anything is trained on it."""

import dataclasses
from pathlib import Path

import numpy as np

from kerasaudio import evaluate, features, plots, runs
from kerasaudio.datasets.base import SPLITS, Dataset
from kerasaudio.errors import UserError


def _length_unit(dataset: Dataset) -> tuple[float, str]:
    """(length of a frame, unit): seconds for features computed from audio; steps for
    features that came with the data, whose frame rate is unknown."""
    if dataset.features.kind == features.GIVEN:
        return 1.0, "steps"
    return dataset.features.hop_ms / 1000, "s"


def summary(dataset: Dataset) -> dict:
    """Examples per split, class counts per task and split, lengths, feature dimensions and the
    random and majority baselines (both scored on the test split)."""
    splits = {s: dataset.subset(s) for s in SPLITS}
    scale, unit = _length_unit(dataset)
    out = {"name": dataset.name, "n_features": dataset.n_features,
           "features": dataset.features.kind,
           "examples": {s: len(d.lengths) for s, d in splits.items()},
           "frames": {s: int(d.lengths.sum()) for s, d in splits.items()},
           "lengths": {s: _stats(d.lengths * scale) for s, d in splits.items()},
           "length_unit": unit, "tasks": {}}
    for task in dataset.tasks:
        if task.kind == "regression":
            out["tasks"][task.name] = {
                "level": task.level, "kind": "regression",
                "values": {s: _stats(d.targets[task.name]) for s, d in splits.items()}}
            continue
        counts = {s: np.bincount(d.targets[task.name], minlength=task.num_classes).tolist()
                  for s, d in splits.items()}
        out["tasks"][task.name] = {
            "level": task.level, "classes": dataset.class_names[task.name], "counts": counts,
            "empty_classes": [c for c, n in zip(dataset.class_names[task.name], counts["train"])
                              if n == 0],
            "baselines": evaluate.baselines(counts["train"], counts["test"])}
    return out


def _stats(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    return {"min": float(values.min()), "median": float(np.median(values)),
            "max": float(values.max())}


def markdown(info: dict) -> str:
    lines = [f"# {info['name']}", "",
             f"{info['n_features']} features per frame ({info['features']}).", "",
             f"| split | examples | frames | length min / median / max ({info['length_unit']}) |",
             "|---|---|---|---|"]
    for s in SPLITS:
        st = info["lengths"][s]
        lengths = f"{st['min']:.2f} / {st['median']:.2f} / {st['max']:.2f}" if st else ""
        lines.append(f"| {s} | {info['examples'][s]} | {info['frames'][s]} | {lengths} |")
    for name, task in info["tasks"].items():
        if task.get("kind") == "regression":
            lines += ["", f"## {name} (regression, {task['level']} level)", "",
                      "| split | min | median | max |", "|---|---|---|---|"]
            lines += [f"| {s} | {v['min']:.4f} | {v['median']:.4f} | {v['max']:.4f} |"
                      for s, v in task["values"].items() if v]
            continue
        lines += ["", f"## {name} ({task['level']} level, {len(task['classes'])} classes)", "",
                  "| class | " + " | ".join(SPLITS) + " |", "|---|" + "---|" * len(SPLITS)]
        for i, c in enumerate(task["classes"]):
            lines.append(f"| {c} | " + " | ".join(str(task["counts"][s][i]) for s in SPLITS)
                         + " |")
        b = task["baselines"]
        lines += ["", f"Baselines (test accuracy): random guess {b['random']:.4f}, "
                  f"majority class {b['majority']:.4f}."]
        if task["empty_classes"]:
            lines.append(f"Classes with no training examples: {', '.join(task['empty_classes'])}.")
    return "\n".join(lines) + "\n"


def write(dataset: Dataset, out: Path) -> tuple[dict, list]:
    """info.md, info.json and the histograms and an example feature image into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = summary(dataset)
    figures = []
    for name, task in info["tasks"].items():
        if task.get("kind") == "regression":
            continue
        figures.append(plots.class_histogram(task["counts"], task["classes"],
                                             out / f"classes_{name}.png",
                                             title=f"{dataset.name}: examples per {name}"))
    if not any(t["level"] == "frame" for t in info["tasks"].values()):
        scale, unit = _length_unit(dataset)
        figures.append(plots.length_histogram(
            {s: dataset.subset(s).lengths * scale for s in SPLITS}, out / "lengths.png",
            title=f"{dataset.name}: sequence lengths", unit=unit))
    if dataset.features.kind == features.GIVEN:
        kinds, widths = [features.GIVEN], [dataset.n_features]
    else:
        kinds = features.kinds(dataset.features)
        widths = [features.width(k, dataset.features) for k in kinds]
    first = dataset.subset("train").sequences()[0]
    scale, unit = _length_unit(dataset)
    figures.append(plots.feature_image(first, kinds, widths, scale, out / "example_features.png",
                                       title=f"{dataset.name}: first training example",
                                       unit=unit))
    runs.write_json(out / "info.json", info)
    runs.write_text(out / "info.md", markdown(info) + "\n" + "\n".join(
        f"![{f.stem}]({f.name})" for f in figures) + "\n")
    return info, figures


def augment_preview(dataset: Dataset, path: Path, count: int = 3, seed: int = 0) -> Path:
    """A PNG of the log-mel spectrograms of `count` training utterances as they are and
    after each augmentation alone (kerasaudio/augment.py): what training hears.

    Raises:
        UserError: for a data set that came as features, without audio.
    """
    # TensorFlow only for the preview: `data info` stays quick.
    from kerasaudio import augment

    if dataset.waves is None:
        raise UserError(f"{dataset.name} came as features, without audio to augment")
    train = dataset.subset("train")
    picked = np.random.default_rng(seed).choice(len(train.lengths), min(count, len(train.lengths)),
                                                replace=False)
    waves = [np.asarray(w, np.float32) / (32768.0 if w.dtype == np.int16 else 1.0)
             for w in train.waves[np.sort(picked)]]
    cfg = dataclasses.replace(dataset.features, kind="logmel", beat_sync=False)
    columns = {}
    for name, versions in augment.preview(waves, cfg.sample_rate, seed).items():
        width = max(map(len, versions))
        padded = np.stack([np.pad(w, (0, width - len(w))) for w in versions])
        mel = features.log_mel(padded.astype(np.float32), cfg).numpy()
        columns[name] = [m[:int(features.frame_count(len(w), cfg))] for m, w in zip(mel, versions)]
    path.parent.mkdir(parents=True, exist_ok=True)
    return plots.spectrogram_grid(columns, cfg.hop_ms / 1000, path,
                                  title=f"{dataset.name}: {len(waves)} training utterances, "
                                        "each augmentation alone")
