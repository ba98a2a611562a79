"""Padded frames in one epoch of spoken-digits training batches, without augmentation, with
all of them, and with speed or shift alone (the two that change lengths): the share of the
frames served that are padding, and the frames served.

    python bench/augmented_padding.py [--batch-size 64]

Prints one JSON line per setting.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kerasaudio import datasets, pipeline  # noqa: E402
from kerasaudio.config import AUGMENTATIONS, DataConfig, feature_defaults  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = DataConfig(name="spoken-digits")
    train = datasets.load(data, feature_defaults(data.name)).subset("train")
    for names in [(), AUGMENTATIONS, ("speed",), ("shift",)]:
        batches, steps = pipeline.training_batches(train, args.batch_size, seed=0,
                                                   augmentations=names)
        real = served = 0
        for x, _ in batches.take(steps):
            mask = x["mask"].numpy()
            real, served = real + int(mask.sum()), served + mask.size
        print(json.dumps({"bench": "augmented_padding", "augment": "+".join(names) or "none",
                          "batch_size": args.batch_size, "padded_fraction":
                          round(1 - real / served, 4), "frames_served": served}), flush=True)


if __name__ == "__main__":
    main()
