"""Warm start: the Trainer continues from the latest blessed model when it has the same architecture.

TFX's way: the Trainer's `base_model` input, fed by the pipeline's LatestBlessedModelStrategy
resolver (pipeline/pipeline.py), arrives as ``fn_args.base_model`` (the base model's
``Format-Serving`` folder). Every model this Trainer exports leaves, beside that folder (so the
Pusher does not ship it), ``warm_start/architecture.json`` (backbone, channels, input size) and
``warm_start/model.weights.h5``. A new Trainer whose architecture is the same loads those weights
into the model it built and trains on the shorter schedule (``warm_hparams``); any difference, or a
base model without them, and it trains anew and says so in one log line. ``--from-scratch``
(custom_config ``warm_start: false``) always trains anew.

The shorter schedule (the rule): half the epochs, at least 1; a tenth of the warm-up; a peak
learning rate a third of the cold run's peak (``HParams.peak_learning_rate``: the weights are
already near a minimum, a full-rate warm-up would throw much of that away); no head-only phase
(the head is trained already). The warm run is one phase, so its ``learning_rate`` is set to give
that peak whatever the cold run's phases and factors were: a two-phase pretrained run peaks at its
fine-tuning rate, learning_rate x fine_tune_lr_factor, and its warm start at a third of that.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any, Dict, NamedTuple, Optional

from components.hparams import HParams
from schema.locations import is_local

log = logging.getLogger(__name__)

WARM_START_KEY = "warm_start"  # Trainer custom_config: False = --from-scratch
DIR = "warm_start"  # beside Format-Serving in a Model artifact
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.weights.h5"
PLAN_FILE = "plan.txt"  # the Plan's line: how this model was trained (warm from which model, or anew and why)
EPOCHS_FRACTION = 0.5
LEARNING_RATE_FACTOR = 1 / 3
WARMUP_FRACTION = 0.1


class Plan(NamedTuple):
    """What the Trainer does.

    The hyperparameters to train with, the weights to start from (None: anew) and the one line that says which and
    why.
    """

    hparams: HParams
    weights: Optional[str]
    line: str


def architecture(hp: HParams, channels: int) -> Dict[str, Any]:
    """What must be equal for a model's weights to load into another: backbone, channels, input size."""
    return {"backbone": hp.backbone, "channels": int(channels), "input_size": int(hp.input_size)}


def warm_hparams(hp: HParams) -> HParams:
    """The shorter schedule of a warm-started model (the module's rule).

    Its peak rate is LEARNING_RATE_FACTOR x the cold run's peak rate, whatever the cold run's phases.
    """
    warm = dataclasses.replace(hp, epochs=max(1, math.ceil(hp.epochs * EPOCHS_FRACTION)),
                               warmup_epochs=hp.warmup_epochs * WARMUP_FRACTION, head_epochs=0)
    # peak_learning_rate is learning_rate times a factor of the run's kind: scale it to the target peak
    target = hp.peak_learning_rate * LEARNING_RATE_FACTOR
    return dataclasses.replace(warm, learning_rate=hp.learning_rate * target / warm.peak_learning_rate)


def _dir_of(serving_model_dir: str) -> str:
    return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), DIR)


def mismatch(base: Dict[str, Any], wanted: Dict[str, Any]) -> Optional[str]:
    """None when the architectures agree; else which keys differ (base -> wanted)."""
    differ = [f"{k} {base.get(k)!r} -> {wanted[k]!r}" for k in sorted(wanted) if base.get(k) != wanted[k]]
    return ", ".join(differ) or None


def plan(base_model: Optional[str], hp: HParams, channels: int, enabled: bool = True) -> Plan:
    """Warm start from `base_model` (fn_args.base_model) when enabled and its architecture matches."""
    import tensorflow as tf

    if not enabled:
        return Plan(hp, None, "training from scratch (--from-scratch)")
    if not base_model:
        return Plan(hp, None, "training from scratch: no blessed model yet")
    folder = _dir_of(base_model)
    arch_path, weights = os.path.join(folder, ARCHITECTURE_FILE), os.path.join(folder, WEIGHTS_FILE)
    if not (tf.io.gfile.exists(arch_path) and tf.io.gfile.exists(weights)):
        return Plan(hp, None, f"training from scratch: the blessed model {base_model} has no warm-start weights")
    with tf.io.gfile.GFile(arch_path) as f:
        base = json.load(f)
    differ = mismatch(base, architecture(hp, channels))
    if differ:
        return Plan(hp, None, f"training from scratch: the blessed model's architecture differs ({differ})")
    warm = warm_hparams(hp)
    return Plan(warm, weights, f"warm start from the blessed model {base_model}: {warm.epochs} epochs (of "
                f"{hp.epochs}), peak learning rate {warm.peak_learning_rate:.3g} (the cold "
                f"run's {hp.peak_learning_rate:.3g} x {LEARNING_RATE_FACTOR:.3g}), no head phase")


def save(model, hp: HParams, channels: int, serving_model_dir: str, line: str) -> str:
    """Save the weights and architecture a later Trainer warm-starts from, and how this one was trained.

    The weights go beside the serving model; `line` (the Plan's), which says how this one was trained, goes in
    PLAN_FILE.
    """
    import tensorflow as tf

    folder = _dir_of(serving_model_dir)
    tf.io.gfile.makedirs(folder)
    local = os.path.join(folder, WEIGHTS_FILE)
    if not is_local(folder):  # Keras writes h5 locally only
        import tempfile

        local = os.path.join(tempfile.mkdtemp(), WEIGHTS_FILE)
    model.save_weights(local)
    if local != os.path.join(folder, WEIGHTS_FILE):
        tf.io.gfile.copy(local, os.path.join(folder, WEIGHTS_FILE), overwrite=True)
    with tf.io.gfile.GFile(os.path.join(folder, ARCHITECTURE_FILE), "w") as f:
        json.dump(architecture(hp, channels), f)
    with tf.io.gfile.GFile(os.path.join(folder, PLAN_FILE), "w") as f:
        f.write(line + "\n")
    return folder


def plan_line(model_uri: str) -> Optional[str]:
    """How the model of the Model artifact at `model_uri` was trained (its PLAN_FILE), or None."""
    import tensorflow as tf

    path = os.path.join(model_uri, DIR, PLAN_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return f.read().strip()


def load(model, weights: str) -> None:
    """The base model's weights into `model` (same architecture: plan checked it)."""
    import tensorflow as tf

    local = weights
    if not is_local(weights):
        import tempfile

        local = os.path.join(tempfile.mkdtemp(), WEIGHTS_FILE)
        tf.io.gfile.copy(weights, local, overwrite=True)
    model.load_weights(local)
