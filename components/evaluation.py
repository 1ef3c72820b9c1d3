"""The Evaluator's configuration and a reader that turns its output into plain numbers.

Metrics on the test split: accuracy, macro-averaged F1 (plus per-class precision/recall/F1
through binarisation), the multi-class confusion matrix and example counts, for the overall
slice and one slice per true class (by class name). Blessing: absolute lower bounds, and a
change threshold against the latest blessed model when there is one.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any, Dict, Optional  # noqa: E402

import tensorflow_model_analysis as tfma  # noqa: E402
# TFMA 0.52 exports its config messages only from the proto module.
from tensorflow_model_analysis.proto import config_pb2  # noqa: E402

from components import features  # noqa: E402
from serving import signatures  # noqa: E402

ACCURACY = "sparse_categorical_accuracy"
F1 = "f1_score"
PRECISION = "precision"
RECALL = "recall"
EXAMPLE_COUNT = "example_count"
CONFUSION_MATRIX_PLOT = "multi_class_confusion_matrix_plot"


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


def make_eval_config(
    min_accuracy: float = 0.8, min_macro_f1: float = 0.8, max_drop: Optional[float] = 0.01
) -> config_pb2.EvalConfig:
    """EvalConfig for the pipeline's Evaluator (thresholds decide the blessing)."""
    class_ids = list(range(features.NUM_CLASSES))
    return config_pb2.EvalConfig(
        model_specs=[
            config_pb2.ModelSpec(
                signature_name=signatures.SERVING_DEFAULT,
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
            # Per-class precision/recall/F1 (one sub-key per class id).
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(class_name="F1Score"),
                    config_pb2.MetricConfig(class_name="Precision"),
                    config_pb2.MetricConfig(class_name="Recall"),
                ],
                binarize=config_pb2.BinarizationOptions(class_ids={"values": class_ids}),
            ),
            # Macro averages over the classes; macro F1 is gated. Kept apart from the per-class
            # spec so that the bar applies to the average, not to every class.
            config_pb2.MetricsSpec(
                metrics=[
                    config_pb2.MetricConfig(
                        class_name="F1Score",
                        per_slice_thresholds=_overall_threshold(min_macro_f1, max_drop),
                    ),
                    config_pb2.MetricConfig(class_name="Precision"),
                    config_pb2.MetricConfig(class_name="Recall"),
                ],
                aggregate=config_pb2.AggregationOptions(
                    macro_average=True, class_weights={i: 1.0 for i in class_ids}
                ),
            ),
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


def summarize(eval_uri: str) -> Dict[str, Any]:
    """{slice: {metric: value}} from an Evaluator output, plus per-class values per slice.

    Keys per slice: accuracy, macro_f1, macro_precision, macro_recall, example_count and,
    for the overall slice, per_class {class name: {precision, recall, f1}}.
    """
    result: Dict[str, Dict[str, Any]] = {}
    for proto in tfma.load_metrics(eval_uri):
        slice_key = tfma.slicer.deserialize_slice_key(proto.slice_key)
        entry = result.setdefault(_slice_name(slice_key), {"per_class": {}})
        for kv in proto.metric_keys_and_values:
            key, value = kv.key, _value(kv.value)
            if value is None or key.is_diff:
                continue
            name = key.name
            if key.HasField("aggregation_type") and key.aggregation_type.macro_average:
                entry[f"macro_{'f1' if name == F1 else name}"] = value
            elif key.HasField("sub_key") and key.sub_key.HasField("class_id"):
                cls = features.class_name(key.sub_key.class_id.value)
                short = "f1" if name == F1 else name
                entry["per_class"].setdefault(cls, {})[short] = value
            elif name == ACCURACY:
                entry["accuracy"] = value
            elif name == EXAMPLE_COUNT:
                entry["example_count"] = value
    return result
