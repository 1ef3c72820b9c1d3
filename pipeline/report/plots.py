"""The report's PNG plots (matplotlib, files only)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence

import numpy as np

from pipeline.report.inputs import SPLITS, CalibrationBucket, Sample
from schema import features


class _Pyplot:
    """matplotlib.pyplot (Agg backend: files only, no display), imported on first use.

    ~1-3 s that the report's --help and input errors do not wait for (importlib's LazyLoader would import the
    matplotlib package to find pyplot).
    """

    def __getattr__(self, name: str):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

        return getattr(matplotlib.pyplot, name)


plt = _Pyplot()


def _save(fig, path: str, title_inches: float = 0.0) -> str:
    """tight_layout (leaving `title_inches` at the top for a suptitle), save, close."""
    fig.tight_layout(rect=(0, 0, 1, 1 - title_inches / fig.get_figheight()))
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
    """Row-normalised confusion heatmap (each row: where that true class's examples went).

    Row-normalised heatmap (each row: where that true class's examples went); each non-empty cell shows its count of
    examples and, below it, its share of the row.
    """
    m = np.asarray(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    names = list(features.CLASS_NAMES)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            if m[i, j] > 0:
                ax.text(j, i, f"{int(m[i, j])}\n{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), [f"{n} ({int(r)})" for n, r in zip(names, rows[:, 0])])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (examples)")
    ax.set_title(f"Confusion matrix (test, {int(m.sum())} examples): count and row share")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


F1_BANDS = ((0.8, "tab:green", "F1 >= 0.8"), (0.5, "tab:orange", "0.5 <= F1 < 0.8"), (0.0, "tab:red", "F1 < 0.5"))


def plot_per_class_f1(per_class: Dict[str, Dict[str, Any]], path: str) -> str:
    """Horizontal F1 bars per class, worst classes stand out (the legend says what each colour means)."""
    from matplotlib.patches import Patch

    names = list(per_class)
    values = [per_class[n].get("f1") or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = [next(c for low, c, _ in F1_BANDS if v >= low) for v in values]
    ax.barh(names, values, color=colors)
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("F1 (test)")
    ax.set_title("Per-class F1")
    ax.legend(handles=[Patch(color=c, label=label) for _, c, label in F1_BANDS],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
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


def plot_predictions(samples: Sequence[Sample], path: str, title: str = "Test predictions", cols: int = 4) -> str:
    """A grid of test images titled 'predicted confidence (true: ...)': green when right, red when wrong."""
    rows = max(1, math.ceil(len(samples) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 3.0 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, samples):
        ax.imshow(s.picture)
        ax.set_title(f"{s.predicted_class} {s.confidence:.0%}" + ("" if s.right else f"\n(true: {s.true_class})"),
                     color="green" if s.right else "red", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path, title_inches=0.4)


def plot_calibration(buckets: Sequence[CalibrationBucket], path: str) -> str:
    """Reliability diagram above the histogram of the top-1 confidences.

    Reliability diagram (share right per confidence bucket against the diagonal of a perfectly calibrated model)
    above the histogram of the top-1 confidences, from TFMA's CalibrationPlot.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    centres = [(b.lower + b.upper) / 2 for b in buckets]
    widths = [max(b.upper - b.lower, 0.02) * 0.9 for b in buckets]
    top.bar(centres, [b.right / b.count for b in buckets], widths, color="tab:blue", alpha=0.7,
            label="share right (accuracy)")
    top.plot([b.confidence_sum / b.count for b in buckets], [b.right / b.count for b in buckets], "o",
             color="tab:blue", label="at the bucket's mean confidence")
    top.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    top.set_ylim(0, 1)
    top.set_ylabel("share right")
    top.set_title(f"Reliability of the top-1 confidence ({int(sum(b.count for b in buckets))} test examples)")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, [b.count for b in buckets], widths, color="tab:grey")
    bottom.set_xlim(0, 1.02)
    bottom.set_xlabel("top-1 confidence")
    bottom.set_ylabel("examples")
    return _save(fig, path)
