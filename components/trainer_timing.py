"""Where the Trainer's seconds go besides the training steps.

The model's build, the first epoch's extra (tf.function tracing and the input pipeline's warm-up), validation, and
the export with its signatures and TF Serving warm-up requests.

run_fn starts a Report, the phases time themselves with `phase(name)`, and EpochTimes (a Keras
callback) times each epoch's training and validation. The report is logged as one line and
written beside the training history as trainer_overhead.json, which
benchmarks/pipeline_overhead.py prints.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import time
from typing import Dict, Iterator, List, Optional

import tensorflow as tf

log = logging.getLogger(__name__)

OVERHEAD_FILE = "trainer_overhead.json"

_current: Optional["Report"] = None


class Report:
    """Seconds per named phase, and per epoch of each fit (training part, validation part)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: Dict[str, float] = {}
        self.epochs: List[Dict[str, float]] = []  # {"train": s, "validation": s} in fit order

    def add(self, name: str, seconds: float) -> None:
        """Add `seconds` to phase `name` (phases repeated are summed)."""
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def summary(self) -> Dict[str, float]:
        """The phases, and the epochs' training and validation seconds.

        The phases, plus: epochs' training and validation seconds, and the first epoch's excess over the median of
        the others (tracing; 0 with a single epoch, unknown).
        """
        train = [e.get("train", 0.0) for e in self.epochs]
        out = {name: round(s, 2) for name, s in self.phases.items()}
        out["epochs"] = len(train)
        out["training steps"] = round(sum(train), 2)
        out["validation"] = round(sum(e.get("validation", 0.0) for e in self.epochs), 2)
        if len(train) > 1:
            out["first epoch's extra (tracing)"] = round(max(0.0, train[0] - statistics.median(train[1:])), 2)
            out["one later epoch's training"] = round(statistics.median(train[1:]), 2)
        out["total"] = round(time.perf_counter() - self.started, 2)
        return out

    def finish(self, output_dir: str) -> Dict[str, float]:
        """Log the summary and write it to `output_dir`/trainer_overhead.json; ends the report."""
        global _current
        summary = self.summary()
        log.info("Trainer seconds: %s", ", ".join(f"{k} {v}" for k, v in summary.items()))
        tf.io.gfile.makedirs(output_dir)
        with tf.io.gfile.GFile(os.path.join(output_dir, OVERHEAD_FILE), "w") as f:
            json.dump(summary, f, indent=1)
        if _current is self:
            _current = None
        return summary


def start() -> Report:
    """A new report that phase() and EpochTimes record into until its finish()."""
    global _current
    _current = Report()
    return _current


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block into the current report (none started: only timed, not kept)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        if _current is not None:
            _current.add(name, time.perf_counter() - began)


class EpochTimes(tf.keras.callbacks.Callback):
    """Each epoch's training seconds (begin to the validation's start) and validation seconds."""

    def __init__(self) -> None:
        super().__init__()
        self._epoch_began = self._test_began = 0.0
        self._epoch: Dict[str, float] = {}

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._epoch_began, self._epoch = time.perf_counter(), {}

    def on_test_begin(self, logs=None):
        """Record the epoch's training seconds as validation starts."""
        self._test_began = time.perf_counter()
        self._epoch["train"] = self._test_began - self._epoch_began

    def on_test_end(self, logs=None):
        """Record the epoch's validation seconds."""
        self._epoch["validation"] = time.perf_counter() - self._test_began

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch's times in the current Report (training seconds too if it had no validation)."""
        self._epoch.setdefault("train", time.perf_counter() - self._epoch_began)
        if _current is not None:
            _current.epochs.append(self._epoch)
