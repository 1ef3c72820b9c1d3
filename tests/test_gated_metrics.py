"""The metrics registry (components/gated_metrics.py) drives the EvalConfig, metrics.json, the
report and the CLI's messages: a new gated metric is one more record."""
import dataclasses

import pytest

from components import evaluation, gated_metrics
from pipeline.report.metrics import build_metrics
from pipeline.report.page import render_html
from schema import features


def _configs(eval_config):
    return [m for spec in eval_config.metrics_specs for m in spec.metrics]


def test_every_record_is_one_metric_config_that_tfma_reads_back_under_its_name():
    eval_config = evaluation.make_eval_config(min_accuracy=0.8, min_macro_f1=0.7, max_drop=0.01)
    labels = {evaluation._spec_label(m): m for m in _configs(eval_config)}
    for metric in gated_metrics.METRICS:
        config = labels[metric.name]
        assert (config.class_name, config.module) == (metric.class_name, metric.module)
        assert bool(config.per_slice_thresholds) == (metric.bound is not None), metric.name
    bars = {name: labels[name].per_slice_thresholds[0].threshold for name in ("accuracy", "macro_f1")}
    assert bars["accuracy"].value_threshold.lower_bound.value == 0.8
    assert bars["macro_f1"].value_threshold.lower_bound.value == 0.7
    assert all(b.change_threshold.absolute.value == -0.01 for b in bars.values())


def test_bounds_are_checked_by_name():
    with pytest.raises(ValueError, match="missing min_macro_f1"):
        evaluation.make_eval_config(min_accuracy=0.8)
    with pytest.raises(ValueError, match="unknown min_auc"):
        evaluation.make_eval_config(min_accuracy=0.8, min_macro_f1=0.8, min_auc=0.5)


def test_bounds_of_reads_the_pipeline_config():
    from pipeline.config import PipelineConfig

    config = PipelineConfig(min_accuracy=0.6, min_macro_f1=0.5)
    assert gated_metrics.bounds_of(config) == {"min_accuracy": 0.6, "min_macro_f1": 0.5}


def test_a_new_gated_metric_is_one_record(monkeypatch):
    recall = dataclasses.replace(gated_metrics.get("macro_recall"), bound="min_macro_recall", label="macro recall")
    monkeypatch.setattr(gated_metrics, "METRICS", tuple(
        recall if m.name == "macro_recall" else m for m in gated_metrics.METRICS))

    eval_config = evaluation.make_eval_config(min_accuracy=0.8, min_macro_f1=0.7, min_macro_recall=0.6, max_drop=None)
    gated = {evaluation._spec_label(m): m.per_slice_thresholds[0].threshold.value_threshold.lower_bound.value
             for m in _configs(eval_config) if m.per_slice_thresholds}
    assert gated == {"accuracy": 0.8, "macro_f1": 0.7, "macro_recall": 0.6}
    with pytest.raises(ValueError, match="missing min_macro_recall"):
        evaluation.make_eval_config(min_accuracy=0.8, min_macro_f1=0.7)

    assert recall.flag == "--min-macro-recall"
    assert gated_metrics.no_bar_flags() == "--min-accuracy 0 --min-macro-f1 0 --min-macro-recall 0"
    assert gated_metrics.gated_names() == "test accuracy, macro F1 and macro recall"
    overall = {"accuracy": 0.9, "macro_f1": 0.8, "macro_recall": 0.7, "example_count": 52.0, "per_class": {}}
    assert gated_metrics.run_summary(overall) == {"test_accuracy": 0.9, "test_macro_f1": 0.8, "test_macro_recall": 0.7}

    from pipeline.results import no_bar_note

    assert "--min-macro-recall 0" in no_bar_note([], 0.5)

    confusion = [[0] * features.NUM_CLASSES for _ in range(features.NUM_CLASSES)]
    metrics = build_metrics({"overall": overall}, confusion, {"checks": []}, blessed=True)
    assert metrics["macro_recall"] == 0.7 and metrics["example_count"] == 52
    assert "<th>macro_recall</th><td>0.700</td>" in render_html(metrics, [])


def test_a_reported_metric_has_no_flag():
    with pytest.raises(ValueError, match="'weighted_f1' is reported, not gated"):
        _ = gated_metrics.get("weighted_f1").flag
