"""The Trainer's and the Tuner's input: (image, one-hot label) batches from Transform's output.

Read through TFX's `fn_args.data_accessor`, as TFX's templates and the penguin example do.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from schema import features

SHUFFLE_BUFFER = 10_000
PARSE_BATCH = 256  # records parsed per batch by the data accessor (cached, then re-batched)
_MODEL_KEYS = (features.TRANSFORMED_IMAGE_KEY, features.TRANSFORMED_ONEHOT_KEY)
_MOMENT_KEYS = (features.PATCH_MEAN_KEY, features.PATCH_MEAN_SQ_KEY)


class Input(NamedTuple):
    """One split as the Trainer and the Tuner take it.

    batches: (image, one-hot label) batches of `batch_size`, the last one smaller; one epoch per
    iteration, reshuffled each epoch when training. examples: how many records the split holds
    (sizes the schedule: ceil(examples / batch_size) steps per epoch). moments: (patch means,
    patch means of squares), [examples, C] each, what the serving model's training statistics are
    made of; None for a Transform graph without them (built before the model carried them).
    """

    batches: tf.data.Dataset
    examples: int
    moments: Optional[Tuple[np.ndarray, np.ndarray]]


def _features_schema(tf_transform_output):
    """The transformed schema cut to what is read, and whether it has the patch moments.

    The model's two features and the patch moments when the graph has them; other transformed
    features are never parsed.
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    full = tf_transform_output.transformed_metadata.schema
    names = {f.name for f in full.feature}
    missing = [k for k in _MODEL_KEYS if k not in names]
    if missing:
        raise ValueError(f"the Transform output has no {', '.join(missing)} feature: train on the output of "
                         "components/transform.py's preprocessing_fn (Transform, transform_graph)")
    has_moments = set(_MOMENT_KEYS) <= names
    keep = set(_MODEL_KEYS) | (set(_MOMENT_KEYS) if has_moments else set())
    schema = schema_pb2.Schema()
    schema.feature.extend(f for f in full.feature if f.name in keep)
    return schema, has_moments


def input_fn(
    file_pattern: List[str],
    data_accessor: Any,
    tf_transform_output: Any,
    batch_size: int,
    training: bool,
    seed: int = 0,
) -> Input:
    """One split of Transform's output as `Input`: batches, example count, patch moments, one read.

    `data_accessor` is TFX's `fn_args.data_accessor` (`local_data_accessor()` outside TFX), and
    the features are those of `tf_transform_output.transformed_metadata.schema`. The accessor
    parses the records in batches of PARSE_BATCH in file order (no shuffle, one epoch); these
    are cached in memory (EuroSAT RGB: ~0.8 GB for the 16,200 training images) while the
    examples are counted and the moments gathered, so training reads like an in-memory loop;
    then shuffled when `training` (SHUFFLE_BUFFER, `seed`, reshuffled each epoch), batched and
    prefetched.
    """
    from tfx_bsl.public import tfxio

    if not any(tf.io.gfile.glob(p) for p in file_pattern):
        raise FileNotFoundError(f"no transformed examples match {list(file_pattern)}: pass the Transform "
                                "output's split folder pattern (transformed_examples/Split-NAME/*)")
    schema, has_moments = _features_schema(tf_transform_output)
    options = tfxio.TensorFlowDatasetOptions(batch_size=PARSE_BATCH, shuffle=False, num_epochs=1)
    parsed = data_accessor.tf_dataset_factory(file_pattern, options, schema).cache()
    examples = 0
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in _MOMENT_KEYS}
    for size, batch_moments in parsed.map(lambda b: _counted(b, has_moments)).as_numpy_iterator():  # fills the cache
        examples += int(size)
        for k, v in batch_moments.items():
            parts[k].append(v)
    if not examples:
        raise ValueError(f"no transformed examples in {list(file_pattern)}: the files are empty; "
                         "check the split's ExampleGen and Transform outputs")
    moments = (np.concatenate(parts[_MOMENT_KEYS[0]]), np.concatenate(parts[_MOMENT_KEYS[1]])) if has_moments else None
    ds = parsed.map(_to_xy).unbatch()
    if training:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    return Input(ds.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE), examples, moments)


def _counted(batch, has_moments: bool) -> Tuple[tf.Tensor, dict]:
    """A parsed batch's size and its patch moments: all the count keeps of it."""
    return tf.shape(batch[features.TRANSFORMED_ONEHOT_KEY])[0], {k: batch[k] for k in _MOMENT_KEYS if has_moments}


def _to_xy(parsed) -> Tuple[tf.Tensor, tf.Tensor]:
    return parsed[features.TRANSFORMED_IMAGE_KEY], parsed[features.TRANSFORMED_ONEHOT_KEY]


def image_channels(tf_transform_output) -> int:
    """Channels of the transformed image (3 RGB, 13 all bands): the model's input depth."""
    return int(tf_transform_output.transformed_feature_spec()[features.TRANSFORMED_IMAGE_KEY].shape[-1])


def local_data_accessor():
    """A TFX DataAccessor over GZIP TFRecords of tf.Examples, for the input path outside TFX.

    Built as the Trainer's executor builds `fn_args.data_accessor`
    (tfx/components/trainer/fn_args_utils.py) from an Examples artifact of that payload: the
    tests and benchmarks read through the same factories as run_fn and tuner_fn.
    """
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import examples_utils, tfxio_utils
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts

    examples = standard_artifacts.Examples()
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    descriptors = ["Trainer"]
    return DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], descriptors),
        record_batch_factory=tfxio_utils.get_record_batch_factory_from_artifact([examples], descriptors),
        data_view_decode_fn=tfxio_utils.get_data_view_decode_fn_from_artifact([examples], descriptors),
    )


def write_transformed(x: np.ndarray, y: np.ndarray, directory: str, shards: int = 4,
                      moments: bool = False) -> Tuple[List[str], Any]:
    """Write (x, y) as the Transform component writes its output; returns what input_fn reads.

    GZIP TFRecords of float features under `directory`, and their schema in a
    transform_graph/transformed_metadata folder; returns ([the files' pattern], a
    tft.TFTransformOutput over that folder). The Trainer's and Tuner's tests and the training
    benchmarks feed the real input path with it. `moments`: also the patch moments (means of x
    and of x², over each patch).
    """
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    spec = {
        features.TRANSFORMED_IMAGE_KEY: tf.io.FixedLenFeature(list(x.shape[1:]), tf.float32),
        features.TRANSFORMED_ONEHOT_KEY: tf.io.FixedLenFeature([features.NUM_CLASSES], tf.float32),
    }
    values = {features.TRANSFORMED_IMAGE_KEY: x.reshape(len(x), -1), features.TRANSFORMED_ONEHOT_KEY: y}
    if moments:
        spec.update({k: tf.io.FixedLenFeature([x.shape[-1]], tf.float32) for k in _MOMENT_KEYS})
        values[features.PATCH_MEAN_KEY] = x.mean(axis=(1, 2))
        values[features.PATCH_MEAN_SQ_KEY] = np.square(x).mean(axis=(1, 2))
    tf.io.gfile.makedirs(directory)
    files = [os.path.join(directory, f"transformed_examples-{i:05d}-of-{shards:05d}.gz") for i in range(shards)]
    writers = [tf.io.TFRecordWriter(f, options="GZIP") for f in files]
    for i in range(len(x)):
        ex = tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(float_list=tf.train.FloatList(value=v[i])) for k, v in values.items()}))
        writers[i % shards].write(ex.SerializeToString())
    for w in writers:
        w.close()
    graph = os.path.join(directory, "transform_graph")
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec)),
                               os.path.join(graph, tft.TFTransformOutput.TRANSFORMED_METADATA_DIR))
    return [os.path.join(directory, "transformed_examples-*")], tft.TFTransformOutput(graph)
