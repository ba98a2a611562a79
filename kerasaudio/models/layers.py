"""Custom layers: masked pooling over time. All serialisable, so best.keras loads in safe mode."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasaudio")
class AttentionPooling(keras.layers.Layer):
    """Additive attention pooling over time: softmax(v . tanh(W h_t + b)) weighted sum of h_t.

    Padded frames (mask False) get exactly zero weight, so padding cannot change the result.

    Args:
        units: width of the attention projection (default: the input width).
    """

    def __init__(self, units: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        units = self.units or input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")
        self.score = self.add_weight(name="score", shape=(units, 1), initializer="glorot_uniform")

    def call(self, inputs, mask=None):
        scores = ops.squeeze(ops.matmul(ops.tanh(ops.matmul(inputs, self.kernel) + self.bias),
                                        self.score), axis=-1)
        if mask is not None:
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=1)
        return ops.sum(ops.expand_dims(weights, -1) * inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kerasaudio")
class LastValidStep(keras.layers.Layer):
    """The output at each sequence's last unpadded frame (mask: True on real frames)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask):
        last = ops.sum(ops.cast(mask, "int32"), axis=1) - 1
        index = ops.reshape(ops.maximum(last, 0), (-1, 1, 1))
        return ops.squeeze(ops.take_along_axis(inputs, index, axis=1), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None
