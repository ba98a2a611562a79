import numpy as np
import pytest
import tensorflow as tf
from conftest import make_frames, make_sequences

from kerasaudio import pipeline
from kerasaudio.errors import UserError


def test_bucketed_batches_pad_little_and_mask_real_frames():
    data = make_sequences(800, min_len=5, max_len=120)  # enough for all 12 buckets
    ds, steps = pipeline.training_batches(data, batch_size=16, seed=0)
    assert steps == pipeline.bucketed_batch_count(
        data.lengths, pipeline.bucket_boundaries(data.lengths, 16), 16)
    seen, served, real = [], 0, 0
    for x, _ in ds.take(steps):
        mask = x["mask"].numpy()
        lengths = mask.sum(axis=1)
        # The mask is True exactly on each sequence's first `length` frames.
        np.testing.assert_array_equal(mask, np.arange(mask.shape[1]) < lengths[:, None])
        seen.extend(lengths)
        served += mask.size
        real += mask.sum()
    assert sorted(seen) == sorted(data.lengths)  # every sequence served once, intact
    assert 1 - real / served < 0.10


@pytest.mark.parametrize("n, batch_size, n_buckets", [(1, 4, 3), (37, 1, 1), (211, 8, 5),
                                                     (400, 32, 12)])
def test_bucketing_serves_what_tf_datas_bucket_by_sequence_length_serves(n, batch_size,
                                                                       n_buckets):
    # The epoch's batches are computed in a few vectorised ops; tf.data's own bucketing,
    # element by element, is the reference for which examples share a batch and the order.
    lengths = np.random.default_rng(n).integers(5, 120, n)
    boundaries = pipeline.bucket_boundaries(lengths, n_buckets=n_buckets)
    for epoch in range(2):
        order = pipeline._epoch_order(n, 5, epoch)
        reference = tf.data.Dataset.from_tensor_slices(order).bucket_by_sequence_length(
            lambda i: tf.gather(tf.constant(lengths, tf.int32), i), boundaries,
            [batch_size] * (len(boundaries) + 1))
        served = pipeline._bucketed(order, lengths, boundaries, batch_size)
        assert served.to_list() == [b.tolist() for b in reference.as_numpy_iterator()]


@pytest.mark.parametrize("n, batch_size", [(243, 64), (243, 32), (200, 128), (6600, 64),
                                           (40, 8), (3, 64)])
def test_an_epoch_has_no_more_steps_than_its_batch_size_allows(n, batch_size):
    # Each bucket ends with one partial batch; on small data the buckets must be few enough
    # that --batch-size still sets the number of steps.
    data = make_sequences(n, min_len=5, max_len=120)
    boundaries = pipeline.bucket_boundaries(data.lengths, batch_size)
    buckets = len(boundaries) + 1
    ds, steps = pipeline.training_batches(data, batch_size=batch_size, seed=0)
    assert steps <= -(-n // batch_size) + buckets - 1
    sizes = [len(x["mask"]) for x, _ in ds.take(steps)]
    assert sum(sizes) == n
    assert sum(size < batch_size for size in sizes) <= buckets
    if n >= pipeline.MIN_BATCHES_PER_BUCKET * batch_size * 2:  # large enough to bucket
        assert buckets > 1


def test_padding_replay_matches_the_real_batches_every_epoch():
    data = make_sequences(300, min_len=5, max_len=90)
    ds, steps = pipeline.training_batches(data, batch_size=8, seed=7)
    replay = pipeline.padding_per_epoch(data.lengths, 8, seed=7)
    batches, fractions = iter(ds), []
    for _ in range(3):
        masks = [next(batches)[0]["mask"].numpy() for _ in range(steps)]
        fractions.append(1 - sum(m.sum() for m in masks) / sum(m.size for m in masks))
        assert abs(next(replay) - fractions[-1]) < 1e-12
    assert len(set(fractions)) > 1  # reshuffled every epoch


def epoch_labels(ds, steps, epochs):
    batches = iter(ds)
    return [[next(batches)[1]["label"].numpy().tolist() for _ in range(steps)]
            for _ in range(epochs)]


def test_an_epoch_order_depends_only_on_the_seed_and_the_epoch():
    # What lets a resumed run see the batches an uninterrupted one would have seen.
    data = make_sequences(100)
    ds, steps = pipeline.training_batches(data, batch_size=8, seed=3)
    from_start = epoch_labels(ds, steps, 3)
    from_third = epoch_labels(pipeline.training_batches(data, 8, 3, first_epoch=2)[0], steps, 1)
    assert from_third[0] == from_start[2] != from_start[1]
    assert epoch_labels(pipeline.training_batches(data, 8, 4)[0], steps, 1)[0] != from_start[0]


def test_small_data_epochs_span_passes_that_a_resumed_run_continues():
    # 40 sequences at batch 8 are 5 batches a pass; an epoch of at least 12 steps goes on
    # into the next pass, and epoch 2 of a resumed run starts where epoch 2 would have.
    data = make_sequences(40, min_len=5, max_len=60)
    ds, steps = pipeline.training_batches(data, batch_size=8, seed=3, min_steps=12)
    assert steps == 12
    whole = [labels for epoch in epoch_labels(ds, steps, 3) for labels in epoch]
    passes = pipeline.bucketed_batch_count(data.lengths,
                                           pipeline.bucket_boundaries(data.lengths, 8), 8)
    assert sum(len(b) for b in whole[:passes]) == 40  # each pass serves every sequence
    resumed = epoch_labels(pipeline.training_batches(data, 8, 3, first_epoch=2,
                                                     min_steps=12)[0], steps, 1)[0]
    assert resumed == whole[24:36]
    replay = pipeline.padding_per_epoch(data.lengths, 8, seed=3, first_epoch=2, min_steps=12)
    masks = [x["mask"].numpy() for x, _ in pipeline.training_batches(
        data, 8, 3, first_epoch=2, min_steps=12)[0].take(12)]
    assert abs(next(replay) - (1 - sum(m.sum() for m in masks) / sum(m.size for m in masks))) \
        < 1e-12


def test_pad_to_longest_pads_more_than_bucketing():
    data = make_sequences(300, min_len=5, max_len=90)
    ds, steps = pipeline.training_batches(data, 8, 0, bucketing=False)
    padded = [x["mask"].numpy() for x, _ in ds.take(steps)]
    assert all(m.shape[1] == 90 or m.shape[1] == data.lengths.max() for m in padded)
    waste = 1 - sum(m.sum() for m in padded) / sum(m.size for m in padded)
    assert waste > next(pipeline.padding_per_epoch(data.lengths, 8, 0))


def test_evaluation_order_maps_back_to_the_dataset():
    data = make_sequences(50)
    ds, order = pipeline.evaluation_batches(data, batch_size=16)
    labels = np.concatenate([y["label"].numpy() for _, y in ds])
    np.testing.assert_array_equal(labels, data.targets["label"][order])


@pytest.mark.parametrize("edge", ["repeat", "zero"])
def test_windows_centre_on_each_frame_with_edges_filled(edge):
    data = make_frames(6)
    ds = pipeline.window_batches(data, window=5, batch_size=1000, edge=edge)
    (x, y), = list(ds)
    windows, labels = x["features"].numpy(), y["phone"].numpy()
    assert windows.shape == (data.lengths.sum(), 5, data.n_features)
    np.testing.assert_array_equal(windows[:, 2], data.frames)  # centre = the labelled frame
    np.testing.assert_array_equal(labels, data.targets["phone"])
    first = data.frames[0]
    expected_left = first if edge == "repeat" else np.zeros_like(first)
    np.testing.assert_array_equal(windows[0, 0], expected_left)
    np.testing.assert_array_equal(windows[0, 3], data.frames[1])
    # The window never crosses into the next utterance.
    end = data.lengths[0] - 1
    expected_right = data.frames[end] if edge == "repeat" else np.zeros_like(first)
    np.testing.assert_array_equal(windows[end, 4], expected_right)


def test_shuffled_windows_serve_every_frame_once():
    data = make_frames(20)
    ds, steps = pipeline.window_training_batches(data, window=3, batch_size=16, seed=0)
    assert steps == -(-data.lengths.sum() // 16)
    centres = np.concatenate([x["features"].numpy()[:, 1, 0] for x, _ in ds.take(steps)])
    assert sorted(centres) == sorted(data.frames[:, 0])
    assert not np.array_equal(centres, data.frames[:, 0])


def _stream(data, first_epoch=0, mixup=0.0, take=24):
    ds, _ = pipeline.training_batches(data, 8, 3, first_epoch=first_epoch, min_steps=12,
                                      mixup=mixup)
    return [(x["features"].numpy(), x["mask"].numpy(), y["label"].numpy())
            for x, y in ds.take(take)]


def _mixed(x, mask, i, j, lam):
    both = (mask[i] & mask[j])[:, None]
    return np.where(both, lam * x[i] + (1 - lam) * x[j], np.where(mask[i][:, None], x[i], x[j]))


def test_mixup_mixes_each_example_with_one_of_its_batch_and_their_labels_alike():
    data = make_sequences(40, min_len=5, max_len=60)
    plain, mixed = _stream(data), _stream(data, mixup=0.4)
    assert [m[0].shape for m in mixed] == [p[0].shape for p in plain]  # same batches
    for (x, mask, y), (mx, mmask, my) in zip(plain, mixed):
        assert my.shape == (len(y), 3) and np.all((my[:, 2] >= 0) & (my[:, 2] <= 1))
        np.testing.assert_array_equal(my[:, 0], y)  # each example keeps its own class first
        for i, (_, other, lam) in enumerate(my):
            # Its partner j: the lam-mix of both where both have frames, else the one that
            # has them (never padding); the second class is j's.
            partners = [j for j in range(len(y)) if y[j] == other and np.allclose(
                mx[i], _mixed(x, mask, i, j, lam), atol=1e-5)]
            assert partners
            assert np.array_equal(mmask[i], mask[i] | mask[partners[0]])
    assert not np.allclose(mixed[0][2][:, 2], mixed[1][2][:, 2])  # new weights every batch
    lengths = [m.sum(axis=1) for _, m, _ in plain]
    assert any(len(set(n)) > 1 for n in lengths)  # the batches mix unequal lengths


def test_mixup_weighs_each_part_of_the_loss_by_its_own_examples_class_weight():
    data = make_sequences(40, min_len=5, max_len=60)
    weights = np.array([1.0, 3.0, 0.5])
    ds, _ = pipeline.training_batches(data, 8, 3, class_weights=weights, mixup=0.4)
    _, y, w = next(iter(ds))
    checked = 0
    for (own, other, share), weight in zip(y["label"].numpy(), w.numpy()):
        w_own, w_other = weights[int(own)], weights[int(other)]
        if w_own == w_other:  # nothing to reweigh: the weight is theirs, lam' is lam
            assert weight == pytest.approx(w_own)
            continue
        lam = (weight - w_other) / (w_own - w_other)  # the mixed weight is the lam-mix
        # weight * (lam' CE_own + (1 - lam') CE_other) = lam w_own CE_own + (1 - lam) ...
        assert weight * share == pytest.approx(lam * w_own, abs=1e-4)
        checked += 1
    assert checked


def test_mixup_is_the_same_for_a_seed_and_after_a_resume():
    data = make_sequences(40, min_len=5, max_len=60)
    whole = _stream(data, mixup=0.4)
    again, resumed = _stream(data, mixup=0.4), _stream(data, first_epoch=1, mixup=0.4, take=12)
    for a, b in zip(whole, again):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    for a, b in zip(whole[12:], resumed):  # epoch 2 of a resumed run mixes as epoch 2 did
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_mixup_refuses_frame_labels():
    with pytest.raises(UserError, match="--mixup"):
        pipeline.check_mixable(make_frames(10), 0.2)
    pipeline.check_mixable(make_frames(10), 0.0)  # off: nothing to refuse
