"""The report renders from fixture inputs: files exist, PNGs decode, the HTML links them."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from pipeline import report
from schema import features


def _picture(color):
    return np.asarray(Image.new("RGB", (64, 64), color), np.float32) / 255.0


def _fixture_inputs(blessed=True):
    confusion = (np.eye(features.NUM_CLASSES, dtype=int) * 5).tolist()
    confusion[0][1] = 2
    summary = {"overall": {
        "accuracy": 0.96, "macro_f1": 0.95, "weighted_f1": 0.955, "example_count": 52.0,
        "per_class": {n: {"precision": 0.9, "recall": 0.8, "f1": 0.85} for n in features.CLASS_NAMES},
    }}
    validation = {"validation_ok": blessed, "baseline_model": None, "missing_slices": [], "checks": [
        {"metric": "accuracy", "slice": "overall", "kind": "absolute", "bound": ">= 0.8",
         "status": "passed" if blessed else "failed", **({} if blessed else {"value": 0.5})},
        {"metric": "macro_f1", "slice": "overall", "kind": "change vs baseline", "bound": ">= -0.01",
         "status": "skipped (no baseline)"},
    ]}
    metrics = report.build_metrics(summary, confusion, validation, blessed=blessed,
                                   model_uri="/models/7", pushed_version="123" if blessed else None)
    bands = np.zeros(features.BANDS_SHAPE, np.uint16)
    bands[..., features.TRUE_COLOUR_BANDS[2]] = 2000  # a 13-band patch, shown in true colour
    samples = [report.Sample(_picture("green"), "Forest", "Forest", 0.9),
               report.Sample(_picture("blue"), "SeaLake", "River", 0.6),
               report.Sample(features.true_colour(bands), "SeaLake", "SeaLake", 0.7)]
    return report.ReportInputs(
        metrics=metrics,
        class_counts={"train": {n: 30 for n in features.CLASS_NAMES}, "test": {n: 5 for n in features.CLASS_NAMES}},
        history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]},
        samples=samples,
    )


def test_build_metrics_has_report_keys_and_supports():
    metrics = _fixture_inputs().metrics
    for key in ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "blessed",
                "blessing_reason", "model_uri", "pushed_version"):
        assert key in metrics, key
    assert metrics["per_class"]["AnnualCrop"]["support"] == 7  # row sum: 5 right + 2 as Forest
    assert metrics["per_class"]["Forest"]["support"] == 5
    assert metrics["blessing_reason"] == "every threshold passed"


def test_not_blessed_reason_names_failed_bar():
    metrics = _fixture_inputs(blessed=False).metrics
    assert metrics["blessed"] is False
    assert "accuracy (overall, absolute) >= 0.8, got 0.5000" in metrics["blessing_reason"]


def test_nan_becomes_null_in_metrics_json():
    summary = {"overall": {"accuracy": float("nan"), "per_class": {}}}
    metrics = report.build_metrics(summary, np.zeros((10, 10), int).tolist(), {}, blessed=False)
    assert metrics["accuracy"] is None
    json.dumps(metrics, allow_nan=False)


def test_report_renders(tmp_path):
    written = report.write_report(_fixture_inputs(), str(tmp_path))
    pngs = [report.CLASS_COUNTS_PNG, report.CONFUSION_PNG, report.PER_CLASS_F1_PNG,
            report.HISTORY_PNG, report.PREDICTIONS_PNG]
    assert set(written) == {"metrics.json", "index.html", *pngs}
    for name in pngs:
        with Image.open(tmp_path / name) as image:
            image.load()
            assert image.size[0] > 200 and image.size[1] > 200, name
    page = (tmp_path / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(pngs)  # relative paths: readable offline
    assert all(os.path.exists(tmp_path / s) for s in sources)
    assert "BLESSED" in page and "HerbaceousVegetation" in page
    loaded = json.loads((tmp_path / "metrics.json").read_text())
    assert loaded["accuracy"] == pytest.approx(0.96)


def test_report_without_optional_parts(tmp_path):
    inputs = _fixture_inputs()
    inputs.history, inputs.samples, inputs.class_counts = None, None, None
    written = report.write_report(inputs, str(tmp_path))
    assert set(written) == {"metrics.json", "index.html", report.CONFUSION_PNG, report.PER_CLASS_F1_PNG}


def test_report_of_run_without_evaluation_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        report.report_for_run(str(tmp_path), "nothing-here")
    assert report.main(["--output-dir", str(tmp_path), "--pipeline-name", "nothing-here"]) == 2


def test_class_counts_come_from_statisticsgen_output(tmp_path):
    """The counts are StatisticsGen's (TFDV's statistics of the class_name feature), per split."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    names = ["Forest"] * 3 + ["SeaLake"] * 2 + ["River"]
    for split, rows in (("train", names), ("test", names[:2])):
        stats = tfdv.generate_statistics_from_dataframe(pd.DataFrame({"class_name": rows, "label": [1] * len(rows)}))
        os.makedirs(tmp_path / f"Split-{split}")
        (tmp_path / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    counts = report.count_classes(str(tmp_path))
    assert set(counts) == {"train", "test"}
    assert counts["train"]["Forest"] == 3 and counts["train"]["SeaLake"] == 2 and counts["train"]["River"] == 1
    assert counts["test"] == {n: (2 if n == "Forest" else 0) for n in features.CLASS_NAMES}


def test_report_says_when_no_bar_was_set(tmp_path):
    """Issue 20.5: blessed under --min-accuracy 0 --min-macro-f1 0, the report says so, with chance level."""
    summary = {"overall": {"accuracy": 0.08, "macro_f1": 0.05, "per_class": {}}}
    checks = [{"metric": m, "slice": "overall", "kind": "absolute", "bound": ">= 0", "lower_bound": 0.0,
               "status": "passed"} for m in ("accuracy", "macro_f1")]
    confusion = np.zeros((10, 10), int).tolist()
    metrics = report.build_metrics(summary, confusion, {"checks": checks}, blessed=True)
    assert metrics["bar_note"] == ("no bar was set (--min-accuracy 0 --min-macro-f1 0: any model is blessed); "
                                   "test accuracy 0.080, chance level for 10 classes is 0.100")
    page = report.write_report(report.ReportInputs(metrics=metrics), str(tmp_path))["index.html"]
    assert "no bar was set" in open(page).read()
    checks[0]["lower_bound"] = 0.8
    assert report.build_metrics(summary, confusion, {"checks": checks}, blessed=True)["bar_note"] is None
