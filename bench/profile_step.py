"""Where a recurrent model's training time goes, on spoken-digits (gru_attention without its
convolutions, as bench/peer.py compares it, unless --arch says otherwise).

    python bench/profile_step.py [--batches 60] [--arch gru_attention|gru|lstm] [--batch-size B]

Times, in milliseconds per batch over the same bucketed training batches (held in memory, so
the input pipeline is not part of it), each part of a training step on its own:

- `gru_forward` (`lstm_forward` for lstm): the recurrent layers alone (normalisation
  included);
- `forward`: the whole model (recurrent layers, pooling, head);
- `forward_backward`: the loss and its gradients;
- `train_step`: Keras's own `train_on_batch` (gradients, Adam update, metrics);
- `fit_step`: one epoch of `model.fit` over the same batches from the training pipeline, per
  batch (callbacks, progress); `fit_step_8` the same with `steps_per_execution=8`, which runs
  8 steps per call into TensorFlow.

The differences say what each part costs: backward = forward_backward - forward, the update and
metrics = train_step - forward_backward, Keras's per-batch loop = fit_step - train_step.
Every function is traced first on every batch shape, so no figure includes tracing. Prints one
JSON line per figure.
"""

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.peer import PEER_HPARAMS  # noqa: E402
from kerasaudio import datasets, models, pipeline, train  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig, TrainConfig  # noqa: E402
from kerasaudio.models import heads  # noqa: E402
from kerasaudio.models.inputs import spec_of  # noqa: E402


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "profile", "figure": figure, "value": value, **extra}),
          flush=True)


def per_batch_ms(fn, batches, repeats: int = 3) -> float:
    """Best of `repeats` passes over `batches` of `fn(x, y)`, in ms per batch."""
    for x, y in batches:  # traces every shape before anything is timed
        fn(x, y)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for x, y in batches:
            fn(x, y)
        best = min(best, time.perf_counter() - start)
    return round(1000 * best / len(batches), 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--arch", choices=("gru_attention", "gru", "lstm"),
                        default="gru_attention")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size,
                        help="32, as bench/peer.py compares, unless given")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()  # as fit runs
    data = datasets.load(DataConfig(), FeatureConfig()).subset("train")
    cfg = TrainConfig(batch_size=args.batch_size)
    ds, steps = pipeline.training_batches(data, cfg.batch_size, cfg.seed)
    batches = [(x, y) for x, y in ds.take(min(args.batches, steps))]
    # The model bench/peer.py compares: gru_attention without convolutions, as the reference.
    model = models.build(args.arch, spec_of(data, seed=0), data.tasks,
                         **PEER_HPARAMS.get(args.arch, {}))
    model.compile(optimizer=train.make_optimizer(cfg, steps), loss=heads.losses(data.tasks),
                  metrics=heads.metrics(data.tasks))
    loss_fn = heads.losses(data.tasks)["digit"]
    cell = "lstm" if args.arch == "lstm" else "gru"
    recurrent = keras.Model(model.inputs, model.get_layer(f"{cell}_1").output)

    @tf.function(reduce_retracing=True)
    def recurrent_forward(x, y):
        return recurrent(x, training=True)

    @tf.function(reduce_retracing=True)
    def forward(x, y):
        return model(x, training=True)

    @tf.function(reduce_retracing=True)
    def forward_backward(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y["digit"], model(x, training=True)["digit"])
        return tape.gradient(loss, model.trainable_variables)

    frames = int(sum(int(tf.reduce_sum(tf.cast(x["mask"], tf.int32))) for x, _ in batches))
    common = {"arch": args.arch, "batches": len(batches), "batch_size": cfg.batch_size,
              "frames_per_batch": round(frames / len(batches), 1)}
    parts = {f"{cell}_forward": recurrent_forward, "forward": forward,
             "forward_backward": forward_backward,
             "train_step": lambda x, y: model.train_on_batch(x, y)}
    results = {}
    for name, fn in parts.items():
        results[name] = per_batch_ms(fn, batches)
        emit(f"{name}_ms_per_batch", results[name], **common)
    # fit reads the same batches from the real pipeline as every fit does: an endless,
    # prefetched dataset and steps_per_epoch (each fit starts a new iterator at its start).
    for steps_per_execution in (1, 8):
        model.compile(optimizer=train.make_optimizer(cfg, steps), loss=heads.losses(data.tasks),
                      metrics=heads.metrics(data.tasks), steps_per_execution=steps_per_execution)
        fit = functools.partial(model.fit, ds, epochs=1, steps_per_epoch=len(batches),
                                verbose=0)
        fit()  # warm-up: fit's own functions traced
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            fit()
            best = min(best, time.perf_counter() - start)
        name = "fit_step" if steps_per_execution == 1 else f"fit_step_{steps_per_execution}"
        results[name] = round(1000 * best / len(batches), 2)
        emit(f"{name}_ms_per_batch", results[name], steps_per_execution=steps_per_execution,
             **common)
    shares = {
        f"{cell}_layers": results[f"{cell}_forward"],
        # (the figure's name from when only gru_attention was profiled)
        "attention_and_head" if args.arch == "gru_attention" else "pooling_and_head":
            results["forward"] - results[f"{cell}_forward"],
        "backward": results["forward_backward"] - results["forward"],
        "update_and_metrics": results["train_step"] - results["forward_backward"],
        "keras_fit_loop": results["fit_step"] - results["train_step"],
    }
    for name, ms in shares.items():
        emit(f"{name}_share", round(ms / results["fit_step"], 3), ms=round(ms, 2), **common)


if __name__ == "__main__":
    main()
