"""`gru_attention`: convolutions, stacked GRU, attention pooling over the real frames."""

import keras

from kerasaudio.errors import UserError
from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, conv_blocks, sequence_inputs
from kerasaudio.models.layers import AttentionPooling, ZeroPadding
from kerasaudio.models.recurrent import rnn_stack

# Over seeds 0-4, batch 64 at twice the rate reached the same test accuracy as batch 32 at
# 1e-3 (0.9906 +- 0.0021 against 0.9904 +- 0.0030) in about half the wall-clock time
# (results/README.md, "Time to accuracy"). With augmentation the training loss still falls
# at the last epoch; a cosine decay to zero over the epochs lets it settle, which the real
# voices reward (results/README.md, "Real voices").
TRAINING = {"batch_size": 64, "lr": 2e-3, "schedule": "cosine"}
# Runs recorded before conv_layers existed had no convolutions; their config.json (and a
# search's best.json) lacks it, and must still build what they built.
EARLIER = {"conv_layers": 0}


def build(spec: InputSpec, tasks, hidden: int = 128, layers: int = 2,
          dropout: float = 0.1, conv_layers: int = 2, conv_filters: int = 128,
          conv_kernel: int = 5) -> keras.Model:
    """[Conv1D blocks] -> stacked GRU -> additive attention pooling (padding masked out) ->
    dropout -> heads.

    Args:
        spec: input description.
        tasks: the prediction targets.
        hidden: GRU units per layer (also the attention width).
        layers: number of stacked GRU layers.
        dropout: dropout between GRU layers and before the heads.
        conv_layers: convolution blocks (as conv1d's) before the GRUs; 0 for none. Over
            five seeds two of them added a point on the synthetic test speakers and one of
            a real speaker's ten digits, level on other engines' voices, at about 18 % more
            time per epoch (results/README.md, "Two convolutions before the GRUs").
        conv_filters: channels of every convolution.
        conv_kernel: kernel length in frames.
    """
    if not conv_layers and (conv_filters, conv_kernel) != (128, 5):
        raise UserError("gru_attention: conv_layers=0 builds no convolutions, so conv_filters "
                        "and conv_kernel shape nothing; leave them out, or give conv_layers "
                        "1 or more")
    inputs, x, mask = sequence_inputs(spec)
    if conv_layers:
        x = conv_blocks(x, mask, conv_filters, conv_kernel, conv_layers)
        x = ZeroPadding(name="conv_output")(x, mask=mask)  # hands no mask on to the GRUs
    x = rnn_stack(x, mask, "gru", hidden, layers, dropout)
    x = AttentionPooling(name="attention")(x, mask=mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name="gru_attention")
