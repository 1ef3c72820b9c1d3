"""The reliability of the model's confidence: TFMA's CalibrationPlot over the top-1 probability.

Each test prediction becomes one binary example (label: was the top-1 class right; prediction:
its probability), so TFMA's calibration histogram says, per confidence bucket, how many
predictions fell there and how many of them were right.
"""
from __future__ import annotations

import math
from typing import List, Sequence

from pipeline.report.inputs import CALIBRATION_BUCKETS, CalibrationBucket, Sample

_LABEL, _PREDICTION = "right", "confidence"


def calibration_buckets(samples: Sequence[Sample], num_buckets: int = CALIBRATION_BUCKETS) -> List[CalibrationBucket]:
    """TFMA's CalibrationPlot buckets of the samples' top-1 confidence.

    Empty buckets and TFMA's open-ended outer buckets are left out.
    """
    import pandas as pd
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.proto import config_pb2

    frame = pd.DataFrame({_LABEL: [float(s.right) for s in samples],
                          _PREDICTION: [float(s.confidence) for s in samples]})
    config = config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(label_key=_LABEL, prediction_key=_PREDICTION)],
        slicing_specs=[config_pb2.SlicingSpec()],
        metrics_specs=[config_pb2.MetricsSpec(metrics=[config_pb2.MetricConfig(
            class_name="CalibrationPlot", config=f'"num_buckets": {num_buckets}')])],
    )
    result = tfma.analyze_raw_data(frame, config)
    buckets = []
    for _, plots in result.plots:
        for output in plots.values():
            for plot in output.values():
                for b in plot.get("calibrationHistogramBuckets", {}).get("buckets", []):
                    lower = float(b.get("lowerThresholdInclusive", "-inf"))
                    upper = float(b.get("upperThresholdExclusive", "inf"))
                    count = float(b.get("numWeightedExamples", 0.0))
                    if not count or not math.isfinite(lower):
                        continue
                    bucket = CalibrationBucket(lower=lower, upper=upper, count=count,
                                               right=float(b.get("totalWeightedLabel", 0.0)),
                                               confidence_sum=float(b.get("totalWeightedRefinedPrediction", 0.0)))
                    if not math.isfinite(upper):  # confidence exactly 1.0: TFMA's [1, inf) bucket
                        bucket.lower = bucket.upper = 1.0
                    buckets.append(bucket)
    return buckets
