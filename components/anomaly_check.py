"""Stop the pipeline before Transform when ExampleValidator found anomalies.

ExampleValidator only *records* anomalies; TFX goes on to Transform and trains on whatever
arrived. This component reads the anomalies artifact and fails the run with a message that names
each split, feature and problem (``train: feature 'label': Out-of-range values ...``), so bad data
never reaches training silently. Transform runs after it (create_pipeline wires the order).
"""

import json
import os
from typing import Dict, List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx

from schema.errors import DataError

ANOMALIES_FILE = "SchemaDiff.pb"  # what ExampleValidator writes under Split-<name>/


class DataAnomaliesError(DataError):
    """The examples do not match the schema; the message says where and how."""


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


@tfx.dsl.components.component
def AnomalyCheck(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    schema_file: tfx.dsl.components.Parameter[str],
) -> None:
    """Fails (and so stops every downstream component) when the anomalies artifact is not empty;
    the message names `schema_file`, the curated schema the run validated against."""
    splits = json.loads(anomalies.split_names)
    check_anomalies(read_anomalies(anomalies.uri, splits), schema_hint=schema_file)
