"""Images, for the training-harness experiments: the built-in `digits-images` (scikit-learn's
bundled 8x8 handwritten digits) and `--data FOLDER` of PNG/JPEG images in class subfolders.

An image becomes a sequence: its rows are the time steps and its columns the features, so
`dense` (masked mean over rows) and `cnn2d` (the image as it is) run on it like on any other
data set. Colour images are turned to grey; every image of a folder must have the same width.
"""

from pathlib import Path

import numpy as np

from kerasaudio import features, userfiles
from kerasaudio.config import DataConfig, FeatureConfig
from kerasaudio.datasets.base import Dataset, Problems, make_task
from kerasaudio.datasets.splits import draw_missing
from kerasaudio.errors import UserError

TASK = "class"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_image(path: Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _dataset(name: str, images: list, labels: np.ndarray, classes: list, data: DataConfig,
             info: dict | None = None, skipped: list | None = None) -> Dataset:
    """The images as sequences of rows, with a seeded, stratified test and validation split."""
    split = draw_missing(np.full(len(images), "train", dtype=object), labels, data, name)
    return Dataset(name=name, frames=np.concatenate(images).astype(np.float32),
                   lengths=np.array([len(x) for x in images], np.int64),
                   targets={TASK: labels.astype(np.int64)}, tasks=[make_task(TASK, classes)],
                   class_names={TASK: classes}, split=split.astype(str),
                   features=FeatureConfig(kind=features.GIVEN), info=info or {},
                   skipped=skipped or [])


def load_digits(data: DataConfig, _: FeatureConfig) -> Dataset:
    """scikit-learn's 1,797 8x8 digit images (values 0-16), the built-in `digits-images`."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    classes = [str(c) for c in bunch.target_names]
    return _dataset("digits-images", list(bunch.images), bunch.target, classes, data)


def _read_image(path: Path) -> np.ndarray:
    from matplotlib import image

    userfiles.check_readable(path)
    try:
        x = image.imread(path)
    except (OSError, ValueError, SyntaxError) as error:
        raise UserError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    x = np.asarray(x, np.float32)
    if x.ndim == 3:  # colour (and alpha): the mean of the colour channels
        x = x[..., :3].mean(axis=2)
    if x.ndim != 2 or x.size == 0:
        raise UserError(f"{path}: not a 2-D image (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: holds NaN or infinite values")
    return x


def load(data: DataConfig, _: FeatureConfig) -> Dataset:
    """FOLDER/<class>/*.png|jpg, split with the data seed (`DataConfig.seed`, not `--seed`)."""
    root = Path(data.name)
    classes = [p.name for p in userfiles.subfolders(root)]
    if not classes:
        raise UserError(f"{root}: no class subfolders with images")
    images, labels, paths_read, width = [], [], [], None
    problems = Problems(data.skip_bad)
    found = {name: [p for p in userfiles.files_under(root / name) if is_image(p)]
             for name in classes}
    for name, paths in found.items():
        if not paths:
            raise UserError(f"{root / name}: no images ({', '.join(IMAGE_SUFFIXES)})")
    userfiles.refuse_one_file_twice([p for paths in found.values() for p in paths],
                                    "an image belongs to one class, once")
    for k, name in enumerate(classes):
        for path in found[name]:
            try:
                x = _read_image(path)
                if width is not None and x.shape[1] != width:
                    raise UserError(f"{path}: {x.shape[1]} pixels wide, the others {width}")
            except UserError as error:
                problems(error)
                continue
            width = x.shape[1]
            images.append(x)
            labels.append(k)
            paths_read.append(str(path))
    return _dataset(str(root), images, np.array(labels), classes, data,
                    {"file": np.array(paths_read)}, problems.found)
