"""`bilstm_frames`: BiLSTM over a window of frames, then MLP blocks (the phoneme course
project's best)."""

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, mlp_blocks, window_inputs

INPUT = "window"


def build(spec: InputSpec, tasks, window: int = 11, hidden: int = 128, layers: int = 2,
          width: int = 256, depth: int = 1, dropout: float = 0.25) -> keras.Model:
    """BiLSTM layers over the window -> output at the centre frame -> MLP blocks -> heads.

    Args:
        spec: input description.
        tasks: the (frame-level) prediction targets.
        window: frames per window, odd; the centre frame is the one labelled.
        hidden: LSTM units per direction and layer.
        layers: number of BiLSTM layers.
        width: units per MLP block.
        depth: number of MLP blocks.
        dropout: dropout between BiLSTM layers and in the MLP blocks.
    """
    inputs, x = window_inputs(spec, window)
    for i in range(layers):
        if i > 0 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"lstm_dropout_{i}")(x)
        # The window is short and of fixed length, so the loop is unrolled: faster on CPUs,
        # and TensorFlow Lite then runs the exported model with builtin ops alone.
        lstm = keras.layers.LSTM(hidden, return_sequences=True, unroll=True)
        x = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")(x)
    x = keras.layers.Cropping1D((window // 2, window // 2), name="centre_frame")(x)
    x = keras.layers.Flatten(name="centre_output")(x)
    x = mlp_blocks(x, width, depth, dropout)
    return keras.Model(inputs, heads.outputs(x, tasks), name="bilstm_frames")
