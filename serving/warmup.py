"""TF Serving warm-up requests, written next to the SavedModel at export time.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` (a TFRecord file of PredictionLog
protos) before it marks a version AVAILABLE, so the first user request does not pay for graph
tracing and kernel set-up. One request per serving signature (Predict on ``predict_images`` and
``serving_default``, Classify on ``classify``) warms every path a client can take. The images are
synthetic EuroSAT look-alikes: warm-up needs the right shapes and types, not real data.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Iterator, List, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
)

from components import features, synthetic  # noqa: E402
from serving import signatures  # noqa: E402

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"  # the name TF Serving looks for
WARMUP_BATCH = 4  # small: warm-up runs on every load, before the version is served


def warmup_path(export_dir: str) -> str:
    """Where TF Serving expects the warm-up file inside a model version directory."""
    return os.path.join(export_dir, WARMUP_DIR, WARMUP_FILE)


def warmup_images(count: int = WARMUP_BATCH) -> List[bytes]:
    """A few encoded JPEG images, one per class in turn (the client's usual payload)."""
    return [jpeg for jpeg, _, _ in synthetic.synthetic_examples(count, seed=0)]


def warmup_logs(images: Sequence[bytes]) -> Iterator[prediction_log_pb2.PredictionLog]:
    """One PredictionLog per serving signature, each carrying `images` as a batch."""
    examples = [
        features.make_example(image, label=0, source="warmup").SerializeToString() for image in images
    ]
    for signature_name, input_key, batch in (
        (signatures.PREDICT_IMAGES, signatures.IMAGES_INPUT, list(images)),
        (signatures.SERVING_DEFAULT, signatures.EXAMPLES_INPUT, examples),
    ):
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = signature_name
        request.inputs[input_key].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
        yield prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = signatures.CLASSIFY
    for image in images:
        classify.input.example_list.examples.add().CopyFrom(
            features.make_example(image, label=0, source="warmup")
        )
    yield prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=classify)
    )


def write_warmup_requests(export_dir: str, images: Sequence[bytes] | None = None) -> str:
    """Write the warm-up file into `export_dir` (a SavedModel directory); returns its path."""
    path = warmup_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_logs(images if images is not None else warmup_images()):
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
