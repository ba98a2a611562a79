"""The stacked GRU backbone shared by `gru` and `gru_attention`."""

import keras


def gru_stack(x, hidden: int, layers: int, dropout: float):
    """`layers` GRUs returning sequences, with dropout between them (as torch.nn.GRU does).

    The GRUs get no mask on purpose: padding is at the end and a forward GRU's output at a
    real frame never depends on later frames, so the outputs at real frames are exact, and
    the unmasked loop is cheaper. Whatever pools the sequence must apply the mask.
    """
    for i in range(layers):
        if i > 0 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"gru_dropout_{i}")(x)
        x = keras.layers.GRU(hidden, return_sequences=True, name=f"gru_{i}")(x)
    return x
