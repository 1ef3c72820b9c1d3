"""What a report shows: the inputs (any part may be missing), the file names, the sample grid."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from schema.records import SPLIT_NAMES

SPLITS = SPLIT_NAMES
NUM_SAMPLES = 16  # test predictions shown in the grid

CLASS_COUNTS_PNG = "class_counts.png"
CONFUSION_PNG = "confusion_matrix.png"
PER_CLASS_F1_PNG = "per_class_f1.png"
HISTORY_PNG = "training_curves.png"
PREDICTIONS_PNG = "predictions.png"


@dataclasses.dataclass
class Sample:
    """One test prediction for the grid: a displayable picture (float RGB [H, W, 3] in [0, 1];
    true colour for 13-band data) and the true/predicted class."""
    picture: np.ndarray
    true_class: str
    predicted_class: str
    confidence: float


@dataclasses.dataclass
class ReportInputs:
    """Everything a report shows; each part may be missing (None) and is then left out."""
    metrics: Dict[str, Any]  # metrics.json content (see build_metrics)
    class_counts: Optional[Dict[str, Dict[str, int]]] = None  # {split: {class name: n}}
    history: Optional[Dict[str, List[float]]] = None  # Keras History.history
    samples: Optional[List[Sample]] = None
