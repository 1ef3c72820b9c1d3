"""The Trainer's and the Tuner's one input path: dataset.input_fn on a real TFX DataAccessor."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components import dataset
from schema import features


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % features.NUM_CLASSES
    x = (rng.random((n, 64, 64, 3)) + labels[:, None, None, None]).astype(np.float32)
    return x, np.eye(features.NUM_CLASSES, dtype=np.float32)[labels]


@pytest.fixture(scope="module")
def accessor():
    return dataset.local_data_accessor()


@pytest.fixture(scope="module")
def split(tmp_path_factory, accessor):
    """300 examples in 4 shards (more than one parse batch, not a multiple of the batch size)."""
    x, y = _data(300)
    pattern, tft_output = dataset.write_transformed(x, y, str(tmp_path_factory.mktemp("split")), moments=True)
    return x, pattern, tft_output


def _firsts(batches):
    """Each example's first pixel value, in the order the batches give them, and the batch sizes."""
    pairs = [(b[0].numpy()[:, 0, 0, 0], int(b[0].shape[0])) for b in batches]
    return np.concatenate([p for p, _ in pairs]), [s for _, s in pairs]


def test_input_counts_batches_and_reshuffles_each_epoch(split, accessor):
    x, pattern, tft_output = split
    train = dataset.input_fn(pattern, accessor, tft_output, batch_size=32, training=True, seed=7)
    assert train.examples == 300
    first, sizes = _firsts(train.batches)
    second, _ = _firsts(train.batches)
    assert sizes == [32] * 9 + [12]  # ceil(300 / 32) steps, the last batch kept
    np.testing.assert_array_equal(np.sort(first), np.sort(x[:, 0, 0, 0]))  # every example once an epoch
    np.testing.assert_array_equal(np.sort(second), np.sort(first))
    assert not np.array_equal(first, second)  # reshuffled
    again = dataset.input_fn(pattern, accessor, tft_output, batch_size=32, training=True, seed=7)
    np.testing.assert_array_equal(_firsts(again.batches)[0], first)  # the seed fixes the order


def test_eval_input_keeps_the_order_the_records_were_read_in(split, accessor):
    """No shuffle: the records as tf.data's parallel TFRecord reader interleaves the (sorted) shards,
    the order the Trainer read them in before the data accessor (the same history follows)."""
    x, pattern, tft_output = split
    evaluation = dataset.input_fn(pattern, accessor, tft_output, batch_size=50, training=False)
    order, sizes = _firsts(evaluation.batches)
    assert sizes == [50] * 6
    files = sorted(tf.io.gfile.glob(pattern[0]))
    reader = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    spec = {features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature([64, 64, 3], tf.float32)}
    expected = [tf.io.parse_single_example(r, spec)[features.TRANSFORMED_IMAGE_KEY][0, 0, 0].numpy() for r in reader]
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(_firsts(evaluation.batches)[0], order)


def test_moments_come_with_the_count_in_one_read(split, accessor, tmp_path):
    x, pattern, tft_output = split
    evaluation = dataset.input_fn(pattern, accessor, tft_output, batch_size=64, training=False)
    images = np.concatenate([b[0].numpy() for b in evaluation.batches])
    means, squares = evaluation.moments
    assert means.shape == squares.shape == (300, 3)
    np.testing.assert_allclose(means, images.mean(axis=(1, 2)), rtol=1e-5)  # per example, in read order
    np.testing.assert_allclose(squares, np.square(images).mean(axis=(1, 2)), rtol=1e-5)

    # The count's read fills the cache the batches come from: the files are read once.
    x, y = _data(40, seed=1)
    pattern, tft_output = dataset.write_transformed(x, y, str(tmp_path / "once"), shards=2)
    once = dataset.input_fn(pattern, accessor, tft_output, batch_size=16, training=True)
    for f in tf.io.gfile.glob(pattern[0]):
        os.remove(f)
    assert _firsts(once.batches)[1] == [16, 16, 8] and once.moments is None  # a graph without moments


def test_bad_input_is_named(tmp_path, accessor):
    x, y = _data(4)
    pattern, tft_output = dataset.write_transformed(x, y, str(tmp_path / "a"), shards=1)
    with pytest.raises(FileNotFoundError, match="no transformed examples"):
        dataset.input_fn([str(tmp_path / "nothing-*")], accessor, tft_output, 2, training=False)
    schema = tft_output.transformed_metadata.schema
    del schema.feature[[f.name for f in schema.feature].index(features.TRANSFORMED_ONEHOT_KEY)]
    with pytest.raises(ValueError, match=f"no {features.TRANSFORMED_ONEHOT_KEY} feature"):
        dataset.input_fn(pattern, accessor, tft_output, 2, training=False)
