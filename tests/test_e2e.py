"""One real end-to-end run of the TFX DAG on tiny synthetic data (a few minutes)."""
import os

import pytest

import pipeline_runner
from components import features
from components.evaluation import summarize
from pipeline.results import latest_results

pytestmark = pytest.mark.e2e


def _latest_report_dir(out, pipeline="e2e"):
    """Each run writes its own report folder: the one of the latest run."""
    from components.report import run_report_dir

    run_id = latest_results(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline).run_id
    assert run_id
    return run_report_dir(out, pipeline, run_id)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("e2e"))
    argv = ["--data", "synthetic:300", "--output-dir", out, "--pipeline-name", "e2e",
            "--weights", "none", "--epochs", "1", "--batch-size", "16",
            "--min-accuracy", "0", "--min-macro-f1", "0"]
    assert pipeline_runner.main(argv) == 0
    return out, argv


def test_model_is_pushed_in_serving_layout(tiny_run):
    out, _ = tiny_run
    results = latest_results(os.path.join(out, "metadata", "e2e.sqlite"), "e2e")
    assert results.blessed and results.pushed
    base = os.path.join(out, "serving", "eurosat")
    versions = [v for v in os.listdir(base) if v.isdigit()]
    assert len(versions) == 1
    assert os.path.exists(os.path.join(base, versions[0], "saved_model.pb"))
    from serving import warmup  # the Trainer's export wrote TF Serving's warm-up requests

    assert len(warmup.read_warmup_requests(os.path.join(base, versions[0]))) == 3
    assert results.pushed_destination.startswith(base)


def test_evaluation_has_overall_and_per_class_metrics(tiny_run):
    out, _ = tiny_run
    results = latest_results(os.path.join(out, "metadata", "e2e.sqlite"), "e2e")
    summary = summarize(results.evaluation_uri)
    overall = summary["overall"]
    assert 0.0 <= overall["accuracy"] <= 1.0 and 0.0 <= overall["macro_f1"] <= 1.0
    assert 40 <= overall["example_count"] <= 80  # ~20% of 300 by hash of the source name
    assert set(overall["per_class"]) == set(features.CLASS_NAMES)
    for name in features.CLASS_NAMES:
        assert "accuracy" in summary[name], f"no slice for {name}"
        assert summary[name]["example_count"] >= 1


def test_rerun_reuses_cached_components(tiny_run):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    out, argv = tiny_run
    assert pipeline_runner.main(argv) == 0
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(out, "metadata", "e2e.sqlite")))
    executions = store.get_executions()
    trainer_runs = [e for e in executions if e.type_id == store.get_execution_type("tfx.components.trainer.component.Trainer").id]
    states = [e.last_known_state for e in trainer_runs]
    assert states.count(metadata_store_pb2.Execution.CACHED) == 1, states
    assert states.count(metadata_store_pb2.Execution.COMPLETE) == 1, states


def test_run_wrote_the_report(tiny_run):
    import json

    out, _ = tiny_run
    report_dir = _latest_report_dir(out)
    with open(os.path.join(report_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["blessed"] is True and metrics["pushed_version"]
    assert set(metrics["per_class"]) == set(features.CLASS_NAMES)
    for name in ("index.html", "confusion_matrix.png", "class_counts.png", "per_class_f1.png",
                 "training_curves.png", "predictions.png"):
        assert os.path.exists(os.path.join(report_dir, name)), name


def test_impossible_bar_blocks_the_push_and_report_says_why(tiny_run, capsys):
    """Same data and model (cached), bar raised out of reach: only Evaluator/Pusher re-run."""
    import json

    out, argv = tiny_run
    base = os.path.join(out, "serving", "eurosat")
    pushed_before = sorted(os.listdir(base))
    assert pipeline_runner.main(argv + ["--min-accuracy", "1.0"]) == 0
    assert "NOT pushed: the model was not blessed: accuracy (overall, absolute) >= 1" in capsys.readouterr().out
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


def test_13_band_dag_standardises_trains_evaluates_and_pushes(tmp_path, capsys):
    """The 13-band DAG on tiny synthetic data: 13-band schema validated, per-band Transform,
    a 13-channel EfficientNetV2, per-class evaluation and a pushed predict_bands model."""
    import json

    import numpy as np
    import tensorflow as tf

    from components import synthetic
    from serving import signatures

    out = str(tmp_path)
    argv = ["--data", "synthetic/all:200", "--output-dir", out, "--pipeline-name", "e2e",
            "--weights", "none", "--epochs", "1", "--batch-size", "16",
            "--min-accuracy", "0", "--min-macro-f1", "0"]
    assert pipeline_runner.main(argv) == 0
    printed = capsys.readouterr().out  # Keras' epoch lines, then the run summary (JSON)
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
