"""index.html: the report on one page (relative image paths, so it also works offline)."""
from __future__ import annotations

import html
import os
from typing import Any, Dict, Optional, Sequence

from components import gated_metrics
from pipeline.report.inputs import (
    CALIBRATION_PNG,
    CLASS_COUNTS_PNG,
    CONFUSION_PNG,
    HISTORY_PNG,
    MAX_PREDICTED,
    MISCLASSIFIED_PNG,
    PER_CLASS_F1_PNG,
    PREDICTIONS_PNG,
)

CAPTIONS = {
    CLASS_COUNTS_PNG: "Examples per class and split (StatisticsGen).",
    CONFUSION_PNG: "Confusion matrix of the test split (the Evaluator's): count and share of the true class per cell.",
    PER_CLASS_F1_PNG: "Per-class F1 on the test split (the Evaluator's).",
    HISTORY_PNG: "Training curves (the Trainer's history.json).",
    MISCLASSIFIED_PNG: "Misclassified test examples, most confident first: predicted class and its probability, "
                       "true class below.",
    PREDICTIONS_PNG: "Test examples of each class with the model's prediction (green right, red wrong).",
    CALIBRATION_PNG: "Reliability of the top-1 confidence (TFMA's CalibrationPlot) and the confidence histogram.",
}


def _fmt(value: Any) -> str:
    return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else html.escape(str(value)))


def _signed(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _grid(pairs, columns: int = 3) -> str:
    """name/value pairs, `columns` pairs to a row (a long list stays short on the page)."""
    cells = [f"<th>{html.escape(k)}</th><td>{_fmt(v)}</td>" for k, v in pairs]
    return "<table>" + "".join(
        f"<tr>{''.join(cells[i:i + columns])}</tr>" for i in range(0, len(cells), columns)) + "</table>"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{seconds:.1f} s" + (f" ({minutes} min {rest} s)" if minutes else "")


def _conversion(conversion: Optional[Dict[str, Any]]) -> str:
    """The ExampleGen's conversion summary: how many files, examples, refused, and where the report is."""
    if not conversion:
        return "not recorded (a run before the in-DAG ExampleGen)"
    counts = ", ".join(f"{_fmt(conversion.get(k))} {label}" for k, label in (
        ("files", "files"), ("examples", "examples"), ("bad", "refused"), ("duplicates", "duplicates"),
        ("normalized", "normalized")))
    return (f"{_fmt(conversion.get('kind'))} source, {_fmt(conversion.get('modality'))}: {counts}; "
            f"every refused file and why: <code>{_fmt(conversion.get('conversion_report'))}</code>")


def _settings_table(settings: Optional[Dict[str, Any]]) -> str:
    if not settings:
        return "<p>No run settings recorded in ML Metadata for this run.</p>"
    hparams = settings.get("hparams") or {}
    code = (f"<code>{_fmt(settings.get('run_fn'))}</code>, <code>{_fmt(settings.get('preprocessing_fn'))}</code>; "
            f"TFX {_fmt(settings.get('tfx_version'))} (no project commit is recorded in ML Metadata)")
    return "<table>" + _rows([
        ("run id", f"<code>{_fmt(settings.get('run_id'))}</code>"),
        ("started (UTC)", _fmt(settings.get("started"))),
        ("wall time", _duration(settings.get("wall_time_s"))),
        ("data source", f"<code>{_fmt(settings.get('data_source'))}</code>"),
        ("source identity", f"<code>{_fmt(settings.get('input_fingerprint'))}</code>"),
        ("conversion", _conversion(settings.get("conversion"))),
        ("code", code),
        ("reused from cache", _fmt(", ".join(settings.get("cached") or []) or "nothing")),
    ]) + "</table>" + (
        "<h3>Hyperparameters (the Trainer's custom_config)</h3>" + _grid(sorted(hparams.items()))
        if hparams else "<p>No hyperparameters recorded for the Trainer.</p>")


def _baseline_section(metrics: Dict[str, Any]) -> str:
    baseline = metrics.get("validation", {}).get("baseline_model")
    comparison = metrics.get("baseline_comparison") or {}
    if not comparison:
        return ("<p>No baseline: no blessed model existed when this run was evaluated, so only the "
                "absolute bars decided.</p>")
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(v['model'])}</td><td>{_fmt(v['baseline'])}</td>"
        f"<td>{_signed(v['change'])}</td></tr>"
        for name, v in comparison.items())
    return (f"<p>Compared with the latest blessed model <code>{_fmt(baseline)}</code> on the same test split.</p>"
            "<table><tr><th>metric</th><th>this model</th><th>baseline</th><th>change</th></tr>"
            f"{rows}</table>")


def _distance_table(measurements: Sequence[Dict[str, Any]], beyond: str) -> str:
    """One row per TFDV measurement: feature, distance, value, threshold, and `beyond` or ok."""
    rows = "".join(
        f"<tr><td>{html.escape(m['feature'])}</td><td>{html.escape(m['type'])}</td><td>{m['value']:.4f}</td>"
        f"<td>{m['threshold']:g}</td><td>{beyond if m['drifted'] else 'ok'}</td></tr>"
        for m in measurements)
    return (f"<table><tr><th>feature</th><th>distance</th><th>value</th><th>threshold</th><th>gate</th></tr>"
            f"{rows}</table>")


def _drift_section(drift: Optional[Dict[str, Any]]) -> str:
    """The HTML of the gate's comparisons of the new span (components/anomaly_check.py); empty without any.

    The comparisons, from the gate's drift.json, are with the previous span (drift) and with the training statistics
    of the served model (skew).
    """
    if not drift:
        return ""
    let_through = " (the run was let through by --allow-drift)" if drift.get("allowed") else ""
    out = ""
    if drift.get("measurements"):
        decision = "drift beyond a threshold" if drift.get("drifted") else "no drift beyond the thresholds"
        out += (f"<h2>Drift against the previous span</h2><p>Span {drift.get('span')} vs span "
                f"{drift.get('previous_span')} ({html.escape(str(drift.get('split')))} split statistics, TFDV's "
                f"drift comparators from the schema): {decision}{let_through}.</p>"
                + _distance_table(drift["measurements"], "DRIFTED"))
    skew = drift.get("skew") or {}
    if skew.get("measurements"):
        decision = "skew beyond a threshold" if skew.get("skewed") else "no skew beyond the thresholds"
        out += (f"<h2>Skew against the served model's training data</h2><p>Span {drift.get('span')} "
                f"({html.escape(str(drift.get('split')))} split statistics) vs the training statistics the "
                f"served model {html.escape(str(skew.get('model')))} carries (TFDV's skew comparators from the "
                f"schema): {decision}{let_through}.</p>" + _distance_table(skew["measurements"], "SKEWED"))
    return out


def render_html(metrics: Dict[str, Any], images: Sequence[str], settings: Optional[Dict[str, Any]] = None,
                predicted: Optional[int] = None) -> str:
    """The report page: headline numbers, blessing and why, settings, baseline, per-class table, plots.

    Self-contained: the plots are relative paths, so the report folder can be copied and opened offline. `predicted`:
    how many test examples the report itself ran the model on (for the gallery, per-class samples and calibration).
    """
    blessed = metrics.get("blessed")
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    color = "#1a7f37" if blessed else "#cf222e"
    headline = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_fmt(metrics.get(k))}</td></tr>"
        for k in (m.name for m in gated_metrics.METRICS))
    per_class = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
        f"<td>{_fmt(v['f1'])}</td><td>{v['support']}</td></tr>"
        for n, v in metrics.get("per_class", {}).items())
    checks = "".join(
        f"<tr><td>{html.escape(c['metric'])}</td><td>{html.escape(c['slice'])}</td><td>{html.escape(c['kind'])}</td>"
        f"<td>{html.escape(c.get('bound', ''))}</td><td>{_fmt(c.get('value'))}</td>"
        f"<td>{html.escape(c['status'])}</td></tr>"
        for c in metrics.get("validation", {}).get("checks", []))
    names = [os.path.basename(p) for p in images]
    figures = "".join(
        f'<figure><img src="{html.escape(n)}" alt="{html.escape(n)}">'
        f"<figcaption>{html.escape(CAPTIONS.get(n, n))}</figcaption></figure>" for n in names)
    sampled = "" if predicted is None else (
        f"<p>The misclassified gallery, the per-class samples and the calibration plot come from running "
        f"this run's model over the first {predicted} test examples (at most {MAX_PREDICTED}: the "
        f"Evaluator keeps no per-example predictions); every other number is the Evaluator's over all "
        f"{_fmt(metrics.get('example_count'))} test examples.</p>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EuroSAT run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} img{{max-width:100%}}
figure{{margin:1.5em 0}} figcaption{{color:#555;font-size:90%}}
.verdict{{color:{color};font-weight:bold}}</style></head>
<body>
<h1>EuroSAT run report</h1>
<p class="verdict">{verdict}: {html.escape(str(metrics.get('blessing_reason', '')))}</p>
{f'<p class="verdict">{html.escape(metrics["bar_note"])}</p>' if metrics.get("bar_note") else ""}
<p>Model: <code>{_fmt(metrics.get('model_uri'))}</code><br>
Pushed version: <code>{_fmt(metrics.get('pushed_version'))}</code>
({_fmt(metrics.get('pushed_destination'))})</p>
<h2>Test metrics</h2><table>{headline}</table>
<h2>Comparison with the baseline</h2>{_baseline_section(metrics)}
{_drift_section(metrics.get("drift"))}
<h2>Thresholds</h2>
<table><tr><th>metric</th><th>slice</th><th>kind</th><th>bar</th><th>value (if failed)</th><th>status</th></tr>
{checks}</table>
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per_class}</table>
<h2>Run settings (ML Metadata)</h2>{_settings_table(settings)}
<h2>Plots</h2>{sampled}{figures}
<p>All numbers: <a href="metrics.json">metrics.json</a></p>
</body></html>
"""
