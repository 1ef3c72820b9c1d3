"""The Kubeflow Pipelines v2 runner: TFX's KubeflowV2DagRunner writes the pipeline spec offline.

The components run in the image built from the repository's Dockerfile, where this project is
installed: that is why the pipeline names its code by import path (no module file to upload).
Vertex AI Pipelines runs the same spec (vertex.py submits it).
"""
from __future__ import annotations

import logging
import os
import posixpath
from typing import Any, Dict

from pipeline.config import IMAGE_PROJECT_DIR, PipelineConfig
from pipeline.console import quiet_tensorflow
from pipeline.runners.registry import Launch, Runner, get, register
from serving import contract

log = logging.getLogger(__name__)
NAME = "kubeflow"


def image_config(config: PipelineConfig) -> PipelineConfig:
    """The config as the component containers see it: the repository's schemas live in the image."""
    if not config.schema_path:
        return config.replace(schema_path=config.schema_file(posixpath.join(IMAGE_PROJECT_DIR, "schema")))
    return config


def compile_modality(config: PipelineConfig) -> str:
    """The modality a compiled pipeline is built for, without reading the data.

    The one given, the one the --data name says (synthetic/all, tfds:eurosat/all), else RGB; the ExampleGen stops
    the run with the fix when the data it reads is of another modality.
    """
    from components.data_sources import spec_modality

    if config.modality != "auto":
        return config.modality
    named = spec_modality(config.data)
    if named is None:
        log.info("compiling for RGB data (schema/%s); pass --modality all for 13-band data",
                 os.path.basename(config.schema_file()))
    return named or config.data_modality


def compile_pipeline(config: PipelineConfig, output_path: str, runner: str = NAME) -> Dict[str, Any]:
    """Write the Kubeflow Pipelines v2 / Vertex AI spec of the one create_pipeline; returns the PipelineJob dict.

    The spec (JSON, or YAML for .yaml) goes to `output_path`, for `runner` (its infra gate); offline, no credentials.
    The settings are checked by the caller (runners.start).
    """
    from tfx import v1 as tfx

    from pipeline import pipeline as dag  # the module, so tests can spy on create_pipeline

    config = config.with_auto_gate(get(runner).infra_gate)  # e.g. a TF Serving pod, or the image's binary
    config = image_config(config.with_modality(compile_modality(config)))
    dag_runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.pipeline_name, default_image=config.image
        ),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    # No metadata connection: Kubeflow and Vertex AI keep ML Metadata themselves.
    spec = dag_runner.run(dag.create_pipeline(config))
    log.info("compiled pipeline %r (%d tasks) to %s", config.pipeline_name,
             len(spec["pipelineSpec"]["root"]["dag"]["tasks"]), output_path)
    return spec


def spec_path(config: PipelineConfig, how: Launch) -> str:
    """--output, else <output-dir>/<pipeline-name>_pipeline.json."""
    return how.output or os.path.join(config.output_dir, f"{config.pipeline_name}_pipeline.json")


def compile_for(config: PipelineConfig, how: Launch, runner: str) -> str:
    """Compile for `runner` to spec_path and say where; returns the path."""
    quiet_tensorflow(how.verbose)
    output = spec_path(config, how)
    compile_pipeline(config, output, runner)
    print(f"compiled {config.pipeline_name!r} for {runner} to {output}")
    return output


def launch(config: PipelineConfig, how: Launch) -> int:
    """Compile the KFP v2 pipeline spec (the runner's launch): exit code 0."""
    compile_for(config, how, NAME)
    return 0


RUNNER = register(Runner(NAME, "compile a KFP v2 pipeline spec", infra_gate=contract.GATE_KUBERNETES,
                         on_cloud=True, launch=launch))
