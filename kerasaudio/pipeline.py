"""tf.data pipelines: ragged sequences -> padded batches with a mask.

Sequences stay ragged until batching. Training batches are bucketed by length: the batches
`tf.data`'s `bucket_by_sequence_length` would make, computed for a whole epoch at once in a few
vectorised ops (`_bucketed`), so each batch holds sequences of similar length and little
padding. Evaluation batches are sorted by length, so they pad little too and keep a known order
for predictions.

Batches are ({"features": (batch, time, n_features), "mask": (batch, time) bool},
{task: (batch,) targets, or (batch, time) for a frame-level task}); `mask` is False on padded
frames.
"""

import itertools

import numpy as np
import tensorflow as tf

from kerasaudio import augment, features
from kerasaudio.config import WINDOW_EDGES, FeatureConfig
from kerasaudio.datasets.base import Dataset
from kerasaudio.errors import UserError

N_BUCKETS = 12
# Each bucket ends an epoch with one partial batch: buckets of at least this many batches keep
# those to a few per cent of the steps, so that --batch-size means what it says on small data.
MIN_BATCHES_PER_BUCKET = 4


def bucket_count(n: int, batch_size: int) -> int:
    """Buckets for `n` sequences in batches of `batch_size`: up to N_BUCKETS, each holding
    at least MIN_BATCHES_PER_BUCKET batches (one bucket for data sets too small for two)."""
    return int(np.clip(n // (MIN_BATCHES_PER_BUCKET * batch_size), 1, N_BUCKETS))


def bucket_boundaries(lengths: np.ndarray, batch_size: int | None = None,
                      n_buckets: int | None = None) -> list:
    """Length boundaries that split `lengths` into buckets holding about as many sequences
    each: `n_buckets` of them, or as many as `bucket_count` gives for `batch_size`, or
    N_BUCKETS."""
    if n_buckets is None:
        n_buckets = bucket_count(len(lengths), batch_size) if batch_size else N_BUCKETS
    quantiles = np.quantile(lengths, np.linspace(0, 1, n_buckets + 1)[1:-1])
    bounds = sorted({int(np.ceil(q)) for q in quantiles if q > lengths.min()})
    return bounds or [int(lengths.max()) + 1]


def _epoch_order(n: int, seed: int, epoch) -> tf.Tensor:
    """Indices 0..n-1 in the order of epoch `epoch`: a function of (seed, epoch) alone.

    Keras creates a varying number of iterators per epoch, so a shuffle that draws a new
    order per iterator ties the order to Keras internals; a stateless shuffle keyed by the
    epoch lets a resumed run and `padding_per_epoch` see exactly the batches training saw."""
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)


def _consecutive_batches(order: tf.Tensor, batch_size: int) -> tf.RaggedTensor:
    """`order` cut into batches of `batch_size`, the last one partial."""
    n = tf.size(order, tf.int64)
    sizes = tf.concat([tf.fill([n // batch_size], tf.constant(batch_size, tf.int64)),
                       tf.reshape(n % batch_size, [1])], 0)
    return tf.RaggedTensor.from_row_lengths(order, tf.boolean_mask(sizes, sizes > 0))


def _bucketed(order: tf.Tensor, lengths: np.ndarray, boundaries: list,
              batch_size: int) -> tf.RaggedTensor:
    """The batches that `tf.data`'s `bucket_by_sequence_length` makes of `order`, computed
    for the whole epoch at once.

    Bucketing element by element cost tf.data about 30 microseconds an example, which held
    the pipeline below 10x what the dense model consumes; these few vectorised ops serve the
    same batches in the same order (tested against `bucket_by_sequence_length`). A bucket
    emits a batch when its `batch_size`-th member arrives; what is left in the buckets
    follows at the end of the epoch, in bucket order."""
    n = tf.size(order, tf.int64)
    bucket = tf.searchsorted(tf.constant(boundaries, tf.int64),
                             tf.gather(tf.constant(lengths, tf.int64), order), side="right",
                             out_type=tf.int64)
    by_bucket = tf.argsort(bucket, stable=True)
    first_of_bucket = tf.searchsorted(tf.gather(bucket, by_bucket), bucket, side="left",
                                      out_type=tf.int64)
    rank = tf.gather(tf.range(n), tf.math.invert_permutation(by_bucket)) - first_of_bucket
    batch = bucket * (n // batch_size + 1) + rank // batch_size
    members = tf.math.bincount(tf.cast(bucket, tf.int32), minlength=len(boundaries) + 1,
                               dtype=tf.int64)
    full = (rank // batch_size + 1) * batch_size <= tf.gather(members, bucket)
    last_member = tf.math.unsorted_segment_max(tf.range(n), batch, tf.reduce_max(batch) + 1)
    filled_at = tf.gather(last_member, batch)
    emitted_at = tf.where(full, filled_at, n + bucket)
    served = tf.argsort(emitted_at, stable=True)
    _, _, sizes = tf.unique_with_counts(tf.gather(emitted_at, served), out_idx=tf.int64)
    return tf.RaggedTensor.from_row_lengths(tf.gather(order, served), sizes)


def _retime_bucketed(order: tf.Tensor, lengths: np.ndarray, boundaries: list, batch_size: int,
                     retimed: tf.Tensor, key) -> tf.RaggedTensor:
    """Batches of augmented training: the buckets of the clean lengths (so as many batches
    as `_bucketed` makes), each bucket's members taken in order of their length after
    speed and shift (`retimed`, drawn for the epoch before batching), so that a batch pads
    to little more than its own utterances; the batches then in an order shuffled by `key`.

    Bucketing the clean lengths alone served a third more frames than the utterances held:
    speed and shift spread each bucket's lengths by up to a fifth."""
    n = tf.size(order, tf.int64)
    bucket = tf.searchsorted(tf.constant(boundaries, tf.int64),
                             tf.gather(tf.constant(lengths, tf.int64), order), side="right",
                             out_type=tf.int64)
    # `order` is random, so utterances of equal retimed length fall in a random order.
    by = tf.argsort(bucket * (tf.reduce_max(retimed) + 1) + tf.gather(retimed, order),
                    stable=True)
    members, bucket = tf.gather(order, by), tf.gather(bucket, by)
    rank = tf.range(n) - tf.searchsorted(bucket, bucket, side="left", out_type=tf.int64)
    _, rows = tf.unique(bucket * (n // batch_size + 1) + rank // batch_size, out_idx=tf.int64)
    batches = tf.RaggedTensor.from_value_rowids(members, rows)
    return tf.gather(batches, tf.random.experimental.stateless_shuffle(
        tf.range(batches.nrows()), seed=key))


def _index_batches(n: int, seed: int, epoch, batch_size: int, lengths: np.ndarray | None = None,
                   boundaries: list | None = None, replicas: int = 1) -> tf.data.Dataset:
    """Epoch `epoch`'s batches of dataset indices: bucketed by length when `boundaries` is
    given, else consecutive."""
    order = _epoch_order(n, seed, epoch)
    batches = (_consecutive_batches(order, batch_size) if boundaries is None
               else _bucketed(order, lengths, boundaries, batch_size))
    return _whole_replica_batches(tf.data.Dataset.from_tensor_slices(batches), replicas)


def _epochs(first_epoch: int, one_epoch) -> tf.data.Dataset:
    """Epoch after epoch of `one_epoch(epoch)`, from `first_epoch` on, without end; Keras's
    `fit` takes `steps_per_epoch` batches of it per epoch."""
    return tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(one_epoch)


def _batches_kept(members, batch_size: int, replicas: int = 1):
    """Batches that `members` examples make: the full ones, and the last partial one when
    `_whole_replica_batches` leaves anything of it."""
    return members // batch_size + (members % batch_size >= replicas)


def bucketed_batch_count(lengths: np.ndarray, boundaries: list, batch_size: int,
                         replicas: int = 1) -> int:
    """Batches per epoch from bucketing: each bucket yields ceil(members / batch_size),
    whatever the order, so the count is fixed and Keras can show a full progress bar."""
    members = np.bincount(np.searchsorted(boundaries, lengths, side="right"),
                          minlength=len(boundaries) + 1)
    return int(np.sum(_batches_kept(members, batch_size, replicas)))


def _whole_replica_batches(ds: tf.data.Dataset, replicas: int) -> tf.data.Dataset:
    """Cuts every batch to a multiple of `replicas` examples, dropping those left empty.

    A tf.distribute strategy splits each batch over its replicas; Keras reduces the first
    batch across them to build the model, which fails unless the parts have one shape. Only
    a bucket's last, partial batch loses anything: fewer than `replicas` examples, a
    different few every epoch since the order changes (with speed and shift, the partial
    batch holds a bucket's longest utterances after them, which change with every epoch's
    draws)."""
    if replicas == 1:
        return ds

    def size(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0]

    def cut(*batch):
        keep = size(*batch) // replicas * replicas
        batch = tf.nest.map_structure(lambda t: t[:keep], batch)
        return batch if len(batch) > 1 else batch[0]

    return ds.map(cut).filter(lambda *batch: size(*batch) > 0)


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
    # A frame-level target (a sequence labeller's) is padded like the features; the mask
    # that reaches the model's outputs keeps the padding out of the loss and metrics.
    targets = {name: tf.RaggedTensor.from_row_lengths(values, dataset.lengths)
               if dataset.frame_level(name) else tf.constant(values)
               for name, values in dataset.targets.items()}
    weights = _sample_weights(dataset, class_weights)
    n_features = dataset.n_features

    def gather(values, indices):
        if isinstance(values, tf.RaggedTensor):  # padded as the features are
            return tf.gather(values, indices).to_tensor(shape=[None, pad_to])
        return tf.gather(values, indices)

    def batch(indices):
        features = tf.gather(sequences, indices).to_tensor(shape=[None, pad_to, n_features])
        mask = tf.sequence_mask(tf.gather(lengths, indices), tf.shape(features)[1])
        inputs = {"features": features, "mask": mask}
        labels = {name: gather(values, indices) for name, values in targets.items()}
        return (inputs, labels) if weights is None else (inputs, labels,
                                                         tf.gather(weights, indices))

    return batch


# Places in a pass's key stream besides its batches (0, 1, ...): the pass's speed and shift
# plan, and the order its batches are served in.
PLAN_SLOT, BATCH_ORDER_SLOT = -1, -2
# Augmentation keys live apart from the epoch order's (seed, epoch) keys (AUGMENT_DOMAIN in
# the first element), and a slot's draws (augment.py offsets a key's second element by less
# than SLOT_SPACING) never reach the next slot's.
AUGMENT_DOMAIN, SLOT_SPACING = 1 << 40, 1 << 16


# Mixup's keys, apart from the augmentations' and the epoch order's.
MIXUP_DOMAIN = 2 << 40


def _mixup_fn(alpha: float, seed: int, tasks: list):
    """Maps (the batch's place in the stream of batches, batch) to the batch mixed with itself
    in another order. Each example's features become lam * its own + (1 - lam) * its
    partner's, with lam ~ Beta(alpha, alpha), on the frames both have; where only one of the
    two has frames (the batch's lengths differ a little) they stay that one's, never mixed
    with padding, and the mask is the union of both. A class target becomes (its class, the
    partner's, lam'), which heads.MixupCrossentropy and MixupAccuracy read; a regression
    target and a sample weight become the lam-mix of both. With sample weights w, lam' =
    lam * w / (lam * w + (1 - lam) * w_partner), so that the mixed weight times the loss is
    lam * w * CE(class) + (1 - lam) * w_partner * CE(partner's class). Keyed by the seed and
    the batch's place alone, so a resumed run mixes the pairs the lost one would."""
    classes = {t.name for t in tasks if t.kind == "classification"}

    def mix(place, batch):
        inputs, labels, *weights = batch
        key = tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + MIXUP_DOMAIN, place])
        n = tf.shape(inputs["mask"])[0]
        partner = tf.argsort(tf.random.stateless_uniform([n], key))
        # Beta(alpha, alpha) as the share of one of two Gamma(alpha) draws.
        own = tf.random.stateless_gamma([n], key + [1, 0], alpha)
        other = tf.random.stateless_gamma([n], key + [2, 0], alpha)
        lam = own / tf.maximum(own + other, 1e-12)

        def blend(x, share=lam):
            """share * x + (1 - share) * the partner's x; `share` (batch,) or (batch, time)."""
            share = tf.cast(share, x.dtype)
            share = tf.reshape(share, tf.concat([tf.shape(share), tf.ones(
                [len(x.shape) - len(share.shape)], tf.int32)], 0))
            return share * x + (1 - share) * tf.gather(x, partner)

        mask, partner_mask = inputs["mask"], tf.gather(inputs["mask"], partner)
        # A frame only one of the two has keeps that one's features (the other's are padding).
        share = tf.where(mask & partner_mask, lam[:, None], tf.cast(mask, lam.dtype))
        mixed = {"features": blend(inputs["features"], share), "mask": mask | partner_mask}
        mixed_weights = [blend(w) for w in weights]
        class_lam = lam
        if weights:
            class_lam = lam * tf.cast(weights[0], lam.dtype) / tf.maximum(
                tf.cast(mixed_weights[0], lam.dtype), 1e-12)
        targets = {name: tf.stack([tf.cast(y, tf.float32),
                                   tf.cast(tf.gather(y, partner), tf.float32), class_lam], -1)
                   if name in classes else blend(y) for name, y in labels.items()}
        return (mixed, targets, *mixed_weights)

    return mix


def check_mixable(dataset: Dataset, alpha: float) -> None:
    """Raises UserError unless `dataset`'s tasks label whole sequences (mixing two
    utterances' frames would leave a frame two labels of different times)."""
    if alpha and any(t.level == "frame" for t in dataset.tasks):
        raise UserError("--mixup mixes whole examples and their labels; frame-level tasks "
                        "cannot take it: use --mixup 0")


def _augment_key(seed: int, epoch, slot):
    """The stateless random key of `slot` (a batch's place, or one of the slots above) in
    a pass over the data: (seed, epoch, slot) alone."""
    return tf.stack([tf.constant(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64)
                     + AUGMENT_DOMAIN, tf.cast(slot, tf.int64) * SLOT_SPACING])


class _AugmentedBatches:
    """Maps (epoch, step, batch of dataset indices) to ({"features", "mask"}, targets[,
    weights]) whose features are computed, in the graph, from the batch's waveforms after
    augmentation keyed by (seed, epoch, step): what training hears changes every epoch, and
    a resumed run hears what the lost one would have. Speed and shift come from the epoch's
    plan (`plan`), drawn before batching."""

    def __init__(self, dataset: Dataset, names: tuple, cfg: FeatureConfig, seed: int,
                 class_weights=None):
        flat = np.concatenate(list(dataset.waves))
        self.scale = 1.0 / 32768.0 if flat.dtype == np.int16 else 1.0
        self.wave_lengths = tf.constant([len(w) for w in dataset.waves], tf.int64)
        self.waves = tf.RaggedTensor.from_row_lengths(flat, self.wave_lengths)
        self.targets = {name: tf.constant(v) for name, v in dataset.targets.items()}
        self.weights = _sample_weights(dataset, class_weights)
        self.bank = tf.constant(augment.noise_bank(seed, cfg.sample_rate))
        self.names, self.cfg, self.seed = names, cfg, seed

    def plan(self, epoch):
        return augment.retime_plan(_augment_key(self.seed, epoch, PLAN_SLOT), self.wave_lengths,
                                   self.names, self.cfg.sample_rate)

    def __call__(self, epoch, step, indices, factor, delay):
        """The batch of `indices`, the `step`-th of pass `epoch`, retimed by `factor` and
        `delay` (its members' rows of the pass's `plan`)."""
        clean = tf.cast(tf.gather(self.waves, indices).to_tensor(), tf.float32) * self.scale
        noisy, lengths = augment.apply(
            clean, tf.gather(self.wave_lengths, indices), self.names,
            _augment_key(self.seed, epoch, step), self.cfg.sample_rate, self.bank,
            retime=(factor, delay))
        frames, counts = features.in_graph(noisy, lengths, self.cfg)
        mask = tf.sequence_mask(counts, tf.shape(frames)[1])
        inputs = {"features": frames * tf.cast(mask, frames.dtype)[..., None], "mask": mask}
        labels = {name: tf.gather(v, indices) for name, v in self.targets.items()}
        return (inputs, labels) if self.weights is None else (
            inputs, labels, tf.gather(self.weights, indices))

    def passes(self, batch_size: int, seed: int, lengths: np.ndarray, boundaries: list | None,
               replicas: int):
        """`one_pass(epoch)` for `_epochs`: the pass's batches as (epoch, step, indices,
        factor, delay), its speed and shift plan drawn once for the whole pass."""
        n = len(lengths)

        def one_pass(epoch):
            factor, delay = self.plan(epoch)
            if boundaries is None or not {"speed", "shift"} & set(self.names):
                # Lengths stay as they are: the plain batches (a new mix every pass).
                indices = _index_batches(n, seed, epoch, batch_size, lengths, boundaries,
                                         replicas)
            else:
                retimed = augment.retimed_lengths(self.wave_lengths, factor, delay)
                indices = _whole_replica_batches(tf.data.Dataset.from_tensor_slices(
                    _retime_bucketed(_epoch_order(n, seed, epoch), lengths, boundaries,
                                     batch_size, retimed,
                                     _augment_key(seed, epoch, BATCH_ORDER_SLOT))),
                    replicas)
            # Each batch is keyed by its pass over the data and its place in the pass.
            return indices.enumerate().map(lambda step, i: (
                epoch, step, i, tf.gather(factor, i), tf.gather(delay, i)))

        return one_pass


def check_augmentable(dataset: Dataset, names: tuple) -> None:
    """Raises UserError unless `dataset` can be augmented on the fly: it keeps its audio,
    its features are computed in TensorFlow, and its labels are per sequence (a changed
    speed would move frame labels)."""
    if not names:
        return
    if dataset.waves is None:
        raise UserError(f"--augment {'+'.join(names)}: {dataset.name} came as features, "
                        "without audio to augment; use --augment none")
    kinds = features.kinds(dataset.features)
    if dataset.features.beat_sync or any(k not in features.TF_KINDS for k in kinds):
        raise UserError(f"--augment works with {', '.join(features.TF_KINDS)} features "
                        "computed in TensorFlow, not chroma or beat-synchronous ones; use "
                        "--augment none")
    if any(t.level == "frame" for t in dataset.tasks):
        raise UserError("--augment changes utterances' speed and timing, which would move "
                        "frame labels; use --augment none for frame-level tasks")


def training_batches(dataset: Dataset, batch_size: int, seed: int, boundaries: list | None = None,
                     bucketing: bool = True, class_weights=None, first_epoch: int = 0,
                     replicas: int = 1, augmentations: tuple = (), min_steps: int = 1,
                     mixup: float = 0.0):
    """Shuffled batches of similar-length sequences, reshuffled every epoch, without end.

    Args:
        dataset: the training split.
        batch_size: sequences per batch.
        seed: shuffling seed.
        boundaries: bucket length boundaries (default: from the data's length quantiles).
        bucketing: False pads every batch to the longest sequence of the data set instead
            (the baseline the pipeline benchmark compares against).
        class_weights: per-class weights of the first task; batches then carry sample weights.
        first_epoch: the epoch whose batches come first (a resumed run's next epoch).
        replicas: devices a strategy splits each batch over (see `_whole_replica_batches`).
        augmentations: waveform augmentations (kerasaudio/augment.py) of every batch; the
            features are then computed from the augmented audio (see `check_augmentable`).
        min_steps: steps per epoch at least: on data smaller than `min_steps` batches an
            epoch (a validation period) spans several passes over the data, which go on
            from one epoch to the next.
        mixup: mixup's alpha (`_mixup_fn`; 0: off).

    Returns:
        (tf.data.Dataset, steps_per_epoch): every epoch's batches, one epoch after another.
    """
    n, lengths = len(dataset.lengths), dataset.lengths
    if bucketing:
        boundaries = boundaries or bucket_boundaries(lengths, batch_size)
        steps = bucketed_batch_count(lengths, boundaries, batch_size, replicas)
        pad_to = None
    else:
        boundaries = None
        steps, pad_to = int(_batches_kept(n, batch_size, replicas)), int(lengths.max())
    # Where epoch `first_epoch` starts in the stream of passes over the data.
    first_pass, skipped = divmod(first_epoch * max(steps, min_steps), steps)
    if augmentations:
        check_augmentable(dataset, augmentations)
        batch = _AugmentedBatches(dataset, augmentations, dataset.features, seed,
                                  class_weights)
        ds = _epochs(first_pass, batch.passes(batch_size, seed, lengths, boundaries, replicas))
    else:
        ds = _epochs(first_pass, lambda epoch: _index_batches(
            n, seed, epoch, batch_size, lengths, boundaries, replicas))
        # Indices are shuffled and grouped by length alone; the frames are gathered per batch.
        batch = _batch_fn(dataset, class_weights, pad_to)
    ds = ds.skip(skipped).map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if mixup:
        check_mixable(dataset, mixup)
        # Numbered from the stream's start: a resumed run's first batch keeps its number.
        ds = ds.enumerate(start=first_pass * steps + skipped).map(
            _mixup_fn(mixup, seed, dataset.tasks), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), max(steps, min_steps)


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
                      boundaries: list | None = None, first_epoch: int = 0, replicas: int = 1,
                      min_steps: int = 1):
    """Yields, epoch after epoch from `first_epoch` on, the fraction of padded frames in the
    batches that `training_batches` serves that epoch (same seed, same bucketing, same
    `min_steps`, lengths only)."""
    boundaries = boundaries or bucket_boundaries(lengths, batch_size)
    natural = bucketed_batch_count(lengths, boundaries, batch_size, replicas)
    steps = max(natural, min_steps)
    first_pass, skipped = divmod(first_epoch * steps, natural)
    table = tf.constant(lengths)
    ds = _epochs(first_pass, lambda epoch: _index_batches(
        len(lengths), seed, epoch, batch_size, lengths, boundaries, replicas)).skip(skipped)
    # Batches of lengths are padded with zeros, so max * size counts padded + real frames.
    ds = ds.map(lambda indices: tf.gather(table, indices)).map(
        lambda b: (tf.reduce_max(b) * tf.size(b, tf.int64), tf.reduce_sum(b)))
    batches = ds.as_numpy_iterator()
    while True:
        served = real = 0
        for total, used in itertools.islice(batches, steps):
            served += int(total)
            real += int(used)
        yield 1.0 - real / served


WINDOW_SHUFFLE_FRAMES = 8192


def _edge_padding(x, k: int, edge: str):
    if edge == "repeat":
        return tf.repeat(x[:1], k, axis=0), tf.repeat(x[-1:], k, axis=0)
    zeros = tf.zeros([k, tf.shape(x)[1]], x.dtype)
    return zeros, zeros


def _window_fn(dataset: Dataset, window: int, edge: str, class_weights=None):
    """Maps an utterance index to a dataset of its frames' windows and labels."""
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

    return windows


def window_batches(dataset: Dataset, window: int, batch_size: int,
                   edge: str = "repeat") -> tf.data.Dataset:
    """Batches of ({"features": (batch, window, n_features)}, {task: (batch,)}) for frame-level
    tasks, in dataset order: every frame with the `window // 2` frames on each side.

    Windows are cut inside tf.data, one utterance at a time, so memory does not grow with the
    window size.

    Args:
        dataset: a data set whose tasks are frame-level.
        window: odd number of frames per window.
        batch_size: frames per batch.
        edge: how frames past an utterance's ends are filled: `repeat` the edge frame, or `zero`.
    """
    ds = tf.data.Dataset.range(len(dataset.lengths)).flat_map(
        _window_fn(dataset, window, edge)).batch(batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(
        -(-int(dataset.lengths.sum()) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE)


def window_training_batches(dataset: Dataset, window: int, batch_size: int, seed: int,
                            edge: str = "repeat", class_weights=None, first_epoch: int = 0,
                            replicas: int = 1):
    """`window_batches` shuffled, epoch after epoch without end: utterances in the epoch's
    order, then frames through a shuffle buffer. `replicas` as in `training_batches`.

    Returns:
        (tf.data.Dataset, steps_per_epoch).
    """
    windows = _window_fn(dataset, window, edge, class_weights)
    steps = int(_batches_kept(int(dataset.lengths.sum()), batch_size, replicas))

    def one_epoch(epoch):
        # Interleaving utterances mixes speakers in the shuffle buffer; the buffer's own
        # seed is fixed, and the epoch's utterance order makes every epoch differ.
        utterances = tf.data.Dataset.from_tensor_slices(
            _epoch_order(len(dataset.lengths), seed, epoch))
        frames = utterances.interleave(windows, cycle_length=8)
        frames = frames.shuffle(WINDOW_SHUFFLE_FRAMES, seed=seed, reshuffle_each_iteration=False)
        return _whole_replica_batches(frames.batch(batch_size), replicas)

    return _epochs(first_epoch, one_epoch).prefetch(tf.data.AUTOTUNE), steps
