"""`gru`: stacked GRU, classified from the output at each sequence's last real frame."""

import keras

from kerasaudio.models.inputs import InputSpec
from kerasaudio.models.recurrent import last_step_model


def build(spec: InputSpec, tasks, hidden: int = 128, layers: int = 2,
          dropout: float = 0.1) -> keras.Model:
    """Stacked GRU -> last real frame's output -> dropout -> heads.

    Args:
        spec: input description.
        tasks: the prediction targets.
        hidden: GRU units per layer.
        layers: number of stacked GRU layers.
        dropout: dropout between GRU layers and before the heads.
    """
    return last_step_model(spec, tasks, "gru", hidden, layers, dropout)
