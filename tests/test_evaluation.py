"""The project's EvalConfig computes the right numbers: a small case checked by hand.

TFMA runs on a DataFrame of labels and probabilities (tfma.analyze_raw_data), i.e. the same
metrics specs as the pipeline's Evaluator with the model taken out.
"""
import math

import numpy as np
import pandas as pd
import pytest

from components import evaluation, top1_metrics
from schema import features

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


def _low_confidence_case(n: int = 400, seed: int = 5):
    """Labels and softmax outputs whose top probability is below 0.5 for most examples, the
    case where one-vs-rest metrics at a 0.5 threshold and top-1 metrics part ways; one class is
    never the truth (but is predicted) and one is neither, to pin sklearn's label set."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([c for c in range(features.NUM_CLASSES) if c not in (8, 9)], size=n)
    logits = rng.normal(0.0, 1.0, size=(n, features.NUM_CLASSES))
    logits[np.arange(n), labels] += 1.2  # right more often than not, rarely confident
    logits[:, 9] -= 50.0  # class 9: never predicted, never true
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probabilities


@pytest.fixture(scope="module")
def low_confidence(tmp_path_factory):
    import tensorflow_model_analysis as tfma

    labels, probabilities = _low_confidence_case()
    config = evaluation.make_eval_config(min_accuracy=0.0, min_macro_f1=0.0, max_drop=None)
    config.model_specs[0].ClearField("signature_name")
    frame = pd.DataFrame({
        features.LABEL_KEY: labels,
        "probabilities": [list(p) for p in probabilities],
        features.CLASS_NAME_KEY: [features.class_name(c) for c in labels],
    })
    out = str(tmp_path_factory.mktemp("tfma_low"))
    tfma.analyze_raw_data(frame, config, output_path=out)
    return labels, probabilities, out


def test_top1_metrics_equal_sklearn_when_top_probabilities_are_low(low_confidence):
    from sklearn import metrics as skm

    labels, probabilities, out = low_confidence
    predicted = probabilities.argmax(1)
    assert (probabilities.max(1) < 0.5).mean() > 0.8  # the case the issue is about
    assert 8 in set(predicted) and 8 not in set(labels) and 9 not in set(predicted) | set(labels)
    overall = evaluation.summarize(out)["overall"]
    assert overall["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=1e-6)
    for label, average, fn in (("macro_f1", "macro", skm.f1_score),
                               ("weighted_f1", "weighted", skm.f1_score),
                               ("macro_precision", "macro", skm.precision_score),
                               ("macro_recall", "macro", skm.recall_score)):
        expected = fn(labels, predicted, average=average, zero_division=0)
        assert overall[label] == pytest.approx(expected, abs=1e-6), label
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        labels, predicted, labels=list(range(features.NUM_CLASSES)), zero_division=0)
    for i, name in enumerate(features.CLASS_NAMES):
        got = overall["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(
            (precision[i], recall[i], f1[i]), abs=1e-6), name


def test_per_class_metrics_agree_with_the_confusion_matrix_beside_them(low_confidence):
    from sklearn import metrics as skm

    labels, probabilities, out = low_confidence
    matrix = np.array(evaluation.confusion_matrix(out))
    np.testing.assert_array_equal(
        matrix, skm.confusion_matrix(labels, probabilities.argmax(1), labels=list(range(features.NUM_CLASSES))))
    per_class = evaluation.summarize(out)["overall"]["per_class"]
    from_matrix = top1_metrics.scores(matrix)
    for i, name in enumerate(features.CLASS_NAMES):
        for statistic in top1_metrics.STATISTICS:
            assert per_class[name][statistic] == pytest.approx(from_matrix[statistic][i], abs=1e-9)


def test_top1_scores_match_sklearn_on_many_random_cases():
    """The pure function behind the TFMA metric, over cases with absent and never-predicted
    classes and examples with no prediction at all (TFMA's class id -1)."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(2, 8))
        n = int(rng.integers(1, 40))
        truth = rng.integers(0, k, n)
        predicted = np.where(rng.random(n) < 0.1, -1, rng.integers(0, k, n))
        matrix = top1_metrics.confusion_from_entries(((t, p, 1.0) for t, p in zip(truth, predicted)), k)
        result = top1_metrics.scores(matrix)
        # sklearn sees the "no prediction" as a label of its own that is never the truth; its
        # label set is then truth ∪ predictions minus that one.
        labels = sorted(set(truth) | set(predicted[predicted >= 0]))
        for statistic, fn in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
            for how in ("macro", "weighted"):
                expected = fn(truth, predicted, labels=labels, average=how, zero_division=0)
                assert top1_metrics.averaged(result, statistic, how) == pytest.approx(expected, abs=1e-9)
            expected = fn(truth, predicted, labels=list(range(k)), average=None, zero_division=0)
            np.testing.assert_allclose(result[statistic], expected, atol=1e-9)


def test_bad_top1_metric_config_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="statistic must be one of"):
        top1_metrics.Top1Metric(name="x", statistic="f2", average="macro", num_classes=10)
    with pytest.raises(ValueError, match="outside 0..2"):
        top1_metrics.confusion_from_entries([(0, 3, 1.0)], 3)
