"""`minirocket`: MiniRocket's fixed random-convolution features, standardised, then a linear
classifier trained by gradient descent.

MiniRocket (Dempster, Schmidt and Webb, KDD 2021) is the strong, fast baseline of small
time-series classification (results/README.md, "Small real data sets"). Here its features
are Keras layers, so the model trains, saves, exports and ensembles like any other; only
the head learns. Its biases and the features' statistics come from the training examples the
InputSpec carries, when the model is built.
The head's L2 penalty keeps its weights finite: without it, 10,000 features separate a few
dozen examples, the weights grow without end, and the validation loss that picks the best
epoch rises from the first (GunPoint: 0.94 without, 0.993 with 0.1; results/README.md).
"""

import keras
import numpy as np

from kerasaudio.models import heads
from kerasaudio.models.inputs import InputSpec, padded_examples, sequence_inputs
from kerasaudio.models.layers import MiniRocketFeatures

# The head is a penalised linear model, with one optimum: a step that decays to zero lets Adam
# settle in it rather than hover around it.
TRAINING = {"schedule": "cosine"}


def build(spec: InputSpec, tasks, features: int = 10_000, l2: float = 0.1,
          dropout: float = 0.0) -> keras.Model:
    """Normalised features -> MiniRocket's features (adapted to the spec's training
    examples) -> standardised by their training statistics -> dropout -> heads.

    Args:
        spec: input description, with training examples (inputs.spec_of).
        tasks: the prediction targets.
        features: number of MiniRocket features (rounded down to a multiple of 84, at
            least 84).
        l2: penalty on the heads' squared weights, added to the mean loss.
        dropout: dropout on the features before the heads.
    """
    inputs, x, mask = sequence_inputs(spec)
    examples = padded_examples(spec)
    lengths = examples["mask"].sum(axis=1)
    # The spec's seed, not a global generator's next draw: a resumed run or a tuning trial
    # rebuilds the model, and the feature statistics below, which are no weights, must be
    # those of the kernels and biases its checkpoint restores.
    rocket = MiniRocketFeatures(features, reference_length=int(lengths.max()),
                                seed=spec.seed, name="minirocket")
    normalised = keras.Model(inputs, x).predict(examples, batch_size=64, verbose=0)
    rocket.adapt(normalised, lengths)
    z = rocket(x, mask=mask)
    values = keras.Model(inputs, z).predict(examples, batch_size=64, verbose=0)
    # A feature that hardly moves over the training examples is not blown up: one the test
    # data moves would swamp the others (a proportion's standard deviation is at least 1 %).
    z = keras.layers.Normalization(mean=values.mean(axis=0).tolist(),
                                   variance=np.maximum(values.var(axis=0), 1e-4).tolist(),
                                   name="feature_normalize")(z)
    z = keras.layers.Dropout(dropout, name="head_dropout")(z)
    return keras.Model(inputs, heads.outputs(z, tasks, l2), name="minirocket")
