"""One training step of two stacked recurrent layers alone, Keras against PyTorch: where
the LSTM and GRU gaps of bench/peer.py come from.

    python bench/rnn_step.py [--torch-python /tmp/torch-peer/bin/python] [--frames 74]
        [--batch 32] [--hidden 128]

Times forward and backward (the loss from each sequence's last frame, as the `gru` and `lstm`
models classify) of two layers of `--hidden` units on (batch, frames, 13) inputs, best of 3
passes of 30 steps, in milliseconds per step:
- Keras (TensorFlow), traced for any batch and length as `fit` traces its step (Keras's
  trainer uses `reduce_retracing`, and the pipeline's padded batches have no fixed length);
  traced for this one shape; and compiled by XLA for this one shape;
- PyTorch on the same shapes (the reference's threads: all cores), with its oneDNN (mkldnn)
  RNN kernels on and off (`torch.backends.mkldnn.enabled`), in the virtual environment of
  bench/peer.py.
74 frames at batch 32 is the mean padded batch of the spoken-digits training split
(`bench/profile_step.py` prints it). Prints one JSON line per figure.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.profile_step import per_batch_ms  # noqa: E402
from kerasaudio.models.recurrent import CELLS  # noqa: E402

N_FEATURES = 13
PASSES, STEPS = 3, 30

TORCH_SCRIPT = """
import json, sys, time, torch
frames, batch, hidden, n_features, passes, steps, threads = map(int, sys.argv[1:])
torch.set_num_threads(threads)
for cell in ("GRU", "LSTM"):
    for onednn in (True, False):
        torch.backends.mkldnn.enabled = onednn
        torch.manual_seed(0)
        rnn = getattr(torch.nn, cell)(n_features, hidden, num_layers=2, batch_first=True)
        x = torch.randn(batch, frames, n_features)
        def step():
            out, _ = rnn(x)
            out[:, -1].sum().backward()
        for _ in range(5):
            step()
        best = float("inf")
        for _ in range(passes):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            best = min(best, (time.perf_counter() - start) / steps)
        print(json.dumps({"cell": cell.lower(), "onednn": onednn, "ms": 1000 * best,
                          "torch": torch.__version__}))
"""


def emit(figure: str, value, **extra):
    print(json.dumps({"bench": "rnn_step", "figure": figure, "value": value, **extra}),
          flush=True)


def keras_step_ms(cell: str, args, shapes: str) -> float:
    """`shapes`: "any" (traced for any batch and length), "fixed", or "xla"."""
    keras.utils.set_random_seed(0)
    layer = CELLS[cell]
    inputs = keras.Input((None, N_FEATURES))
    x = layer(args.hidden, return_sequences=True)(inputs)
    model = keras.Model(inputs, layer(args.hidden, return_sequences=True)(x))
    x = tf.random.stateless_normal((args.batch, args.frames, N_FEATURES), seed=(0, 0))
    signature = [tf.TensorSpec([None, None, N_FEATURES])] if shapes == "any" else None

    @tf.function(input_signature=signature, jit_compile=shapes == "xla")
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True)[:, -1])
        return tape.gradient(loss, model.trainable_variables)

    # Traced (and compiled) at its first step, before anything is timed.
    return per_batch_ms(lambda x, _: step(x), [(x, None)] * STEPS, repeats=PASSES)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default="/tmp/torch-peer/bin/python")
    parser.add_argument("--frames", type=int, default=74)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    tf.config.experimental.enable_op_determinism()  # as fit runs
    settings = {"frames": args.frames, "batch": args.batch, "hidden": args.hidden, "layers": 2}
    for cell in ("gru", "lstm"):
        for shapes in ("any", "fixed", "xla"):
            emit("ms_per_step", round(keras_step_ms(cell, args, shapes), 1), system="keras",
                 cell=cell, shapes=shapes, **settings)
    if not os.path.exists(args.torch_python):
        sys.exit(f"bench/rnn_step.py: {args.torch_python}: no such python; set it up as "
                 "bench/peer.py says, or pass --torch-python")
    done = subprocess.run([args.torch_python, "-c", TORCH_SCRIPT, str(args.frames),
                           str(args.batch), str(args.hidden), str(N_FEATURES), str(PASSES),
                           str(STEPS),
                           str(os.cpu_count())], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench/rnn_step.py: PyTorch failed: {done.stderr.strip().splitlines()[-1]}")
    for line in done.stdout.splitlines():
        found = json.loads(line)
        emit("ms_per_step", round(found["ms"], 1), system="torch", cell=found["cell"],
             onednn=found["onednn"], torch=found["torch"], **settings)


if __name__ == "__main__":
    main()
