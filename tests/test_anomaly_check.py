"""The anomaly gate between ExampleValidator and Transform, on fabricated anomalies protos."""
import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomaly_check import ANOMALIES_FILE, DataAnomaliesError, check_anomalies, read_anomalies


def _anomalies(**features) -> anomalies_pb2.Anomalies:
    a = anomalies_pb2.Anomalies()
    for name, (short, desc) in features.items():
        info = a.anomaly_info[name]
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        reason = info.reason.add()
        reason.type = anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT
        reason.short_description, reason.description = short, desc
    return a


def test_no_anomalies_passes():
    check_anomalies({"train": anomalies_pb2.Anomalies(), "eval": anomalies_pb2.Anomalies()})


def test_anomalies_stop_the_run_naming_split_feature_and_problem():
    bad = _anomalies(label=("Out-of-range values", "Unexpectedly large value: 12."),
                     class_name=("Unexpected string values", "Examples contain values missing from the schema: Clouds"))
    with pytest.raises(DataAnomaliesError) as err:
        check_anomalies({"train": anomalies_pb2.Anomalies(), "test": bad}, schema_hint="schema/schema.pbtxt")
    msg = str(err.value)
    assert "test: feature 'label': Out-of-range values: Unexpectedly large value: 12." in msg
    assert "test: feature 'class_name': Unexpected string values" in msg and "Clouds" in msg
    assert "train:" not in msg and "schema/schema.pbtxt" in msg


def test_reads_the_artifact_layout_example_validator_writes(tmp_path):
    for split, a in (("train", anomalies_pb2.Anomalies()), ("eval", _anomalies(image=("Missing", "")))):
        os.makedirs(tmp_path / f"Split-{split}")
        (tmp_path / f"Split-{split}" / ANOMALIES_FILE).write_bytes(a.SerializeToString())
    read = read_anomalies(str(tmp_path), ["train", "eval"])
    assert not read["train"].anomaly_info and "image" in read["eval"].anomaly_info
    with pytest.raises(DataAnomaliesError, match="eval: feature 'image': Missing"):
        check_anomalies(read)
