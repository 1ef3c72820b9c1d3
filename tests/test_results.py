"""What a run produced, read from ML Metadata: run selection, runs without an Evaluator,
interrupted runs, and why a model was not pushed. ML Metadata stores are built by hand."""
import dataclasses

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd
from tfx import v1 as tfx

import pipeline_runner
from pipeline import report, results, runners
from pipeline.config import PipelineConfig


def _store(path):
    return metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(str(path)))


def _context(store, type_name, name):
    type_id = store.put_context_type(mlmd.ContextType(name=type_name))
    return store.put_contexts([mlmd.Context(type_id=type_id, name=name)])[0]


def _pipeline(tmp_path, name="p"):
    path = PipelineConfig(output_dir=str(tmp_path), pipeline_name=name).metadata_path
    import os

    os.makedirs(os.path.dirname(path), exist_ok=True)
    store = _store(path)
    return path, store, _context(store, "pipeline", name)


def _run(store, pipeline_id, run_id, uri):
    """A pipeline_run context holding an Evaluator execution that output an evaluation at `uri`."""
    run_id_ = _context(store, "pipeline_run", run_id)
    store.put_parent_contexts([mlmd.ParentContext(child_id=run_id_, parent_id=pipeline_id)])
    art_type = store.put_artifact_type(mlmd.ArtifactType(name="ModelEvaluation"))
    exe_type = store.put_execution_type(mlmd.ExecutionType(name="Evaluator"))
    execution = mlmd.Execution(type_id=exe_type, last_known_state=mlmd.Execution.COMPLETE)
    artifact = mlmd.Artifact(type_id=art_type, uri=uri)
    event = mlmd.Event(type=mlmd.Event.OUTPUT)
    event.path.steps.add().key = "evaluation"
    store.put_execution(execution, [(artifact, event)], store.get_contexts_by_id([pipeline_id, run_id_]))


def test_report_of_a_run_that_never_reached_the_evaluator_is_one_line(tmp_path, capsys):
    _, store, pipeline_id = _pipeline(tmp_path, "p")  # ExampleGen ran; no ModelEvaluation type at all
    examples = store.put_artifacts([mlmd.Artifact(type_id=store.put_artifact_type(mlmd.ArtifactType(name="Examples")),
                                                  uri="/examples/1")])
    store.put_attributions_and_associations([mlmd.Attribution(context_id=pipeline_id, artifact_id=examples[0])], [])
    assert results.latest_results(PipelineConfig(output_dir=str(tmp_path), pipeline_name="p").metadata_path,
                                  "p").evaluation_uri is None
    assert pipeline_runner.main(["report", "--output-dir", str(tmp_path), "--pipeline-name", "p"]) == 2
    err = capsys.readouterr().err
    assert "has no Evaluator output yet" in err and err.count("\n") == 1


def test_each_run_is_found_by_its_id_and_reported_in_its_own_folder(tmp_path, capsys):
    path, store, pipeline_id = _pipeline(tmp_path)
    _run(store, pipeline_id, "2026-01-01T10:00:00.000001", "/eval/1")
    _run(store, pipeline_id, "2026-01-02T10:00:00.000002", "/eval/2")
    assert results.list_runs(path, "p") == ["2026-01-01T10:00:00.000001", "2026-01-02T10:00:00.000002"]
    latest = results.latest_results(path, "p")
    assert (latest.evaluation_uri, latest.run_id) == ("/eval/2", "2026-01-02T10:00:00.000002")
    first = results.latest_results(path, "p", "2026-01-01T100000.000001")  # the folder name works too
    assert (first.evaluation_uri, first.run_id) == ("/eval/1", "2026-01-01T10:00:00.000001")
    with pytest.raises(ValueError, match="no run 'nope'; latest runs: 2026-01-01T100000.000001, 2026"):
        results.latest_results(path, "p", "nope")
    folders = {report.run_report_dir(str(tmp_path), "p", r) for r in results.list_runs(path, "p")}
    assert len(folders) == 2 and all(f.startswith(str(tmp_path / "report" / "p")) for f in folders)
    assert report.main(["--output-dir", str(tmp_path), "--pipeline-name", "p", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["2026-01-01T100000.000001", "2026-01-02T100000.000002"]
    assert report.main(["--output-dir", str(tmp_path), "--pipeline-name", "p", "--run", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_interrupted_executions_are_not_left_running(tmp_path):
    path, store, pipeline_id = _pipeline(tmp_path)
    exe_type = store.put_execution_type(mlmd.ExecutionType(name="Trainer"))
    node = _context(store, "node", "p.Trainer")
    [running, done] = store.put_executions([
        mlmd.Execution(type_id=exe_type, last_known_state=mlmd.Execution.RUNNING),
        mlmd.Execution(type_id=exe_type, last_known_state=mlmd.Execution.COMPLETE)])
    store.put_attributions_and_associations(
        [], [mlmd.Association(context_id=c, execution_id=e) for e in (running, done) for c in (pipeline_id, node)])
    assert results.cancel_running(path, "p") == ["Trainer"]
    states = {e.id: e.last_known_state for e in store.get_executions()}
    assert states == {running: mlmd.Execution.CANCELED, done: mlmd.Execution.COMPLETE}
    assert results.cancel_running(path, "p") == []


def test_ctrl_c_is_one_line_saying_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(runners.local, "run_local", interrupted)
    assert pipeline_runner.main(["--output-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err == pipeline_runner.INTERRUPTED + "\n" and "run the same command again" in err


def test_not_pushed_names_the_bar_that_failed():
    checks = [
        {"metric": "accuracy", "slice": "overall", "kind": "absolute", "bound": ">= 0.8", "status": "passed"},
        {"metric": "accuracy", "slice": "overall", "kind": "change vs baseline", "bound": ">= -0.01",
         "status": "failed", "value": -0.0523},
        {"metric": "macro F1", "slice": "overall", "kind": "absolute", "bound": ">= 0.8", "status": "passed"},
    ]
    reason = results.not_pushed_reason(checks, blessed=False)
    assert reason == "the model was not blessed: accuracy (overall, change vs baseline) >= -0.01, got -0.0523"
    assert "0.8" not in reason
    assert "blessed but the Pusher" in results.not_pushed_reason([], blessed=True)


def _bars(accuracy_bar, f1_bar):
    return [{"metric": m, "slice": "overall", "kind": "absolute", "bound": f">= {b:g}", "lower_bound": b,
             "status": "passed"} for m, b in (("accuracy", accuracy_bar), ("macro_f1", f1_bar))] + [
        {"metric": "accuracy", "slice": "overall", "kind": "change vs baseline", "bound": ">= -0.01",
         "status": "skipped (no baseline)"}]


def test_push_line_says_plainly_when_no_bar_was_set():
    """Issue 20.5: a model of test accuracy 0.08 was blessed and pushed under --min-accuracy 0
    --min-macro-f1 0 without a word."""
    pushed = results.RunResults(evaluation_uri="/e", blessed=True, pushed=True, pushed_destination="/s/eurosat/7",
                                model_uri="/m")
    line = results.push_line(pushed, _bars(0.0, 0.0), accuracy=0.08)
    assert line == ("pushed model: /s/eurosat/7; no bar was set (--min-accuracy 0 --min-macro-f1 0: any model is "
                    "blessed); test accuracy 0.080, chance level for 10 classes is 0.100")
    assert results.push_line(pushed, _bars(0.8, 0.0), accuracy=0.9) == "pushed model: /s/eurosat/7"
    assert results.push_line(pushed, _bars(0.8, 0.8), accuracy=0.9) == "pushed model: /s/eurosat/7"
    assert results.push_line(pushed, [], accuracy=0.9) == "pushed model: /s/eurosat/7"
    kept = dataclasses.replace(pushed, blessed=False, pushed=False, pushed_destination=None)
    failed = _bars(0.8, 0.8)
    failed[0].update(status="failed", value=0.5)
    assert results.push_line(kept, failed, accuracy=0.5) == (
        "NOT pushed: the model was not blessed: accuracy (overall, absolute) >= 0.8, got 0.5000; see /e")


def test_the_bars_carry_their_number():
    from tensorflow_model_analysis.proto import config_pb2

    from components.evaluation import _bound_text

    threshold = config_pb2.MetricThreshold(value_threshold={"lower_bound": {"value": 0.0}})
    assert _bound_text(threshold) == [{"kind": "absolute", "bound": ">= 0", "lower_bound": 0.0}]


def test_a_later_run_cancels_what_a_killed_run_left_running(tmp_path):
    """Issue 26.13: after kill -9 the execution stayed RUNNING in ML Metadata forever."""
    path, store, pipeline_id = _pipeline(tmp_path)
    exe_type = store.put_execution_type(mlmd.ExecutionType(name="Trainer"))
    node = _context(store, "node", "p.Trainer")
    [killed] = store.put_executions([mlmd.Execution(type_id=exe_type, last_known_state=mlmd.Execution.RUNNING)])
    store.put_attributions_and_associations(
        [], [mlmd.Association(context_id=c, execution_id=killed) for c in (pipeline_id, node)])
    assert results.cancel_stale_runs(path, "other") is None  # only the pipeline's own
    assert results.cancel_stale_runs(path, "p") == (
        "marked 1 execution(s) of 'p' that an earlier, killed run left RUNNING in ML Metadata as CANCELED: Trainer")
    assert store.get_executions()[0].last_known_state == mlmd.Execution.CANCELED
    assert results.cancel_stale_runs(path, "p") is None
    assert results.cancel_stale_runs(str(tmp_path / "none.sqlite"), "p") is None


def test_component_seconds_are_each_executions_creation_to_last_update_by_node(tmp_path):
    import time

    path, store, pipeline_id = _pipeline(tmp_path)
    exe_type = store.put_execution_type(mlmd.ExecutionType(name="tfx.components.trainer.component.Trainer"))
    for run_id in ("run-1", "run-2"):
        run = _context(store, "pipeline_run", run_id)
        store.put_parent_contexts([mlmd.ParentContext(child_id=run, parent_id=pipeline_id)])
        node = _context(store, "node", "p.Trainer") if run_id == "run-1" else store.get_contexts_by_type("node")[0].id
        [trainer] = store.put_executions([mlmd.Execution(type_id=exe_type, last_known_state=mlmd.Execution.RUNNING)])
        store.put_attributions_and_associations(
            [], [mlmd.Association(context_id=c, execution_id=trainer) for c in (pipeline_id, run, node)])
        time.sleep(0.3 if run_id == "run-2" else 0.0)
        [execution] = store.get_executions_by_id([trainer])
        execution.last_known_state = mlmd.Execution.COMPLETE if run_id == "run-2" else mlmd.Execution.CACHED
        store.put_executions([execution])
    latest = results.component_seconds(path, "p")
    assert list(latest) == ["Trainer"] and latest["Trainer"]["state"] == "COMPLETE"
    assert 0.3 <= latest["Trainer"]["seconds"] < 30
    assert results.component_seconds(path, "p", "run-1")["Trainer"]["state"] == "CACHED"
    assert results.component_seconds(path, "p", "no-such-run") == {}
