#!/usr/bin/env python
"""Run the EuroSAT TFX pipeline locally (LocalDagRunner, SQLite metadata).

    python pipeline_runner.py --demo          # small synthetic run, a few minutes on 2 cores
    python pipeline_runner.py --data DIR      # EuroSAT TFRecords, or the RGB / all-bands archive
    python pipeline_runner.py --data synthetic/all:2000   # 13-band synthetic data
    python pipeline_runner.py --runner kubeflow --output eurosat.json --data gs://B/eurosat \
        --pipeline-root gs://B/root --image IMAGE            # compile for Kubeflow Pipelines v2
    python pipeline_runner.py --runner vertex --project P --region R ... [--dry-run]
    python pipeline_runner.py report --output-dir DIR [--pipeline-name NAME]   # report of a past run
    python pipeline_runner.py map --model outputs/serving/eurosat --input scene.tif --output maps/x
    python pipeline_runner.py --help
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from components.hparams import BACKBONES, HParams
from components.settings import short_repr
from pipeline.config import (
    BEAM_RUNNERS,
    DIRECT_RUNNING_MODES,
    INFRA_GATES,
    LOCAL,
    MODALITIES,
    RUNNERS,
    PipelineConfig,
    demo_config,
    load_yaml,
)
from pipeline.console import configure_logging, quiet_beam_workers, quiet_tensorflow
from schema.errors import ConfigError, user_errors_to_exit

PROG = "pipeline_runner.py"  # the usage lines' name, also when run as `python -m pipeline_runner`
_DEFAULTS = PipelineConfig()
_HP = HParams()


def _DESCRIBE(key: str) -> str:
    """A flag's help: the PipelineConfig field's description."""
    return PipelineConfig.__pydantic_fields__[key].description
WORKER_LOG = os.path.join("logs", "beam_workers.log")  # under --output-dir: Beam workers' lines of quiet runs
INTERRUPTED = ("interrupted: run the same command again to resume (finished components come from the "
               "cache, a finished conversion is reused, the Trainer continues from its last epoch)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="EuroSAT land-use classification as a TFX pipeline "
        "(ExampleGen -> statistics/schema/validation -> Transform -> Trainer -> Evaluator -> Pusher).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file with configuration keys (flags given override it)")
    p.add_argument("--demo", action="store_true",
                   help="small synthetic run (synthetic:2000, no pretrained weights, 8 epochs) "
                   "that completes in a few minutes on 2 CPU cores")
    p.add_argument("--data", help="where examples come from: a folder of TFRecords of EuroSAT "
                   "tf.Examples, a folder or .zip of class folders of images (the EuroSAT RGB archive "
                   "of JPEGs or the all-bands archive of 13-band GeoTIFFs; converted by the ExampleGen), "
                   "tfds:eurosat/rgb, tfds:eurosat/all, synthetic[:N] or synthetic/all[:N] (13 bands) "
                   f"(default {_DEFAULTS.data})")
    p.add_argument("--modality", choices=MODALITIES,
                   help="'rgb' or 'all' (13 bands); 'auto' reads it from the data (local runs); compiling for "
                   "the cloud it is what --data names (synthetic/all, tfds:eurosat/all), else rgb: pass "
                   "--modality all for a 13-band archive (default auto)")
    p.add_argument("--demo-spans", action="store_true",
                   help="two-span demo: writes a span of synthetic data and a shifted second one (and an "
                   "unshifted one), runs the pipeline on each in turn: drift gate, warm start, compare, push")
    p.add_argument("--spans", type=int, help=_DESCRIBE("spans"))
    p.add_argument("--allow-drift", action="store_true", default=None, help=_DESCRIBE("allow_drift"))
    p.add_argument("--max-bad-fraction", type=float, help="image folders: stop when more than this "
                   "fraction of files cannot be used (each is listed in the ExampleGen's conversion_report.json) "
                   f"(default {_DEFAULTS.max_bad_fraction})")
    p.add_argument("--tfds-data-dir", help="--data tfds:eurosat/...: TFDS data dir holding the prepared "
                   "dataset (offline) or receiving the download (default: TFDS's own)")
    p.add_argument("--split-files", help="published split lists train.txt,val.txt,test.txt (one image "
                   "per line, e.g. Forest/Forest_1.jpg) instead of the 60/20/20 hash split")
    p.add_argument("--output-dir", help="pipeline root, metadata, serving directory and reports "
                   f"(default {_DEFAULTS.output_dir})")
    p.add_argument("--pipeline-name", help=f"name of the pipeline in metadata (default {_DEFAULTS.pipeline_name})")
    p.add_argument("--model-name", help=f"TF Serving model name (default {_DEFAULTS.model_name})")
    g = p.add_argument_group("training")
    g.add_argument("--backbone", help=f"Keras application ({', '.join(BACKBONES)}) or a TF Hub "
                   f"feature-vector handle, URL or local folder (default {_HP.backbone})")
    g.add_argument("--weights", help="'imagenet' (Keras download), a local weights file, or 'none' "
                   f"(default {_HP.weights})")
    g.add_argument("--allow-random-init", action="store_true", default=None,
                   help="train from scratch when the pretrained weights cannot be loaded")
    g.add_argument("--epochs", type=int, help=f"training epochs (default {_HP.epochs})")
    g.add_argument("--batch-size", type=int, help=f"batch size (default {_HP.batch_size})")
    g.add_argument("--learning-rate", type=float, help=f"peak learning rate (default {_HP.learning_rate})")
    g.add_argument("--image-size", type=int, help="model input size; >64 upscales (default: 64 for "
                   "Keras backbones, the Hub model's own size, e.g. 512 for EfficientNetV2-XL)")
    g.add_argument("--head-epochs", type=int, help="pretrained backbones: epochs training only the new "
                   f"head before fine-tuning everything (default {_HP.head_epochs}; 0 = one phase)")
    g.add_argument("--precision", choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                   help="'auto': mixed float16 on GPUs, float32 on CPUs (default auto)")
    g.add_argument("--augment", choices=["full", "flips", "none"],
                   help="training augmentation: 'full' flips, 90-degree rotations and colour jitter (overhead "
                   "imagery has no 'up'); 'flips' left-right mirroring only, for data with an 'up'; 'none' "
                   f"(default {_HP.augment})")
    g.add_argument("--no-augment", dest="augment", action="store_const", const="none",
                   help="the same as --augment none")
    g.add_argument("--from-scratch", action="store_true", default=None, help=_DESCRIBE("from_scratch"))
    g.add_argument("--tune", action="store_true", default=None,
                   help="add a KerasTuner stage (learning rate, dropout, label smoothing) before the Trainer")
    g.add_argument("--tuner-trials", type=int, help=f"Tuner trials (default {_DEFAULTS.tuner_trials})")
    g = p.add_argument_group("evaluation and blessing")
    g.add_argument("--min-accuracy", type=float,
                   help=f"bless only above this test accuracy (default {_DEFAULTS.min_accuracy})")
    g.add_argument("--min-macro-f1", type=float,
                   help=f"bless only above this macro F1 (default {_DEFAULTS.min_macro_f1})")
    g.add_argument("--max-drop", type=float, help="largest accuracy/F1 drop allowed against the "
                   f"latest blessed model (default {_DEFAULTS.max_drop})")
    g = p.add_argument_group("execution")
    g.add_argument("--no-cache", action="store_true", help="re-run every component instead of reusing cached outputs")
    g.add_argument("--beam-direct-running-mode", choices=DIRECT_RUNNING_MODES,
                   help=f"Beam DirectRunner mode (default {_DEFAULTS.beam_direct_running_mode})")
    g.add_argument("--beam-num-workers", type=int, help="DirectRunner workers, 0 = one per core")
    g.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines and "
                   "every TFX/absl log line (also: EUROSAT_VERBOSE=1); without it, Beam's worker processes "
                   f"write theirs to <output-dir>/{WORKER_LOG}")
    add_cloud_arguments(p)
    return p


def add_cloud_arguments(p: argparse.ArgumentParser) -> None:
    """--runner and the settings of Kubeflow Pipelines, Vertex AI, Dataflow and Vertex AI Training."""
    g = p.add_argument_group("runners: Kubeflow Pipelines v2, Vertex AI Pipelines, Dataflow, Vertex AI Training")
    g.add_argument("--runner", choices=RUNNERS, default=LOCAL,
                   help="local: run here; kubeflow: compile a KFP v2 pipeline spec; vertex: compile and "
                   "submit to Vertex AI Pipelines")
    g.add_argument("--output", help="compiled pipeline spec (.json or .yaml) "
                   "(default <output-dir>/<pipeline-name>_pipeline.json)")
    g.add_argument("--dry-run", action="store_true", help="vertex: compile only, do not submit (no credentials needed)")
    g.add_argument("--pipeline-root", dest="pipeline_root_uri",
                   help="artifacts folder of cloud runs, gs://BUCKET/PATH (pushed models go under it too)")
    g.add_argument("--project", help="Google Cloud project (Vertex AI, Dataflow)")
    g.add_argument("--region", help="Google Cloud region, e.g. europe-west4")
    g.add_argument("--image", help="component image built from the Dockerfile; the compiled spec runs it")
    g.add_argument("--service-account", help="service account Vertex AI Pipelines runs as")
    g.add_argument("--beam-runner", choices=BEAM_RUNNERS,
                   help="Beam runner of ExampleGen/StatisticsGen/Transform/Evaluator "
                   f"(default {_DEFAULTS.beam_runner})")
    g.add_argument("--temp-location", help="Dataflow staging folder (default <pipeline-root>/tmp)")
    g.add_argument("--vertex-training", action="store_true", default=None,
                   help="run the Trainer as a Vertex AI Training job (machine and GPUs below)")
    g.add_argument("--machine-type", dest="training_machine_type",
                   help=f"Vertex AI Training machine (default {_DEFAULTS.training_machine_type})")
    g.add_argument("--accelerator-type", dest="training_accelerator_type",
                   help="Vertex AI Training GPU, e.g. NVIDIA_TESLA_T4, NVIDIA_L4, NVIDIA_TESLA_A100")
    g.add_argument("--accelerator-count", dest="training_accelerator_count", type=int,
                   help="GPUs per training machine (the Trainer mirrors over all of them)")
    g.add_argument("--infra-gate", choices=INFRA_GATES,
                   help="load the model in the official TF Serving server and query it before the Pusher: "
                   "kubernetes (a tensorflow/serving pod), process (tensorflow_model_server in the image or "
                   "on PATH), off; default auto = kubernetes on Kubeflow, process on Vertex, off locally")


_HPARAM_FLAGS = ("backbone", "weights", "allow_random_init", "epochs", "batch_size", "learning_rate",
                 "image_size", "head_epochs", "precision", "augment")
_CONFIG_FLAGS = ("tune", "tuner_trials", "data", "modality", "max_bad_fraction", "tfds_data_dir", "split_files",
                 "output_dir", "pipeline_name", "model_name", "min_accuracy", "min_macro_f1",
                 "max_drop", "beam_direct_running_mode", "beam_num_workers", "spans", "allow_drift",
                 "from_scratch")
_CLOUD_FLAGS = ("pipeline_root_uri", "project", "region", "image", "service_account", "beam_runner",
                "temp_location", "vertex_training", "training_machine_type", "training_accelerator_type",
                "training_accelerator_count", "infra_gate")


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Defaults < --demo < --config YAML < explicit flags."""
    config = demo_config() if args.demo else PipelineConfig()
    if args.config:
        values = load_yaml(args.config)
        hp = values.pop("hparams", None) or {}
        if not isinstance(hp, dict):
            raise ConfigError(f"config key 'hparams': got {short_repr(hp)}, expected a mapping of hyperparameters")
        config = config.replace(**values, hparams=hp)
    changes = {k: getattr(args, k) for k in _CONFIG_FLAGS + _CLOUD_FLAGS if getattr(args, k) is not None}
    hp_changes = {k: getattr(args, k) for k in _HPARAM_FLAGS if getattr(args, k) is not None}
    if args.no_cache:
        changes["enable_cache"] = False
    return config.replace(**changes, hparams=hp_changes)


def main(argv: Optional[List[str]] = None) -> int:
    """Every subcommand; a UserError from any of them (bad flags, config, data, a missing run,
    weights that cannot load inside a component, ...) is one line on stderr and exit code 2."""
    argv = sys.argv[1:] if argv is None else argv
    return user_errors_to_exit(lambda: dispatch(argv))


def dispatch(argv: List[str]) -> int:
    """Every flag and input a command can check cheaply is checked before TensorFlow, TFX or Beam
    loads (tests/test_cli_imports.py; benchmarks/cli_latency.py measures it)."""
    if argv[:1] == ["report"]:  # the report of a past run, from its metadata
        from pipeline import report

        return report.run([a for a in argv[1:] if a != "--verbose"], prog=f"{PROG} report",
                          verbose="--verbose" in argv)
    if argv[:1] == ["map"]:  # a land-use map of a whole scene
        from pipeline.mapping import cli

        return cli.run(argv[1:])
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    config = config_from_args(args)
    if args.demo_spans:
        from pipeline import demo_spans

        return demo_spans.run(config, args.verbose)
    return run_or_compile(args, config)


def run_or_compile(args: argparse.Namespace, config: PipelineConfig) -> int:
    """local: run the pipeline here; kubeflow: write its spec; vertex: write it and submit it."""
    from pipeline import runners
    from pipeline.data import check_data_spec

    runners.check_config(config, args.runner)
    if args.runner == runners.LOCAL:
        check_data_spec(config.data)
    quiet_tensorflow(args.verbose)
    if args.runner == runners.LOCAL:
        try:
            with quiet_beam_workers(os.path.join(config.output_dir, WORKER_LOG), args.verbose):
                runners.run_local(config)
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return 130
        return 0
    output = args.output or os.path.join(config.output_dir, f"{config.pipeline_name}_pipeline.json")
    runners.compile_pipeline(config, output, args.runner)
    print(f"compiled {config.pipeline_name!r} for {args.runner} to {output}")
    if args.runner == runners.VERTEX and not args.dry_run:
        try:
            job = runners.submit_vertex(config, output)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"submitted to Vertex AI Pipelines: {job.resource_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
