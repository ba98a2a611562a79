"""`frame_mlp`: classifies one frame from a window of neighbouring frames (the phoneme seed)."""

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, mlp_blocks, window_inputs

INPUT = "window"


def build(spec: InputSpec, tasks, window: int = 11, width: int = 512, depth: int = 3,
          dropout: float = 0.25) -> keras.Model:
    """Window of `window` frames, concatenated -> [Dense -> BatchNorm -> ReLU -> Dropout] x depth
    -> heads.

    Args:
        spec: input description.
        tasks: the (frame-level) prediction targets.
        window: frames per window, odd: the labelled frame and (window - 1) / 2 on each side.
        width: units per block.
        depth: number of blocks.
        dropout: dropout rate in each block.
    """
    inputs, x = window_inputs(spec, window)
    x = keras.layers.Flatten(name="concatenate_frames")(x)
    x = mlp_blocks(x, width, depth, dropout)
    return keras.Model(inputs, heads.outputs(x, tasks), name="frame_mlp")
