"""The inputs every sequence model shares: padded features, their mask, and normalisation."""

from dataclasses import dataclass

import keras
import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What a model needs to know about its input.

    Attributes:
        n_features: features per frame.
        mean: per-feature mean over the training split's frames.
        variance: per-feature variance over the training split's frames.
    """

    n_features: int
    mean: np.ndarray
    variance: np.ndarray


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
    normalized = keras.layers.Normalization(
        mean=spec.mean.tolist(), variance=spec.variance.tolist(), name="normalize")(features)
    return {"features": features, "mask": mask}, normalized, mask
