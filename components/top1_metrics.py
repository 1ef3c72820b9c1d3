"""Precision, recall and F1 of the top-1 (argmax) prediction, as TFMA metrics.

TFMA's own F1Score/Precision/Recall on a multi-class model need `binarize: class_ids`, which
judges each class one-vs-rest at a 0.5 threshold on that class's probability: an example whose
top probability is 0.4 counts as "no" for every class. That is not the prediction the model
makes, and with label smoothing most top probabilities sit below 0.5. These metrics are derived
from TFMA's multi-class confusion matrix (the one MultiClassConfusionMatrixPlot draws, argmax at
threshold 0), so the numbers, the plot and the blessing all describe the same predictions.

Definitions are scikit-learn's (`precision_recall_fscore_support`, zero_division=0): per class
precision tp/(tp+fp), recall tp/(tp+fn), F1 2tp/(2tp+fp+fn); "macro" is the plain mean and
"weighted" the support-weighted mean over the labels that occur as truth or prediction (sklearn's
default label set); "per_class" gives every class id, absent ones as 0.

Use from an EvalConfig (the computation of the shared confusion matrix runs once):

    MetricConfig(class_name="Top1Metric", module="components.top1_metrics",
                 config='"name": "macro_f1", "statistic": "f1", "average": "macro", "num_classes": 10')
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.metrics import multi_class_confusion_matrix_metrics as mccm

STATISTICS = ("precision", "recall", "f1")
AVERAGES = ("macro", "weighted", "per_class")
# Every Top1Metric asks for TFMA's default matrices (argmax, threshold 0.0: a softmax top
# probability is always above it), the same computation as MultiClassConfusionMatrixPlot's.
ARGMAX_THRESHOLD = 0.0


def confusion_from_entries(entries: Iterable[Tuple[int, int, float]], num_classes: int) -> np.ndarray:
    """[true, predicted] counts from (actual id, predicted id, weight) triples.

    An example with no prediction (TFMA's NO_PREDICTED_CLASS_ID, -1) is kept in an extra last column: it is a miss
    for its true class and a prediction of none.
    """
    matrix = np.zeros((num_classes, num_classes + 1), dtype=np.float64)
    for actual, predicted, weight in entries:
        if not 0 <= actual < num_classes or predicted >= num_classes:
            raise ValueError(
                f"class id {actual if not 0 <= actual < num_classes else predicted} is outside "
                f"0..{num_classes - 1}: the model or the labels do not have {num_classes} classes")
        matrix[actual, predicted if predicted >= 0 else num_classes] += weight
    return matrix


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def scores(matrix) -> Dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support, and the labels that occur, from a count matrix.

    The labels that occur (as truth or as prediction) come as a mask; the matrix counts [true, predicted] pairs. A
    matrix one column wider than tall holds the examples with no prediction in its last column.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    tp = np.diag(matrix[:, :n])
    support = matrix.sum(axis=1)
    predicted = matrix[:, :n].sum(axis=0)
    return {
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, support),
        "f1": _ratio(2 * tp, support + predicted),
        "support": support,
        "present": (support + predicted) > 0,
    }


def averaged(per_class: Dict[str, np.ndarray], statistic: str, how: str) -> float:
    """The macro or weighted average (as sklearn computes it) of one statistic over the labels that occur."""
    present = per_class["present"]
    values = per_class[statistic][present]
    if how == "macro":
        return float(values.mean()) if values.size else 0.0
    weights = per_class["support"][present]
    return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else 0.0


def _top1_computations(
    name: str,
    statistic: str,
    average: str,
    num_classes: int,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    computations = mccm.multi_class_confusion_matrices(
        thresholds=[ARGMAX_THRESHOLD], eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    matrices_key = computations[-1].keys[-1]

    def key(sub_key: Optional[metric_types.SubKey] = None) -> metric_types.MetricKey:
        return metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                      sub_key=sub_key, example_weighted=example_weighted)

    per_class_keys = [key(metric_types.SubKey(class_id=i)) for i in range(num_classes)]
    keys = per_class_keys if average == "per_class" else [key()]

    def result(metrics: Dict[metric_types.MetricKey, mccm.Matrices]) -> Dict[metric_types.MetricKey, float]:
        entries = metrics[matrices_key].get(ARGMAX_THRESHOLD, {})
        matrix = confusion_from_entries(
            ((k.actual_class_id, k.predicted_class_id, w) for k, w in entries.items()), num_classes)
        per_class = scores(matrix)
        if average == "per_class":
            return {k: float(v) for k, v in zip(per_class_keys, per_class[statistic])}
        return {keys[0]: averaged(per_class, statistic, average)}

    computations.append(metric_types.DerivedMetricComputation(keys=keys, result=result))
    return computations



class Top1Metric(metric_types.Metric):
    """One statistic (precision, recall or F1) of the argmax prediction, averaged or per class.

    Macro- or weighted-averaged, it is one value, which thresholds can gate; per class, it is one value per class id
    sub-key.
    """

    def __init__(self, name: str, statistic: str = "f1", average: str = "macro", num_classes: int = 0):
        if statistic not in STATISTICS or average not in AVERAGES or num_classes < 2:
            raise ValueError(
                f"Top1Metric {name!r}: statistic must be one of {STATISTICS} (got {statistic!r}), "
                f"average one of {AVERAGES} (got {average!r}) and num_classes >= 2 (got {num_classes})")
        super().__init__(metric_util.merge_per_key_computations(_top1_computations), name=name,
                         statistic=statistic, average=average, num_classes=num_classes)


metric_types.register_metric(Top1Metric)
