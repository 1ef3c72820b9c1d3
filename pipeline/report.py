"""The run report: metrics.json, PNG plots and an index.html that shows them, per pipeline run.

What people look at instead of reading TFMA protos: accuracy, macro/weighted F1, per-class
precision/recall/F1/support, the row-normalised confusion matrix, class counts per split,
training curves, a grid of test predictions (green right, red wrong) and whether the model
was blessed and why.

Two layers, so tests need no pipeline: `gather_run` reads a finished run (MLMD via
pipeline/results.py, the Evaluator output, ExampleGen's examples, the Trainer's history.json,
the exported model) into a `ReportInputs`; `write_report` renders any `ReportInputs`.

    python -m pipeline.report --output-dir outputs [--pipeline-name eurosat]
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import html
import json
import math
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from schema import features
from schema.errors import DataError, DataNotFound, user_errors_to_exit
from schema.records import SPLIT_NAMES

SPLITS = SPLIT_NAMES
NUM_SAMPLES = 16  # test predictions shown in the grid

CLASS_COUNTS_PNG = "class_counts.png"
CONFUSION_PNG = "confusion_matrix.png"
PER_CLASS_F1_PNG = "per_class_f1.png"
HISTORY_PNG = "training_curves.png"
PREDICTIONS_PNG = "predictions.png"


@dataclasses.dataclass
class Sample:
    """One test prediction for the grid: a displayable picture (float RGB [H, W, 3] in [0, 1];
    true colour for 13-band data) and the true/predicted class."""
    picture: np.ndarray
    true_class: str
    predicted_class: str
    confidence: float


@dataclasses.dataclass
class ReportInputs:
    """Everything a report shows; each part may be missing (None) and is then left out."""
    metrics: Dict[str, Any]  # metrics.json content (see build_metrics)
    class_counts: Optional[Dict[str, Dict[str, int]]] = None  # {split: {class name: n}}
    history: Optional[Dict[str, List[float]]] = None  # Keras History.history
    samples: Optional[List[Sample]] = None


# ---------------------------------------------------------------------------------------------
# metrics.json


def _finite(value: Any) -> Any:
    """NaN/inf -> None, recursively: metrics.json must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def build_metrics(
    summary: Dict[str, Any],
    confusion: List[List[int]],
    validation: Dict[str, Any],
    blessed: Optional[bool],
    model_uri: Optional[str] = None,
    pushed_version: Optional[str] = None,
    pushed_destination: Optional[str] = None,
) -> Dict[str, Any]:
    """metrics.json from evaluation.summarize/confusion_matrix/validation_summary outputs.

    Support per class is the confusion matrix's row sum (true examples of that class).
    """
    overall = summary.get("overall", {})
    per_class = {}
    for i, name in enumerate(features.CLASS_NAMES):
        values = overall.get("per_class", {}).get(name, {})
        per_class[name] = {
            "precision": values.get("precision"),
            "recall": values.get("recall"),
            "f1": values.get("f1"),
            "support": int(sum(confusion[i])),
        }
    failed = [c for c in validation.get("checks", []) if c["status"] == "failed"]
    if blessed:
        why = "every threshold passed"
    elif failed:
        why = "failed: " + "; ".join(
            f"{c['metric']} ({c['slice']}, {c['kind']}) {c.get('bound', '')}"
            + (f", got {c['value']:.4f}" if isinstance(c.get("value"), float) else "")
            for c in failed)
    else:
        why = "not blessed (no failed threshold recorded; see the validation result)"
    return _finite({
        "accuracy": overall.get("accuracy"),
        "macro_f1": overall.get("macro_f1"),
        "weighted_f1": overall.get("weighted_f1"),
        "macro_precision": overall.get("macro_precision"),
        "macro_recall": overall.get("macro_recall"),
        "example_count": overall.get("example_count"),
        "change_vs_baseline": overall.get("change", {}),
        "per_class": per_class,
        "class_names": list(features.CLASS_NAMES),
        "confusion_matrix": confusion,
        "blessed": blessed,
        "blessing_reason": why,
        "validation": validation,
        "model_uri": model_uri,
        "pushed_version": pushed_version,
        "pushed_destination": pushed_destination,
    })


# ---------------------------------------------------------------------------------------------
# plots


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_class_counts(counts: Dict[str, Dict[str, int]], path: str) -> str:
    """Grouped bars: examples per class for each split (is any class or split starved?)."""
    names = list(features.CLASS_NAMES)
    splits = [s for s in SPLITS if s in counts] + [s for s in counts if s not in SPLITS]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(splits), 1)
    x = np.arange(len(names))
    for i, split in enumerate(splits):
        ax.bar(x + i * width, [counts[split].get(n, 0) for n in names], width,
               label=f"{split} ({sum(counts[split].values())})")
    ax.set_xticks(x + width * (len(splits) - 1) / 2, names, rotation=35, ha="right")
    ax.set_ylabel("examples")
    ax.set_title("Samples per class and split")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)  # headroom so the legend covers no bar
    ax.legend(ncol=len(splits), loc="upper center")
    return _save(fig, path)


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], path: str) -> str:
    """Row-normalised heatmap (each row: where that true class's examples went)."""
    m = np.asarray(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    names = list(features.CLASS_NAMES)
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (test, row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_per_class_f1(per_class: Dict[str, Dict[str, Any]], path: str) -> str:
    """Horizontal F1 bars per class, worst classes stand out."""
    names = list(per_class)
    values = [per_class[n].get("f1") or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = ["tab:red" if v < 0.5 else "tab:orange" if v < 0.8 else "tab:green" for v in values]
    ax.barh(names, values, color=colors)
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("F1 (test)")
    ax.set_title("Per-class F1")
    return _save(fig, path)


def plot_history(history: Dict[str, List[float]], path: str) -> str:
    """Training vs validation curves for every metric Keras recorded (loss, accuracy, ...)."""
    metrics = [k for k in history if not k.startswith("val_") and k != "lr" and k != "learning_rate"]
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(5 * max(len(metrics), 1), 3.8), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(range(1, len(history[f"val_{name}"]) + 1), history[f"val_{name}"], marker="o",
                    label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return _save(fig, path)


def plot_predictions(samples: Sequence[Sample], path: str) -> str:
    """A grid of test images titled 'predicted (true)': green when right, red when wrong."""
    cols = 4
    rows = max(1, math.ceil(len(samples) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, samples):
        ax.imshow(s.picture)
        right = s.predicted_class == s.true_class
        ax.set_title(f"{s.predicted_class} {s.confidence:.0%}" + ("" if right else f"\n(true: {s.true_class})"),
                     color="green" if right else "red", fontsize=8)
        for spine in ax.spines.values():
            spine.set_edgecolor("green" if right else "red")
    correct = sum(s.predicted_class == s.true_class for s in samples)
    fig.suptitle(f"Test predictions: {correct}/{len(samples)} right (green right, red wrong)")
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# html


def _fmt(value: Any) -> str:
    return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else html.escape(str(value)))


def render_html(metrics: Dict[str, Any], images: Sequence[str]) -> str:
    """A self-contained page: headline numbers, blessing and why, per-class table, plots
    (relative paths, so the report folder can be copied and opened offline)."""
    blessed = metrics.get("blessed")
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    color = "#1a7f37" if blessed else "#cf222e"
    headline = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(metrics.get(k))}</td></tr>"
        for k in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "example_count"))
    per_class = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
        f"<td>{_fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
        for n, v in metrics.get("per_class", {}).items())
    checks = "".join(
        f"<tr><td>{html.escape(c['metric'])}</td><td>{html.escape(c['slice'])}</td><td>{html.escape(c['kind'])}</td>"
        f"<td>{html.escape(c.get('bound', ''))}</td><td>{_fmt(c.get('value'))}</td>"
        f"<td>{html.escape(c['status'])}</td></tr>"
        for c in metrics.get("validation", {}).get("checks", []))
    names = [html.escape(os.path.basename(p)) for p in images]
    figures = "".join(f'<figure><img src="{n}" alt="{n}"></figure>' for n in names)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EuroSAT run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} img{{max-width:100%}}
.verdict{{color:{color};font-weight:bold}}</style></head>
<body>
<h1>EuroSAT run report</h1>
<p class="verdict">{verdict}: {html.escape(str(metrics.get('blessing_reason', '')))}</p>
<p>Model: <code>{_fmt(metrics.get('model_uri'))}</code><br>
Pushed version: <code>{_fmt(metrics.get('pushed_version'))}</code>
({_fmt(metrics.get('pushed_destination'))})<br>
Baseline compared with: <code>{_fmt(metrics.get('validation', {}).get('baseline_model'))}</code></p>
<h2>Test metrics</h2><table>{headline}</table>
<h2>Thresholds</h2>
<table><tr><th>metric</th><th>slice</th><th>kind</th><th>bar</th><th>value (if failed)</th><th>status</th></tr>
{checks}</table>
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per_class}</table>
<h2>Plots</h2>{figures}
<p>All numbers: <a href="metrics.json">metrics.json</a></p>
</body></html>
"""


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
        plots.append(plot_predictions(inputs.samples, os.path.join(report_dir, PREDICTIONS_PNG)))
    written.update({os.path.basename(p): p for p in plots})
    path = os.path.join(report_dir, "index.html")
    with open(path, "w") as f:
        f.write(render_html(metrics, plots))
    written["index.html"] = path
    return written


# ---------------------------------------------------------------------------------------------
# gathering a finished run


def _split_files(examples_uri: str, split: str) -> List[str]:
    return sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def count_classes(statistics_uri: str) -> Dict[str, Dict[str, int]]:
    """{split: {class name: examples}} from StatisticsGen's output (the `class_name` feature's
    value counts), so nothing is read twice."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import statistics_pb2

    counts = {}
    for split in SPLITS:
        path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        if not tf.io.gfile.exists(path):
            continue
        with tf.io.gfile.GFile(path, "rb") as f:
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        found: Dict[str, int] = {}
        for feature in (f for d in stats.datasets for f in d.features):
            if list(feature.path.step) == [features.CLASS_NAME_KEY]:
                found = {b.label: int(b.sample_count) for b in feature.string_stats.rank_histogram.buckets}
        counts[split] = {n: found.get(n, 0) for n in features.CLASS_NAMES}
    return counts


def predict_samples(model_uri: str, examples_uri: str, num: int = NUM_SAMPLES) -> List[Sample]:
    """Run the exported model's pixel signature (predict_images, or predict_bands for 13-band
    models) on the first `num` test examples."""
    import tensorflow as tf

    from serving import signatures

    files = _split_files(examples_uri, "test")
    if not files:
        raise DataNotFound(f"no test split under {examples_uri} (expected Split-test/)")
    records = next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").take(num).batch(num)))
    modality = features.modality_of(tf.train.Example.FromString(records[0].numpy()))
    batch = tf.io.parse_example(records, features.raw_feature_spec(modality))
    pixels = batch[features.input_key(modality)]
    model = tf.saved_model.load(os.path.join(model_uri, "Format-Serving"))
    name, input_name = signatures.pixel_signature(modality)
    if modality == features.ALL_BANDS:
        out = model.signatures[name](**{input_name: tf.cast(pixels, tf.uint16)})
        pictures = [features.true_colour(b) for b in pixels.numpy()]
    else:
        out = model.signatures[name](**{input_name: pixels})
        pictures = [features.decode_image(e).numpy() for e in pixels]
    probabilities = out[signatures.PROBABILITIES].numpy()
    return [
        Sample(picture=picture, true_class=features.class_name(label),
               predicted_class=name.decode(), confidence=float(probs.max()))
        for picture, label, name, probs in zip(pictures, batch[features.LABEL_KEY].numpy(),
                                               out[signatures.CLASS_NAME].numpy(), probabilities)
    ]


def predict_split(saved_model_dir: str, examples_uri: str, split: str = "test", batch_size: int = 256):
    """(true label ids, probabilities) of a SavedModel's serving_default signature (serialized
    tf.Examples in, the Transform graph and the model inside) over one split of ExampleGen's
    output: the model's own predictions, to check the Evaluator's numbers against."""
    import tensorflow as tf

    from serving import signatures

    files = _split_files(examples_uri, split)
    if not files:
        raise DataNotFound(f"no {split} split under {examples_uri} (expected Split-{split}/)")
    serve = tf.saved_model.load(saved_model_dir).signatures[signatures.SERVING_DEFAULT]
    spec = {features.LABEL_KEY: features.raw_feature_spec()[features.LABEL_KEY]}
    labels, probabilities = [], []
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        labels.append(tf.io.parse_example(records, spec)[features.LABEL_KEY].numpy())
        probabilities.append(serve(**{signatures.EXAMPLES_INPUT: records})[signatures.PROBABILITIES].numpy())
    return np.concatenate(labels), np.concatenate(probabilities)


def _read_history(model_run_uri: Optional[str]) -> Optional[Dict[str, List[float]]]:
    from components.trainer import HISTORY_FILE  # what the Trainer writes (TensorFlow: imported late)

    path = os.path.join(model_run_uri, HISTORY_FILE) if model_run_uri else None
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def gather_run(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None) -> ReportInputs:
    """ReportInputs for the latest run of `pipeline_name` recorded in `metadata_path` (or its
    run `run_id`); metrics["run_id"] says which run it is."""
    from components import evaluation
    from pipeline.results import latest_results

    results = latest_results(metadata_path, pipeline_name, run_id)
    if not results.evaluation_uri:
        which = f"run {run_id!r} of pipeline {pipeline_name!r}" if run_id else f"pipeline {pipeline_name!r}"
        raise DataError(f"{which} in {metadata_path} has no Evaluator output yet: "
                         "run the pipeline to the Evaluator first (or check --pipeline-name)")
    metrics = build_metrics(
        evaluation.summarize(results.evaluation_uri),
        evaluation.confusion_matrix(results.evaluation_uri),
        evaluation.validation_summary(results.evaluation_uri),
        blessed=results.blessed,
        model_uri=results.model_uri,
        pushed_version=results.pushed_version if results.pushed else None,
        pushed_destination=results.pushed_destination if results.pushed else None,
    )
    metrics["evaluation_uri"] = results.evaluation_uri
    metrics["run_id"] = results.run_id
    inputs = ReportInputs(metrics=metrics, history=_read_history(results.model_run_uri))
    if results.statistics_uri:
        inputs.class_counts = count_classes(results.statistics_uri)
    if results.examples_uri:
        if results.model_uri:
            inputs.samples = predict_samples(results.model_uri, results.examples_uri)
    return inputs


def run_report_dir(output_dir: str, pipeline_name: str, run_id: Optional[str]) -> str:
    """Where a run's report lives: <output_dir>/report/<pipeline>/<run>/ (one per run, kept)."""
    from pipeline.results import run_folder

    return os.path.join(output_dir, "report", pipeline_name, run_folder(run_id) if run_id else "latest")


def report_for_run(output_dir: str, pipeline_name: str, report_dir: Optional[str] = None,
                   run_id: Optional[str] = None) -> Dict[str, str]:
    """Write the report of `pipeline_name`'s latest run (or run `run_id`) under `output_dir`
    (the pipeline's output folder) to `report_dir` (default run_report_dir())."""
    from pipeline.config import PipelineConfig

    metadata_path = PipelineConfig(output_dir=output_dir, pipeline_name=pipeline_name).metadata_path
    inputs = gather_run(metadata_path, pipeline_name, run_id)
    target = report_dir or run_report_dir(output_dir, pipeline_name, inputs.metrics.get("run_id"))
    return write_report(inputs, target)


def main(argv: Optional[List[str]] = None) -> int:
    """`python -m pipeline.report`: a user error is one line on stderr and exit code 2."""
    return user_errors_to_exit(lambda: run(argv))


def run(argv: Optional[List[str]] = None) -> int:
    """The report command line (also `pipeline_runner.py report`); raises UserError for bad input."""
    from components.console import quiet_tensorflow
    from pipeline.config import PipelineConfig
    from pipeline.results import list_runs, run_folder

    quiet_tensorflow()  # EUROSAT_VERBOSE=1 shows TensorFlow's start-up lines

    defaults = PipelineConfig()
    p = argparse.ArgumentParser(description="Write the evaluation report of a finished pipeline run.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output-dir", default=defaults.output_dir, help="the pipeline's --output-dir")
    p.add_argument("--pipeline-name", default=defaults.pipeline_name, help="the pipeline's name in metadata")
    p.add_argument("--run", dest="run_id", help="the run to report (an id from --list); default the latest")
    p.add_argument("--list", action="store_true", help="list the pipeline's runs, oldest first, and exit")
    p.add_argument("--report-dir", help="where to write (default <output-dir>/report/<pipeline>/<run>)")
    args = p.parse_args(argv)
    if args.list:
        metadata_path = PipelineConfig(output_dir=args.output_dir, pipeline_name=args.pipeline_name).metadata_path
        for run_id in list_runs(metadata_path, args.pipeline_name):
            print(run_folder(run_id))
        return 0
    written = report_for_run(args.output_dir, args.pipeline_name, args.report_dir, args.run_id)
    print(f"report: {written['index.html']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
