"""Find what a run produced (examples, model, evaluation, blessing, pushed model) in its ML
Metadata store, so reports can be made for any past run without re-running anything."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx


@dataclasses.dataclass
class RunResults:
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


def _store(metadata_path: str) -> metadata_store.MetadataStore:
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(f"no metadata at {metadata_path}: run the pipeline first")
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    return metadata_store.MetadataStore(config)


def _latest(store, pipeline_name: str, type_name: str):
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if context is None:
        return None
    artifacts = [
        a for a in store.get_artifacts_by_context(context.id)
        if a.type_id == store.get_artifact_type(type_name).id
    ]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


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
    """The `type_name` artifact that went into (towards='input') or came out of
    (towards='output') the execution that produced `artifact` under the channel `key`: e.g.
    the Model an evaluation judged ("model", not "baseline_model"), or the model_run written
    beside a Model. When the candidate is also the baseline MLMD keeps one event for both, so
    an artifact of the type under another key is the fallback."""
    if artifact is None:
        return None
    producers = [e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                 if e.type == metadata_store_pb2.Event.OUTPUT]
    if not producers:
        return None
    wanted = metadata_store_pb2.Event.INPUT if towards == "input" else metadata_store_pb2.Event.OUTPUT
    events = [e for e in store.get_events_by_execution_ids([max(producers)]) if e.type == wanted]
    type_id = store.get_artifact_type(type_name).id
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events]) if a.type_id == type_id}
    keyed = [by_id[e.artifact_id] for e in events
             if e.artifact_id in by_id and e.path.steps and e.path.steps[0].key == key]
    found = keyed or list(by_id.values())
    return max(found, key=lambda a: a.id) if found else None


def latest_results(metadata_path: str, pipeline_name: str) -> RunResults:
    """The newest evaluation, blessing and push of `pipeline_name`, with the model, model_run
    and examples that evaluation was made from (followed through MLMD events)."""
    store = _store(metadata_path)
    evaluation = _latest(store, pipeline_name, "ModelEvaluation")
    blessing = _latest(store, pipeline_name, "ModelBlessing")
    pushed = _latest(store, pipeline_name, "PushedModel")
    model = _linked(store, evaluation, "Model", "input", "model") or _latest(store, pipeline_name, "Model")
    examples = _linked(store, evaluation, "Examples", "input", "examples") or _latest(store, pipeline_name, "Examples")
    model_run = _linked(store, model, "ModelRun", "output", "model_run")
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
    )
