"""Real end-to-end runs of the TFX DAG: tiny synthetic RGB and 13-band data (the plumbing) and
a small real image set (the model and its metrics). Each run is a session fixture
(tests/conftest.py) that the tests here only read; a minute or two each."""
import json
import os

import pytest

from components.evaluation import summarize
from pipeline.results import latest_results
from schema import features

pytestmark = pytest.mark.e2e


def _latest_report_dir(out, pipeline="e2e"):
    """Each run writes its own report folder: the one of the latest run."""
    from pipeline.report import run_report_dir

    run_id = latest_results(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline).run_id
    assert run_id
    return run_report_dir(out, pipeline, run_id)


def test_model_is_pushed_in_serving_layout(tiny_rgb_run):
    out, _ = tiny_rgb_run
    results = latest_results(os.path.join(out, "metadata", "e2e.sqlite"), "e2e")
    assert results.blessed and results.pushed
    base = os.path.join(out, "serving", "eurosat")
    versions = [v for v in os.listdir(base) if v.isdigit()]
    assert len(versions) == 1
    assert os.path.exists(os.path.join(base, versions[0], "saved_model.pb"))
    from serving import warmup  # the Trainer's export wrote TF Serving's warm-up requests

    assert len(warmup.read_warmup_requests(os.path.join(base, versions[0]))) == 3
    assert results.pushed_destination.startswith(base)


def test_trainer_reports_its_overhead(tiny_rgb_run):
    """components/trainer_timing.py: the Trainer's phases, beside its training history."""
    import glob

    from components.trainer_timing import OVERHEAD_FILE

    out, _ = tiny_rgb_run
    [path] = glob.glob(os.path.join(out, "pipelines", "e2e", "Trainer", "model_run", "*", OVERHEAD_FILE))
    with open(path) as f:
        phases = json.load(f)
    assert phases["epochs"] == 1 and phases["training steps"] > 0 and phases["validation"] > 0
    assert phases["model build"] > 0 and phases["export + warm-up requests"] > 0
    assert phases["total"] >= phases["model build"] + phases["training steps"] + phases["export + warm-up requests"]


def test_evaluation_has_overall_and_per_class_metrics(tiny_rgb_run):
    out, _ = tiny_rgb_run
    results = latest_results(os.path.join(out, "metadata", "e2e.sqlite"), "e2e")
    summary = summarize(results.evaluation_uri)
    overall = summary["overall"]
    assert 0.0 <= overall["accuracy"] <= 1.0 and 0.0 <= overall["macro_f1"] <= 1.0
    assert 40 <= overall["example_count"] <= 80  # ~20% of 300 by hash of the source name
    assert set(overall["per_class"]) == set(features.CLASS_NAMES)
    for name in features.CLASS_NAMES:
        assert "accuracy" in summary[name], f"no slice for {name}"
        assert summary[name]["example_count"] >= 1


def test_rerun_reuses_cached_components(tiny_rgb_rerun):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    out, _ = tiny_rgb_rerun
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(out, "metadata", "e2e.sqlite")))
    executions = store.get_executions()
    trainer_runs = [e for e in executions if e.type_id == store.get_execution_type("tfx.components.trainer.component.Trainer").id]
    # The first run and the re-run (blocked_rgb_run's, which also reuses the Trainer, comes later).
    states = [e.last_known_state for e in sorted(trainer_runs, key=lambda e: e.id)][:2]
    assert states.count(metadata_store_pb2.Execution.CACHED) == 1, states
    assert states.count(metadata_store_pb2.Execution.COMPLETE) == 1, states


def test_run_wrote_the_report(tiny_rgb_run):

    out, _ = tiny_rgb_run
    report_dir = _latest_report_dir(out)
    with open(os.path.join(report_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["blessed"] is True and metrics["pushed_version"]
    assert set(metrics["per_class"]) == set(features.CLASS_NAMES)
    for name in ("index.html", "confusion_matrix.png", "class_counts.png", "per_class_f1.png",
                 "training_curves.png", "predictions.png"):
        assert os.path.exists(os.path.join(report_dir, name)), name


def test_impossible_bar_blocks_the_push_and_report_says_why(blocked_rgb_run):
    """Same data and model (cached), bar raised out of reach: only Evaluator/Pusher re-run."""

    out, printed, pushed_before = blocked_rgb_run
    base = os.path.join(out, "serving", "eurosat")
    assert "NOT pushed: the model was not blessed: accuracy (overall, absolute) >= 1" in printed
    results = latest_results(os.path.join(out, "metadata", "e2e.sqlite"), "e2e")
    assert results.blessed is False and not results.pushed
    assert results.baseline_model_uri  # compared with the blessed model that is serving
    assert sorted(os.listdir(base)) == pushed_before
    report_dir = _latest_report_dir(out)
    assert len(os.listdir(os.path.dirname(report_dir))) >= 2  # one report per run, none overwritten
    with open(os.path.join(report_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["blessed"] is False and metrics["pushed_version"] is None
    assert "accuracy (overall, absolute) >= 1" in metrics["blessing_reason"]
    change = [c for c in metrics["validation"]["checks"] if c["kind"] == "change vs baseline"]
    assert change and all(c["status"] == "passed" for c in change)  # same model: no drop


def test_13_band_dag_standardises_trains_evaluates_and_pushes(bands_run):
    """The 13-band DAG on tiny synthetic data: 13-band schema validated, per-band Transform,
    a 13-channel EfficientNetV2, per-class evaluation and a pushed predict_bands model."""

    import numpy as np
    import tensorflow as tf

    from schema.example_data import synthetic
    from serving import signatures

    out, printed = bands_run
    printed = "\n" + printed  # the run summary (JSON), then the paths
    summary = json.loads(printed[printed.index("\n{") : printed.index("\nevaluation:")])
    # Its own pipeline and model name: never compared with, or pushed over, an RGB model.
    assert summary["modality"] == "all" and summary["pipeline"] == "e2e-all" and summary["pushed"]
    assert summary["pushed_destination"].startswith(os.path.join(out, "serving", "eurosat-all"))
    results = latest_results(os.path.join(out, "metadata", "e2e-all.sqlite"), "e2e-all")
    assert set(summarize(results.evaluation_uri)) >= {"overall", *features.CLASS_NAMES}
    model = tf.saved_model.load(results.pushed_destination)
    patches = np.stack([b for b, _, _ in synthetic.synthetic_band_examples(3, seed=9)])
    probabilities = model.signatures[signatures.PREDICT_BANDS](bands=tf.constant(patches))[signatures.PROBABILITIES]
    np.testing.assert_allclose(probabilities.numpy().sum(-1), 1.0, rtol=1e-4)
    assert os.path.exists(os.path.join(_latest_report_dir(out, "e2e-all"), "predictions.png"))


@pytest.fixture(scope="module")
def digits_results(digits_run):
    out, pipeline = digits_run
    with open(os.path.join(_latest_report_dir(out, pipeline), "metrics.json")) as f:
        metrics = json.load(f)
    return latest_results(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline), metrics


def test_real_images_train_far_above_chance(digits_results):
    """A collapse (early stopping restoring an epoch-1 model: 0.08 on 10 classes) fails here."""
    results, metrics = digits_results
    assert results.pushed
    assert metrics["accuracy"] >= 0.7 and metrics["macro_f1"] >= 0.7, metrics


def test_metrics_json_is_the_pushed_models_argmax_predictions(digits_results):
    from sklearn import metrics as skm

    from components import top1_metrics
    from pipeline.report import predict_split

    results, metrics = digits_results
    labels, probabilities = predict_split(results.pushed_destination, results.examples_uri)
    predicted = probabilities.argmax(1)
    ids = list(range(features.NUM_CLASSES))
    assert metrics["confusion_matrix"] == skm.confusion_matrix(labels, predicted, labels=ids).tolist()
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"), abs=1e-6)
    assert metrics["weighted_f1"] == pytest.approx(skm.f1_score(labels, predicted, average="weighted"), abs=1e-6)
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    from_matrix = top1_metrics.scores(metrics["confusion_matrix"])
    for i, name in enumerate(features.CLASS_NAMES):
        row = metrics["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[i], recall[i], f1[i]), abs=1e-6)
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (from_matrix["precision"][i], from_matrix["recall"][i], from_matrix["f1"][i]), abs=1e-9)
        assert row["support"] == support[i]
