"""The run report: metrics.json, PNG plots and an index.html that shows them, per pipeline run.

What people look at instead of reading TFMA protos: accuracy, macro/weighted F1, per-class
precision/recall/F1/support, the row-normalised confusion matrix, class counts per split,
training curves, misclassified test examples, test examples per class, the reliability of the
model's confidence (TFMA's CalibrationPlot), the run's settings from ML Metadata, the comparison
with the baseline model and whether the model was blessed and why.

Two layers, so tests need no pipeline: `gather_run` (gather.py) reads a finished run (MLMD via
pipeline/results.py, the Evaluator output, ExampleGen's examples, the Trainer's history.json,
the exported model) into a `ReportInputs` (inputs.py); `write_report` renders any `ReportInputs`
(metrics.py: metrics.json, plots.py: the PNGs, page.py: index.html).

    python -m pipeline.report --output-dir outputs [--pipeline-name eurosat]
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Optional

from pipeline.report.calibration import calibration_buckets
from pipeline.report.gather import count_classes, example_split_files, gather_run, predict_samples, predict_split
from pipeline.report.inputs import (
    CALIBRATION_PNG,
    CLASS_COUNTS_PNG,
    CONFUSION_PNG,
    GALLERY_SIZE,
    HISTORY_PNG,
    MAX_PREDICTED,
    MISCLASSIFIED_PNG,
    NUM_SAMPLES,
    PER_CLASS_F1_PNG,
    PER_CLASS_SAMPLES,
    PREDICTIONS_PNG,
    SPLITS,
    CalibrationBucket,
    ReportInputs,
    Sample,
    misclassified,
    per_class,
)
from pipeline.report.metrics import build_metrics
from pipeline.report.page import render_html
from pipeline.report.plots import (
    plot_calibration,
    plot_class_counts,
    plot_confusion_matrix,
    plot_history,
    plot_per_class_f1,
    plot_predictions,
)
from schema.errors import user_errors_to_exit

__all__ = [
    "CALIBRATION_PNG", "CLASS_COUNTS_PNG", "CONFUSION_PNG", "GALLERY_SIZE", "HISTORY_PNG", "MAX_PREDICTED",
    "MISCLASSIFIED_PNG", "NUM_SAMPLES", "PER_CLASS_F1_PNG", "PER_CLASS_SAMPLES", "PREDICTIONS_PNG", "SPLITS",
    "CalibrationBucket", "ReportInputs", "Sample", "build_metrics", "calibration_buckets", "count_classes",
    "gather_run", "main", "misclassified", "per_class", "plot_calibration", "plot_class_counts",
    "plot_confusion_matrix", "plot_history", "plot_per_class_f1", "plot_predictions", "predict_samples",
    "example_split_files", "predict_split", "render_html", "report_for_run", "run", "run_report_dir", "write_report",
]


def write_report(inputs: ReportInputs, report_dir: str) -> Dict[str, str]:
    """Write metrics.json, the plots the inputs allow, and index.html into `report_dir`.

    Returns {name: path} of what was written.
    """
    os.makedirs(report_dir, exist_ok=True)
    metrics = inputs.metrics
    written: Dict[str, str] = {}
    path = os.path.join(report_dir, "metrics.json")
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2, allow_nan=False)
    written["metrics.json"] = path
    plots = []
    if inputs.class_counts:
        plots.append(plot_class_counts(inputs.class_counts, os.path.join(report_dir, CLASS_COUNTS_PNG)))
    if metrics.get("confusion_matrix"):
        plots.append(plot_confusion_matrix(metrics["confusion_matrix"], os.path.join(report_dir, CONFUSION_PNG)))
    if metrics.get("per_class"):
        plots.append(plot_per_class_f1(metrics["per_class"], os.path.join(report_dir, PER_CLASS_F1_PNG)))
    if inputs.history:
        plots.append(plot_history(inputs.history, os.path.join(report_dir, HISTORY_PNG)))
    if inputs.samples:
        wrong = misclassified(inputs.samples)
        if wrong:
            total = sum(not s.right for s in inputs.samples)
            plots.append(plot_predictions(
                wrong, os.path.join(report_dir, MISCLASSIFIED_PNG),
                f"Misclassified: {total} of {len(inputs.samples)} test examples"
                + (f" (the {len(wrong)} most confident shown)" if total > len(wrong) else "")))
        shown = per_class(inputs.samples)
        right = sum(s.right for s in shown)
        plots.append(plot_predictions(
            shown, os.path.join(report_dir, PREDICTIONS_PNG),
            f"Up to {PER_CLASS_SAMPLES} test examples per class: {right}/{len(shown)} right",
            cols=PER_CLASS_SAMPLES * 2))
    if inputs.calibration:
        plots.append(plot_calibration(inputs.calibration, os.path.join(report_dir, CALIBRATION_PNG)))
    written.update({os.path.basename(p): p for p in plots})
    path = os.path.join(report_dir, "index.html")
    with open(path, "w") as f:
        f.write(render_html(metrics, plots, inputs.settings, len(inputs.samples) if inputs.samples else None))
    written["index.html"] = path
    return written


def run_report_dir(output_dir: str, pipeline_name: str, run_id: Optional[str]) -> str:
    """Where a run's report lives: <output_dir>/report/<pipeline>/<run>/ (one per run, kept)."""
    from pipeline.results import run_folder

    return os.path.join(output_dir, "report", pipeline_name, run_folder(run_id) if run_id else "latest")


def report_for_run(output_dir: str, pipeline_name: str, report_dir: Optional[str] = None,
                   run_id: Optional[str] = None) -> Dict[str, str]:
    """Write the report of `pipeline_name`'s latest run (or run `run_id`) to `report_dir`.

    The run is read from the ML Metadata under `output_dir`, the pipeline's output folder; `report_dir` defaults to
    run_report_dir(). Returns write_report's {name: path} of what was written.
    """
    from pipeline.config import PipelineConfig

    metadata_path = PipelineConfig(output_dir=output_dir, pipeline_name=pipeline_name).metadata_path
    inputs = gather_run(metadata_path, pipeline_name, run_id)
    target = report_dir or run_report_dir(output_dir, pipeline_name, inputs.metrics.get("run_id"))
    return write_report(inputs, target)


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m pipeline.report`: a user error is one line on stderr and exit code 2."""
    return user_errors_to_exit(lambda: run(argv, prog="python -m pipeline.report"))


def run(argv: Optional[List[str]] = None, prog: Optional[str] = None, verbose: bool = False) -> int:
    """The report command line (also `pipeline_runner.py report`).

    Raises UserError for bad input, before TensorFlow loads (quietly, unless `verbose` or EUROSAT_VERBOSE=1).
    """
    from pipeline.config import PipelineConfig
    from pipeline.console import quiet_tensorflow

    defaults = PipelineConfig()
    p = argparse.ArgumentParser(prog=prog, description="Write the evaluation report of a finished pipeline run.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output-dir", default=defaults.output_dir, help="the pipeline's --output-dir")
    p.add_argument("--pipeline-name", default=defaults.pipeline_name, help="the pipeline's name in metadata")
    p.add_argument("--run", dest="run_id", help="the run to report (an id from --list); default the latest")
    p.add_argument("--list", action="store_true", help="list the pipeline's runs, oldest first, and exit")
    p.add_argument("--report-dir", help="where to write (default <output-dir>/report/<pipeline>/<run>)")
    args = p.parse_args(argv)
    from pipeline.results import list_runs, require_metadata, run_folder  # ML Metadata: after --help

    metadata_path = PipelineConfig(output_dir=args.output_dir, pipeline_name=args.pipeline_name).metadata_path
    require_metadata(metadata_path)
    quiet_tensorflow(verbose)
    if args.list:
        for run_id in list_runs(metadata_path, args.pipeline_name):
            print(run_folder(run_id))
        return 0
    written = report_for_run(args.output_dir, args.pipeline_name, args.report_dir, args.run_id)
    print(f"report: {written['index.html']}")
    return 0

