"""metrics.json: the Evaluator's numbers, the blessing and the push, as plain JSON.

metrics.json: the Evaluator's numbers (the metrics of components/gated_metrics.py), the blessing and the push, as
plain JSON.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

from components import gated_metrics
from schema import features


def _finite(value: Any) -> Any:
    """NaN/inf -> None, recursively: metrics.json must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _count(value: Any) -> Optional[int]:
    """TFMA's weighted example count (a float, 364.0) as the integer it is."""
    return None if value is None or not math.isfinite(value) else int(round(value))


def _comparison(overall: Dict[str, Any]) -> Dict[str, Dict[str, Optional[float]]]:
    """{metric: {model, baseline, change}} from TFMA's diff metrics (candidate minus baseline).

    Empty when the run had no baseline.
    """
    rows = {}
    for name, change in overall.get("change", {}).items():
        metric = next((m for m in gated_metrics.METRICS if m.name == name), None)
        if metric is not None and metric.count:  # the same test split for both: not a quality to compare
            continue
        value = overall.get(name)
        rows[name] = {"model": value, "baseline": None if value is None or change is None else value - change,
                      "change": change}
    return rows


def build_metrics(
    summary: Dict[str, Any],
    confusion: List[List[int]],
    validation: Dict[str, Any],
    blessed: Optional[bool],
    model_uri: Optional[str] = None,
    pushed_version: Optional[str] = None,
    pushed_destination: Optional[str] = None,
) -> Dict[str, Any]:
    """metrics.json from evaluation.summarize/confusion_matrix/validation_summary outputs.

    Support per class is the confusion matrix's row sum (true examples of that class).
    """
    from pipeline.results import no_bar_note  # ML Metadata: not for the report's --help

    overall = summary.get("overall", {})
    per_class = {}
    for i, name in enumerate(features.CLASS_NAMES):
        values = overall.get("per_class", {}).get(name, {})
        per_class[name] = {
            "precision": values.get("precision"),
            "recall": values.get("recall"),
            "f1": values.get("f1"),
            "support": int(sum(confusion[i])),
        }
    failed = [c for c in validation.get("checks", []) if c["status"] == "failed"]
    if blessed:
        why = "every threshold passed"
    elif failed:
        why = "failed: " + "; ".join(
            f"{c['metric']} ({c['slice']}, {c['kind']}) {c.get('bound', '')}"
            + (f", got {c['value']:.4f}" if isinstance(c.get("value"), float) else "")
            for c in failed)
    else:
        why = "not blessed (no failed threshold recorded; see the validation result)"
    return _finite({
        **{m.name: _count(overall.get(m.name)) if m.count else overall.get(m.name) for m in gated_metrics.METRICS},
        "change_vs_baseline": overall.get("change", {}),
        "baseline_comparison": _comparison(overall),
        "per_class": per_class,
        "class_names": list(features.CLASS_NAMES),
        "confusion_matrix": confusion,
        "blessed": blessed,
        "blessing_reason": why,
        "bar_note": no_bar_note(validation.get("checks", []), overall.get("accuracy")),  # issue 20.5
        "validation": validation,
        "model_uri": model_uri,
        "pushed_version": pushed_version,
        "pushed_destination": pushed_destination,
    })
