"""The Evaluator's configuration and a reader that turns its output into plain numbers.

Metrics on the test split: accuracy, macro- and weighted-average F1, macro precision/recall and
per-class precision/recall/F1, all of the top-1 (argmax) prediction with scikit-learn's
definitions (components/top1_metrics.py), the multi-class confusion matrix and example
counts, for the overall slice and one slice per true class (by class name). Blessing:
absolute lower bounds on accuracy and macro F1, and a change threshold against the latest
blessed model when there is one. No slice by `source`: it is a per-file name (synthetic data
shares one prefix, EuroSAT's file names repeat the class), so it would add slices, not insight.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma

# TFMA 0.52 exports its config messages only from the proto module.
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.writers import eval_config_writer

from components import top1_metrics
from schema import features
from serving import signatures

ACCURACY = "sparse_categorical_accuracy"
EXAMPLE_COUNT = "example_count"
# Top-1 metrics (components/top1_metrics.py) under the names the report and metrics.json use.
MACRO_F1 = "macro_f1"
MACRO_PRECISION = "macro_precision"
MACRO_RECALL = "macro_recall"
WEIGHTED_F1 = "weighted_f1"
CONFUSION_MATRIX_PLOT = "multi_class_confusion_matrix_plot"


def _top1(name: str, statistic: str, average: str, thresholds=()) -> config_pb2.MetricConfig:
    """A Top1Metric: `statistic` of the argmax prediction, averaged or per class."""
    return config_pb2.MetricConfig(
        class_name=top1_metrics.Top1Metric.__name__, module=top1_metrics.__name__,
        config=f'"name": "{name}", "statistic": "{statistic}", "average": "{average}", '
               f'"num_classes": {features.NUM_CLASSES}',
        per_slice_thresholds=list(thresholds))


def _overall_threshold(lower_bound: float, max_drop: Optional[float]):
    """A bar on the overall slice only (per-class slices are reported, not gated)."""
    threshold = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": lower_bound})
    )
    if max_drop is not None:
        # Change against the latest blessed model; dropped by TFX when there is none yet.
        threshold.change_threshold.CopyFrom(
            config_pb2.GenericChangeThreshold(
                direction=config_pb2.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_drop}
            )
        )
    return [config_pb2.PerSliceMetricThreshold(slicing_specs=[config_pb2.SlicingSpec()], threshold=threshold)]


def make_eval_config(min_accuracy: float, min_macro_f1: float, max_drop: Optional[float]) -> config_pb2.EvalConfig:
    """EvalConfig for the pipeline's Evaluator (thresholds decide the blessing; their defaults are
    PipelineConfig's)."""
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=signatures.SERVING_DEFAULT,
                # Said, not guessed: unset, TFMA tries tf.keras.models.load_model on each model
                # to guess its type, then loads a Keras one again to evaluate it; the signature is
                # all it calls (tf.saved_model.load).
                model_type=tfma.constants.TF_GENERIC,
                label_key=features.LABEL_KEY,
                prediction_key=signatures.PROBABILITIES,
            )
        ],
        # The model compiles a one-hot loss; TFMA feeds sparse labels, so skip compiled metrics.
        options=config_pb2.Options(include_default_metrics={"value": False}),
        slicing_specs=[
            config_pb2.SlicingSpec(),
            config_pb2.SlicingSpec(feature_keys=[features.CLASS_NAME_KEY]),
        ],
        metrics_specs=[
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="ExampleCount"),
                    config_pb2.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        per_slice_thresholds=_overall_threshold(min_accuracy, max_drop),
                    ),
                    config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            ),
            # Precision/recall/F1 of the argmax prediction (scikit-learn's definitions), from
            # the same confusion matrix as the plot: macro F1 is gated, the rest reported.
            config_pb2.MetricsSpec(metrics=[
                _top1(MACRO_F1, "f1", "macro", _overall_threshold(min_macro_f1, max_drop)),
                _top1(MACRO_PRECISION, "precision", "macro"),
                _top1(MACRO_RECALL, "recall", "macro"),
                _top1(WEIGHTED_F1, "f1", "weighted"),
                *(_top1(statistic, statistic, "per_class") for statistic in top1_metrics.STATISTICS),
            ]),
        ],
    )


def _slice_name(slice_key) -> str:
    """'overall' or the class name of a per-class slice."""
    if not slice_key:
        return "overall"
    (_, value), = slice_key
    return value.decode() if isinstance(value, bytes) else str(value)


def _value(metric_value) -> Optional[float]:
    if metric_value.HasField("double_value"):
        return float(metric_value.double_value.value)
    return None


def _baseline_model_names(eval_uri: str) -> set:
    """Names of the baseline model specs (TFX names them when a baseline was given): their
    metrics sit beside the candidate's in the output and must not be mistaken for them."""
    eval_config = eval_config_writer.load_eval_run(eval_uri)[0]
    return {spec.name for spec in eval_config.model_specs if spec.is_baseline} if eval_config else set()


_LABELS = {ACCURACY: "accuracy", EXAMPLE_COUNT: "example_count",
           **{name: name for name in (MACRO_F1, MACRO_PRECISION, MACRO_RECALL, WEIGHTED_F1)}}


def metric_label(key) -> Optional[str]:
    """A readable name for a TFMA MetricKey ('accuracy', 'macro_f1', 'weighted_f1', ...);
    None for the per-class sub-keys (see summarize) and for metrics the report does not use."""
    if key.HasField("sub_key"):
        return None
    return _LABELS.get(key.name)


def summarize(eval_uri: str) -> Dict[str, Any]:
    """{slice: {metric: value}} from an Evaluator output, plus per-class values per slice.

    Keys per slice: accuracy, macro_f1, weighted_f1, macro_precision, macro_recall,
    example_count, per_class {class name: {precision, recall, f1}} and, when the model was
    compared with a baseline, change {metric: candidate minus baseline}.
    """
    baselines = _baseline_model_names(eval_uri)
    result: Dict[str, Dict[str, Any]] = {}
    for proto in tfma.load_metrics(eval_uri):
        slice_key = tfma.slicer.deserialize_slice_key(proto.slice_key)
        entry = result.setdefault(_slice_name(slice_key), {"per_class": {}})
        for kv in proto.metric_keys_and_values:
            key, value = kv.key, _value(kv.value)
            if value is None or key.model_name in baselines:
                continue
            label = metric_label(key)
            if key.is_diff:
                if label:
                    entry.setdefault("change", {})[label] = value
            elif label:
                entry[label] = value
            elif key.name in top1_metrics.STATISTICS and key.sub_key.HasField("class_id"):
                cls = features.class_name(key.sub_key.class_id.value)
                entry["per_class"].setdefault(cls, {})[key.name] = value
    return result


def confusion_matrix(eval_uri: str) -> List[List[int]]:
    """The overall slice's confusion matrix, rows = true class, columns = predicted class,
    in CLASS_NAMES order (TFMA leaves out zero cells; they are filled in here)."""
    baselines = _baseline_model_names(eval_uri)
    matrix = [[0] * features.NUM_CLASSES for _ in range(features.NUM_CLASSES)]
    for proto in tfma.load_plots(eval_uri):
        if tfma.slicer.deserialize_slice_key(proto.slice_key):
            continue
        for kv in proto.plot_keys_and_values:
            if kv.key.name != CONFUSION_MATRIX_PLOT or kv.key.model_name in baselines:
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            for cell in matrices[0].entries:
                matrix[cell.actual_class_id][cell.predicted_class_id] = int(round(cell.num_weighted_examples))
            return matrix
    raise ValueError(f"no {CONFUSION_MATRIX_PLOT} for the overall slice in {eval_uri}: "
                     "was it written by this project's EvalConfig (make_eval_config)?")


def _bound_text(threshold) -> List[Dict[str, Any]]:
    """The bars inside one MetricThreshold, as (kind, bound) records."""
    bars = []
    if threshold.HasField("value_threshold"):
        vt = threshold.value_threshold
        if vt.HasField("lower_bound"):
            bars.append({"kind": "absolute", "bound": f">= {vt.lower_bound.value:g}",
                         "lower_bound": vt.lower_bound.value})
        if vt.HasField("upper_bound"):
            bars.append({"kind": "absolute", "bound": f"<= {vt.upper_bound.value:g}"})
    if threshold.HasField("change_threshold"):
        ct = threshold.change_threshold
        if ct.HasField("absolute"):
            bars.append({"kind": "change vs baseline", "bound": f">= {ct.absolute.value:+g}"})
        if ct.HasField("relative"):
            bars.append({"kind": "change vs baseline", "bound": f">= {ct.relative.value:+g} (relative)"})
    return bars


def _spec_label(metric) -> str:
    """The name a MetricConfig's values are filed under ('accuracy', 'macro_f1', ...)."""
    if metric.class_name == "SparseCategoricalAccuracy":
        return "accuracy"
    return json.loads("{" + metric.config + "}").get("name", metric.class_name) if metric.config else metric.class_name


def validation_summary(eval_uri: str) -> Dict[str, Any]:
    """Why the Evaluator blessed the model or not: every configured bar with passed/failed,
    from TFMA's validation result and the eval config stored next to it.

    "baseline_model" is the model compared against: None on a first run, when TFX skips the
    change thresholds (rubber stamp) and the absolute bars alone decide.
    """
    validation = tfma.load_validation_result(eval_uri)
    eval_config, _, _, model_locations = eval_config_writer.load_eval_run(eval_uri)
    baselines = _baseline_model_names(eval_uri)
    failed: Dict[tuple, float] = {}
    for per_slice in validation.metric_validations_per_slice:
        slice_name = _slice_name(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
        for failure in per_slice.failures:
            label = metric_label(failure.metric_key) or failure.metric_key.name
            kind = "change vs baseline" if failure.metric_key.is_diff else "absolute"
            failed[(slice_name, label, kind)] = _value(failure.metric_value)
    checks = []
    for spec in eval_config.metrics_specs if eval_config else []:
        for metric in spec.metrics:
            label = _spec_label(metric)
            bars = [(["overall" if s == config_pb2.SlicingSpec() else str(s).strip()
                      for s in per_slice.slicing_specs], per_slice.threshold)
                    for per_slice in metric.per_slice_thresholds]
            if metric.HasField("threshold"):
                bars.append((["every slice"], metric.threshold))
            for slices, threshold in bars:
                for slice_name in slices:
                    for bar in _bound_text(threshold):
                        skipped = bar["kind"] != "absolute" and not baselines
                        key = (slice_name, label, bar["kind"])
                        checks.append({
                            "metric": label, "slice": slice_name, **bar,
                            "status": "skipped (no baseline)" if skipped
                            else ("failed" if key in failed else "passed"),
                            **({"value": failed[key]} if key in failed else {}),
                        })
    reported = {(c["slice"], c["metric"], c["kind"]) for c in checks}
    for (slice_name, label, kind), value in sorted(failed.items(), key=str):
        if (slice_name, label, kind) not in reported:
            checks.append({"metric": label, "slice": slice_name, "kind": kind, "status": "failed", "value": value})
    baseline = next((model_locations[name] for name in baselines if name in model_locations), None)
    return {
        "validation_ok": bool(validation.validation_ok),
        "baseline_model": baseline,
        "checks": checks,
        "missing_slices": [str(s) for s in validation.missing_slices],
    }
