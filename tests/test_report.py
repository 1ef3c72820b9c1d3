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
               report.Sample(features.true_colour(bands), "SeaLake", "SeaLake", 0.7),
               report.Sample(_picture("olive"), "Pasture", "Forest", 0.8)]
    return report.ReportInputs(
        metrics=metrics,
        class_counts={"train": {n: 30 for n in features.CLASS_NAMES}, "test": {n: 5 for n in features.CLASS_NAMES}},
        history={"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "val_accuracy": [0.4, 0.7]},
        samples=samples,
        calibration=[report.CalibrationBucket(0.5, 0.6, 1, 0, 0.6), report.CalibrationBucket(0.7, 0.8, 2, 1, 1.5),
                     report.CalibrationBucket(0.9, 1.0, 1, 1, 0.9)],
        settings={"run_id": "2026-12-01T21:09:47.892989", "started": "2026-12-01T21:09:47+00:00",
                  "wall_time_s": 312.4, "data_source": "/data/EuroSAT_RGB.zip",
                  "input_fingerprint": '{"kind": "path", "size": 94658721}',
                  "conversion": {"kind": "images", "modality": "rgb", "files": 27003, "examples": 27000, "bad": 3,
                                 "duplicates": 0, "normalized": 0, "conversion_report": "/e/conversion_report.json"},
                  "hparams": {"epochs": 2, "learning_rate": 0.001},
                  "run_fn": "components.trainer.run_fn", "preprocessing_fn": "components.transform.preprocessing_fn",
                  "tfx_version": "1.21.0", "cached": ["ImportExampleGen"]},
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
            report.HISTORY_PNG, report.PREDICTIONS_PNG, report.MISCLASSIFIED_PNG, report.CALIBRATION_PNG]
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
    inputs.history, inputs.samples, inputs.class_counts, inputs.calibration = None, None, None, None
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


def _drawn(monkeypatch, method):
    """Record the calls of a matplotlib Axes method (what a plot really draws)."""
    from matplotlib.axes import Axes

    calls, original = [], getattr(Axes, method)

    def record(self, *args, **kwargs):
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, method, record)
    return calls


def test_confusion_matrix_cells_show_counts(tmp_path, monkeypatch):
    texts = _drawn(monkeypatch, "text")
    report.plot_confusion_matrix(_fixture_inputs().metrics["confusion_matrix"], str(tmp_path / "cm.png"))
    cells = [args[2] for args, _ in texts]
    assert "5\n0.71" in cells and "2\n0.29" in cells  # AnnualCrop: 5 right, 2 as Forest, of 7
    assert "5\n1.00" in cells and not any(c.startswith("0\n") for c in cells)  # empty cells stay empty


def test_per_class_f1_bars_have_a_legend(tmp_path, monkeypatch):
    legends = _drawn(monkeypatch, "legend")
    report.plot_per_class_f1(_fixture_inputs().metrics["per_class"], str(tmp_path / "f1.png"))
    [(_, kwargs)] = legends
    assert [h.get_label() for h in kwargs["handles"]] == ["F1 >= 0.8", "0.5 <= F1 < 0.8", "F1 < 0.5"]


def test_example_count_is_an_integer(tmp_path):
    metrics = _fixture_inputs().metrics
    assert metrics["example_count"] == 52 and isinstance(metrics["example_count"], int)
    report.write_report(_fixture_inputs(), str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    assert "<th>example_count</th><td>52</td>" in page and "52.000" not in page


def test_gallery_shows_the_misclassified_most_confident_first(tmp_path, monkeypatch):
    inputs = _fixture_inputs()
    wrong = report.misclassified(inputs.samples)
    assert [(s.true_class, s.predicted_class, s.confidence) for s in wrong] == [
        ("Pasture", "Forest", 0.8), ("SeaLake", "River", 0.6)]
    titles = _drawn(monkeypatch, "set_title")
    written = report.write_report(inputs, str(tmp_path))
    assert report.MISCLASSIFIED_PNG in written
    assert "Forest 80%\n(true: Pasture)" in [args[0] for args, _ in titles]
    all_right = [s for s in inputs.samples if s.right]
    inputs.samples = all_right
    assert report.MISCLASSIFIED_PNG not in report.write_report(inputs, str(tmp_path / "right"))


def test_per_class_samples_take_a_few_of_each_class_in_class_order():
    samples = [report.Sample(_picture("blue"), name, name, 0.5)
               for name in ("SeaLake", "Forest", "SeaLake", "SeaLake", "SeaLake", "Forest")]
    picked = report.per_class(samples, 3)
    assert [s.true_class for s in picked] == ["Forest", "Forest", "SeaLake", "SeaLake", "SeaLake"]
    assert picked[2] is samples[0]


def test_calibration_buckets_are_tfma_calibration_plot():
    samples = [report.Sample(_picture("blue"), "Forest", predicted, confidence)
               for predicted, confidence in (("Forest", 0.95), ("River", 0.91), ("Forest", 0.35), ("Forest", 1.0))]
    buckets = report.calibration_buckets(samples, num_buckets=10)
    got = [(round(b.lower, 2), round(b.upper, 2), b.count, b.right) for b in buckets]
    assert got == [(0.3, 0.4, 1, 1), (0.9, 1.0, 2, 1), (1.0, 1.0, 1, 1)]
    assert buckets[1].confidence_sum == pytest.approx(1.86)


def test_page_shows_settings_baseline_and_how_many_examples_were_predicted(tmp_path):
    inputs = _fixture_inputs()
    report.write_report(inputs, str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    for shown in ("/data/EuroSAT_RGB.zip", "27003 files, 27000 examples, 3 refused", "/e/conversion_report.json",
                  "312.4 s (5 min 12 s)", "2026-12-01T21:09:47+00:00",
                  "<th>learning_rate</th><td>0.001</td>", "TFX 1.21.0", "components.trainer.run_fn",
                  "first 4 test examples", "No baseline"):
        assert shown in page, shown
    summary = {"overall": {"accuracy": 0.96, "macro_f1": 0.95, "per_class": {},
                           "change": {"accuracy": 0.05, "macro_f1": -0.01, "example_count": 0.0}}}
    validation = {"baseline_model": "/models/6", "checks": []}
    inputs.metrics = report.build_metrics(summary, np.zeros((10, 10), int).tolist(), validation, blessed=True)
    assert set(inputs.metrics["baseline_comparison"]) == {"accuracy", "macro_f1"}  # not the example count
    assert inputs.metrics["baseline_comparison"]["accuracy"] == pytest.approx(
        {"model": 0.96, "baseline": 0.91, "change": 0.05})
    report.write_report(inputs, str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    assert "<td>accuracy</td><td>0.960</td><td>0.910</td><td>+0.050</td>" in page
    assert "<td>macro_f1</td><td>0.950</td><td>0.960</td><td>-0.010</td>" in page and "/models/6" in page


def test_run_settings_come_from_ml_metadata(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd
    from tfx import v1 as tfx

    from pipeline import results

    path = str(tmp_path / "m.sqlite")
    store = metadata_store.MetadataStore(tfx.orchestration.metadata.sqlite_metadata_connection_config(path))
    pipeline_type, run_type = (store.put_context_type(mlmd.ContextType(name=n)) for n in ("pipeline", "pipeline_run"))
    pipeline_id, run_id = store.put_contexts([mlmd.Context(type_id=pipeline_type, name="p"),
                                              mlmd.Context(type_id=run_type, name="2026-12-01T21:09:47.89")])
    store.put_parent_contexts([mlmd.ParentContext(child_id=run_id, parent_id=pipeline_id)])
    executions = []
    for type_name, state, props in (
            ("tfx.components.example_gen.import_example_gen.component.ImportExampleGen", mlmd.Execution.CACHED,
             {"input_base": "/out/data/synthetic-300-seed42"}),  # cached: no fingerprint on the execution
            ("tfx.components.trainer.component.Trainer", mlmd.Execution.COMPLETE,
             {"custom_config": json.dumps({"hparams": {"epochs": 2, "backbone": "EfficientNetV2B0"}}),
              "run_fn": "components.trainer.run_fn"})):
        execution = mlmd.Execution(type_id=store.put_execution_type(mlmd.ExecutionType(name=type_name)),
                                   last_known_state=state)
        for key, value in props.items():
            execution.custom_properties[key].string_value = value
        executions.append(execution)
    artifact = mlmd.Artifact(type_id=store.put_artifact_type(mlmd.ArtifactType(name="Model")), uri="/m")
    artifact.custom_properties["tfx_version"].string_value = "1.21.0"
    examples = mlmd.Artifact(type_id=store.put_artifact_type(mlmd.ArtifactType(name="Examples")), uri="/e")
    examples.custom_properties["input_fingerprint"].string_value = "split:all,num_files:1"
    # What the ExampleGen (components/example_gen.py) records on its Examples: the source and its report.
    for key, value in (("source", "/data/EuroSAT_RGB.zip"), ("kind", "images"), ("modality", "rgb"),
                       ("conversion_report", "/e/conversion_report.json")):
        examples.custom_properties[key].string_value = value
    for key, value in (("files", 27003), ("examples", 27000), ("bad", 3), ("duplicates", 0), ("normalized", 0)):
        examples.custom_properties[key].int_value = value
    examples_event = mlmd.Event(type=mlmd.Event.OUTPUT)
    examples_event.path.steps.add().key = "examples"
    event = mlmd.Event(type=mlmd.Event.OUTPUT)
    event.path.steps.add().key = "model"
    contexts = store.get_contexts_by_id([pipeline_id, run_id])
    store.put_execution(executions[0], [(examples, examples_event)], contexts)
    store.put_execution(executions[1], [(artifact, event)], contexts)
    settings = results.run_settings(path, "p", "2026-12-01T21:09:47.89")
    assert settings["data_source"] == "/data/EuroSAT_RGB.zip"  # the ExampleGen's source, not a cache folder
    assert settings["conversion"] == {"kind": "images", "modality": "rgb", "files": 27003, "examples": 27000,
                                      "bad": 3, "duplicates": 0, "normalized": 0,
                                      "conversion_report": "/e/conversion_report.json"}
    assert settings["input_fingerprint"] == "split:all,num_files:1"
    assert settings["hparams"] == {"epochs": 2, "backbone": "EfficientNetV2B0"}
    assert settings["run_fn"] == "components.trainer.run_fn" and settings["tfx_version"] == "1.21.0"
    assert settings["cached"] == ["ImportExampleGen"] and settings["wall_time_s"] >= 0
    assert settings["started"].startswith("20") and settings["started"].endswith("+00:00")
    assert results.run_settings(path, "p", "no-such-run") == {}


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
