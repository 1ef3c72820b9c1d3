"""Warm start (components/warm_start.py): the architecture check, the shorter schedule, the
weights round trip and the one line that says which it did."""
import json
import os

import pytest

from components import warm_start
from components.hparams import HParams


def _base(tmp_path, hp, channels=3):
    serving = tmp_path / "Trainer" / "model" / "7" / "Format-Serving"
    folder = serving.parent / warm_start.DIR
    folder.mkdir(parents=True)
    (folder / warm_start.ARCHITECTURE_FILE).write_text(json.dumps(warm_start.architecture(hp, channels)))
    (folder / warm_start.WEIGHTS_FILE).write_bytes(b"weights")
    return str(serving)


def test_a_matching_blessed_model_warm_starts_on_the_shorter_schedule(tmp_path):
    hp = HParams(weights="none", epochs=8, learning_rate=3e-3, warmup_epochs=1.0)
    plan = warm_start.plan(_base(tmp_path, hp), hp, 3)
    assert plan.weights and plan.weights.endswith(warm_start.WEIGHTS_FILE)
    assert plan.hparams.epochs == 4 and plan.hparams.head_epochs == 0
    # from scratch the cold run peaks at 3e-3 x scratch_lr_factor 3 = 9e-3; the warm one at 3e-3
    assert plan.hparams.peak_learning_rate == pytest.approx(3e-3)
    assert plan.line.startswith("warm start from the blessed model") and "4 epochs (of 8)" in plan.line
    assert "peak learning rate 0.003 " in plan.line


@pytest.mark.parametrize("hp, warm_learning_rate", [
    # cold peak 3e-3 x scratch_lr_factor 3 = 9e-3 -> warm peak 3e-3, learning_rate 1e-3 (x 3)
    pytest.param(HParams(weights="none", learning_rate=3e-3), 1e-3, id="scratch"),
    # cold peak = learning_rate 1e-3 -> warm 3.33e-4
    pytest.param(HParams(learning_rate=1e-3, head_epochs=0), 1e-3 / 3, id="one-phase pretrained"),
    # cold peak is the fine-tuning rate 1e-3 x 0.1 -> warm 3.33e-5 (not 1e-3 / 3, 10x the cold peak)
    pytest.param(HParams(learning_rate=1e-3, head_epochs=2, epochs=10), 1e-4 / 3, id="two-phase pretrained"),
])
def test_the_warm_peak_rate_is_a_third_of_the_cold_peak_for_every_kind_of_run(hp, warm_learning_rate):
    warm = warm_start.warm_hparams(hp)
    assert not warm.two_phase and warm.head_epochs == 0
    assert warm.peak_learning_rate == pytest.approx(hp.peak_learning_rate / 3)
    assert warm.learning_rate == pytest.approx(warm_learning_rate)


@pytest.mark.parametrize("other, channels, differs", [
    ({"backbone": "EfficientNetV2S"}, 3, "backbone"),
    ({}, 13, "channels"),
    ({"image_size": 96}, 3, "input_size"),
])
def test_another_architecture_trains_anew_and_says_which(tmp_path, other, channels, differs):
    base = HParams(weights="none")
    plan = warm_start.plan(_base(tmp_path, base), HParams(weights="none", **other), channels)
    assert plan.weights is None and plan.hparams.epochs == HParams(weights="none", **other).epochs
    assert plan.line.startswith("training from scratch: the blessed model's architecture differs")
    assert differs in plan.line and "\n" not in plan.line


def test_from_scratch_no_base_and_a_base_without_weights(tmp_path):
    hp = HParams(weights="none")
    assert warm_start.plan(_base(tmp_path, hp), hp, 3, enabled=False).line == "training from scratch (--from-scratch)"
    assert warm_start.plan(None, hp, 3).line == "training from scratch: no blessed model yet"
    bare = tmp_path / "old" / "Format-Serving"
    bare.mkdir(parents=True)
    assert "has no warm-start weights" in warm_start.plan(str(bare), hp, 3).line


def test_the_rule_keeps_at_least_one_epoch():
    assert warm_start.warm_hparams(HParams(weights="none", epochs=1)).epochs == 1


def test_saved_weights_load_into_a_model_of_the_same_architecture(tmp_path):
    import numpy as np
    import tensorflow as tf

    def tiny():
        return tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])

    model = tiny()
    serving = str(tmp_path / "model" / "Format-Serving")
    hp = HParams(weights="none")
    folder = warm_start.save(model, hp, 3, serving, "training from scratch: no blessed model yet")
    assert os.path.exists(os.path.join(folder, warm_start.WEIGHTS_FILE))
    assert warm_start.plan_line(os.path.dirname(serving)) == "training from scratch: no blessed model yet"
    assert warm_start.plan_line(str(tmp_path)) is None
    plan = warm_start.plan(serving, hp, 3)
    other = tiny()
    warm_start.load(other, plan.weights)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
