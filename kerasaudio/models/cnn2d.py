"""`cnn2d`: the music course project's spectrogram-as-image CNN, for sequences of any length."""

import math

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, sequence_inputs
from kerasaudio.models.layers import BATCH_NORM_MOMENTUM, FrameMask, PoolMask, ZeroPadding


def build(spec: InputSpec, tasks, channels=(128, 64, 32, 8), kernel: int = 5,
          dropout: float = 0.1) -> keras.Model:
    """Per block: Conv2D (kernel x kernel) -> BatchNorm -> ReLU -> 2x2 max-pool; then the
    mean over the real (pooled) frames and the heads. The defaults are the music course
    project's: 4 blocks, 5x5 kernels, channels 128/64/32/8.

    Padded frames are zeroed before every convolution and pooling, so a batch gives each
    sequence the same output as the sequence alone (ReLU outputs are >= 0, so a pooling
    window that reaches into the zeroed padding keeps its real maximum).

    Args:
        spec: input description (time x features is the image).
        tasks: the prediction targets.
        channels: output channels of each block; one block per entry.
        kernel: square kernel size.
        dropout: dropout before the heads.
    """
    channels = (channels,) if isinstance(channels, int) else tuple(channels)
    inputs, x, mask = sequence_inputs(spec)
    x = keras.layers.Reshape((-1, spec.n_features, 1), name="as_image")(x)
    for i, ch in enumerate(channels):
        x = ZeroPadding(name=f"zero_padding_{i}")(x, mask=mask)
        x = keras.layers.Conv2D(ch, kernel, padding="same", name=f"conv_{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"batch_norm_{i}")(
            x, mask=FrameMask(name=f"frame_mask_{i}")(x, mask=mask))
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
        x = ZeroPadding(name=f"zero_before_pool_{i}")(x, mask=mask)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool_{i}")(x)
        mask = PoolMask(2, name=f"pool_mask_{i}")(mask)
    freq = spec.n_features
    for _ in channels:
        freq = math.ceil(freq / 2)
    x = keras.layers.Reshape((-1, freq * channels[-1]), name="as_sequence")(x)
    x = keras.layers.GlobalAveragePooling1D(name="mean_over_time")(x, mask=mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="cnn2d")
