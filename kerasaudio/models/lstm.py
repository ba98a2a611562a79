"""`lstm`: stacked LSTM, classified from the output at each sequence's last real frame."""

import keras

from kerasaudio.models.inputs import InputSpec
from kerasaudio.models.recurrent import last_step_model


def build(spec: InputSpec, tasks, hidden: int = 128, layers: int = 2,
          dropout: float = 0.1) -> keras.Model:
    """Stacked LSTM -> last real frame's output -> dropout -> heads.

    Args:
        spec: input description.
        tasks: the prediction targets.
        hidden: LSTM units per layer.
        layers: number of stacked LSTM layers.
        dropout: dropout between LSTM layers and before the heads.
    """
    return last_step_model(spec, tasks, "lstm", hidden, layers, dropout)
