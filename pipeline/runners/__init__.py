"""Where the one create_pipeline runs: a registry of orchestrators, one module per runner.

Each runner has its file, as TFX's templates keep one: local.py (LocalDagRunner, here), kubeflow.py (a Kubeflow
Pipelines v2 spec, offline) and vertex.py (that spec submitted to Vertex AI Pipelines).

`start` is the one way in: the settings are checked once (checks.py) and the runner registered
under the name launches. A new orchestrator is one more module that registers a Runner, and its
import below; --runner, its help and the dispatch find it in the registry.
"""
from __future__ import annotations

from typing import Optional

from pipeline.config import PipelineConfig
from pipeline.runners import kubeflow, local, vertex
from pipeline.runners.checks import check_config, cloud_problems
from pipeline.runners.kubeflow import compile_pipeline
from pipeline.runners.local import run_local
from pipeline.runners.registry import Launch, Runner, describe, get, names, register
from pipeline.runners.vertex import submit_vertex

LOCAL, KUBEFLOW, VERTEX = local.NAME, kubeflow.NAME, vertex.NAME

__all__ = ["KUBEFLOW", "LOCAL", "VERTEX", "Launch", "Runner", "check_config", "cloud_problems", "compile_pipeline",
           "describe", "get", "names", "register", "run_local", "start", "submit_vertex"]


def start(config: PipelineConfig, runner: str, how: Optional[Launch] = None) -> int:
    """Check the settings for `runner` once (every problem in one ConfigError), then launch it."""
    check_config(config, runner)
    return get(runner).launch(config, how or Launch())
