"""index.html: the report on one page (relative image paths, so it also works offline)."""
from __future__ import annotations

import html
import os
from typing import Any, Dict, Sequence


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
{f'<p class="verdict">{html.escape(metrics["bar_note"])}</p>' if metrics.get("bar_note") else ""}
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
