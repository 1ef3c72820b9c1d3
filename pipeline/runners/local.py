"""The local runner: the pipeline runs here, on TFX's LocalDagRunner with SQLite ML Metadata."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import List

from components import settings
from pipeline.config import NO_GATE, PipelineConfig
from pipeline.console import quiet_beam_workers, quiet_tensorflow
from pipeline.runners.registry import Launch, Runner, register
from schema.locations import is_local
from serving import contract
from serving.contract import TF_SERVING_BINARY

log = logging.getLogger(__name__)
NAME = "local"
WORKER_LOG = os.path.join("logs", "beam_workers.log")  # under --output-dir: Beam workers' lines of quiet runs


def problems(config: PipelineConfig) -> List[str]:
    """The infra gate has no cluster here, and needs TF Serving's binary to run it as a process."""
    gate, flag = config.with_auto_gate(RUNNER.infra_gate).infra_gate, settings.flag(PipelineConfig, "infra_gate")
    if gate == contract.GATE_KUBERNETES:
        return [f"{flag} kubernetes starts a TF Serving pod beside a Kubeflow Pipelines step; "
                f"locally use {flag} process (needs tensorflow_model_server on PATH) or off"]
    if gate == contract.GATE_PROCESS and shutil.which(TF_SERVING_BINARY) is None:
        return [f"{flag} process runs tensorflow_model_server, which is not on PATH here: "
                f"install TF Serving (tensorflow.org/tfx/serving/setup) or use {flag} off"]
    return []


def launch(config: PipelineConfig, how: Launch) -> int:
    """--runner local: the data spec checked before TensorFlow loads, then the run.

    Beam's worker processes write their log lines to <output-dir>/WORKER_LOG unless --verbose.
    """
    from pipeline.data import check_data_spec

    check_data_spec(config.data)
    quiet_tensorflow(how.verbose)
    with quiet_beam_workers(os.path.join(config.output_dir, WORKER_LOG), how.verbose):
        run_local(config)
    return 0


def run_local(config: PipelineConfig) -> None:
    """Run the pipeline here (LocalDagRunner, SQLite ML Metadata), then print what it produced.

    The summary, where the evaluation is, what was pushed (or which bar failed) and the report.
    """
    from tfx import v1 as tfx

    from components.data_sources import source_bytes
    from components.model import check_backbone_takes
    from pipeline.data import resolve_modality
    from pipeline.pipeline import create_pipeline, describe_split
    from pipeline.results import cancel_running, cancel_stale_runs, latest_results, push_line
    from schema import features, modalities

    start = time.time()
    if is_local(config.output_dir):  # artifact URIs in metadata should not depend on the cwd
        config = config.replace(output_dir=os.path.abspath(config.output_dir))
    if split_files := config.split_files:  # checked before anything runs: named, readable, no leak
        from components.splits import parse_split_files, read_split_lists

        read_split_lists(parse_split_files(split_files))
    # The source's modality, read from it (its name, a TFRecord's first example, an image set's first
    # TIFF): the schema and the pipeline's name depend on it. The ExampleGen converts it in the DAG.
    config = config.with_modality(resolve_modality(config.modality, config.data)).with_auto_gate(RUNNER.infra_gate)
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
        from components import gated_metrics
        from components.evaluation import summarize

        overall = summarize(results.evaluation_uri).get("overall", {})
        summary.update(gated_metrics.run_summary(overall))
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


RUNNER = register(Runner(NAME, "run here", infra_gate=NO_GATE, on_cloud=False, launch=launch, problems=problems))
