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
import sys
from typing import List, Optional

from components import settings
from components.hparams import HParams
from pipeline import runners
from pipeline.config import CLOUD, EXECUTION, GROUPS, PipelineConfig, demo_config, load_yaml
from pipeline.console import configure_logging
from schema.errors import ConfigError, user_errors_to_exit

PROG = "pipeline_runner.py"  # the usage lines' name, also when run as `python -m pipeline_runner`
INTERRUPTED = ("interrupted: run the same command again to resume (finished components come from the "
               "cache, a finished conversion is reused, the Trainer continues from its last epoch)")
# Where a setting's flags come from: the config's own fields, and the Trainer's under "hparams.".
MODELS = ((HParams, "hparams."), (PipelineConfig, ""))
PRECEDENCE = "defaults < --demo < --config YAML < flags < --set"


def build_parser() -> argparse.ArgumentParser:
    """The flags of every setting declared with a group in PipelineConfig or HParams.

    Each flag's name, type, choices, help and default come from its field (components/settings.py); the flags are
    grouped as declared, plus the options of the command itself (--config, --demo, --set, --runner, --output, ...).
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description="EuroSAT land-use classification as a TFX pipeline "
        "(ExampleGen -> statistics/schema/validation -> Transform -> Trainer -> Evaluator -> Pusher). "
        f"Settings: {PRECEDENCE}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML file with configuration keys, the fields of PipelineConfig "
                   "(pipeline/config.py) and under 'hparams:' those of HParams (flags given override it)")
    p.add_argument("--demo", action="store_true",
                   help="small synthetic run (synthetic:2000, no pretrained weights, 8 epochs) "
                   "that completes in a few minutes on 2 CPU cores")
    p.add_argument("--demo-spans", action="store_true",
                   help="two-span demo: writes a span of synthetic data and a shifted second one (and an "
                   "unshifted one), runs the pipeline on each in turn: drift gate, warm start, compare, push")
    p.add_argument(settings.SET_FLAG, action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="set any configuration key, e.g. --set hparams.batch_size=32 --set min_accuracy=0.9; "
                   "the value is read as in a YAML file and validated like the rest; may be repeated; it "
                   "overrides the flags and --config")
    groups = {group: p.add_argument_group(group) for group in GROUPS}
    dests: List[str] = []
    for group in GROUPS:
        for model, prefix in MODELS:
            dests += settings.add_arguments(groups[group], model, group, prefix)
    p.set_defaults(settings_dests=dests)
    g = groups[CLOUD]
    g.add_argument("--runner", choices=runners.names(), default=runners.LOCAL, help=runners.describe())
    g.add_argument("--output", help="compiled pipeline spec (.json or .yaml) "
                   "(default <output-dir>/<pipeline-name>_pipeline.json)")
    g.add_argument("--dry-run", action="store_true", help="vertex: compile only, do not submit (no credentials needed)")
    groups[EXECUTION].add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines and "
                   "every TFX/absl log line (also: EUROSAT_VERBOSE=1); without it, Beam's worker processes "
                   f"write theirs to <output-dir>/{runners.local.WORKER_LOG}")
    return p


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Defaults < --demo < --config YAML < explicit flags < --set."""
    config = demo_config() if args.demo else PipelineConfig()
    if args.config:
        values = load_yaml(args.config)
        hp = values.pop("hparams", None) or {}
        if not isinstance(hp, dict):
            raise ConfigError(f"config key 'hparams': got {settings.short_repr(hp)}, expected a mapping of "
                              "hyperparameters")
        config = config.replace(**values, hparams=hp)
    config = config.replace(**settings.given(args, args.settings_dests))
    if args.overrides:
        config = config.replace(**settings.parse_overrides(args.overrides, PipelineConfig))
    return config


def main(argv: Optional[List[str]] = None) -> int:
    """Every subcommand.

    A UserError from any of them (bad flags, config, data, a missing run, weights that cannot load inside a
    component, ...) is one line on stderr and exit code 2.
    """
    argv = sys.argv[1:] if argv is None else argv
    return user_errors_to_exit(lambda: dispatch(argv))


def dispatch(argv: List[str]) -> int:
    """Check every flag and input that is cheap to check, before TensorFlow, TFX or Beam loads.

    Every flag and input a command can check cheaply is checked before TensorFlow, TFX or Beam loads
    (tests/test_cli_imports.py; benchmarks/cli_latency.py measures it).
    """
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
    """Run the runner registered as --runner.

    The runner registered as --runner: local runs the pipeline here, kubeflow writes its spec, vertex writes it and
    submits it (pipeline/runners/). Ctrl-C: one line and exit code 130.
    """
    try:
        return runners.start(config, args.runner, runners.Launch(args.output, args.dry_run, args.verbose))
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
