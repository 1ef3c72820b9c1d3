"""The EuroSAT TFX pipeline, defined once: every runner (local, Kubeflow, Vertex) calls this."""
from __future__ import annotations

from typing import Any, Dict

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components import gated_metrics, push, spans, trainer_executor, warm_start
from components.anomaly_check import AnomalyCheck
from components.evaluation import make_eval_config
from components.example_gen import EuroSATExampleGen, EuroSATSpanExampleGen
from components.infra_gate import InfraGate
from pipeline.config import PipelineConfig
from schema.records import SPLIT_NAMES
from serving import contract

# Module files, referenced by import path: the same code runs locally and in the
# component image, where the project is installed.
PREPROCESSING_FN = "components.transform.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"
TUNER_FN = "components.tuner.tuner_fn"

# ExampleGen splits: 60/20/20 by hash of the source file name (stable across runs), unless
# published split files are given (components.splits routes by them inside the ExampleGen).
SPLITS = tuple(zip(SPLIT_NAMES, (6, 2, 2)))


def vertex_training_job(config: PipelineConfig) -> Dict[str, Any]:
    """The Vertex AI CustomJob the cloud Trainer launches: one worker on the chosen machine/GPUs.

    The worker runs the component image; the project is installed there, so run_fn imports.
    """
    machine_spec: Dict[str, Any] = {"machine_type": config.training_machine_type}
    if config.training_accelerator_count:
        machine_spec["accelerator_type"] = config.training_accelerator_type
        machine_spec["accelerator_count"] = config.training_accelerator_count
    return {
        "project": config.project,
        "worker_pool_specs": [
            {
                "machine_spec": machine_spec,
                "replica_count": 1,
                "container_spec": {"image_uri": config.image},
            }
        ],
    }


def trainer_custom_config(config: PipelineConfig, span_root: bool) -> Dict[str, Any]:
    """The Trainer's custom_config: the hyperparameters, the Vertex AI Training job, a span root's warm start.

    The hyperparameters are recorded in metadata and read by run_fn. The Vertex AI Training job is added when the
    Trainer runs on Vertex AI (TFX's Google Cloud extension reads those keys). A root of spans adds the warm-start
    switch (components/warm_start.py: its Trainers keep the weights a later span starts from; False =
    --from-scratch); one folder trains as it always did.
    """
    custom_config: Dict[str, Any] = {"hparams": config.hparams.to_dict()}
    if span_root:
        custom_config[warm_start.WARM_START_KEY] = not config.from_scratch
    if config.vertex_training:
        gcp = tfx.extensions.google_cloud_ai_platform
        custom_config.update({
            gcp.ENABLE_VERTEX_KEY: True,
            gcp.VERTEX_REGION_KEY: config.region,
            gcp.TRAINING_ARGS_KEY: vertex_training_job(config),
        })
    return custom_config


EXAMPLE_GEN_ID = "ExampleGen"


def hash_split_config() -> Any:
    """ExampleGen's output split: hash buckets on the source file name.

    The buckets are stable across runs and sources: the archive, TFDS and synthetic data name their files alike.
    """
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in SPLITS],
            partition_feature_name="source",
        )
    )


def make_example_gen(config: PipelineConfig):
    """The ExampleGen of `config.data`, whatever the source (components.example_gen).

    One source is split by hash or by the published split lists, with the source's identity in its execution
    properties (TFX's cache). A root of spans (components.spans) gets the span ExampleGen: the newest span, hash split.
    """
    if is_span_root(config):
        return EuroSATSpanExampleGen(
            source=config.data,
            modality=config.data_modality,
            max_bad_fraction=config.max_bad_fraction,
            seed=config.hparams.seed,
            output_config=hash_split_config(),
        ).with_id(EXAMPLE_GEN_ID)
    return EuroSATExampleGen(
        source=config.data,
        modality=config.data_modality,
        max_bad_fraction=config.max_bad_fraction,
        seed=config.hparams.seed,
        tfds_data_dir=config.tfds_data_dir,
        split_files=config.split_files,
        output_config=None if config.split_files else hash_split_config(),
    ).with_id(EXAMPLE_GEN_ID)


def is_span_root(config: PipelineConfig) -> bool:
    """Whether --data is a root of spans (span-N/ folders or zips, a {SPAN} pattern)."""
    if spans.span_input(config.data) is None:
        return False
    if config.split_files:
        from schema.errors import ConfigError

        raise ConfigError(f"--split-files names one source's files; --data {config.data!r} is a root of spans: "
                          "drop --split-files (each span is split 60/20/20 by hash of the file name)")
    return True


SPAN_WINDOW_ID = "span_window_resolver"
PREVIOUS_SPAN_ID = "previous_span_statistics_resolver"


def _history(artifact_type, producer, output_key: str):
    """A channel of every artifact `producer` ever wrote to `output_key` in this pipeline.

    It is TFX's penguin example's Channel by producer id: resolving the producer's output channel itself gave only
    the current run's artifact (measured: the demo's span-2 gate resolved no previous span that way).
    """
    return tfx.dsl.Channel(type=artifact_type, producer_component_id=producer.id, output_key=output_key)


def span_resolvers(config: PipelineConfig, example_gen, statistics_gen, local: bool) -> Dict[str, Any]:
    """The resolvers of a span root (components.span_resolver.LatestSpansStrategy), by role.

    ``window``: the latest `config.spans` spans' examples (what Transform and the Trainer see), when --spans > 1.
    ``previous``, on a local run: the previous span's statistics (the drift gate's reference; none on the first
    span). Kubeflow/Vertex compile only latest-artifact and latest-blessed-model resolvers (--spans > 1 is refused
    there), so compiled pipelines train on the newest span and have no previous-span gate.
    """
    from components.span_resolver import LatestSpansStrategy

    if not local and config.spans > 1:
        from schema.errors import ConfigError

        raise ConfigError(f"--spans {config.spans}: Kubeflow/Vertex pipelines compile only the latest-artifact "
                          "and latest-blessed-model resolvers, so they train on the newest span; drop --spans "
                          "or run locally")
    out: Dict[str, Any] = {}
    if config.spans > 1:
        out["window"] = tfx.dsl.Resolver(
            strategy_class=LatestSpansStrategy, config={"num_spans": config.spans},
            examples=_history(tfx.types.standard_artifacts.Examples, example_gen, "examples"),
        ).with_id(SPAN_WINDOW_ID)
        out["window"].add_upstream_node(example_gen)
    if local:
        out["previous"] = tfx.dsl.Resolver(
            strategy_class=LatestSpansStrategy, config={"num_spans": 1, "skip_recent": 1},
            statistics=_history(tfx.types.standard_artifacts.ExampleStatistics, statistics_gen, "statistics"),
        ).with_id(PREVIOUS_SPAN_ID)
        out["previous"].add_upstream_node(statistics_gen)
    return out


def describe_split(config: PipelineConfig) -> str:
    """Which split a run used, for its summary."""
    if config.split_files:
        return f"split files {config.split_files}"
    return "60/20/20 by hash of the source file name"


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config=None,
) -> tfx.dsl.Pipeline:
    """The pipeline's DAG for `config`, ExampleGen to Pusher; a metadata connection makes it a local run.

    ExampleGen (the source of config.data, read and converted here) -> statistics/schema/validation (anomalies stop
    the run; on a root of spans drift and skew too) -> Transform -> Trainer (its export carries the statistics) ->
    Evaluator (vs. latest blessed model) -> [InfraGate: the official TF Serving loads and answers] -> Pusher.
    """
    example_gen = make_example_gen(config)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=config.schema_file())
    # With the schema, statistics follow the contract (the label is categorical: counted per class).
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # A metadata connection means a local run (Kubeflow and Vertex AI keep ML Metadata themselves):
    # only there can the span resolvers (a custom ResolverStrategy) run.
    local = metadata_connection_config is not None
    span_root = is_span_root(config)
    resolvers = span_resolvers(config, example_gen, statistics_gen, local) if span_root else {}
    previous = resolvers.get("previous")
    # The served model: the Trainer's warm start (base_model), the Evaluator's baseline and, on a root
    # of spans, the skew gate's reference (the training statistics it carries).
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    # ExampleValidator records anomalies; AnomalyCheck fails the run on them, and on a new span's
    # drift from the previous span or skew from the served model's training data (unless
    # --allow-drift), before Transform. One folder keeps no served-model input (its re-run stays cached).
    anomaly_check = AnomalyCheck(
        anomalies=example_validator.outputs["anomalies"], schema_file=config.schema_file(),
        statistics=statistics_gen.outputs["statistics"] if span_root else None,
        previous_statistics=previous.outputs["statistics"] if previous else None,
        served_model=model_resolver.outputs["model"] if span_root else None,
        allow_drift=int(config.allow_drift))
    window = resolvers.get("window")
    transform = tfx.components.Transform(
        examples=window.outputs["examples"] if window else example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(
            analyze=["train"], transform=[name for name, _ in SPLITS]
        ),
    )
    transform.add_upstream_node(anomaly_check)
    tuner = None
    if config.tune:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            train_args=tfx.proto.TrainArgs(splits=["train"]),
            eval_args=tfx.proto.EvalArgs(splits=["eval"]),
            custom_config={"hparams": config.hparams.to_dict(), "tuner_trials": config.tuner_trials,
                           "tuner_epochs": config.tuner_epochs},
        )
    custom_config = trainer_custom_config(config, span_root)
    # In process (any runner), or as a Vertex AI Training job on GPUs: same inputs, same run_fn.
    # The Trainer's executor (components/trainer_executor.py) hands run_fn the statistics, which the
    # export carries (training_feature_statistics.pb: the next span's skew reference); on Vertex AI
    # Training, TFX's Vertex executor runs it in the training job (tfx's own Vertex Trainer takes no statistics).
    trainer_executor_class = trainer_executor.VertexExecutor if config.vertex_training else trainer_executor.Executor
    trainer = tfx.components.Trainer(
        statistics=statistics_gen.outputs["statistics"],
        custom_executor_spec=executor_spec.ExecutorClassSpec(trainer_executor_class),
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        # Only a root of spans warm-starts: one folder's re-run stays cached and trains as before.
        base_model=model_resolver.outputs["model"] if span_root and not config.from_scratch else None,
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config=custom_config,
    )
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=["test"],
        eval_config=make_eval_config(max_drop=config.max_drop, **gated_metrics.bounds_of(config)),
    )
    # The real-server gate: the official TF Serving loads the model and answers real examples.
    infra_gate = None
    if config.infra_gate in contract.GATE_RUNNERS:
        infra_gate = InfraGate(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
                               model_name=config.model_name, runner=config.infra_gate)
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_gate.outputs["blessing"] if infra_gate else None,
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)
        ),
        # a version folder appears complete or not at all (components/push.py)
        custom_executor_spec=executor_spec.ExecutorClassSpec(push.Executor),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            *resolvers.values(),
            model_resolver,
            anomaly_check,
            transform,
            *([tuner] if tuner else []),
            trainer,
            evaluator,
            *([infra_gate] if infra_gate else []),
            pusher,
        ],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=config.beam_pipeline_args(),
    )
