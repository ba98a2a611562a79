"""Export parity: a run's SavedModel and TFLite exports, which compute the features in the
graph from raw waveforms, against `predict`, which extracts them in Python as training did.

    python bench/export.py RUN_DIR AUDIO_PATH... [--out FOLDER]

Exports go to a temporary folder unless --out is given. Prints one JSON line per figure: the
largest absolute difference of any class probability over all files, the share of files
whose predicted class agrees, the export sizes and the milliseconds per file of each path.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasaudio import audio, export, predict, runs  # noqa: E402


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "export", "figure": figure, "value": value, **extra}),
          flush=True)


def probabilities(header, rows, task: str) -> np.ndarray:
    columns = [i for i, name in enumerate(header) if name.startswith(f"{task}_p_")]
    return np.array([[float(row[i]) for i in columns] for row in rows])


def size_bytes(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--out", help="folder to keep the exports in")
    args = parser.parse_args()

    record = runs.load_run(args.run_dir)
    cfg, task = record.config, record.dataset.tasks[0].name
    start = time.perf_counter()
    header, rows = predict.predict_files(args.run_dir, args.paths)
    predict_ms = 1000 * (time.perf_counter() - start) / len(rows)
    expected = probabilities(header, rows, task)
    waves = [audio.read(row[0], cfg.features.sample_rate) for row in rows]

    out = Path(args.out or tempfile.mkdtemp(prefix="kerasaudio-export-"))
    saved = export.export(args.run_dir, "savedmodel", out / "savedmodel")
    lite = export.export(args.run_dir, "tflite", out / "model.tflite")

    serve = tf.saved_model.load(str(saved)).signatures["serve"]
    batch = np.zeros((len(waves), max(map(len, waves))), np.float32)
    for i, wave in enumerate(waves):
        batch[i, :len(wave)] = wave
    start = time.perf_counter()
    outputs = serve(waveform=tf.constant(batch),
                    num_samples=tf.constant([len(w) for w in waves], tf.int32))
    saved_ms = 1000 * (time.perf_counter() - start) / len(waves)
    from_saved = outputs[task].numpy()

    runner = tf.lite.Interpreter(model_path=str(lite)).get_signature_runner("serve")
    start = time.perf_counter()
    from_lite = np.concatenate([
        runner(waveform=wave[None, :], num_samples=np.array([len(wave)], np.int32))[task]
        for wave in waves])
    lite_ms = 1000 * (time.perf_counter() - start) / len(waves)

    files = len(waves)
    for name, got, ms, path in (("savedmodel", from_saved, saved_ms, saved),
                                ("tflite", from_lite, lite_ms, lite)):
        emit(f"{name}_max_abs_probability_difference", float(np.abs(got - expected).max()),
             files=files)
        emit(f"{name}_class_agreement",
             float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1))), files=files)
        emit(f"{name}_ms_per_file", round(ms, 2), files=files)
        emit(f"{name}_bytes", size_bytes(path))
    emit("predict_ms_per_file", round(predict_ms, 2), files=files,
         note="includes loading the model and Python feature extraction")


if __name__ == "__main__":
    main()
