"""The Evaluator's metrics as data: one record per overall metric, gated or reported.

Each record says which TFMA metric computes it (class, module, constructor arguments), the name
its value is filed under (summarize(), metrics.json, the report, the run summary), and for a gated
metric the PipelineConfig field that holds its lower bound, the flag that sets it and the
direction in which it is better. components.evaluation builds the EvalConfig from this list,
pipeline.report writes metrics.json and the page from it, and the CLI's messages name the flags
from it: a new gated metric is one more entry.

Pure data: no TensorFlow, so the report and the command line read it cheaply.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from schema import features

TOP1_MODULE = "components.top1_metrics"  # Top1Metric: precision/recall/F1 of the argmax prediction


@dataclasses.dataclass(frozen=True)
class Metric:
    """One overall metric of the Evaluator."""

    name: str  # the name its value is filed under: summarize(), metrics.json, the report ("accuracy")
    key: str  # TFMA's metric key name ("sparse_categorical_accuracy")
    class_name: str  # the TFMA (or Keras) metric class
    module: str = ""  # "" for TFMA's and Keras' own metrics; the module of a custom one
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the class's constructor arguments
    bound: Optional[str] = None  # the PipelineConfig field with its lower bound; None: reported, not gated
    direction: str = "HIGHER_IS_BETTER"  # TFMA's MetricDirection, for the change against the baseline
    label: str = ""  # what people read (the report, the CLI); the name when empty
    count: bool = False  # a count (TFMA gives a float): reported as the integer it is

    @property
    def flag(self) -> str:
        """The command-line flag of its bound ('--min-accuracy')."""
        if self.bound is None:
            raise ValueError(f"metric {self.name!r} is reported, not gated: it has no bound and no flag")
        return "--" + self.bound.replace("_", "-")

    @property
    def title(self) -> str:
        """The metric's name in reports: its label, or its name when it has none."""
        return self.label or self.name

    @property
    def summary_key(self) -> str:
        """Its key in the run's printed summary ('test_accuracy')."""
        return "test_" + self.name


def _top1(name: str, statistic: str, average: str, **kwargs: Any) -> Metric:
    return Metric(name=name, key=name, class_name="Top1Metric", module=TOP1_MODULE,
                  config={"name": name, "statistic": statistic, "average": average,
                          "num_classes": features.NUM_CLASSES}, **kwargs)


# In the order of metrics.json and the report's table.
METRICS: Tuple[Metric, ...] = (
    Metric(name="accuracy", key="sparse_categorical_accuracy", class_name="SparseCategoricalAccuracy",
           bound="min_accuracy", label="test accuracy"),
    _top1("macro_f1", "f1", "macro", bound="min_macro_f1", label="macro F1"),
    _top1("weighted_f1", "f1", "weighted"),
    _top1("macro_precision", "precision", "macro"),
    _top1("macro_recall", "recall", "macro"),
    Metric(name="example_count", key="example_count", class_name="ExampleCount", count=True),
)


def gated() -> Tuple[Metric, ...]:
    """The metrics with a lower bound: they decide the blessing."""
    return tuple(m for m in METRICS if m.bound is not None)


def get(name: str) -> Metric:
    """The record of metric `name`; ValueError naming the known ones otherwise."""
    for metric in METRICS:
        if metric.name == name:
            return metric
    raise ValueError(f"metric must be one of {', '.join(m.name for m in METRICS)}, got {name!r}")


def of_key(key: str) -> Optional[Metric]:
    """The record whose TFMA metric key is `key`; None for a metric outside the registry."""
    return next((m for m in METRICS if m.key == key), None)


def bounds_of(config: Any) -> Dict[str, float]:
    """{bound field: value} of every gated metric, read from a PipelineConfig (or anything with those attributes).

    What components.evaluation.make_eval_config takes.
    """
    return {m.bound: float(getattr(config, m.bound)) for m in gated() if m.bound is not None}


def check_bounds(bounds: Mapping[str, Optional[float]]) -> Dict[str, float]:
    """{metric name: lower bound} of `bounds` ({bound field: value}).

    ValueError naming the fields when one is missing or unknown.
    """
    wanted = {m.bound for m in gated() if m.bound is not None}
    missing, unknown = sorted(wanted - set(bounds)), sorted(set(bounds) - wanted)
    if missing or unknown:
        raise ValueError(f"the Evaluator's bounds are {', '.join(sorted(str(b) for b in wanted))}; "
                         + (f"missing {', '.join(missing)}" if missing else "")
                         + ("; " if missing and unknown else "")
                         + (f"unknown {', '.join(unknown)}" if unknown else ""))
    return {m.name: float(value) for m in gated() if m.bound is not None and (value := bounds[m.bound]) is not None}


def no_bar_flags() -> str:
    """The flags that set every absolute bar to 0 ('--min-accuracy 0 --min-macro-f1 0')."""
    return " ".join(f"{m.flag} 0" for m in gated())


def gated_names() -> str:
    """The gated metrics for people ('test accuracy and macro F1')."""
    titles = [m.title for m in gated()]
    return titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " and " + titles[-1]


def run_summary(overall: Mapping[str, Any]) -> Dict[str, Any]:
    """{"test_accuracy": ..., "test_macro_f1": ...}: the gated metrics of the overall slice.

    Under the keys of the run's printed summary (pipeline.runners).
    """
    return {m.summary_key: overall.get(m.name) for m in gated()}
