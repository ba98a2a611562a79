"""Custom layers: masked pooling over time. All serialisable, so best.keras loads in safe mode."""

import keras
from keras import ops

# Batch normalisation's moving statistics follow each batch's at PyTorch's default rate (its
# momentum 0.1). With Keras's default, 0.99, they are still 0.99^50 = 61 % their initial
# values after 50 steps: a small data set's best epoch can come that early, and its saved model
# then normalises with statistics its layers never had (chance accuracy on
# PickupGestureWiimoteZ).
BATCH_NORM_MOMENTUM = 0.9


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


@keras.saving.register_keras_serializable(package="kerasaudio")
class ZeroPadding(keras.layers.Layer):
    """Sets padded frames to zero: (batch, time, ...) features, (batch, time) mask.

    Convolutions with "same" padding see zeros past a sequence's end when it is alone, so
    zeroing the padded frames before every convolution makes a batch give the same outputs
    at real frames as the sequence alone.
    """

    def call(self, inputs, mask):
        keep = ops.cast(mask, inputs.dtype)
        while len(keep.shape) < len(inputs.shape):
            keep = ops.expand_dims(keep, -1)
        return inputs * keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="kerasaudio")
class PoolMask(keras.layers.Layer):
    """The mask after max-pooling time by `pool` with "same" padding: a pooled frame is real
    if any frame in its window is."""

    def __init__(self, pool: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool = pool

    def call(self, inputs):
        # The argument is not named `mask`: Keras would take it for the implicit mask.
        pooled = ops.max_pool(ops.cast(inputs, "float32")[..., None], pool_size=self.pool,
                              strides=self.pool, padding="same")
        return ops.cast(pooled[..., 0], "bool")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def get_config(self):
        return {**super().get_config(), "pool": self.pool}


@keras.saving.register_keras_serializable(package="kerasaudio")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking, in training only: `time_masks` random spans of up to
    `time_width` frames and `freq_masks` random bands of up to `freq_width` features are set
    to zero (the mean, after normalisation). At inference it is the identity.
    """

    def __init__(self, time_masks: int = 2, time_width: int = 10, freq_masks: int = 2,
                 freq_width: int = 8, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_width = time_masks, time_width
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _spans(self, batch, size, count, width):
        """(batch, size) boolean: True outside `count` random spans of up to `width`."""
        keep = ops.ones((batch, size), "bool")
        positions = ops.arange(size)[None, :]
        for _ in range(count):
            # Uniform floats scaled per row: randint wants scalar bounds.
            w = ops.floor(keras.random.uniform((batch, 1), seed=self.generator) * (width + 1))
            room = ops.cast(size, "float32") - w + 1.0
            start = ops.floor(keras.random.uniform((batch, 1), seed=self.generator) * room)
            w, start = ops.cast(w, "int32"), ops.cast(start, "int32")
            keep = ops.logical_and(keep, ops.logical_or(positions < start, positions >= start + w))
        return keep

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch, time, freq = ops.shape(inputs)[0], ops.shape(inputs)[1], inputs.shape[-1]
        keep_t = self._spans(batch, time, self.time_masks, self.time_width)
        keep_f = self._spans(batch, freq, self.freq_masks, min(self.freq_width, freq))
        keep = ops.logical_and(keep_t[:, :, None], keep_f[:, None, :])
        return ops.where(keep, inputs, ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks,
                "time_width": self.time_width, "freq_masks": self.freq_masks,
                "freq_width": self.freq_width, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasaudio")
class FrameMask(keras.layers.Layer):
    """The (batch, time) mask broadcast to every position of (batch, time, ..., channels)
    but the channels, the shape BatchNormalization wants for masked statistics."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # takes the mask explicitly; emits none

    def call(self, inputs, mask):
        m = mask
        while len(m.shape) < len(inputs.shape) - 1:
            m = ops.expand_dims(m, -1)
        return ops.broadcast_to(m, ops.shape(inputs)[:-1])

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="kerasaudio")
class UtteranceNormalization(keras.layers.Layer):
    """Each sequence's features minus their mean over its real frames, divided by their
    standard deviation there (cepstral mean and variance normalisation); padded frames
    stay zero and count for nothing, so padding cannot change the result."""

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.supports_masking = True

    def call(self, inputs, mask):
        weight = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        count = ops.maximum(ops.sum(weight, axis=1, keepdims=True), 1.0)
        mean = ops.sum(inputs * weight, axis=1, keepdims=True) / count
        centred = (inputs - mean) * weight
        variance = ops.sum(ops.square(centred), axis=1, keepdims=True) / count
        return centred / ops.sqrt(variance + self.epsilon)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
