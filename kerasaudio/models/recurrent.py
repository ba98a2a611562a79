"""The stacked recurrent backbone shared by the gru, gru_attention, lstm and bilstm models."""

import keras

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, sequence_inputs
from kerasaudio.models.layers import LastValidStep

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


def rnn_stack(x, mask, cell: str, hidden: int, layers: int, dropout: float,
              bidirectional: bool = False):
    """`layers` recurrent layers returning sequences, with dropout between them (as torch's
    GRU/LSTM do).

    A forward-only stack gets no mask on purpose: padding is at the end and a forward RNN's
    output at a real frame never depends on later frames, so the outputs at real frames are
    exact and the unmasked loop is cheaper. A bidirectional stack must get the mask, or the
    backward direction would start in the padding. Whatever pools the sequence must apply
    the mask either way.
    """
    for i in range(layers):
        if i > 0 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{cell}_dropout_{i}")(x)
        rnn = CELLS[cell](hidden, return_sequences=True, name=f"{cell}_{i}")
        if bidirectional:
            x = keras.layers.Bidirectional(rnn, name=f"bi{cell}_{i}")(x, mask=mask)
        else:
            x = rnn(x)
    return x


def last_step_model(spec: InputSpec, tasks, cell: str, hidden: int, layers: int,
                    dropout: float) -> keras.Model:
    """Stacked `cell` layers -> last real frame's output -> dropout -> heads (gru, lstm)."""
    inputs, x, mask = sequence_inputs(spec)
    x = rnn_stack(x, mask, cell, hidden, layers, dropout)
    x = LastValidStep(name="last_step")(x, mask=mask)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, heads.outputs(x, tasks), name=cell)
