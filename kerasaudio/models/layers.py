"""Custom layers: masked pooling over time, normalisation, masking and MiniRocket's
features. All serialisable, so best.keras loads in safe mode."""

import itertools

import keras
import numpy as np
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
        # None, as without this layer: every model hands the mask on explicitly, and a
        # forward recurrent stack after it must run Keras's unmasked loop, which is cheaper
        # and exact at the real frames (recurrent.rnn_stack).
        return None

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


ROCKET_KERNEL_LENGTH = 9


def _rocket_kernels() -> np.ndarray:
    """MiniRocket's 84 kernels as a (9, 84) array: length 9, weight 2 at three of the
    positions and -1 at the other six, so each sums to zero and ignores a constant offset."""
    kernels = -np.ones((ROCKET_KERNEL_LENGTH, 84), np.float32)
    for k, twos in enumerate(itertools.combinations(range(ROCKET_KERNEL_LENGTH), 3)):
        kernels[list(twos), k] = 2.0
    return kernels


@keras.saving.register_keras_serializable(package="kerasaudio")
class MiniRocketFeatures(keras.layers.Layer):
    """MiniRocket's features (Dempster, Schmidt and Webb, KDD 2021): 84 fixed kernels at
    dilations spread over the sequence length, each dilated kernel on a random few
    channels, and per kernel and bias the proportion of its outputs above the bias. The
    biases are quantiles of the kernels' outputs on training examples, which `adapt` sets;
    nothing here trains. Half the kernel-dilation pairs count only the frames the kernel
    fits in without padding, as MiniRocket does; padded frames (mask False) never count.

    Args:
        features: number of features, about (rounded down to a multiple of 84, at least 84).
        reference_length: the sequence length the dilations are spread over (the longest
            training sequence); the largest dilated kernel spans it.
        max_dilations: dilations per kernel at most.
        seed: draws the channels each kernel-dilation pair sees.
    """

    def __init__(self, features: int = 10_000, reference_length: int = 64,
                 max_dilations: int = 32, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.reference_length = reference_length
        self.max_dilations = max_dilations
        self.seed = seed
        self.supports_masking = True
        self.dilations, self.per_dilation = self._dilations()

    def _dilations(self):
        """Dilations 1, ..., about (reference_length - 1) / 8, spaced evenly on a log scale,
        and how many biases each gets (more where several spacings round to one dilation)."""
        per_kernel = max(self.features // 84, 1)
        count = min(per_kernel, self.max_dilations)
        top = max(np.log2((self.reference_length - 1) / (ROCKET_KERNEL_LENGTH - 1)), 0.0)
        dilations, repeats = np.unique(
            np.logspace(0, top, count, base=2).astype(np.int64), return_counts=True)
        per_dilation = (repeats * per_kernel / count).astype(np.int64)
        for i in range(per_kernel - per_dilation.sum()):
            per_dilation[i % len(per_dilation)] += 1
        return [int(d) for d in dilations], [int(n) for n in per_dilation]

    def build(self, input_shape):
        channels = input_shape[-1]
        rng = np.random.default_rng(self.seed)
        base = _rocket_kernels()
        self.kernels, self.biases = [], []
        for dilation, count in zip(self.dilations, self.per_dilation):
            # Each kernel sums over 1 to 9 of the channels, fewer more often (MiniRocket's
            # multivariate rule); a univariate series has its one channel everywhere.
            picked = np.zeros((channels, 84), np.float32)
            widths = (2 ** rng.uniform(0, np.log2(min(channels, 9) + 1), 84)).astype(int)
            for k, width in enumerate(widths):
                picked[rng.choice(channels, width, replace=False), k] = 1.0
            kernel = self.add_weight(name=f"kernel_{dilation}", initializer="zeros",
                                     shape=(ROCKET_KERNEL_LENGTH, channels, 84),
                                     trainable=False)
            kernel.assign(base[:, None, :] * picked[None])
            self.kernels.append(kernel)
            self.biases.append(self.add_weight(name=f"bias_{dilation}", shape=(84, count),
                                               initializer="zeros", trainable=False))
        # Padded and unpadded pairs alternate over kernels and dilations.
        self.padded = [np.arange(i, i + 84) % 2 == 0 for i in range(len(self.dilations))]

    def _convolve(self, inputs, i):
        return ops.conv(inputs, self.kernels[i], padding="same",
                        dilation_rate=self.dilations[i])

    def adapt(self, inputs: np.ndarray, lengths: np.ndarray) -> None:
        """Sets the biases from training examples: for each kernel and dilation, quantiles
        of its output on one example drawn at random, at a low-discrepancy sequence of
        levels (MiniRocket's golden-ratio sequence).

        Args:
            inputs: (examples, time, channels); frames past an example's length are ignored.
            lengths: (examples,) real frames of each.
        """
        if not self.built:
            self.build(inputs.shape)
        rng = np.random.default_rng(self.seed + 1)
        levels = (np.arange(1, 84 * sum(self.per_dilation) + 1) * (np.sqrt(5) + 1) / 2) % 1
        start = 0
        for i, count in enumerate(self.per_dilation):
            drawn = rng.integers(len(inputs), size=84)
            # Each example on its own real frames: "same" padding then pads with zeros.
            outputs = {e: ops.convert_to_numpy(self._convolve(inputs[e:e + 1, :lengths[e]], i))[0]
                       for e in np.unique(drawn)}
            biases = np.empty((84, count), np.float32)
            for k, e in enumerate(drawn):
                biases[k] = np.quantile(outputs[e][:, k],
                                        levels[start:start + count])
                start += count
            self.biases[i].assign(biases)

    def call(self, inputs, mask):
        # expand_dims, not [..., None]: TFLite's builtin ops have no strided slice that
        # adds an axis. Padded frames are zeroed here, so the kernels see zeros past each
        # sequence's end whatever the padding held.
        inputs = inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        position = ops.expand_dims(ops.arange(ops.shape(inputs)[1]), 0)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)
        features = []
        for i, dilation in enumerate(self.dilations):
            edge = (ROCKET_KERNEL_LENGTH // 2) * dilation
            inner = (position >= edge) & (position < lengths - edge)
            # (batch, time, kernel): which outputs count towards each kernel's proportions.
            counted = ops.where(self.padded[i].reshape(1, 1, 84), ops.expand_dims(mask, -1),
                                ops.expand_dims(inner, -1))
            # An output that does not count is -inf, above no bias: one comparison, and no
            # second (batch, time, kernel, bias) tensor to mask it with.
            outputs = ops.where(counted, self._convolve(inputs, i), -np.inf)
            above = ops.cast(ops.expand_dims(outputs, -1) > self.biases[i], inputs.dtype)
            total = ops.expand_dims(ops.sum(ops.cast(counted, inputs.dtype), axis=1), -1)
            ppv = ops.sum(above, axis=1) / ops.maximum(total, 1.0)
            features.append(ops.reshape(ppv, (-1, 84 * self.per_dilation[i])))
        return ops.concatenate(features, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 84 * sum(self.per_dilation))

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "features": self.features,
                "reference_length": self.reference_length,
                "max_dilations": self.max_dilations, "seed": self.seed}
