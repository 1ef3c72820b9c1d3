"""TF Serving warm-up requests, written next to the SavedModel at export time.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` (a TFRecord file of PredictionLog
protos) before it marks a version AVAILABLE, so the first user request does not pay for graph
tracing and kernel set-up. One request per serving signature (Predict on ``predict_images`` or
``predict_bands`` and on ``serving_default``, Classify on ``classify``) warms every path a client
can take. The inputs are synthetic EuroSAT look-alikes in the model's modality: warm-up needs the
right shapes and types, not real data.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, List

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
)

from schema import features, modalities, samples
from serving import contract

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"  # the name TF Serving looks for
WARMUP_BATCH = 4  # small: warm-up runs on every load, before the version is served


def warmup_path(export_dir: str) -> str:
    """Where TF Serving expects the warm-up file inside a model version directory."""
    return os.path.join(export_dir, WARMUP_DIR, WARMUP_FILE)


def warmup_inputs(modality: str = features.RGB, count: int = WARMUP_BATCH) -> tuple[list[Any], list[Any]]:
    """(pixel-signature batch, tf.Examples) of `count` synthetic patches, one class after another.

    Encoded JPEGs for RGB models, uint16 band arrays for 13-band models.
    """
    rows = list(samples.samples_of(modality, count, seed=0))
    return [p for p, _, _ in rows], [features.example_of(modality, p, 0, "warmup") for p, _, _ in rows]


def _pixels_proto(modality: str, batch: list[Any]) -> tf.Tensor:
    """The pixel signature's input: encoded image bytes as they are, raw values stacked."""
    record = modalities.get(modality)
    return tf.make_tensor_proto(batch if record.encoded else np.stack(batch), dtype=record.input_dtype)


def warmup_logs(modality: str = features.RGB, count: int = WARMUP_BATCH) -> Iterator[prediction_log_pb2.PredictionLog]:
    """One PredictionLog per serving signature, each carrying the same `count` patches as a batch."""
    pixels, examples = warmup_inputs(modality, count)
    pixel_signature, pixel_input = contract.pixel_signature(modality)
    for signature_name, input_key, proto in (
        (pixel_signature, pixel_input, _pixels_proto(modality, pixels)),
        (contract.SERVING_DEFAULT, contract.EXAMPLES_INPUT,
         tf.make_tensor_proto([e.SerializeToString() for e in examples], dtype=tf.string)),
    ):
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = signature_name
        request.inputs[input_key].CopyFrom(proto)
        yield prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = contract.CLASSIFY
    for example in examples:
        classify.input.example_list.examples.add().CopyFrom(example)
    yield prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=classify)
    )


def write_warmup_requests(export_dir: str, modality: str = features.RGB) -> str:
    """Write the warm-up file into `export_dir` (a SavedModel directory); returns its path."""
    path = warmup_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_logs(modality):
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir: str) -> List[prediction_log_pb2.PredictionLog]:
    """The PredictionLogs of a model version's warm-up file ([] when it has none)."""
    path = warmup_path(export_dir)
    if not tf.io.gfile.exists(path):
        return []
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]
