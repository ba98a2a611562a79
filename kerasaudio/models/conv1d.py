"""`conv1d`: temporal convolutions, then a mean over the real frames."""

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, conv_blocks, sequence_inputs


def build(spec: InputSpec, tasks, filters: int = 128, kernel: int = 5, layers: int = 3,
          dropout: float = 0.1) -> keras.Model:
    """[zero padding -> Conv1D -> masked BatchNorm -> ReLU] x layers -> masked mean -> heads.

    Args:
        spec: input description.
        tasks: the prediction targets.
        filters: channels of every convolution.
        kernel: kernel length in frames.
        layers: number of convolution blocks.
        dropout: dropout before the heads.
    """
    inputs, x, mask = sequence_inputs(spec)
    x = conv_blocks(x, mask, filters, kernel, layers)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_time")(x, mask=mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="conv1d")
