"""Find what a run produced (evaluation, blessing, pushed model) in its ML Metadata store."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx


@dataclasses.dataclass
class RunResults:
    evaluation_uri: Optional[str]
    blessed: Optional[bool]
    pushed: Optional[bool]
    pushed_destination: Optional[str]
    model_uri: Optional[str]


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


def latest_results(metadata_path: str, pipeline_name: str) -> RunResults:
    """The newest evaluation, blessing, model and push of `pipeline_name`."""
    store = _store(metadata_path)
    evaluation = _latest(store, pipeline_name, "ModelEvaluation")
    blessing = _latest(store, pipeline_name, "ModelBlessing")
    pushed = _latest(store, pipeline_name, "PushedModel")
    model = _latest(store, pipeline_name, "Model")
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
    )
