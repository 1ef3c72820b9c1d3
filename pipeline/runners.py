"""Where the one create_pipeline runs: here (LocalDagRunner), or compiled for Kubeflow Pipelines v2
and submitted to Vertex AI Pipelines.

Both engines take the same KFP pipeline spec, which TFX's KubeflowV2DagRunner writes offline;
Vertex AI additionally gets the spec submitted with google-cloud-aiplatform. The components run
in the image built from the repository's Dockerfile, where this project is installed: that is
why the pipeline names its code by import path (no module file to upload at compile time).
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import time
from typing import Any, Dict, List, Optional

from components.data_sources import PATH_KIND, TFDS_KIND, is_local, source_bytes, source_kind, spec_modality
from pipeline.config import IMAGE_PROJECT_DIR, KUBEFLOW, VERTEX, PipelineConfig
from pipeline.config import LOCAL as LOCAL  # re-exported: runners.LOCAL beside KUBEFLOW, VERTEX
from schema.errors import ConfigError
from serving import contract
from serving.contract import TF_SERVING_BINARY

log = logging.getLogger(__name__)


def _is_gcs(path: str) -> bool:
    return path.startswith("gs://")


def cloud_problems(config: PipelineConfig, runner: str) -> List[str]:
    """What is missing or wrong for `runner` (empty when the settings are complete), one line per
    problem, each naming the flag (and YAML key) that fixes it. Pure: tests call it directly."""
    problems: List[str] = []

    def need(value: str, flag: str, key: str, why: str) -> None:
        if not value:
            problems.append(f"missing {flag} (config key '{key}'): {why}")

    on_cloud = runner in (KUBEFLOW, VERTEX)
    if on_cloud:
        need(config.pipeline_root_uri, "--pipeline-root", "pipeline_root_uri",
             "where the components write their artifacts, e.g. gs://BUCKET/eurosat")
        need(config.image, "--image", "image",
             "the component image built from the Dockerfile (docker build -t IMAGE . && docker push IMAGE)")
        # The ExampleGen reads the source in the cloud: synthetic data is generated there, an archive,
        # a folder or TFDS' prepared data must be where the cloud components can read them.
        kind = source_kind(config.data)
        if kind == PATH_KIND and is_local(config.data):
            problems.append(
                f"--data {config.data!r} is a local path the cloud components cannot read; "
                "copy it to Cloud Storage and pass --data gs://BUCKET/EuroSAT_RGB.zip (or a folder)"
            )
        if kind == TFDS_KIND and (not config.tfds_data_dir or is_local(config.tfds_data_dir)):
            problems.append(
                f"--data {config.data!r} needs --tfds-data-dir gs://BUCKET/tensorflow_datasets (config key "
                "'tfds_data_dir'): the Cloud Storage data dir the dataset is prepared (or is to be prepared) in"
            )
        if config.split_files and any(is_local(p) for p in config.split_files.split(",")):
            problems.append(f"--split-files {config.split_files!r}: copy the split files to Cloud Storage "
                            "and pass their gs:// paths")
    if runner == VERTEX:
        need(config.project, "--project", "project", "the Google Cloud project to run Vertex AI Pipelines in")
        need(config.region, "--region", "region", "the Vertex AI region, e.g. europe-west4")
    uses_gcp = runner == VERTEX or config.beam_runner == "dataflow" or config.vertex_training
    if uses_gcp and config.pipeline_root_uri and not _is_gcs(config.pipeline_root_uri):
        problems.append(f"--pipeline-root {config.pipeline_root_uri!r} must be a gs:// folder "
                        "for Vertex AI and Dataflow")
    if config.beam_runner == "dataflow":
        need(config.project, "--project", "project", "the project Dataflow jobs run in")
        need(config.region, "--region", "region", "the Dataflow region")
        need(config.image, "--image", "image", "Dataflow workers run the component image to import the project")
        if not config.temp_location and not _is_gcs(config.pipeline_root):
            problems.append("missing --temp-location (config key 'temp_location'): Dataflow stages files "
                            "in a gs:// folder (default <pipeline root>/tmp needs a gs:// --pipeline-root)")
    if config.vertex_training:
        need(config.project, "--project", "project", "the project Vertex AI Training jobs run in")
        need(config.region, "--region", "region", "the Vertex AI Training region")
        need(config.image, "--image", "image", "Vertex AI Training runs the component image")
    elif config.training_accelerator_count:
        problems.append("--accelerator-type/--accelerator-count choose the GPUs of a Vertex AI Training job: "
                        "add --vertex-training (locally the Trainer uses the GPUs it sees)")
    gate = config.for_runner(runner).infra_gate
    if runner == LOCAL and gate == contract.GATE_KUBERNETES:
        problems.append("--infra-gate kubernetes starts a TF Serving pod beside a Kubeflow Pipelines step; "
                        "locally use --infra-gate process (needs tensorflow_model_server on PATH) or off")
    if runner == LOCAL and gate == contract.GATE_PROCESS and shutil.which(TF_SERVING_BINARY) is None:
        problems.append("--infra-gate process runs tensorflow_model_server, which is not on PATH here: "
                        "install TF Serving (tensorflow.org/tfx/serving/setup) or use --infra-gate off")
    # A few problems repeat across the checks above (e.g. --project); report each once.
    return list(dict.fromkeys(problems))


def check_config(config: PipelineConfig, runner: str) -> None:
    """Raise ConfigError (a ValueError) listing every problem at once, so a user fixes them in one go."""
    problems = cloud_problems(config, runner)
    if problems:
        raise ConfigError(f"--runner {runner} cannot start:\n  " + "\n  ".join(problems))


def image_config(config: PipelineConfig) -> PipelineConfig:
    """The config as the component containers see it: the repository's schemas live in the image."""
    if not config.schema_path:
        return config.replace(schema_path=config.schema_file(posixpath.join(IMAGE_PROJECT_DIR, "schema")))
    return config


def compile_modality(config: PipelineConfig) -> str:
    """The modality a compiled pipeline is built for, without reading the data: the one given, the
    one the --data name says (synthetic/all, tfds:eurosat/all), else RGB; the ExampleGen stops the
    run with the fix when the data it reads is of another modality."""
    if config.modality != "auto":
        return config.modality
    named = spec_modality(config.data)
    if named is None:
        log.info("compiling for RGB data (schema/%s); pass --modality all for 13-band data",
                 os.path.basename(config.schema_file()))
    return named or config.data_modality


def compile_pipeline(config: PipelineConfig, output_path: str, runner: str = KUBEFLOW) -> Dict[str, Any]:
    """Write the Kubeflow Pipelines v2 / Vertex AI pipeline spec (JSON, or YAML for .yaml) of the
    one create_pipeline to `output_path`; offline, no credentials. Returns the PipelineJob dict."""
    from tfx import v1 as tfx

    from pipeline import pipeline as dag  # the module, so tests can spy on create_pipeline

    check_config(config, runner)
    config = config.for_runner(runner)  # e.g. the infra gate: a TF Serving pod, or the image's binary
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


def submit_vertex(config: PipelineConfig, spec_path: str, credentials: Optional[Any] = None) -> Any:
    """Submit a compiled spec to Vertex AI Pipelines; returns the submitted aiplatform.PipelineJob.

    google-cloud-aiplatform is imported here, not at start-up, to keep the CLI fast."""
    check_config(config, VERTEX)
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


def run_local(config: PipelineConfig) -> None:
    """Run the pipeline here (LocalDagRunner, SQLite ML Metadata), then print what it produced:
    the summary, where the evaluation is, what was pushed (or which bar failed) and the report."""
    from tfx import v1 as tfx

    from components.model import check_backbone_takes
    from pipeline.data import resolve_modality
    from pipeline.pipeline import create_pipeline, describe_split
    from pipeline.results import cancel_running, cancel_stale_runs, latest_results, push_line
    from schema import features, modalities

    start = time.time()
    if "://" not in config.output_dir:  # artifact URIs in metadata should not depend on the cwd
        config = config.replace(output_dir=os.path.abspath(config.output_dir))
    if split_files := config.split_files:  # checked before anything runs: named, readable, no leak
        from components.splits import parse_split_files, read_split_lists

        read_split_lists(parse_split_files(split_files))
    # The source's modality, read from it (its name, a TFRecord's first example, an image set's first
    # TIFF): the schema and the pipeline's name depend on it. The ExampleGen converts it in the DAG.
    config = config.with_modality(resolve_modality(config.modality, config.data)).for_runner(LOCAL)
    # Fail before any component runs when the backbone cannot take the data (not in the Trainer).
    check_backbone_takes(config.hparams, features.channels(config.modality))
    size = source_bytes(config.data)
    config = config.for_input(size)
    if config.beam_runner == "direct":
        log.info("Beam DirectRunner: %s (input %s; --beam-direct-running-mode overrides)",
                 config.beam_direct_running_mode, "size unknown" if size is None else f"{size / 2**20:.1f} MiB")
    log.info("data: %s (%s, %s)", config.data, config.modality, describe_split(config))
    if modalities.get(config.modality).name_suffix:
        log.info("%s data: pipeline %r, model %r (kept apart from RGB runs)",
                 modalities.get(config.modality).description, config.pipeline_name, config.model_name)
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    pipeline = create_pipeline(
        config,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
    )
    stale = cancel_stale_runs(config.metadata_path, config.pipeline_name)
    if stale:
        log.warning("%s", stale)
    log.info("running pipeline %r locally; artifacts under %s", config.pipeline_name, config.pipeline_root)
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except KeyboardInterrupt:
        # What was running is not any more: the next run must not take it for a live execution.
        stopped = cancel_running(config.metadata_path, config.pipeline_name)
        log.debug("marked CANCELED in ML Metadata: %s", stopped)
        raise
    results = latest_results(config.metadata_path, config.pipeline_name)
    summary = {"wall_time_s": round(time.time() - start, 1), "pipeline": config.pipeline_name,
               "modality": config.modality,
               "split": describe_split(config), **results.__dict__}
    if results.evaluation_uri:
        from components.evaluation import summarize

        overall = summarize(results.evaluation_uri).get("overall", {})
        summary["test_accuracy"] = overall.get("accuracy")
        summary["test_macro_f1"] = overall.get("macro_f1")
    print(json.dumps(summary, indent=2))
    print(f"evaluation: {results.evaluation_uri}")
    checks = []
    if results.evaluation_uri:
        from components.evaluation import validation_summary

        checks = validation_summary(results.evaluation_uri)["checks"]
    if results.pushed or results.evaluation_uri:
        print(push_line(results, checks, summary.get("test_accuracy")))
    if results.evaluation_uri:
        from pipeline.report import report_for_run

        written = report_for_run(config.output_dir, config.pipeline_name, run_id=results.run_id)
        print(f"report: {written['index.html']}")
