"""The Evaluator's configuration and a reader that turns its output into plain numbers.

Metrics on the test split (the overall ones are the records of components/gated_metrics.py):
accuracy, macro- and weighted-average F1, macro precision/recall and per-class precision/recall/F1,
all of the top-1 (argmax) prediction with scikit-learn's definitions (components/top1_metrics.py),
the multi-class confusion matrix and example counts, for the overall slice and one slice per true
class (by class name). Blessing: absolute lower bounds on the gated metrics (accuracy and macro F1),
and a change threshold against the latest blessed model when there is one. No slice by `source`:
it is a per-file name (synthetic data shares one prefix, EuroSAT's file names repeat the class), so
it would add slices, not insight.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma

# TFMA 0.52 exports its config messages only from the proto module.
from tensorflow_model_analysis.metrics import metric_specs
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.writers import eval_config_writer

from components import gated_metrics, top1_metrics
from schema import features
from serving import signatures

ACCURACY = gated_metrics.get("accuracy").key
EXAMPLE_COUNT = gated_metrics.get("example_count").key
# Top-1 metrics (components/top1_metrics.py) under the names the report and metrics.json use.
MACRO_F1 = gated_metrics.get("macro_f1").name
MACRO_PRECISION = gated_metrics.get("macro_precision").name
MACRO_RECALL = gated_metrics.get("macro_recall").name
WEIGHTED_F1 = gated_metrics.get("weighted_f1").name
CONFUSION_MATRIX_PLOT = "multi_class_confusion_matrix_plot"


def _overall_threshold(metric: gated_metrics.Metric, lower_bound: float,
                       max_drop: Optional[float]) -> List[config_pb2.PerSliceMetricThreshold]:
    """A bar on the overall slice only (per-class slices are reported, not gated)."""
    threshold = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(lower_bound={"value": lower_bound})
    )
    if max_drop is not None:
        # Change against the latest blessed model; dropped by TFX when there is none yet.
        higher = metric.direction == "HIGHER_IS_BETTER"
        threshold.change_threshold.CopyFrom(
            config_pb2.GenericChangeThreshold(
                direction=config_pb2.MetricDirection.Value(metric.direction),
                absolute={"value": -max_drop if higher else max_drop},
            )
        )
    return [config_pb2.PerSliceMetricThreshold(slicing_specs=[config_pb2.SlicingSpec()], threshold=threshold)]


def metric_config(metric: gated_metrics.Metric, thresholds: Sequence[config_pb2.PerSliceMetricThreshold] = ()
                  ) -> config_pb2.MetricConfig:
    """The MetricConfig of a registry record.

    Its class and module, its constructor arguments as TFMA's JSON config (what tfma.metrics.specs_from_metrics
    writes), and its bars.
    """
    return config_pb2.MetricConfig(
        class_name=metric.class_name, module=metric.module,
        config=json.dumps(dict(metric.config)) if metric.config else "",
        per_slice_thresholds=list(thresholds))


def _per_class(statistic: str) -> config_pb2.MetricConfig:
    """A Top1Metric of `statistic` per class id (reported in the per-class table, not gated)."""
    return metric_config(gated_metrics.Metric(
        name=statistic, key=statistic, class_name="Top1Metric", module=gated_metrics.TOP1_MODULE,
        config={"name": statistic, "statistic": statistic, "average": "per_class",
                "num_classes": features.NUM_CLASSES}))


def make_eval_config(max_drop: Optional[float] = None, **lower_bounds: float) -> config_pb2.EvalConfig:
    """EvalConfig for the pipeline's Evaluator from the metrics registry (components.gated_metrics).

    Every gated metric's lower bound by its PipelineConfig field (`min_accuracy=0.8, min_macro_f1=0.8`, or
    `**gated_metrics.bounds_of(config)`) and `max_drop`, the change allowed against the latest blessed model (None:
    no change bar). The thresholds decide the blessing.
    """
    bounds = gated_metrics.check_bounds(lower_bounds)

    def configs(custom: bool) -> List[config_pb2.MetricConfig]:
        return [metric_config(m, _overall_threshold(m, bounds[m.name], max_drop) if m.name in bounds else ())
                for m in gated_metrics.METRICS if bool(m.module) == custom]

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
            config_pb2.MetricsSpec(metrics=[*configs(custom=False),
                                            config_pb2.MetricConfig(class_name="MultiClassConfusionMatrixPlot")]),
            # Precision/recall/F1 of the argmax prediction (scikit-learn's definitions), from
            # the same confusion matrix as the plot; then each statistic per class (reported).
            config_pb2.MetricsSpec(metrics=[
                *configs(custom=True),
                *(_per_class(statistic) for statistic in top1_metrics.STATISTICS),
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
    """Names of the baseline model specs (TFX names them when a baseline was given).

    Their metrics sit beside the candidate's in the output and must not be mistaken for them.
    """
    eval_config = eval_config_writer.load_eval_run(eval_uri)[0]
    return {spec.name for spec in eval_config.model_specs if spec.is_baseline} if eval_config else set()


def metric_label(key) -> Optional[str]:
    """A readable name for a TFMA MetricKey ('accuracy', 'macro_f1', 'weighted_f1', ...: the registry's names).

    None for the per-class sub-keys (see summarize) and for metrics the report does not use.
    """
    if key.HasField("sub_key"):
        return None
    metric = gated_metrics.of_key(key.name)
    return metric.name if metric else None


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
    """The overall slice's confusion matrix, rows = true class, columns = predicted class.

    In CLASS_NAMES order (TFMA leaves out zero cells; they are filled in here).
    """
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


def _spec_label(metric: config_pb2.MetricConfig) -> str:
    """The name a MetricConfig's values are filed under ('accuracy', 'macro_f1', ...).

    TFMA's own reading of the config gives the metric's key, the registry its name.
    """
    key = metric_specs.metric_instance(metric).name
    registered = gated_metrics.of_key(key)
    return registered.name if registered else key


def validation_summary(eval_uri: str) -> Dict[str, Any]:
    """Why the Evaluator blessed the model or not.

    Every configured bar with passed/failed, from TFMA's validation result and the eval config stored next to it.

    "baseline_model" is the model compared against: None on a first run, when TFX skips the
    change thresholds (rubber stamp) and the absolute bars alone decide.
    """
    validation = tfma.load_validation_result(eval_uri)
    eval_config, _, _, model_locations = eval_config_writer.load_eval_run(eval_uri)
    baselines = _baseline_model_names(eval_uri)
    failed: Dict[tuple, Optional[float]] = {}
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
