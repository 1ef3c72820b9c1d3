"""The Trainer's and the Tuner's input: (image, one-hot label) batches from Transform's output."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from schema import features

SHUFFLE_BUFFER = 10_000
PARSE_BATCH = 256


def _files(patterns: List[str]) -> List[str]:
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {patterns}")
    return files


def count_records(patterns: List[str]) -> int:
    """Number of examples in the (GZIP) TFRecord files: sizes the schedule and the epochs."""
    ds = tf.data.TFRecordDataset(_files(patterns), compression_type="GZIP")
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def train_patch_moments(patterns: List[str], transformed_feature_spec: Dict) -> Tuple[int, Optional[tuple]]:
    """(number of examples, (patch means, patch means of squares) [n, C] each) of transformed TFRecords,
    in one pass that parses only those two small features; (n, None) for a Transform graph without them
    (built before the model carried training statistics)."""
    keys = (features.PATCH_MEAN_KEY, features.PATCH_MEAN_SQ_KEY)
    if not all(k in transformed_feature_spec for k in keys):
        return count_records(patterns), None
    spec = {k: transformed_feature_spec[k] for k in keys}
    ds = tf.data.TFRecordDataset(_files(patterns), compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    ds = ds.batch(PARSE_BATCH).map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
    parts: Dict[str, list] = {k: [] for k in keys}
    for batch in ds.as_numpy_iterator():
        for k in keys:
            parts[k].append(batch[k])
    means, squares = (np.concatenate(parts[k]) for k in keys)
    return len(means), (means, squares)


def model_feature_spec(transformed_feature_spec: Dict[str, tf.io.FixedLenFeature]) -> Dict:
    """The two transformed features the model trains on."""
    keys = (features.TRANSFORMED_IMAGE_KEY, features.TRANSFORMED_ONEHOT_KEY)
    return {k: transformed_feature_spec[k] for k in keys}


def input_fn(
    patterns: List[str],
    feature_spec: Dict[str, tf.io.FixedLenFeature],
    batch_size: int,
    training: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """(image, one-hot label) batches from transformed TFRecords.

    Records are parsed in large parallel batches once, and the parsed tensors are cached in
    memory (EuroSAT RGB: ~0.8 GB for the 16,200 training images), so every later epoch reads
    like an in-memory loop; then shuffled, batched and prefetched.
    """
    ds = tf.data.TFRecordDataset(
        _files(patterns), compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE
    )
    ds = ds.batch(PARSE_BATCH).map(
        lambda s: _to_xy(tf.io.parse_example(s, feature_spec)), num_parallel_calls=tf.data.AUTOTUNE
    )
    ds = ds.unbatch().cache()
    if training:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)


def _to_xy(parsed) -> Tuple[tf.Tensor, tf.Tensor]:
    return parsed[features.TRANSFORMED_IMAGE_KEY], parsed[features.TRANSFORMED_ONEHOT_KEY]


def write_transformed(x: np.ndarray, y: np.ndarray, path: str, shards: int = 4) -> tuple[list, dict]:
    """Write (x, y) in the Transform component's on-disk format (GZIP TFRecords of float features),
    what input_fn reads: the Tuner's tests and the training benchmark feed the real input path with it."""
    files = [f"{path}-{i:05d}-of-{shards:05d}.gz" for i in range(shards)]
    writers = [tf.io.TFRecordWriter(f, options="GZIP") for f in files]
    for i in range(len(x)):
        ex = tf.train.Example(features=tf.train.Features(feature={
            features.TRANSFORMED_IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=x[i].ravel())),
            features.TRANSFORMED_ONEHOT_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=y[i])),
        }))
        writers[i % shards].write(ex.SerializeToString())
    for w in writers:
        w.close()
    spec = {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature(list(x.shape[1:]), tf.float32),
        features.TRANSFORMED_ONEHOT_KEY: tf.io.FixedLenFeature([features.NUM_CLASSES], tf.float32),
    }
    return files, spec
