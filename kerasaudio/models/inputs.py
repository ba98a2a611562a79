"""The inputs every sequence model shares: padded features, their mask, and normalisation."""

from dataclasses import dataclass

import keras
import numpy as np

from kerasaudio.errors import UserError
from kerasaudio.models.layers import (
    BATCH_NORM_MOMENTUM,
    SpecAugment,
    UtteranceNormalization,
    ZeroPadding,
)


@dataclass(frozen=True)
class InputSpec:
    """What a model needs to know about its input.

    Attributes:
        n_features: features per frame.
        mean: per-feature mean over the training split's frames.
        variance: per-feature variance over the training split's frames.
        spec_augment: mask random time spans and feature bands while training.
        utterance_norm: normalise each sequence over its own frames (FeatureConfig.cmvn)
            instead of by the training split's statistics.
        examples: some of the training split's sequences, (time, n_features) each, for
            layers that set themselves from data before training (MiniRocket's biases).
        seed: the run's seed, for layers drawn at random when the model is built: every
            build of one run (a resume, each tuning trial) then draws the same.
        hop_ms: the features' frame step in milliseconds, which sets SpecAugment's time
            masks in frames; None for frames without a fixed step.
    """

    n_features: int
    mean: np.ndarray
    variance: np.ndarray
    spec_augment: bool = False
    utterance_norm: bool = False
    examples: tuple = ()
    seed: int = 0
    hop_ms: float | None = None


# SpecAugment's time masks are up to 100 ms long whatever the frame step (10 frames at 10 ms,
# as every mask was before spoken-digits moved to 20 ms; music-genres' 32 ms frames get 3
# instead of 10); frames without a fixed step (that came with the data, beat-synchronous) get
# masks of 10 frames.
TIME_MASK_MS = 100.0
TIME_MASK_FRAMES = 10


def time_mask_frames(hop_ms: float | None) -> int:
    """SpecAugment's longest time mask, in frames of `hop_ms` milliseconds."""
    return TIME_MASK_FRAMES if hop_ms is None else max(1, int(TIME_MASK_MS // hop_ms))


def spec_augment_settings(hop_ms: float | None) -> dict:
    """SpecAugment's masks (the layer's arguments) for frames `hop_ms` apart: what the
    input block builds and a run's config.json records. Feature masks are up to 8 features
    wide, or as many as there are."""
    return {"time_masks": 2, "time_width": time_mask_frames(hop_ms), "freq_masks": 2,
            "freq_width": 8}


# Training sequences an InputSpec carries for the layers that adapt to data: enough for
# stable quantiles and feature statistics, few enough to transform in seconds.
ADAPT_EXAMPLES = 1024


def spec_of(train, seed: int, spec_augment: bool = False, utterance_norm: bool = False,
            hop_ms: float | None = None) -> InputSpec:
    """The InputSpec of a training split (a kerasaudio Dataset): its frame statistics and
    up to ADAPT_EXAMPLES of its sequences, drawn with `seed`. The sequences are copies: views
    would keep the whole split's frames alive for as long as the spec (a whole search)."""
    mean, variance = train.frame_statistics()
    sequences = train.sequences()
    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.permutation(len(sequences))[:ADAPT_EXAMPLES])
    return InputSpec(train.n_features, mean, variance, spec_augment=spec_augment,
                     utterance_norm=utterance_norm,
                     examples=tuple(np.array(sequences[i]) for i in drawn), seed=seed,
                     hop_ms=hop_ms)


def padded_examples(spec: InputSpec) -> dict:
    """The spec's example sequences as one zero-padded batch: the inputs dict of
    `sequence_inputs` (features and mask) as NumPy arrays.

    Raises:
        ValueError: when the spec carries no examples.
    """
    if not spec.examples:
        raise ValueError("this architecture adapts to training examples, and the InputSpec "
                         "has none (make it with inputs.spec_of)")
    lengths = np.array([len(x) for x in spec.examples])
    features = np.zeros((len(lengths), lengths.max(), spec.n_features), np.float32)
    for i, x in enumerate(spec.examples):
        features[i, :len(x)] = x
    return {"features": features, "mask": np.arange(lengths.max()) < lengths[:, None]}


def sequence_inputs(spec: InputSpec):
    """Builds the model inputs and the normalised features.

    The training split's statistics live in a Normalization layer, so they are saved inside
    best.keras and every later use of the model applies exactly what training applied.

    Returns:
        (inputs, features, mask): the inputs dict for `keras.Model`, the normalised
        (batch, time, n_features) tensor and the (batch, time) boolean mask.
    """
    features = keras.Input((None, spec.n_features), name="features")
    mask = keras.Input((None,), dtype="bool", name="mask")
    if spec.utterance_norm:
        normalized = UtteranceNormalization(name="utterance_normalize")(features, mask=mask)
    else:
        normalized = keras.layers.Normalization(
            mean=spec.mean.tolist(), variance=spec.variance.tolist(), name="normalize")(features)
    if spec.spec_augment:
        normalized = SpecAugment(**spec_augment_settings(spec.hop_ms),
                                 name="spec_augment")(normalized)
    return {"features": features, "mask": mask}, normalized, mask


def window_inputs(spec: InputSpec, window: int):
    """Inputs of a frame classifier: `window` consecutive frames centred on the one to label.

    Returns:
        (inputs, features): the inputs dict and the normalised (batch, window, n_features).
    """
    if window < 1 or window % 2 == 0:
        raise UserError(f"window must be an odd number of frames, got {window}")
    if spec.utterance_norm:
        raise UserError("--cmvn normalises whole utterances, and a frame classifier sees "
                        "windows of frames; use --no-cmvn")
    features = keras.Input((window, spec.n_features), name="features")
    normalized = keras.layers.Normalization(
        mean=spec.mean.tolist(), variance=spec.variance.tolist(), name="normalize")(features)
    return {"features": features}, normalized


def mlp_blocks(x, width: int, depth: int, dropout: float, prefix: str = "block"):
    """The phoneme course project's frame-classifier blocks: [Dense -> BatchNorm -> ReLU ->
    Dropout] x depth."""
    for i in range(depth):
        x = keras.layers.Dense(width, name=f"{prefix}_{i}_dense")(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                            name=f"{prefix}_{i}_batch_norm")(x)
        x = keras.layers.ReLU(name=f"{prefix}_{i}_relu")(x)
        x = keras.layers.Dropout(dropout, name=f"{prefix}_{i}_dropout")(x)
    return x


def conv_blocks(x, mask, filters: int, kernel: int, layers: int):
    """[zero padding -> Conv1D -> masked BatchNorm -> ReLU] x layers over padded sequences.

    The padded frames are zeroed before each convolution, so a sequence gives the same
    outputs at its real frames alone as in a batch, and batch norm's statistics are over the
    real frames only. The output keeps Keras's mask from batch norm; layers after it that
    should not see the mask (a forward GRU, whose unmasked loop is cheaper) need another
    ZeroPadding, which hands no mask on.
    """
    for i in range(layers):
        x = ZeroPadding(name=f"zero_padding_{i}")(x, mask=mask)
        x = keras.layers.Conv1D(filters, kernel, padding="same", name=f"conv_{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                            name=f"batch_norm_{i}")(x, mask=mask)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    return x
