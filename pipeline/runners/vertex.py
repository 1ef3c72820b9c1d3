"""The Vertex AI Pipelines runner.

The Kubeflow v2 spec (kubeflow.py), submitted with google-cloud-aiplatform unless --dry-run.
"""
from __future__ import annotations

import sys
from typing import Any, List, Optional

from pipeline.config import PipelineConfig
from pipeline.runners import checks, kubeflow
from pipeline.runners.registry import Launch, Runner, register
from serving import contract

NAME = "vertex"


def problems(config: PipelineConfig) -> List[str]:
    """What is missing for Vertex AI Pipelines (project, region, a gs:// root), one line each."""
    return (checks.missing(config, "project", "the Google Cloud project to run Vertex AI Pipelines in")
            + checks.missing(config, "region", "the Vertex AI region, e.g. europe-west4")
            + checks.gcs_root_problems(config))


def submit_vertex(config: PipelineConfig, spec_path: str, credentials: Optional[Any] = None) -> Any:
    """Submit a compiled spec to Vertex AI Pipelines; returns the submitted aiplatform.PipelineJob.

    The settings are checked by the caller (runners.start).

    google-cloud-aiplatform is imported here, not at start-up, to keep the CLI fast.
    """
    from google.auth import exceptions as auth_exceptions
    from google.cloud import aiplatform

    try:
        job = aiplatform.PipelineJob(
            display_name=config.pipeline_name,
            template_path=spec_path,
            pipeline_root=config.pipeline_root,
            enable_caching=config.enable_cache,
            project=config.project,
            location=config.region,
            credentials=credentials,
        )
        job.submit(service_account=config.service_account or None)
    except auth_exceptions.DefaultCredentialsError as err:
        raise RuntimeError(
            "no Google Cloud credentials for submitting to Vertex AI: run "
            "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS), "
            f"or pass --dry-run to only compile. ({err.__class__.__name__})"
        ) from err
    return job


def launch(config: PipelineConfig, how: Launch) -> int:
    """Compile the spec and, unless a dry run, submit it to Vertex AI Pipelines: the exit code."""
    output = kubeflow.compile_for(config, how, NAME)
    if how.dry_run:
        return 0
    try:
        job = submit_vertex(config, output)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"submitted to Vertex AI Pipelines: {job.resource_name}")
    return 0


RUNNER = register(Runner(NAME, "compile and submit to Vertex AI Pipelines", infra_gate=contract.GATE_PROCESS,
                         on_cloud=True, launch=launch, problems=problems))
