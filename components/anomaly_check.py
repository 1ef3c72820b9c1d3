"""Stop the pipeline before Transform when ExampleValidator found anomalies, or the new span drifted.

ExampleValidator only *records* anomalies; TFX goes on to Transform and trains on whatever
arrived. This component reads the anomalies artifact and fails the run with a message that names
each split, feature and problem (``train: feature 'label': Out-of-range values ...``), so bad data
never reaches training silently. Transform runs after it (create_pipeline wires the order).

With data in spans (components/spans.py) it is also the drift gate: TFDV compares the new span's
train-split statistics with the previous span's by the drift comparators of the curated schema
(L-infinity on the label, Jensen-Shannon divergence on the 13 bands; schema/README.md says how
the thresholds were chosen). A distance above its threshold stops the run with one line naming the
features and distances, unless `allow_drift` (--allow-drift) lets the deliberate change through;
every distance, above or below, is written to the gate's artifact (``drift.json``) for the report.

It is also the skew gate: given the served model (the latest blessed one), it compares the new
span's train statistics with the training statistics that model carries
(``assets.extra/training_feature_statistics.pb``, written by the Trainer) by the schema's
``skew_comparator``s (Jensen-Shannon divergence on the per-band ``patch_mean``). Skew beyond a
threshold stops the run like drift, and `allow_drift` lets it through alike.
"""

import json
import os
from typing import Any, Dict, List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx

from schema.errors import DataError

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes under Split-<name>/


class DataAnomaliesError(DataError):
    """The examples do not match the schema; the message says where and how."""


class DataDriftError(DataError):
    """The new span's distribution moved further from the previous span's than the schema allows."""


DRIFT_SPLIT = "train"  # the split whose statistics are compared (the largest of a span)
DRIFT_FILE = "drift.json"  # in the gate's artifact: every measured distance, for the report
STATS_FILE = "FeatureStats.pb"  # what StatisticsGen writes under Split-<name>/
DRIFT_TYPES = ("L_INFTY", "JENSEN_SHANNON_DIVERGENCE", "NORMALIZED_ABSOLUTE_DIFFERENCE")


def load_split_statistics(uri: str, split: str = DRIFT_SPLIT):
    """The DatasetFeatureStatisticsList of one split of an ExampleStatistics artifact."""
    import tensorflow_data_validation as tfdv

    return tfdv.load_stats_binary(os.path.join(uri, f"Split-{split}", STATS_FILE))


def _measurements(anomalies: anomalies_pb2.Anomalies, field: str) -> List[Dict[str, Any]]:
    """One {feature, type, value, threshold, drifted} per measurement in the anomalies' drift_skew_info.

    `field` names the measurements read: drift_measurements or skew_measurements. Sorted by feature and type.
    """
    out = []
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for m in getattr(info, field):
            kind = anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type)
            out.append({"feature": feature, "type": kind, "value": round(float(m.value), 4),
                        "threshold": round(float(m.threshold), 4), "drifted": bool(m.value > m.threshold)})
    return sorted(out, key=lambda m: (m["feature"], m["type"]))


def compare_statistics(statistics, previous, schema) -> List[Dict[str, Any]]:
    """TFDV's drift comparison of `statistics` with `previous`: one {feature, type, value, threshold, drifted} each.

    The comparisons are `schema`'s drift comparators; each is listed, above its threshold or not.
    """
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(statistics=statistics, schema=schema, previous_statistics=previous)
    return _measurements(anomalies, "drift_measurements")


def compare_with_training(statistics, training, schema) -> List[Dict[str, Any]]:
    """TFDV's skew comparison of the new span's `statistics` with a model's `training` statistics, per comparison.

    The comparisons are `schema`'s skew comparators, with the training data as TFDV's `statistics` and the new span
    as its `serving_statistics`: one {feature, type, value, threshold, drifted} per comparison.
    """
    import tensorflow_data_validation as tfdv

    anomalies = tfdv.validate_statistics(statistics=training, schema=schema, serving_statistics=statistics)
    return _measurements(anomalies, "skew_measurements")


def model_statistics(model_uri: str):
    """The training statistics a Model artifact's serving export carries; None when it carries none.

    The statistics are a DatasetFeatureStatisticsList; a model exported before the Trainer wrote them has none.
    """
    from tfx.utils import path_utils

    from serving import training_statistics

    return training_statistics.read_feature_statistics(path_utils.serving_model_path(model_uri))


def distance_text(measurement: Dict[str, Any]) -> str:
    """How the gate's lines name one measurement: ``patch_mean jensen_shannon_divergence 0.1325``."""
    return f"{measurement['feature']} {measurement['type'].lower()} {measurement['value']:.4f}"


def drift_line(measured: List[Dict[str, Any]], against: str) -> Optional[str]:
    """One line naming each drifted feature with its distance and threshold; None when none drifted."""
    drifted = [m for m in measured if m["drifted"]]
    if not drifted:
        return None
    parts = ", ".join(f"{distance_text(m)} > {m['threshold']:g}" for m in drifted)
    return f"the new span drifted from {against}: {parts}"


SKEW_AGAINST = "the served model's training data (skew)"  # what the skew line says the span drifted from


def check_drift(measured: List[Dict[str, Any]], against: str, allow_drift: bool,
                skew: Optional[List[Dict[str, Any]]] = None) -> Optional[str]:
    """Raise DataDriftError on drift or skew unless `allow_drift`; returns the line (None: neither).

    Drift is from `against`; skew, checked when `skew` is given, from the served model's training data. The error
    is that one line, with the fix.
    """
    parts = [line for line in (drift_line(measured, against), drift_line(skew or [], SKEW_AGAINST)) if line]
    line = "; ".join(parts) or None
    if line and not allow_drift:
        raise DataDriftError(f"{line}; stopping before Transform. If the change is deliberate, run again with "
                             "--allow-drift (or fix the data)")
    return line


def describe_anomalies(anomalies: anomalies_pb2.Anomalies) -> List[str]:
    """One line per anomalous feature (and for the dataset as a whole): what is wrong."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(
            f"{r.short_description}: {r.description}" if r.description else r.short_description
            for r in info.reason
        ) or info.description
        lines.append(f"feature {feature!r}: {reasons}")
    for info in anomalies.dataset_anomaly_info.reason:
        lines.append(f"dataset: {info.short_description}: {info.description}")
    return lines


def check_anomalies(by_split: Dict[str, anomalies_pb2.Anomalies], schema_hint: str = "") -> None:
    """Raise DataAnomaliesError listing every anomaly of every split; return when there is none."""
    problems = [f"{split}: {line}" for split, a in sorted(by_split.items()) for line in describe_anomalies(a)]
    if problems:
        raise DataAnomaliesError(
            "ExampleValidator found anomalies, stopping before Transform:\n  "
            + "\n  ".join(problems)
            + "\nFix the data (see the conversion report of image folders) or, if the data is right, "
            "the schema" + (f" ({schema_hint})" if schema_hint else "") + "."
        )


def read_anomalies(uri: str, splits: List[str]) -> Dict[str, anomalies_pb2.Anomalies]:
    """The Anomalies proto of each split of an ExampleAnomalies artifact."""
    import tensorflow as tf

    out = {}
    for split in splits:
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(os.path.join(uri, f"Split-{split}", ANOMALIES_FILE), "rb") as f:
            anomalies.ParseFromString(f.read())
        out[split] = anomalies
    return out


def drift_report(statistics_uri: str, previous_uri: Optional[str], previous_span: Optional[int], span: int,
                 schema_file: str, allow_drift: bool, model_uri: Optional[str] = None) -> Dict[str, Any]:
    """Compare the new span's statistics with the previous span's and the served model's; the dict for drift.json.

    `previous_uri` is None on a first span or a compiled pipeline. `model_uri` is a Model artifact whose training
    statistics the span is compared with; None, or a model carrying none, compares nothing (``skew`` is then None).
    The comparisons are checked: DataDriftError on drift or skew beyond a threshold unless `allow_drift`.
    """
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(schema_file)
    statistics = load_split_statistics(statistics_uri)
    measured = [] if previous_uri is None else compare_statistics(statistics, load_split_statistics(previous_uri),
                                                                  schema)
    training = model_statistics(model_uri) if model_uri else None
    skew = None if training is None else compare_with_training(statistics, training, schema)
    line = check_drift(measured, f"span {previous_span}", allow_drift, skew)
    return {"span": span, "previous_span": previous_span, "split": DRIFT_SPLIT, "schema": schema_file,
            "measurements": measured, "drifted": any(m["drifted"] for m in measured),
            "skew": None if skew is None else {"model": model_uri, "measurements": skew,
                                               "skewed": any(m["drifted"] for m in skew)},
            "allowed": bool(line and allow_drift), "line": line}


@tfx.dsl.components.component
def AnomalyCheck(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema_file: tfx.dsl.components.Parameter[str],
    drift: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
    previous_statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics] = None,
    served_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model] = None,
    allow_drift: tfx.dsl.components.Parameter[int] = 0,
) -> None:
    """Fail, and so stop every downstream component, on anomalies, or on drift or skew the run does not allow.

    Anomalies: the anomalies artifact is not empty (the message names `schema_file`, the curated schema the run
    validated against). Drift: the new span's `statistics` moved from the `previous_statistics` (the previous span's;
    absent on a first span or a single source) beyond the schema's thresholds. Skew: they moved from the training
    statistics of the `served_model` (the latest blessed model; absent before one, or carrying none) beyond them.
    `allow_drift` lets drift and skew through.
    """
    import logging

    import tensorflow as tf

    splits = json.loads(anomalies.split_names)
    check_anomalies(read_anomalies(anomalies.uri, splits), schema_hint=schema_file)
    report: Dict[str, Any] = {"measurements": [], "drifted": False, "skew": None, "line": None}
    if statistics is not None and (previous_statistics is not None or served_model is not None):
        from components.spans import span_of

        report = drift_report(statistics.uri, previous_statistics.uri if previous_statistics else None,
                              span_of(previous_statistics) if previous_statistics else None, span_of(statistics),
                              schema_file, bool(allow_drift), served_model.uri if served_model else None)
        measured = report["measurements"] + (report["skew"]["measurements"] if report["skew"] else [])
        distances = ", ".join(distance_text(m) for m in measured)
        decision = (report["line"] + " (let through: --allow-drift)" if report["line"]
                    else f"no drift or skew beyond the thresholds ({distances or 'nothing compared'})")
        logging.getLogger(__name__).warning("drift gate: span %s vs span %s and the served model %s: %s",
                                            report["span"], report["previous_span"],
                                            served_model.uri if served_model else None, decision)
    drift.split_names = json.dumps([DRIFT_SPLIT])
    with tf.io.gfile.GFile(os.path.join(drift.uri, DRIFT_FILE), "w") as f:
        json.dump(report, f, indent=1)
