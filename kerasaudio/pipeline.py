"""tf.data pipelines: ragged sequences -> padded batches with a mask.

Sequences stay ragged until batching. Training batches come from `bucket_by_sequence_length`,
so each batch holds sequences of similar length and little padding. Evaluation batches are
sorted by length, so they pad little too and keep a known order for predictions.

Batches are ({"features": (batch, time, n_features), "mask": (batch, time) bool},
{task: (batch,) int}); `mask` is False on padded frames.
"""

import numpy as np
import tensorflow as tf

from kerasaudio.config import WINDOW_EDGES
from kerasaudio.datasets.base import Dataset

N_BUCKETS = 12


def bucket_boundaries(lengths: np.ndarray, n_buckets: int = N_BUCKETS) -> list:
    """Length boundaries that split `lengths` into buckets holding about as many sequences each."""
    quantiles = np.quantile(lengths, np.linspace(0, 1, n_buckets + 1)[1:-1])
    bounds = sorted({int(np.ceil(q)) for q in quantiles if q > lengths.min()})
    return bounds or [int(lengths.max()) + 1]


def _shuffled_indices(n: int, seed: int) -> tf.data.Dataset:
    # A fixed op seed makes the k-th epoch's order the same in every dataset built this way,
    # which is what lets `padding_per_epoch` replay training's batches on lengths alone.
    return tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)


def bucketed_batch_count(lengths: np.ndarray, boundaries: list, batch_size: int) -> int:
    """Batches per epoch from bucketing: each bucket yields ceil(members / batch_size),
    whatever the order, so the count is fixed and Keras can show a full progress bar."""
    members = np.bincount(np.searchsorted(boundaries, lengths, side="right"),
                          minlength=len(boundaries) + 1)
    return int(np.sum(-(-members // batch_size)))


def _bucketed(ds: tf.data.Dataset, length_fn, boundaries: list, batch_size: int) -> tf.data.Dataset:
    return ds.bucket_by_sequence_length(
        element_length_func=length_fn,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1))


def _sample_weights(dataset: Dataset, class_weights):
    """Per-target weights from the first task's class weights (None: unweighted)."""
    if class_weights is None:
        return None
    labels = dataset.targets[dataset.tasks[0].name]
    return tf.constant(np.asarray(class_weights, np.float32)[labels])


def _batch_fn(dataset: Dataset, class_weights=None, pad_to: int | None = None):
    """Maps a batch of dataset indices to ({"features", "mask"}, targets[, weights]).

    Gathering a whole batch at once is one op per batch instead of one per sequence, which
    keeps the pipeline ahead of training (bench/pipeline.py, bench/train.py)."""
    sequences = tf.RaggedTensor.from_row_lengths(dataset.frames, dataset.lengths)
    lengths = tf.constant(dataset.lengths)
    targets = {name: tf.constant(values) for name, values in dataset.targets.items()}
    weights = _sample_weights(dataset, class_weights)
    n_features = dataset.n_features

    def batch(indices):
        features = tf.gather(sequences, indices).to_tensor(shape=[None, pad_to, n_features])
        mask = tf.sequence_mask(tf.gather(lengths, indices), tf.shape(features)[1])
        inputs = {"features": features, "mask": mask}
        labels = {name: tf.gather(values, indices) for name, values in targets.items()}
        return (inputs, labels) if weights is None else (inputs, labels,
                                                         tf.gather(weights, indices))

    return batch


def _length_table(lengths: np.ndarray):
    table = tf.constant(lengths)
    return lambda i: tf.cast(table[i], tf.int32)


def training_batches(dataset: Dataset, batch_size: int, seed: int, boundaries: list | None = None,
                     bucketing: bool = True, class_weights=None) -> tf.data.Dataset:
    """Shuffled (reshuffled every epoch) batches of similar-length sequences.

    Args:
        dataset: the training split.
        batch_size: sequences per batch.
        seed: shuffling seed.
        boundaries: bucket length boundaries (default: from the data's length quantiles).
        bucketing: False pads every batch to the longest sequence of the data set instead
            (the baseline the pipeline benchmark compares against).
        class_weights: per-class weights of the first task; batches then carry sample weights.
    """
    # Indices are shuffled and grouped by length alone; the frames are gathered per batch.
    ds = _shuffled_indices(len(dataset.lengths), seed)
    if bucketing:
        boundaries = boundaries or bucket_boundaries(dataset.lengths)
        ds = _bucketed(ds, _length_table(dataset.lengths), boundaries, batch_size).apply(
            tf.data.experimental.assert_cardinality(
                bucketed_batch_count(dataset.lengths, boundaries, batch_size)))
        pad_to = None
    else:
        ds, pad_to = ds.batch(batch_size), int(dataset.lengths.max())
    batch = _batch_fn(dataset, class_weights, pad_to)
    ds = ds.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def evaluation_batches(dataset: Dataset, batch_size: int):
    """Batches in order of increasing length (little padding, fixed order).

    Returns:
        (tf.data.Dataset, order): `order[k]` is the dataset index of the k-th example served.
    """
    order = np.argsort(dataset.lengths, kind="stable")
    ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(
        _batch_fn(dataset), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), order


def padding_per_epoch(lengths: np.ndarray, batch_size: int, seed: int,
                      boundaries: list | None = None):
    """Yields, epoch after epoch, the fraction of padded frames in the batches that
    `training_batches` serves that epoch (same seed, same bucketing, lengths only)."""
    boundaries = boundaries or bucket_boundaries(lengths)
    table = tf.constant(lengths)
    ds = _bucketed(_shuffled_indices(len(lengths), seed), _length_table(lengths), boundaries,
                   batch_size).map(lambda indices: tf.gather(table, indices))
    # Batches of lengths are padded with zeros, so max * size counts padded + real frames.
    ds = ds.map(lambda b: (tf.reduce_max(b) * tf.size(b, tf.int64), tf.reduce_sum(b)))
    while True:
        served = real = 0
        for total, used in ds.as_numpy_iterator():
            served += int(total)
            real += int(used)
        yield 1.0 - real / served


WINDOW_SHUFFLE_FRAMES = 8192


def _edge_padding(x, k: int, edge: str):
    if edge == "repeat":
        return tf.repeat(x[:1], k, axis=0), tf.repeat(x[-1:], k, axis=0)
    zeros = tf.zeros([k, tf.shape(x)[1]], x.dtype)
    return zeros, zeros


def window_batches(dataset: Dataset, window: int, batch_size: int, seed: int | None = None,
                   edge: str = "repeat", class_weights=None) -> tf.data.Dataset:
    """Batches of ({"features": (batch, window, n_features)}, {task: (batch,)}) for frame-level
    tasks: every frame with the `window // 2` frames on each side.

    Windows are cut inside tf.data, one utterance at a time, so memory does not grow with the
    window size. With a seed, utterances and then frames are shuffled; without, frames come in
    dataset order.

    Args:
        dataset: a data set whose tasks are frame-level.
        window: odd number of frames per window.
        batch_size: frames per batch.
        seed: shuffling seed (None: no shuffling, for evaluation).
        edge: how frames past an utterance's ends are filled: `repeat` the edge frame, or `zero`.
        class_weights: per-class weights of the first task; batches then carry sample weights.
    """
    if edge not in WINDOW_EDGES:
        raise ValueError(f"edge must be one of {WINDOW_EDGES}, got {edge!r}")
    k = window // 2
    sequences = tf.RaggedTensor.from_row_lengths(dataset.frames, dataset.lengths)
    labels = {name: tf.RaggedTensor.from_row_lengths(values, dataset.lengths)
              for name, values in dataset.targets.items()}
    weights = _sample_weights(dataset, class_weights)
    if weights is not None:
        weights = tf.RaggedTensor.from_row_lengths(weights, dataset.lengths)

    def windows(i):
        x = sequences[i]
        head, tail = _edge_padding(x, k, edge)
        framed = tf.signal.frame(tf.concat([head, x, tail], 0), window, 1, axis=0)
        element = ({"features": framed}, {name: values[i] for name, values in labels.items()})
        if weights is not None:
            element += (weights[i],)
        return tf.data.Dataset.from_tensor_slices(element)

    ds = tf.data.Dataset.range(len(dataset.lengths))
    if seed is not None:
        ds = ds.shuffle(len(dataset.lengths), seed=seed, reshuffle_each_iteration=True)
        # Interleaving utterances mixes speakers in the shuffle buffer.
        ds = ds.interleave(windows, cycle_length=8)
        ds = ds.shuffle(WINDOW_SHUFFLE_FRAMES, seed=seed, reshuffle_each_iteration=True)
    else:
        ds = ds.flat_map(windows)
    ds = ds.batch(batch_size).apply(tf.data.experimental.assert_cardinality(
        -(-int(dataset.lengths.sum()) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)
