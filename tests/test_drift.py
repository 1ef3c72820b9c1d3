"""The drift and skew gates (components/anomaly_check.py): TFDV's comparators from the curated schemas
on real TFDV statistics of synthetic spans (as the ExampleGen writes them, with patch_mean); one line
naming features and distances; --allow-drift; the served model's training statistics."""
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
    for name, seed, shift in (("span-1", 1, Shift()), ("same", 2, Shift()), ("shifted", 3, DEMO_SHIFT),
                              ("brighter", 4, Shift(vegetation_gain=DEMO_SHIFT.vegetation_gain))):
        write_synthetic_span(str(root / name), 200, seed=seed, shift=shift, with_patch_mean=True)
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
    assert [(m["feature"], m["type"]) for m in measured] == [
        ("label", "L_INFTY"), ("patch_mean", "JENSEN_SHANNON_DIVERGENCE")]
    assert all(0 <= m["value"] < m["threshold"] and not m["drifted"] for m in measured), measured
    assert anomaly_check.check_drift(measured, "span 1", allow_drift=False) is None


def test_a_shifted_span_stops_the_run_with_one_line_naming_features_and_distances(rgb_spans):
    schema, stats = rgb_spans
    measured = anomaly_check.compare_statistics(stats["shifted"], stats["span-1"], schema)
    with pytest.raises(anomaly_check.DataDriftError) as err:
        anomaly_check.check_drift(measured, "span 1", allow_drift=False)
    message = str(err.value)
    assert "\n" not in message
    label, pixels = measured
    assert f"label l_infty {label['value']:.4f} > {label['threshold']:g}" in message
    assert f"patch_mean jensen_shannon_divergence {pixels['value']:.4f} > {pixels['threshold']:g}" in message
    assert "span 1" in message and "--allow-drift" in message


def test_brighter_rgb_of_the_same_class_mix_drifts_on_patch_mean_alone(rgb_spans):
    """What the label could not tell on RGB (TFDV reads no pixels inside JPEG bytes): vegetation x1.3."""
    schema, stats = rgb_spans
    measured = {m["feature"]: m for m in anomaly_check.compare_statistics(stats["brighter"], stats["span-1"], schema)}
    assert not measured["label"]["drifted"] and measured["patch_mean"]["drifted"], measured
    with pytest.raises(anomaly_check.DataDriftError, match=r"drifted from span 1: patch_mean jensen_shannon"):
        anomaly_check.check_drift(list(measured.values()), "span 1", allow_drift=False)


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


def _served_model(root, statistics):
    """A Model artifact's folder as the Trainer leaves it: Format-Serving/assets.extra/training_feature_statistics.pb."""
    from tfx.utils import path_utils

    from serving import training_statistics

    uri = str(root)
    training_statistics.write_feature_statistics(path_utils.serving_model_path(uri), statistics)
    return uri


def test_skew_against_the_training_statistics_decides_both_ways(rgb_spans):
    schema, stats = rgb_spans
    same = anomaly_check.compare_with_training(stats["same"], stats["span-1"], schema)
    assert [(m["feature"], m["type"]) for m in same] == [("patch_mean", "JENSEN_SHANNON_DIVERGENCE")]
    assert not same[0]["drifted"] and 0 <= same[0]["value"] < same[0]["threshold"] == 0.05
    assert anomaly_check.check_drift([], "span 1", allow_drift=False, skew=same) is None
    # the JSD TFDV's skew comparator measures is the drift comparator's, on the same pair of spans
    drift = {m["feature"]: m for m in anomaly_check.compare_statistics(stats["brighter"], stats["span-1"], schema)}
    (skewed,) = anomaly_check.compare_with_training(stats["brighter"], stats["span-1"], schema)
    assert skewed["drifted"] and skewed["value"] == drift["patch_mean"]["value"]
    with pytest.raises(anomaly_check.DataDriftError) as err:
        anomaly_check.check_drift([], "span 1", allow_drift=False, skew=[skewed])
    assert str(err.value).startswith("the new span drifted from the served model's training data (skew): "
                                     f"patch_mean jensen_shannon_divergence {skewed['value']:.4f} > 0.05; stopping")


def test_model_statistics_reads_what_the_export_carries_and_none_without(tmp_path, rgb_spans):
    _, stats = rgb_spans
    uri = _served_model(tmp_path / "model", stats["span-1"])
    assert anomaly_check.model_statistics(uri) == stats["span-1"]
    assert anomaly_check.model_statistics(str(tmp_path / "older-model")) is None
    bad = tmp_path / "bad" / "Format-Serving" / "assets.extra"
    bad.mkdir(parents=True)
    (bad / "training_feature_statistics.pb").write_bytes(b"\xff not a proto")
    with pytest.raises(ValueError, match="not a DatasetFeatureStatisticsList; re-export the model"):
        anomaly_check.model_statistics(str(tmp_path / "bad"))
    (bad / "training_feature_statistics.pb").write_bytes(b"")  # parses, as an empty list
    with pytest.raises(ValueError, match="holds no dataset statistics; re-export the model"):
        anomaly_check.model_statistics(str(tmp_path / "bad"))


def test_the_gate_compares_with_the_served_model_and_writes_it_for_the_report(tmp_path, rgb_spans):
    """drift_report with the served model: the skew in drift.json, one line with drift and skew, the
    report's table; a first span (no previous one) is still compared with the served model."""
    from pipeline.report.page import _drift_section

    _, stats = rgb_spans
    for name in ("span-1", "brighter", "same"):
        os.makedirs(tmp_path / name / "Split-train")
        (tmp_path / name / "Split-train" / anomaly_check.STATS_FILE).write_bytes(stats[name].SerializeToString())
    model = _served_model(tmp_path / "model", stats["span-1"])
    with pytest.raises(anomaly_check.DataDriftError, match=r"span 1: patch_mean .*; the new span drifted from "
                                                           r"the served model's training data \(skew\): patch_mean"):
        anomaly_check.drift_report(str(tmp_path / "brighter"), str(tmp_path / "span-1"), 1, 2, SCHEMA, False, model)
    report = anomaly_check.drift_report(str(tmp_path / "brighter"), None, None, 2, SCHEMA, True, model)
    assert report["measurements"] == [] and not report["drifted"] and report["allowed"]
    assert report["skew"]["model"] == model and report["skew"]["skewed"]
    assert report["line"].startswith("the new span drifted from the served model's training data (skew)")
    page = _drift_section(report)
    assert "Skew against the served model's training data" in page and "SKEWED" in page
    assert "Drift against the previous span" not in page
    passed = anomaly_check.drift_report(str(tmp_path / "same"), str(tmp_path / "span-1"), 1, 2, SCHEMA, False, model)
    assert passed["line"] is None and not passed["skew"]["skewed"] and not passed["drifted"]
    assert "no skew beyond the thresholds" in _drift_section(passed)
    # a served model exported before the statistics existed: nothing to compare, the drift gate as before
    older = anomaly_check.drift_report(str(tmp_path / "same"), str(tmp_path / "span-1"), 1, 2, SCHEMA, False,
                                       str(tmp_path / "older-model"))
    assert older["skew"] is None and older["measurements"]
