"""Gathering a finished run into ReportInputs.

Gathering a finished run: MLMD, the Evaluator output, the examples, history.json and the model -> ReportInputs.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Optional

import numpy as np

from pipeline.report.calibration import calibration_buckets
from pipeline.report.inputs import MAX_PREDICTED, SPLITS, ReportInputs, Sample
from pipeline.report.metrics import build_metrics
from schema import features, modalities
from schema.errors import DataError, DataNotFound


def example_split_files(examples_uri: str, split: str) -> List[str]:
    """The files of ExampleGen's split `split`, sorted."""
    return sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def count_classes(statistics_uri: str) -> Dict[str, Dict[str, int]]:
    """{split: {class name: examples}} from StatisticsGen's output (the `class_name` feature's value counts).

    So nothing is read twice.
    """
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import statistics_pb2

    counts = {}
    for split in SPLITS:
        path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        if not tf.io.gfile.exists(path):
            continue
        with tf.io.gfile.GFile(path, "rb") as f:
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        found: Dict[str, int] = {}
        for feature in (f for d in stats.datasets for f in d.features):
            if list(feature.path.step) == [features.CLASS_NAME_KEY]:
                found = {b.label: int(b.sample_count) for b in feature.string_stats.rank_histogram.buckets}
        counts[split] = {n: found.get(n, 0) for n in features.CLASS_NAMES}
    return counts


def predict_samples(model_uri: str, examples_uri: str, num: int = MAX_PREDICTED, batch_size: int = 50) -> List[Sample]:
    """Run the exported model's pixel signature on the first `num` test examples.

    The signature is predict_images, or predict_bands for 13-band models. The examples go `batch_size` at a time
    (bounded memory); each becomes a Sample. DataNotFound when `examples_uri` has no test split.
    """
    import tensorflow as tf

    from serving import signatures

    files = example_split_files(examples_uri, "test")
    if not files:
        raise DataNotFound(f"no test split under {examples_uri} (expected Split-test/)")
    model = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
    samples: List[Sample] = []
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").take(num).batch(batch_size):
        modality = features.modality_of(tf.train.Example.FromString(records[0].numpy()))
        batch = tf.io.parse_example(records, features.raw_feature_spec(modality))
        pixels = batch[features.input_key(modality)]
        name, input_name = signatures.pixel_signature(modality)
        record = modalities.get(modality)
        out = model.signatures[name](**{input_name: tf.cast(pixels, record.input_dtype)})
        if record.encoded:
            pictures = [features.decode_image(e).numpy() for e in pixels]
        else:  # band values: shown in true colour
            pictures = [features.true_colour(b) for b in pixels.numpy()]
        samples.extend(
            Sample(picture=picture, true_class=features.class_name(label),
                   predicted_class=predicted.decode(), confidence=float(probs.max()))
            for picture, label, predicted, probs in zip(pictures, batch[features.LABEL_KEY].numpy(),
                                                        out[signatures.CLASS_NAME].numpy(),
                                                        out[signatures.PROBABILITIES].numpy()))
    return samples


def predict_split(saved_model_dir: str, examples_uri: str, split: str = "test", batch_size: int = 256):
    """(true label ids, probabilities) of a SavedModel's serving_default signature over one split.

    The signature takes serialized tf.Examples, with the Transform graph and the model inside; the split is one of
    ExampleGen's output (DataNotFound when it is missing). These are the model's own predictions, to check the
    Evaluator's numbers against.
    """
    import tensorflow as tf

    from serving import signatures

    files = example_split_files(examples_uri, split)
    if not files:
        raise DataNotFound(f"no {split} split under {examples_uri} (expected Split-{split}/)")
    serve = tf.saved_model.load(saved_model_dir).signatures[signatures.SERVING_DEFAULT]
    spec = {features.LABEL_KEY: features.raw_feature_spec()[features.LABEL_KEY]}
    labels, probabilities = [], []
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        labels.append(tf.io.parse_example(records, spec)[features.LABEL_KEY].numpy())
        probabilities.append(serve(**{signatures.EXAMPLES_INPUT: records})[signatures.PROBABILITIES].numpy())
    return np.concatenate(labels), np.concatenate(probabilities)


def _read_history(model_run_uri: Optional[str]) -> Optional[Dict[str, List[float]]]:
    from components.trainer import HISTORY_FILE  # what the Trainer writes (TensorFlow: imported late)

    path = os.path.join(model_run_uri, HISTORY_FILE) if model_run_uri else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def drift_of_run(metadata_path: str, pipeline_name: str, run_id: Optional[str]) -> Optional[Dict[str, Any]]:
    """The drift gate's comparison of a run; None for a run without one (a single source).

    It is AnomalyCheck's drift.json: the new span's distances to the previous span's and, as `skew`, to the
    served model's training data, each with its threshold.
    """
    from components.anomaly_check import DRIFT_FILE
    from pipeline.results import _runs, _store, _type_id

    store = _store(metadata_path)
    runs = [c for c in _runs(store, pipeline_name) if c.name == run_id] or _runs(store, pipeline_name)[-1:]
    type_id = _type_id(store, "ExampleAnomalies")
    if not runs or type_id is None:
        return None
    for artifact in sorted(store.get_artifacts_by_context(runs[-1].id), key=lambda a: -a.id):
        path = os.path.join(artifact.uri, DRIFT_FILE)
        if artifact.type_id == type_id and os.path.exists(path):
            with open(path) as f:
                drift = json.load(f)
            return drift if drift.get("measurements") or (drift.get("skew") or {}).get("measurements") else None
    return None


def gather_run(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None) -> ReportInputs:
    """ReportInputs for the latest run of `pipeline_name` recorded in `metadata_path` (or its run `run_id`).

    metrics["run_id"] says which run it is.
    """
    from components import evaluation
    from pipeline.results import latest_results, run_settings

    results = latest_results(metadata_path, pipeline_name, run_id)
    if not results.evaluation_uri:
        which = f"run {run_id!r} of pipeline {pipeline_name!r}" if run_id else f"pipeline {pipeline_name!r}"
        raise DataError(f"{which} in {metadata_path} has no Evaluator output yet: "
                         "run the pipeline to the Evaluator first (or check --pipeline-name)")
    metrics = build_metrics(
        evaluation.summarize(results.evaluation_uri),
        evaluation.confusion_matrix(results.evaluation_uri),
        evaluation.validation_summary(results.evaluation_uri),
        blessed=results.blessed,
        model_uri=results.model_uri,
        pushed_version=results.pushed_version if results.pushed else None,
        pushed_destination=results.pushed_destination if results.pushed else None,
    )
    metrics["evaluation_uri"] = results.evaluation_uri
    metrics["run_id"] = results.run_id
    inputs = ReportInputs(metrics=metrics, history=_read_history(results.model_run_uri))
    if results.run_id:
        inputs.settings = run_settings(metadata_path, pipeline_name, results.run_id) or None
    drift = drift_of_run(metadata_path, pipeline_name, results.run_id)
    if drift:
        metrics["drift"] = drift
    if results.statistics_uri:
        inputs.class_counts = count_classes(results.statistics_uri)
    if results.examples_uri and results.model_uri:
        inputs.samples = predict_samples(results.model_uri, results.examples_uri)
        if inputs.samples:
            inputs.calibration = calibration_buckets(inputs.samples)
    return inputs
