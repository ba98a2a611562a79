"""`bilstm`: stacked bidirectional LSTM (masked), mean of its outputs over the real frames."""

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, sequence_inputs
from kerasaudio.models.recurrent import rnn_stack


def build(spec: InputSpec, tasks, hidden: int = 128, layers: int = 2,
          dropout: float = 0.1) -> keras.Model:
    """Stacked BiLSTM (each direction `hidden` units) -> masked mean over time -> heads.

    Args:
        spec: input description.
        tasks: the prediction targets.
        hidden: LSTM units per direction and layer.
        layers: number of stacked BiLSTM layers.
        dropout: dropout between layers and before the heads.
    """
    inputs, x, mask = sequence_inputs(spec)
    x = rnn_stack(x, mask, "lstm", hidden, layers, dropout, bidirectional=True)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_time")(x, mask=mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="bilstm")
