"""`--demo-spans`: new data arriving as spans, end to end, on synthetic data.

Writes a root of spans under <output-dir>/demo-spans/data and runs the pipeline after each new span:

1. span-1 (balanced): the first model, trained from scratch, blessed and pushed;
2. span-2, unshifted (another seed): the drift gate passes, the Trainer warm-starts from the pushed
   model on the shorter schedule, the Evaluator compares it with the pushed one on span-2's test split;
3. span-3, shifted (schema.example_data.synthetic.DEMO_SHIFT: another class mix, vegetation 30 %
   brighter): the drift gate stops the run with one line;
4. span-3 again with --allow-drift: warm-started, compared with the served model, pushed or refused;
5. span-3 with --allow-drift --from-scratch: the model trained anew on the same span, for comparison
   (also compared and pushed or refused like any run).

After each run one ``demo:`` line says the span, the drift distances, the gate's decision, how the
model was trained (epochs, warm or not), its test accuracy / macro F1 and what was pushed.
"""
from __future__ import annotations

import glob
import json
import logging
import os
from typing import Any, Dict, List, Optional

from pipeline.config import DEMO_HPARAMS, DEMO_OVERRIDES, PipelineConfig
from schema.errors import DataError

log = logging.getLogger(__name__)

# 500 images and 6 epochs (60 optimiser steps) reached only 0.447 on span 1, under the bars: nothing
# was blessed, so nothing warm-started. 1,200 images (~730 training) x 12 epochs is ~280 steps, about
# --demo's 305 (which reaches 0.90); the extra steps cost little beside the Trainer's fixed tracing
# and export (README "New data as spans" has the measured run).
SPAN_EXAMPLES = 1200
DEMO_NAME = "eurosat-spans-demo"
DEMO_EPOCHS = 12  # from scratch; a warm start runs half (components/warm_start.py)
# Bars below --demo's 0.7: the demo shows the loop; the comparison with the served model
# (--max-drop) is what decides a retrained model's push.
DEMO_BARS = {"min_accuracy": 0.5, "min_macro_f1": 0.5}


def demo_spans_config(base: PipelineConfig) -> PipelineConfig:
    """The demo's settings on top of `base` (flags given still apply: --spans, --output-dir ...)."""
    root = os.path.join(os.path.abspath(base.output_dir), "demo-spans")
    hp = dict(DEMO_HPARAMS, epochs=DEMO_EPOCHS)
    overrides = {k: v for k, v in DEMO_OVERRIDES.items() if k not in ("pipeline_name", "data")}
    overrides.update(DEMO_BARS)
    return base.replace(**overrides, pipeline_name=DEMO_NAME, data=os.path.join(root, "data"),
                        output_dir=root, modality="rgb", hparams=hp)


def _newest(pattern: str) -> Optional[str]:
    found = glob.glob(pattern)
    return max(found, key=lambda p: int(p.split(os.sep)[-2])) if found else None


def _newest_json(config: PipelineConfig, component: str, output: str, name: str) -> Optional[Dict[str, Any]]:
    path = _newest(os.path.join(config.pipeline_root, component, output, "*", name))
    if not path:
        return None
    with open(path) as f:
        return json.load(f)


def _metrics(overall: Dict[str, Any]) -> str:
    return f"accuracy {overall.get('accuracy', 0):.3f}, macro F1 {overall.get('macro_f1', 0):.3f}"


def summary_line(step: str, config: PipelineConfig, stopped: Optional[str] = None) -> str:
    """One line of what a run did.

    Drift and the gate's decision, how the model was trained (epochs, the Trainer's warm-start line), its test
    metrics beside the served model's on the same test split (TFMA's baseline: candidate minus change), and what was
    pushed.
    """
    from components import warm_start
    from components.anomaly_check import distance_text
    from components.evaluation import summarize, validation_summary
    from pipeline.results import latest_results, push_line

    if stopped:
        return f"demo: {step}: stopped by the drift gate: {stopped}"
    drift = _newest_json(config, "AnomalyCheck", "drift", "drift.json") or {}

    def listed(measurements: List[Dict[str, Any]], none: str) -> str:
        return ", ".join(f"{distance_text(m)} (threshold {m['threshold']:g})" for m in measurements) or none

    distances = listed(drift.get("measurements", []), "none (first span)")
    skew = drift.get("skew") or {}
    distances += "; skew vs the served model's training data: " + listed(skew.get("measurements", []),
                                                                         "none (no served model with statistics)")
    gate = "drift let through (--allow-drift)" if drift.get("allowed") else "passed"
    results = latest_results(config.metadata_path, config.pipeline_name)
    history: Dict[str, Any] = {}
    if results.model_run_uri:
        path = os.path.join(results.model_run_uri, "history.json")
        if os.path.exists(path):
            with open(path) as f:
                history = json.load(f)
    how = (warm_start.plan_line(results.model_uri) if results.model_uri else None) or "unrecorded"
    trained = f"trained {len(history.get('accuracy', []))} epochs ({how})"
    metrics, checks = "no evaluation", []
    if results.evaluation_uri:
        overall = summarize(results.evaluation_uri).get("overall", {})
        metrics = f"test {_metrics(overall)}"
        change = overall.get("change", {})
        if results.baseline_model_uri and "accuracy" in change:
            served = {k: overall.get(k, 0) - change.get(k, 0) for k in ("accuracy", "macro_f1")}
            metrics += f" vs the served model {results.baseline_model_uri}: {_metrics(served)} on the same test split"
        else:
            metrics += " (no served model to compare with: the absolute bars decide)"
        checks = validation_summary(results.evaluation_uri)["checks"]
    return (f"demo: {step}: drift vs previous span: {distances}; gate {gate}; {trained}; {metrics}; "
            f"{push_line(results, checks, None)}")


def run(base: PipelineConfig, verbose: bool = False) -> int:
    """The five runs of the module docstring; prints a `demo:` line after each."""
    from pipeline.console import quiet_beam_workers, quiet_tensorflow
    from pipeline.runners import local
    from schema.example_data.synthetic import DEMO_SHIFT, Shift, write_synthetic_span

    config = demo_spans_config(base)
    quiet_tensorflow(verbose)
    data = config.data
    steps = [
        ("span-1 (balanced, seed 1)", "span-1", 1, Shift(), {}),
        ("span-2 (unshifted, seed 2)", "span-2", 2, Shift(), {}),
        ("span-3 (shifted: DEMO_SHIFT)", "span-3", 3, DEMO_SHIFT, {}),
        ("span-3 with --allow-drift (warm start)", None, 0, None, {"allow_drift": True}),
        ("span-3 with --allow-drift --from-scratch", None, 0, None, {"allow_drift": True, "from_scratch": True}),
    ]
    lines = []
    for step, span, seed, shift, changes in steps:
        if span and shift is not None:
            write_synthetic_span(os.path.join(data, span), SPAN_EXAMPLES, seed=seed, shift=shift)
        run_config = config.replace(**changes)
        print(f"demo: {step}: running the pipeline on {data}", flush=True)
        stopped = None
        try:
            with quiet_beam_workers(os.path.join(config.output_dir, local.WORKER_LOG), verbose):
                local.run_local(run_config)
        except DataError as err:
            if "drifted" not in str(err):
                raise
            stopped = str(err)
        line = summary_line(step, run_config, stopped)
        lines.append(line)
        print(line, flush=True)
    print("\n".join(["", "demo summary:", *lines]))
    return 0
