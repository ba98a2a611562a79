"""`bigru_labeller`: a whole utterance in, one label per frame out (the sequence labeller of
the phoneme course project's last step: every frame sees the entire utterance, not only a
window)."""

import keras

from kerasaudio.errors import UserError
from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, sequence_inputs
from kerasaudio.models.recurrent import CELLS, rnn_stack

LEVEL = "frame"


def build(spec: InputSpec, tasks, hidden: int = 128, layers: int = 2, cell: str = "gru",
          dropout: float = 0.1) -> keras.Model:
    """Stacked bidirectional GRU (or LSTM) over the padded utterance -> dropout -> a head at
    every frame.

    The padding mask reaches the heads' outputs, so Keras leaves padded frames out of the
    loss and the accuracy.

    Args:
        spec: input description.
        tasks: the (frame-level) prediction targets.
        hidden: units per direction and layer.
        layers: number of stacked bidirectional layers.
        cell: `gru` or `lstm`.
        dropout: dropout between layers and before the heads.
    """
    if cell not in CELLS:
        raise UserError(f"unknown cell {cell!r}; valid: {', '.join(CELLS)}")
    inputs, x, mask = sequence_inputs(spec)
    x = rnn_stack(x, mask, cell, hidden, layers, dropout, bidirectional=True)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="bigru_labeller")
