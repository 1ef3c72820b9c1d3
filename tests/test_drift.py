"""The drift gate (components/anomaly_check.py): TFDV's comparators from the curated schemas on
real TFDV statistics of synthetic spans; one line naming features and distances; --allow-drift."""
import os

import pytest

from components import anomaly_check
from pipeline.config import REPO_ROOT
from schema.example_data.synthetic import DEMO_SHIFT, Shift, write_synthetic_span

SCHEMA = os.path.join(REPO_ROOT, "schema", "schema.pbtxt")
SCHEMA_ALL = os.path.join(REPO_ROOT, "schema", "schema_all.pbtxt")


def _stats(folder, schema):
    import tensorflow_data_validation as tfdv

    return tfdv.generate_statistics_from_tfrecord(os.path.join(folder, "*.tfrecord"),
                                                  stats_options=tfdv.StatsOptions(schema=schema))


@pytest.fixture(scope="module")
def rgb_spans(tmp_path_factory):
    import tensorflow_data_validation as tfdv

    root = tmp_path_factory.mktemp("spans")
    schema = tfdv.load_schema_text(SCHEMA)
    out = {}
    for name, seed, shift in (("span-1", 1, Shift()), ("same", 2, Shift()), ("shifted", 3, DEMO_SHIFT)):
        write_synthetic_span(str(root / name), 200, seed=seed, shift=shift)
        out[name] = _stats(str(root / name), schema)
    return schema, out


def test_the_curated_schemas_carry_the_drift_comparators():
    import tensorflow_data_validation as tfdv

    rgb = {f.name: f for f in tfdv.load_schema_text(SCHEMA).feature}
    assert rgb["label"].drift_comparator.infinity_norm.threshold > 0
    bands = {f.name: f for f in tfdv.load_schema_text(SCHEMA_ALL).feature}
    assert bands["label"].drift_comparator.infinity_norm.threshold > 0
    assert bands["bands"].drift_comparator.jensen_shannon_divergence.threshold > 0


def test_an_unshifted_span_passes_and_its_distances_are_measured(rgb_spans):
    schema, stats = rgb_spans
    measured = anomaly_check.compare_statistics(stats["same"], stats["span-1"], schema)
    assert [m["feature"] for m in measured] == ["label"]
    assert 0 <= measured[0]["value"] < measured[0]["threshold"]
    assert anomaly_check.check_drift(measured, "span 1", allow_drift=False) is None


def test_a_shifted_span_stops_the_run_with_one_line_naming_features_and_distances(rgb_spans):
    schema, stats = rgb_spans
    measured = anomaly_check.compare_statistics(stats["shifted"], stats["span-1"], schema)
    with pytest.raises(anomaly_check.DataDriftError) as err:
        anomaly_check.check_drift(measured, "span 1", allow_drift=False)
    message = str(err.value)
    assert "\n" not in message
    value = measured[0]["value"]
    assert f"label l_infty {value:.4f} > {measured[0]['threshold']:g}" in message
    assert "span 1" in message and "--allow-drift" in message


def test_allow_drift_lets_the_change_through_and_keeps_the_line(rgb_spans):
    schema, stats = rgb_spans
    measured = anomaly_check.compare_statistics(stats["shifted"], stats["span-1"], schema)
    line = anomaly_check.check_drift(measured, "span 1", allow_drift=True)
    assert line and line.startswith("the new span drifted from span 1: label l_infty")


def test_band_drift_is_jensen_shannon_on_13_band_spans(tmp_path):
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(SCHEMA_ALL)
    write_synthetic_span(str(tmp_path / "a"), 60, seed=1, modality="all")
    write_synthetic_span(str(tmp_path / "b"), 60, seed=2, modality="all",
                         shift=Shift(vegetation_gain=1.3))
    measured = {m["feature"]: m for m in anomaly_check.compare_statistics(
        _stats(str(tmp_path / "b"), schema), _stats(str(tmp_path / "a"), schema), schema)}
    assert measured["bands"]["type"] == "JENSEN_SHANNON_DIVERGENCE"
    assert measured["bands"]["drifted"], measured


def test_the_gate_reads_the_statistics_artifacts_layout(tmp_path, rgb_spans):
    """drift_report on StatisticsGen's layout (Split-train/FeatureStats.pb), what the component reads."""

    _, stats = rgb_spans
    for name in ("span-1", "shifted"):
        os.makedirs(tmp_path / name / "Split-train")
        (tmp_path / name / "Split-train" / anomaly_check.STATS_FILE).write_bytes(stats[name].SerializeToString())
    report = anomaly_check.drift_report(str(tmp_path / "shifted"), str(tmp_path / "span-1"), 1, 2, SCHEMA, True)
    assert report["drifted"] and report["allowed"] and report["previous_span"] == 1
    with pytest.raises(anomaly_check.DataDriftError):
        anomaly_check.drift_report(str(tmp_path / "shifted"), str(tmp_path / "span-1"), 1, 2, SCHEMA, False)


def test_shift_counts_follow_the_weights():
    assert sum(DEMO_SHIFT.counts(400)) == 400
    assert Shift().counts(20) == [2] * 10
    with pytest.raises(ValueError):
        Shift(class_weights=(1, 2))
