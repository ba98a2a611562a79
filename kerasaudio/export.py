"""export: a finished run's model in a form a serving stack loads.

- `keras`: best.keras as it is (inputs: normalised-inside features and their mask); loads in
  Keras safe mode wherever kerasaudio's layers are importable.
- `savedmodel`: a TensorFlow SavedModel whose `serve` signature takes raw waveforms and computes
  the run's features inside the graph (tf.signal), so serving needs no Python feature code.
- `tflite`: the same graph for TensorFlow Lite, one waveform per call (batch 1), in TFLite
  builtin ops only, so any TFLite or LiteRT interpreter runs it without the Flex delegate.
- `onnx`: the model as ONNX (converted by tf2onnx), for ONNX Runtime and other ONNX stacks.
  Its inputs are best.keras's, the features and their mask, not waveforms: tf2onnx 1.17
  converts an RFFT only into a complex magnitude of static shape, so the STFT of audio of any
  length does not convert. Needs `pip install tf2onnx onnx`.

The serving signature takes `waveform` float32 (batch, samples) in [-1, 1] at the run's sample
rate, zero-padded, and `num_samples` int32 (batch,): each waveform's length before padding. It
returns, per task, the class probabilities, `<task>_class` (the most probable class index) and
`<task>_label` (its name, as predict writes it), or the regression value;
frame classifiers return them per frame, (batch, frames, ...), with `num_frames`.
"""

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from kerasaudio import features, models
from kerasaudio.config import EXPORT_FORMATS
from kerasaudio.errors import FULL_DISK, UserError, is_full_disk
from kerasaudio.models import heads
from kerasaudio.runs import check_writable, load_model, load_run

FORMATS = EXPORT_FORMATS
DEFAULT_NAMES = {"keras": "model.keras", "savedmodel": "savedmodel", "tflite": "model.tflite",
                 "onnx": "model.onnx"}
ONNX_OPSET = 17
ENDPOINT = "serve"


def _raise_full_disk_as_the_export(error: Exception, out: Path) -> None:
    """Raises a full disk's error, from the OS or from TensorFlow's writers, as an OSError
    naming `out`: the file being made, not the run's best.keras being copied from."""
    if is_full_disk(error):
        raise OSError(error.errno, error.strerror, str(out)) from None
    for code in FULL_DISK:  # tf.errors.ResourceExhaustedError's text
        if os.strerror(code) in str(error):
            raise OSError(code, os.strerror(code), str(out)) from None


def _windows(x, num_frames, window: int, edge: str):
    """(batch, time, n) -> (batch, time, window, n): each frame with its neighbours, filled
    past each sequence's own ends as training's windows were (`repeat` or `zero`)."""
    import tensorflow as tf

    half = window // 2
    time = tf.range(tf.shape(x)[1])[None, :]
    last = tf.cast(num_frames, tf.int32)[:, None] - 1
    columns = []
    for offset in range(-half, half + 1):
        position = time + offset
        frames = tf.gather(x, tf.minimum(tf.maximum(position, 0), last), batch_dims=1)
        if edge == "zero":
            inside = (position >= 0) & (position <= last)
            frames *= tf.cast(inside, x.dtype)[..., None]
        columns.append(frames)
    return tf.stack(columns, axis=2)


def serving_function(model, cfg, class_names: dict):
    """waveform, num_samples -> {task: probabilities, task_class: index, task_label: name
    [, num_frames]}; `class_names` maps each classification task to its names by index."""
    import tensorflow as tf

    kind = models.input_kind(cfg.model.arch)
    per_frame = models.label_level(cfg.model.arch) == "frame"
    regression = heads.regression_outputs(model)
    features.in_graph(tf.zeros([1, cfg.features.frame_step]), tf.ones([1], tf.int32),
                      cfg.features)  # fails early, with a clear message, for librosa features

    def serve(waveform, num_samples):
        x, num_frames = features.in_graph(waveform, num_samples, cfg.features)
        if kind == "window":
            window = cfg.model.hparams["window"]
            framed = _windows(x, num_frames, window, cfg.train.window_edge)
            flat = tf.reshape(framed, [-1, window, x.shape[-1]])
            outputs = {name: tf.reshape(p, tf.concat([tf.shape(x)[:2], [-1]], 0))
                       for name, p in model({"features": flat}, training=False).items()}
        else:
            mask = tf.sequence_mask(num_frames, tf.shape(x)[1])
            outputs = model({"features": x, "mask": mask}, training=False)
        result = {name: p for name, p in outputs.items()}
        for name, p in outputs.items():
            if name not in regression:
                index = tf.argmax(p, axis=-1, output_type=tf.int32)
                result[f"{name}_class"] = index
                result[f"{name}_label"] = tf.gather(tf.constant(class_names[name]), index)
        if per_frame:
            result["num_frames"] = num_frames
        return result

    return serve


def input_signature(batch_size: int | None = None):
    import tensorflow as tf

    return [tf.TensorSpec([batch_size, None], tf.float32, name="waveform"),
            tf.TensorSpec([batch_size], tf.int32, name="num_samples")]


def _write_savedmodel(model, cfg, class_names: dict, path: Path,
                      batch_size: int | None = None) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(ENDPOINT, serving_function(model, cfg, class_names),
                         input_signature(batch_size))
    archive.write_out(str(path), verbose=False)


def _tflite_bytes(model, cfg, class_names: dict) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        # TFLite lowers Keras's recurrent loops to builtin ops only when the loop's state has
        # a static shape, hence a batch of one; otherwise it needs the Flex delegate.
        _write_savedmodel(model, cfg, class_names, Path(tmp) / "savedmodel", batch_size=1)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "savedmodel"),
                                                             signature_keys=[ENDPOINT])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def _onnx_converter():
    """(tf2onnx, onnx.numpy_helper), or UserError naming the pip command."""
    try:
        import tf2onnx.convert
        from onnx import numpy_helper
    except ImportError as error:
        raise UserError(f"--format onnx needs tf2onnx and onnx ({error}): pip install tf2onnx "
                        "onnx") from None
    return tf2onnx, numpy_helper


def _onnx_bytes(model) -> bytes:
    """The model as ONNX, with best.keras's inputs (`features`, and `mask` for sequence
    models), every dimension but the features' free."""
    import numpy as np
    import tensorflow as tf

    tf2onnx, numpy_helper = _onnx_converter()
    signature = [tf.TensorSpec(i.shape, i.dtype, name=i.name) for i in model.inputs]

    @tf.function(input_signature=signature)
    def call(*inputs):
        return model({spec.name: x for spec, x in zip(signature, inputs)}, training=False)

    with warnings.catch_warnings():  # tf2onnx's own FutureWarning about np.object
        warnings.simplefilter("ignore", FutureWarning)
        proto, _ = tf2onnx.convert.from_function(call, input_signature=signature,
                                                 opset=ONNX_OPSET)
    # Constants the graph captured (the Normalization layer's mean and variance) come out as
    # extra graph inputs: they become the initializers they are.
    function = call.get_concrete_function()
    captured = {p.name: v for v, p in zip(function.captured_inputs,
                                          function.graph.internal_captures)}
    used = {name for node in proto.graph.node for name in node.input}
    for extra in [i for i in proto.graph.input if i.name not in {s.name for s in signature}]:
        if extra.name in used:
            proto.graph.initializer.append(
                numpy_helper.from_array(np.asarray(captured[extra.name]), extra.name))
        proto.graph.input.remove(extra)
    return proto.SerializeToString()


def export(run_dir, fmt: str, out=None) -> Path:
    """Writes the run's best model in format `fmt` to `out` (default
    `<run_dir>/export/<model.keras | savedmodel | model.tflite | model.onnx>`), never over an
    existing path.

    Raises:
        UserError: for an unknown format, an existing `out`, features that cannot run in a
            graph (savedmodel, tflite), or onnx without tf2onnx and onnx installed.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        _onnx_converter()  # before anything is loaded or written
    record = load_run(run_dir)
    cfg, class_names = record.config, record.dataset.class_names
    out = Path(out) if out else Path(run_dir) / "export" / DEFAULT_NAMES[fmt]
    if fmt == "keras" and out.suffix != ".keras":
        # keras.models.load_model picks its reader by the suffix: an .h5 name on a .keras
        # archive is read as legacy HDF5, and fails.
        raise UserError(f"{out}: the keras format is a .keras archive; give --out a name "
                        "ending in .keras")
    # Written where `out` resolves to (`x/../y` is y: making it makes no x, nor counts y as
    # made), named as the user gave it.
    target = out.parent.resolve() / out.name
    if out.exists() or target.exists():
        raise UserError(f"{out}: already exists; remove it or give another --out")
    check_writable(out.parent)  # a file where a folder should be, say: mkdir would say less
    model = load_model(run_dir)  # also for keras: a damaged best.keras is not exported
    made = _missing_folders(target.parent)
    best = Path(run_dir) / "best.keras"
    # Written under a temporary name and renamed: an interrupted export leaves nothing half-made.
    tmp = target.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "keras":
            shutil.copyfile(best, tmp)
        elif fmt == "savedmodel":
            _write_savedmodel(model, cfg, class_names, tmp)
        elif fmt == "onnx":
            tmp.write_bytes(_onnx_bytes(model))
        else:
            tmp.write_bytes(_tflite_bytes(model, cfg, class_names))
        os.replace(tmp, target)
    except Exception as error:
        _raise_full_disk_as_the_export(error, out)
        raise
    finally:
        # A full disk or an error half-way leaves no hidden temporary file or folder, nor
        # the folders made for the export.
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        if not target.exists():
            _remove_empty(made)
    return out


def _missing_folders(folder: Path) -> list:
    """The folders that making `folder` would create, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list) -> None:
    """Removes those of `folders` (deepest first) that were made and are still empty."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():  # never made (a failure above it)
            continue
        try:
            folder.rmdir()
        except OSError:  # something else was put there meanwhile: it stays
            return
