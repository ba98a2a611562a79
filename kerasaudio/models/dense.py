"""`dense`: masked mean over time, then fully connected layers (the digit course project's
baseline)."""

import keras

from kerasaudio.errors import UserError
from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, sequence_inputs


def build(spec: InputSpec, tasks, hidden=(100, 10), layers: int | None = None,
          dropout: float = 0.5) -> keras.Model:
    """Mean of the unpadded frames -> [Dense -> ReLU -> Dropout] per hidden width -> heads.

    The defaults are the digit course project's baseline: hidden layers of 100 and 10
    units, dropout 0.5.

    Args:
        spec: input description.
        tasks: the prediction targets.
        hidden: width of each hidden layer (a tuple), or one width for all (an int).
        layers: number of hidden layers when `hidden` is one width.
        dropout: dropout rate after each hidden layer.
    """
    if layers is not None and not isinstance(hidden, int):
        raise UserError(f"dense: layers={layers} repeats one width (hidden=64 layers=3); "
                        f"hidden={','.join(map(str, hidden))} gives its layers itself")
    widths = (hidden,) * (layers or 1) if isinstance(hidden, int) else tuple(hidden)
    inputs, x, mask = sequence_inputs(spec)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_time")(x, mask=mask)
    for i, width in enumerate(widths):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="dense")
