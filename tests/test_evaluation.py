"""The project's EvalConfig computes the right numbers: a small case checked by hand.

TFMA runs on a DataFrame of labels and probabilities (tfma.analyze_raw_data), i.e. the same
metrics specs as the pipeline's Evaluator with the model taken out.
"""
import math

import numpy as np
import pandas as pd
import pytest

from components import evaluation, features

# 22 test examples: every class has 2, AnnualCrop 4. Two mistakes:
# one AnnualCrop predicted Forest, one HerbaceousVegetation predicted Highway.
LABELS = [0, 0, 0, 0] + [c for c in range(1, 10) for _ in range(2)]
PREDICTED = list(LABELS)
PREDICTED[3] = 1
PREDICTED[6] = 3

# By hand (precision, recall, F1):
#   AnnualCrop 3/3, 3/4, 6/7;  Forest 2/3, 2/2, 4/5;  HerbaceousVegetation 1/1, 1/2, 2/3;
#   Highway 2/3, 2/2, 4/5;  the other six classes 1, 1, 1.
HAND_F1 = {"AnnualCrop": 6 / 7, "Forest": 0.8, "HerbaceousVegetation": 2 / 3, "Highway": 0.8}
HAND_PRECISION = {"Forest": 2 / 3, "Highway": 2 / 3}
HAND_RECALL = {"AnnualCrop": 0.75, "HerbaceousVegetation": 0.5}
HAND_ACCURACY = 20 / 22
HAND_MACRO_F1 = (6 / 7 + 0.8 + 2 / 3 + 0.8 + 6) / 10  # 0.91238
HAND_WEIGHTED_F1 = (4 * 6 / 7 + 2 * 0.8 + 2 * 2 / 3 + 2 * 0.8 + 12 * 1.0) / 22  # 0.90736


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    import tensorflow_model_analysis as tfma

    config = evaluation.make_eval_config(min_accuracy=0.5, min_macro_f1=0.5, max_drop=None)
    config.model_specs[0].ClearField("signature_name")  # no model: predictions are given
    probabilities = [list(np.eye(features.NUM_CLASSES)[p] * 0.9 + 0.01) for p in PREDICTED]
    frame = pd.DataFrame({
        features.LABEL_KEY: LABELS,
        "probabilities": probabilities,
        features.CLASS_NAME_KEY: [features.class_name(c) for c in LABELS],
    })
    out = str(tmp_path_factory.mktemp("tfma"))
    tfma.analyze_raw_data(frame, config, output_path=out)
    return out, evaluation.summarize(out)


def test_overall_metrics_match_hand_computation(summary):
    _, result = summary
    overall = result["overall"]
    assert overall["example_count"] == 22
    assert overall["accuracy"] == pytest.approx(HAND_ACCURACY, abs=1e-6)
    assert overall["macro_f1"] == pytest.approx(HAND_MACRO_F1, abs=1e-6)
    assert overall["weighted_f1"] == pytest.approx(HAND_WEIGHTED_F1, abs=1e-6)
    # Weighted and macro F1 differ here; a key collision (see WEIGHTED_F1) would make them equal.
    assert not math.isclose(overall["macro_f1"], overall["weighted_f1"])


def test_per_class_metrics_match_hand_computation(summary):
    _, result = summary
    per_class = result["overall"]["per_class"]
    assert set(per_class) == set(features.CLASS_NAMES)
    for name in features.CLASS_NAMES:
        assert per_class[name]["f1"] == pytest.approx(HAND_F1.get(name, 1.0), abs=1e-6), name
        assert per_class[name]["precision"] == pytest.approx(HAND_PRECISION.get(name, 1.0), abs=1e-6), name
        assert per_class[name]["recall"] == pytest.approx(HAND_RECALL.get(name, 1.0), abs=1e-6), name


def test_class_slices_and_confusion_matrix(summary):
    out, result = summary
    assert result["AnnualCrop"]["example_count"] == 4
    assert result["AnnualCrop"]["accuracy"] == pytest.approx(0.75)
    assert result["Forest"]["accuracy"] == pytest.approx(1.0)
    matrix = evaluation.confusion_matrix(out)
    expected = np.diag([4] + [2] * 9)
    expected[0, 0], expected[0, 1] = 3, 1
    expected[2, 2], expected[2, 3] = 1, 1
    np.testing.assert_array_equal(matrix, expected)


def test_thresholds_gate_overall_slice_only(summary):
    out, _ = summary
    validation = evaluation.validation_summary(out)
    # Bars of 0.5 pass overall even though HerbaceousVegetation's F1 slice values are poor.
    assert validation["validation_ok"]
    assert {(c["metric"], c["slice"], c["status"]) for c in validation["checks"]} == {
        ("accuracy", "overall", "passed"), ("macro_f1", "overall", "passed")}
    assert validation["baseline_model"] is None


def test_failed_bar_is_named(tmp_path):
    import tensorflow_model_analysis as tfma

    config = evaluation.make_eval_config(min_accuracy=0.95, min_macro_f1=0.5, max_drop=None)
    config.model_specs[0].ClearField("signature_name")
    frame = pd.DataFrame({
        features.LABEL_KEY: LABELS,
        "probabilities": [list(np.eye(features.NUM_CLASSES)[p]) for p in PREDICTED],
        features.CLASS_NAME_KEY: [features.class_name(c) for c in LABELS],
    })
    tfma.analyze_raw_data(frame, config, output_path=str(tmp_path))
    validation = evaluation.validation_summary(str(tmp_path))
    assert not validation["validation_ok"]
    failed = [c for c in validation["checks"] if c["status"] == "failed"]
    assert [(c["metric"], c["slice"], c["bound"]) for c in failed] == [("accuracy", "overall", ">= 0.95")]
    assert failed[0]["value"] == pytest.approx(HAND_ACCURACY, abs=1e-6)
