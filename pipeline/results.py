"""Find what a run produced in its ML Metadata store.

That is its examples, model, evaluation, blessing and pushed model, so reports can be made for any past run without
re-running anything.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Dict, List, Optional

from schema.errors import DataError, DataNotFound

if TYPE_CHECKING:  # ML Metadata and TFX load where a store opens: a missing run is said first
    from ml_metadata.metadata_store import metadata_store


@dataclasses.dataclass
class RunResults:
    """What a finished run produced: its artifacts' URIs, the blessing, the push and the test metrics."""

    evaluation_uri: Optional[str]
    blessed: Optional[bool]
    pushed: Optional[bool]
    pushed_destination: Optional[str]
    model_uri: Optional[str]
    examples_uri: Optional[str] = None  # ExampleGen's output (Split-train/eval/test)
    model_run_uri: Optional[str] = None  # the Trainer's model_run dir (history.json)
    blessing_uri: Optional[str] = None
    baseline_model_uri: Optional[str] = None  # the blessed model the candidate was compared with
    pushed_version: Optional[str] = None
    run_id: Optional[str] = None  # the pipeline run the evaluation belongs to (TFX's pipeline_run context)
    statistics_uri: Optional[str] = None  # StatisticsGen's output for those examples (Split-*/FeatureStats.pb)
    data_source: Optional[str] = None  # what the ExampleGen read (the --data it was given)
    files_refused: Optional[int] = None  # the source's files the conversion refused (its report's "bad")


RUN_CONTEXT = "pipeline_run"
# The counts of the ExampleGen's conversion summary (components/example_gen.py SUMMARY_PROPERTIES).
_COUNTS = ("files", "examples", "bad", "duplicates", "normalized")


def require_metadata(metadata_path: str) -> None:
    """DataNotFound when no run ever wrote `metadata_path` (checked before TFX or TensorFlow loads)."""
    if not os.path.exists(metadata_path):
        raise DataNotFound(f"no metadata at {metadata_path}: run the pipeline first")


def _store(metadata_path: str) -> metadata_store.MetadataStore:
    require_metadata(metadata_path)
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx  # ~50 s on a loaded machine: after the check

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    return metadata_store.MetadataStore(config)


def _type_id(store, type_name: str) -> Optional[int]:
    """The artifact type's id, or None when no run ever produced one (MLMD raises NotFound)."""
    from ml_metadata import errors as mlmd_errors

    try:
        return store.get_artifact_type(type_name).id
    except mlmd_errors.NotFoundError:
        return None


def _latest(store, pipeline_name: str, type_name: str, run=None):
    """The newest `type_name` artifact of the pipeline, or of its run context `run`."""
    context = run or store.get_context_by_type_and_name("pipeline", pipeline_name)
    type_id = _type_id(store, type_name)
    if context is None or type_id is None:
        return None
    artifacts = [a for a in store.get_artifacts_by_context(context.id) if a.type_id == type_id]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def _runs(store, pipeline_name: str) -> list:
    """The pipeline's run contexts (TFX's pipeline_run, named by run id), oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    return sorted((c for c in store.get_children_contexts_by_context(pipeline.id) if c.type == RUN_CONTEXT),
                  key=lambda c: c.id)


def list_runs(metadata_path: str, pipeline_name: str) -> List[str]:
    """Run ids of `pipeline_name`, oldest first (what `report --run` takes)."""
    return [c.name for c in _runs(_store(metadata_path), pipeline_name)]


def _run_of(store, artifact) -> Optional[str]:
    """The newest run an artifact belongs to (a cached output belongs to every run reusing it)."""
    if artifact is None:
        return None
    runs = [c for c in store.get_contexts_by_artifact(artifact.id) if c.type == RUN_CONTEXT]
    return max(runs, key=lambda c: c.id).name if runs else None


def _int_property(artifact, name: str) -> Optional[int]:
    if artifact is None or name not in artifact.custom_properties:
        return None
    return artifact.custom_properties[name].int_value


def _str_property(artifact, name: str) -> Optional[str]:
    if artifact is None or name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.string_value or (str(value.int_value) if value.HasField("int_value") else None)


def _linked(store, artifact, type_name: str, towards: str, key: str):
    """The `type_name` artifact on the other side of the execution that produced `artifact`.

    The `type_name` artifact that went into (towards='input') or came out of (towards='output') the execution that
    produced `artifact` under the channel `key`: e.g. the Model an evaluation judged ("model", not
    "baseline_model"), or the model_run written beside a Model. When the candidate is also the baseline MLMD keeps
    one event for both, so an artifact of the type under another key is the fallback.
    """
    from ml_metadata.proto import metadata_store_pb2

    if artifact is None:
        return None
    producers = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                 if e.type == metadata_store_pb2.Event.OUTPUT]
    if not producers:
        return None
    wanted = metadata_store_pb2.Event.INPUT if towards == "input" else metadata_store_pb2.Event.OUTPUT
    events = [e for e in store.get_events_by_execution_ids([max(producers)]) if e.type == wanted]
    type_id = _type_id(store, type_name)
    if type_id is None:
        return None
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events]) if a.type_id == type_id}
    keyed = [by_id[e.artifact_id] for e in events
             if e.artifact_id in by_id and e.path.steps and e.path.steps[0].key == key]
    found = keyed or list(by_id.values())
    return max(found, key=lambda a: a.id) if found else None


def _produced_from(store, artifact, type_name: str, key: str):
    """The newest `type_name` artifact output under `key` by an execution that read `artifact`.

    For example StatisticsGen's "statistics" of an Examples artifact (Transform's pre/post-transform statistics
    have other keys).
    """
    from ml_metadata.proto import metadata_store_pb2

    type_id = _type_id(store, type_name)
    if artifact is None or type_id is None:
        return None
    readers = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
               if e.type == metadata_store_pb2.Event.INPUT]
    outputs = [e.artifact_id for e in store.get_events_by_execution_ids(readers)
               if e.type == metadata_store_pb2.Event.OUTPUT and e.path.steps and e.path.steps[0].key == key]
    found = [a for a in store.get_artifacts_by_id(outputs) if a.type_id == type_id]
    return max(found, key=lambda a: a.id) if found else None


def latest_results(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None) -> RunResults:
    """The newest evaluation, blessing and push of `pipeline_name`, with the model and examples they came from.

    They are those of its run `run_id` when given (ValueError naming the known runs when there is no such run). The
    model, model_run and examples are those that evaluation was made from, followed through MLMD events.
    """
    store = _store(metadata_path)
    run = None
    if run_id:
        runs = _runs(store, pipeline_name)
        run = next((c for c in runs if run_id in (c.name, run_folder(c.name))), None)
        if run is None:
            known = ", ".join(run_folder(c.name) for c in runs[-5:]) or "none"
            raise DataError(f"pipeline {pipeline_name!r} has no run {run_id!r}; latest runs: {known}")
    evaluation = _latest(store, pipeline_name, "ModelEvaluation", run)
    blessing = _latest(store, pipeline_name, "ModelBlessing", run)
    pushed = _latest(store, pipeline_name, "PushedModel", run)
    model = _linked(store, evaluation, "Model", "input", "model") or _latest(store, pipeline_name, "Model", run)
    examples = (_linked(store, evaluation, "Examples", "input", "examples")
                or _latest(store, pipeline_name, "Examples", run))
    model_run = _linked(store, model, "ModelRun", "output", "model_run")
    statistics = _produced_from(store, examples, "ExampleStatistics", "statistics")
    blessed = _int_property(blessing, "blessed")
    was_pushed = _int_property(pushed, "pushed")
    destination = None
    if pushed is not None and "pushed_destination" in pushed.custom_properties:
        destination = pushed.custom_properties["pushed_destination"].string_value
    return RunResults(
        evaluation_uri=evaluation.uri if evaluation else None,
        blessed=None if blessed is None else bool(blessed),
        pushed=None if was_pushed is None else bool(was_pushed),
        pushed_destination=destination,
        model_uri=model.uri if model else None,
        examples_uri=examples.uri if examples else None,
        model_run_uri=model_run.uri if model_run else None,
        blessing_uri=blessing.uri if blessing else None,
        baseline_model_uri=_str_property(blessing, "baseline_model"),  # set by the Evaluator
        pushed_version=_str_property(pushed, "pushed_version"),
        run_id=run.name if run is not None else _run_of(store, evaluation),
        statistics_uri=statistics.uri if statistics else None,
        data_source=_str_property(examples, "source"),
        files_refused=_int_property(examples, "bad"),
    )


def not_pushed_reason(checks: List[dict], blessed: Optional[bool]) -> str:
    """Why a model was not pushed: the bars that actually failed, with their values.

    The bars are evaluation.validation_summary()'s checks: absolute ones, or the change vs the baseline.
    """
    if blessed:
        return "the model was blessed but the Pusher did not push it"
    failed = [c for c in checks if c.get("status") == "failed"]
    if not failed:
        return "the model was not blessed (no failed bar recorded)"
    return "the model was not blessed: " + "; ".join(
        f"{c['metric']} ({c['slice']}, {c['kind']}) {c.get('bound', '')}".rstrip()
        + (f", got {c['value']:.4f}" if isinstance(c.get("value"), (int, float)) else "")
        for c in failed)


def no_bar_note(checks: List[dict], accuracy: Optional[float]) -> Optional[str]:
    """A plain note when the blessing had no absolute bar, so any model is blessed.

    No absolute bar means every one is 0 (gated_metrics.no_bar_flags(), --min-accuracy 0 --min-macro-f1 0); then chance
    level says what the accuracy is worth. None when any absolute bar was set (checks from
    evaluation.validation_summary()).
    """
    absolute = [c for c in checks if c.get("kind") == "absolute"]
    if any(not isinstance(c.get("lower_bound"), (int, float)) or c["lower_bound"] > 0 for c in absolute):
        return None
    from components.gated_metrics import no_bar_flags
    from schema.features import NUM_CLASSES

    got = f"test accuracy {accuracy:.3f}, " if isinstance(accuracy, (int, float)) else ""
    return (f"no bar was set ({no_bar_flags()}: any model is blessed); {got}chance level "
            f"for {NUM_CLASSES} classes is {1 / NUM_CLASSES:.3f}")


def push_line(results: RunResults, checks: List[dict], accuracy: Optional[float]) -> str:
    """What a run printed about its model: where it was pushed, or which bar kept it back.

    When it was pushed with no bar set, the line says so.
    """
    if results.pushed:
        note = no_bar_note(checks, accuracy) if checks else None
        return f"pushed model: {results.pushed_destination}" + (f"; {note}" if note else "")
    return f"NOT pushed: {not_pushed_reason(checks, results.blessed)}; see {results.evaluation_uri}"


def run_folder(run_id: str) -> str:
    """A run id as a folder name (TFX's ids are ISO times: ':' is not welcome everywhere)."""
    return run_id.replace(":", "")


def cancel_running(metadata_path: str, pipeline_name: str) -> List[str]:
    """Mark the pipeline's executions still RUNNING as CANCELED; returns their component ids.

    After an interrupt nothing is running any more, and the next run must not take them for live ones.
    """
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.exists(metadata_path):
        return []
    store = _store(metadata_path)
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    running = [e for e in store.get_executions_by_context(pipeline.id)
               if e.last_known_state == metadata_store_pb2.Execution.RUNNING]
    for e in running:
        e.last_known_state = metadata_store_pb2.Execution.CANCELED
    if running:
        store.put_executions(running)
    names = []
    for e in running:
        nodes = [c.name for c in store.get_contexts_by_execution(e.id) if c.type == "node"]
        names.append(nodes[0].split(".")[-1] if nodes else str(e.id))
    return names


def _execution_setting(executions, types, component: str, name: str) -> Optional[str]:
    """A recorded property `name` of the run's execution of `component` (its type's last part)."""
    for e in executions:
        if types.get(e.type_id, "").rsplit(".", 1)[-1] == component and name in e.custom_properties:
            return e.custom_properties[name].string_value or None
    return None


def run_settings(metadata_path: str, pipeline_name: str, run_id: str) -> dict:
    """What ML Metadata recorded about run `run_id`.

    When it started, its wall time (start to the last execution's end), the data source (what the ExampleGen read,
    its identity and conversion summary: files, examples, refused; an older run's ImportExampleGen input_base and
    fingerprint), the Trainer's hyperparameters (its custom_config), the code it ran (run_fn, preprocessing_fn, the
    TFX version) and which components were reused from the cache.
    """
    import datetime
    import json

    from ml_metadata.proto import metadata_store_pb2

    store = _store(metadata_path)
    run = next((c for c in _runs(store, pipeline_name) if run_id in (c.name, run_folder(c.name))), None)
    if run is None:
        return {}
    executions = store.get_executions_by_context(run.id)
    types = {t.id: t.name for t in store.get_execution_types()}
    ends = [e.last_update_time_since_epoch for e in executions if e.last_update_time_since_epoch]
    trainer_config = json.loads(_execution_setting(executions, types, "Trainer", "custom_config") or "{}") or {}
    artifacts = store.get_artifacts_by_context(run.id)
    tfx_versions = sorted({a.custom_properties["tfx_version"].string_value for a in artifacts
                           if "tfx_version" in a.custom_properties})
    # A cached ExampleGen may record no properties; the Examples artifact it reused keeps them.
    fingerprint = (_execution_setting(executions, types, "EuroSATExampleGen", "source_identity")
                   or _execution_setting(executions, types, "ImportExampleGen", "input_fingerprint")
                   or next((a.custom_properties[k].string_value for a in artifacts for k in
                            ("source_identity", "input_fingerprint") if k in a.custom_properties), None))
    examples = next((a for a in artifacts if "conversion_report" in a.custom_properties), None)
    conversion = {k: (_int_property(examples, k) if k in _COUNTS else _str_property(examples, k))
                  for k in ("kind", "modality", *_COUNTS, "conversion_report")} if examples else None
    started = datetime.datetime.fromtimestamp(run.create_time_since_epoch / 1000, datetime.timezone.utc)
    return {
        "run_id": run.name,
        "started": started.isoformat(timespec="seconds"),
        "wall_time_s": round((max(ends) - run.create_time_since_epoch) / 1000, 1) if ends else None,
        "data_source": _str_property(examples, "source")
        or _execution_setting(executions, types, "ImportExampleGen", "input_base"),
        "conversion": conversion,
        "input_fingerprint": fingerprint,
        "hparams": trainer_config.get("hparams"),
        "run_fn": _execution_setting(executions, types, "Trainer", "run_fn"),
        "preprocessing_fn": _execution_setting(executions, types, "Transform", "preprocessing_fn"),
        "tfx_version": ", ".join(tfx_versions) or None,
        "cached": sorted(types.get(e.type_id, "").rsplit(".", 1)[-1] for e in executions
                         if e.last_known_state == metadata_store_pb2.Execution.CACHED),
    }


def cancel_stale_runs(metadata_path: str, pipeline_name: str) -> Optional[str]:
    """Before a run: mark CANCELED the executions a killed run left RUNNING.

    Before a run: executions of the pipeline still RUNNING were left by a run that was killed (kill -9, a crash:
    Ctrl-C marks them itself) and are marked CANCELED. One line saying so, or None. (One local run of a pipeline per
    metadata file at a time, as SQLite metadata allows.)
    """
    stale = cancel_running(metadata_path, pipeline_name)
    if not stale:
        return None
    return (f"marked {len(stale)} execution(s) of {pipeline_name!r} that an earlier, killed run left RUNNING "
            f"in ML Metadata as CANCELED: {', '.join(stale)}")


def component_seconds(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None) -> Dict[str, dict]:
    """Each component of run `run_id` (default: the latest run) as ML Metadata timed it.

    Its node id -> {"seconds": creation to last update of its execution, "state": COMPLETE, CACHED, ...}.
    """
    from ml_metadata.proto import metadata_store_pb2

    store = _store(metadata_path)
    runs = _runs(store, pipeline_name)
    run = next((c for c in runs if run_id in (c.name, run_folder(c.name))), None) if run_id else (runs or [None])[-1]
    if run is None:
        return {}
    out: Dict[str, dict] = {}
    for e in sorted(store.get_executions_by_context(run.id), key=lambda e: e.create_time_since_epoch):
        nodes = [c.name for c in store.get_contexts_by_execution(e.id) if c.type == "node"]
        name = nodes[0].split(".")[-1] if nodes else str(e.id)
        out[name] = {"seconds": round((e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000, 1),
                     "state": metadata_store_pb2.Execution.State.Name(e.last_known_state)}
    return out
