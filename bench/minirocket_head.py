"""What the minirocket architecture's features are worth under different linear heads: the
features of `models.build("minirocket", ...)` (seed 0, adapted to the training file's
train and validation series), then scikit-learn's ridge classifier (what aeon's MiniRocket
uses), alone or as a five-fold ensemble, logistic regression and a linear SVM on them, and
Keras Dense heads trained by Adam (softmax and cross-entropy, as the architecture trains, or
squared error on one-hot targets, as ridge fits), scored on the test file.

    python bench/minirocket_head.py --aeon-python /tmp/aeon-venv/bin/python [--sets A,B]
        [--heads ridge,logistic]   (the heads whose names start so; default all)

Prints one JSON line per data set and head: test accuracy.
"""

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifier, RidgeClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from small_data import SETS, data_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kerasaudio import datasets, models  # noqa: E402
from kerasaudio.config import DataConfig, FeatureConfig  # noqa: E402
from kerasaudio.models.inputs import InputSpec, padded_examples, spec_of  # noqa: E402


class KerasHead:
    """A Dense head on the features, trained by Adam (1e-3, batch 32) for `steps` steps:
    `softmax` with cross-entropy, or `squared`, linear outputs fitted to one-hot targets by
    squared error (least squares, as a ridge classifier, but by gradient descent)."""

    def __init__(self, loss: str, l2: float, steps: int):
        self.loss, self.l2, self.steps = loss, l2, steps

    def fit(self, values, labels):
        keras.utils.set_random_seed(0)
        classes = int(labels.max()) + 1
        self.model = keras.Sequential([
            keras.Input((values.shape[1],)),
            keras.layers.Dense(classes, activation="softmax" if self.loss == "softmax" else None,
                               kernel_regularizer=keras.regularizers.L2(self.l2))])
        squared = self.loss == "squared"
        self.model.compile(keras.optimizers.Adam(1e-3),
                           "mse" if squared else "sparse_categorical_crossentropy")
        targets = np.eye(classes)[labels.astype(int)] if squared else labels.astype(int)
        self.model.fit(values, targets, batch_size=32, verbose=0,
                       epochs=max(1, self.steps * 32 // len(values)))
        return self

    def score(self, values, labels):
        return float(np.mean(self.model.predict(values, verbose=0).argmax(1) == labels))


class FoldRidge:
    """What `fit --folds 5 --ensemble` would get with a ridge head: five ridge classifiers
    (alpha by leave-one-out), each fitted on four of five stratified folds of the training
    file (`draw` seeds the fold draw), their decision values averaged. The features stay
    those adapted to the whole training file, as for the other heads."""

    def __init__(self, draw: int):
        self.draw = draw

    def fit(self, values, labels):
        folds = StratifiedKFold(5, shuffle=True, random_state=self.draw)
        self.members = [RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))
                        .fit(values[kept], labels[kept])
                        for kept, _ in folds.split(values, labels)]
        return self

    def score(self, values, labels):
        mean = np.mean([m.decision_function(values) for m in self.members], axis=0)
        # Two classes: one decision value each, positive for the second class.
        chosen = mean.argmax(1) if mean.ndim == 2 else (mean > 0).astype(int)
        return float(np.mean(self.members[0].classes_[chosen] == labels))


HEADS = {
    "ridge (alpha by leave-one-out, as aeon)":
        lambda: RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)),
    "ridge alpha=100": lambda: RidgeClassifier(alpha=100),
    **{f"ridge, 5-fold ensemble (fold draw {d})": (lambda d=d: FoldRidge(d)) for d in range(3)},
    **{f"logistic C={c}": (lambda c=c: LogisticRegression(C=c, max_iter=3000))
       for c in (1e-4, 1e-3, 0.1, 10)},
    **{f"linear SVM C={c}": (lambda c=c: LinearSVC(C=c, max_iter=20000))
       for c in (1e-4, 1e-2)},
    **{f"keras {loss} L2={l2} steps={steps}": (lambda loss=loss, l2=l2, steps=steps:
                                              KerasHead(loss, l2, steps))
       for loss in ("softmax", "squared") for l2 in (0.01, 0.1, 1.0) for steps in (100, 500, 2000)},
}


def features(train_file: Path):
    """(features, labels, is_test) of every series of the training file and its test file."""
    keras.utils.set_random_seed(0)
    data = datasets.load(DataConfig(name=str(train_file)), FeatureConfig())
    fitted = np.flatnonzero(data.split != "test")
    model = models.build("minirocket", spec_of(data.take(fitted), seed=0), data.tasks)
    extract = keras.Model(model.inputs, model.get_layer("feature_normalize").output)
    every = InputSpec(data.n_features, None, None, examples=tuple(data.sequences()))
    values = extract.predict(padded_examples(every), verbose=0)
    return values, data.targets[data.tasks[0].name], data.split == "test"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeon-python", required=True)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--heads", default="", help="comma-separated name prefixes")
    args = parser.parse_args()
    prefixes = tuple(p for p in args.heads.split(",") if p) or ("",)
    root = data_folder(args.aeon_python)
    for name in args.sets.split(","):
        values, labels, test = features(root / name / f"{name}_TRAIN.ts")
        for head, make in HEADS.items():
            if not head.startswith(prefixes):
                continue
            fitted = make().fit(values[~test], labels[~test])
            print(json.dumps({"bench": "minirocket_head", "data": name, "head": head,
                              "accuracy": float(fitted.score(values[test], labels[test]))}),
                  flush=True)


if __name__ == "__main__":
    main()
