"""What a report shows: the inputs (any part may be missing), the file names, the bounds."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from schema.records import SPLIT_NAMES

SPLITS = SPLIT_NAMES
# The Evaluator keeps no per-example predictions, so the report runs the run's model over the
# first MAX_PREDICTED test examples (bounded time and memory; the page says how many it used).
MAX_PREDICTED = 300
NUM_SAMPLES = MAX_PREDICTED  # kept for callers of predict_samples(num=...)
PER_CLASS_SAMPLES = 3  # test examples shown per true class
GALLERY_SIZE = 16  # misclassified examples shown, most confident first
CALIBRATION_BUCKETS = 10  # TFMA CalibrationPlot buckets over the top-1 confidence

CLASS_COUNTS_PNG = "class_counts.png"
CONFUSION_PNG = "confusion_matrix.png"
PER_CLASS_F1_PNG = "per_class_f1.png"
HISTORY_PNG = "training_curves.png"
PREDICTIONS_PNG = "predictions.png"  # per-class samples
MISCLASSIFIED_PNG = "misclassified.png"
CALIBRATION_PNG = "calibration.png"


@dataclasses.dataclass
class Sample:
    """One test prediction: a displayable picture, the true/predicted class and the top-1 probability.

    The picture is float RGB [H, W, 3] in [0, 1], in true colour for 13-band data.
    """
    picture: np.ndarray
    true_class: str
    predicted_class: str
    confidence: float

    @property
    def right(self) -> bool:
        """Whether the prediction is the true class."""
        return self.predicted_class == self.true_class


@dataclasses.dataclass
class CalibrationBucket:
    """One bucket of TFMA's CalibrationPlot over the top-1 confidence.

    Examples whose confidence lies in [lower, upper), how many of them were right, and their summed confidence.
    """
    lower: float
    upper: float
    count: float
    right: float
    confidence_sum: float


@dataclasses.dataclass
class ReportInputs:
    """Everything a report shows; each part may be missing (None) and is then left out."""
    metrics: Dict[str, Any]  # metrics.json content (see build_metrics)
    class_counts: Optional[Dict[str, Dict[str, int]]] = None  # {split: {class name: n}}
    history: Optional[Dict[str, List[float]]] = None  # Keras History.history
    samples: Optional[List[Sample]] = None  # the model's predictions on the first test examples
    calibration: Optional[List[CalibrationBucket]] = None  # of those samples' confidences
    settings: Optional[Dict[str, Any]] = None  # the run's settings from ML Metadata (results.run_settings)


def misclassified(samples: List[Sample], num: int = GALLERY_SIZE) -> List[Sample]:
    """The wrong predictions, most confident first (the mistakes a user most needs to see)."""
    return sorted((s for s in samples if not s.right), key=lambda s: -s.confidence)[:num]


def per_class(samples: List[Sample], num: int = PER_CLASS_SAMPLES) -> List[Sample]:
    """Up to `num` samples of each true class, in class order (classes without one left out)."""
    from schema import features

    return [s for name in features.CLASS_NAMES for s in [s for s in samples if s.true_class == name][:num]]
