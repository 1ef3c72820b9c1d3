"""New data as spans: what --data names as a span root, TFX's driver picking the newest span, the
span window and previous-span resolution, and the DAG a span root builds (components/spans.py)."""
import json

import pytest

from components import spans
from schema.errors import ConfigError, DataError


def _root(tmp_path, names):
    for name in names:
        path = tmp_path / name
        if name.endswith(".zip"):
            path.write_bytes(b"PK")
        else:
            path.mkdir(exist_ok=True)
    return str(tmp_path)


def test_a_root_of_span_folders_is_read_as_tfx_span_pattern(tmp_path):
    root = _root(tmp_path, ["span-1", "span-2", "span-10", "notes.txt"])
    assert spans.span_input(root) == (root, "span-{SPAN}")
    assert spans.latest_local_span(root) == (10, f"{root}/span-10")


def test_a_root_of_span_zips_keeps_the_suffix(tmp_path):
    root = _root(tmp_path, ["span-1.zip", "span-3.zip"])
    assert spans.span_input(root) == (root, "span-{SPAN}.zip")
    assert spans.latest_local_span(root) == (3, f"{root}/span-3.zip")


def test_folders_and_zips_mixed_is_one_line_with_the_fix(tmp_path):
    root = _root(tmp_path, ["span-1", "span-2.zip"])
    with pytest.raises(DataError, match=r"both span-N folders and span-N.zip.*\{SPAN\}") as err:
        spans.span_input(root)
    assert "\n" not in str(err.value)


def test_a_single_source_is_not_a_span_root(tmp_path):
    (tmp_path / "Forest").mkdir()
    assert spans.span_input(str(tmp_path)) is None
    assert spans.span_input("synthetic:100") is None
    assert spans.latest_local_span(str(tmp_path)) is None


def test_a_span_pattern_splits_into_input_base_and_pattern():
    assert spans.span_input("gs://b/eurosat/span-{SPAN}") == ("gs://b/eurosat", "span-{SPAN}")
    assert spans.span_input("/data/{SPAN}/EuroSAT.zip") == ("/data", "{SPAN}/EuroSAT.zip")
    with pytest.raises(DataError, match="more than once"):
        spans.span_input("/d/{SPAN}/{SPAN}")
    with pytest.raises(DataError, match="below the root"):
        spans.span_input("gs://{SPAN}")


def test_a_pattern_without_a_matching_span_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no span matches"):
        spans.latest_local_span(f"{tmp_path}/span-{{SPAN}}")


class _Artifact:
    def __init__(self, id, span):
        self.id, self._span = id, span

    def has_custom_property(self, name):
        return name == "span"

    def get_string_custom_property(self, name):
        return ""

    def get_int_custom_property(self, name):
        return self._span


def test_latest_spans_window_counts_a_span_once_newest_first():
    arts = [_Artifact(1, 1), _Artifact(2, 2), _Artifact(3, 2), _Artifact(4, 3)]  # span 2 ingested twice
    assert [a.id for a in spans.latest_spans(arts, 2)] == [4, 3]
    assert [a.id for a in spans.latest_spans(arts, 5)] == [4, 3, 1]
    # the previous span: skip the newest
    assert [a.id for a in spans.latest_spans(arts, 1, skip_recent=1)] == [3]
    assert spans.latest_spans(arts[:1], 1, skip_recent=1) == []  # a first span has no previous one


def test_the_resolver_strategy_resolves_every_channel():
    from components.span_resolver import LatestSpansStrategy

    arts = [_Artifact(1, 1), _Artifact(2, 2)]
    out = LatestSpansStrategy(num_spans=1, skip_recent=1).resolve_artifacts(None, {"statistics": arts})
    assert [a.id for a in out["statistics"]] == [1]
    with pytest.raises(ValueError):
        LatestSpansStrategy(num_spans=0)


def test_tfx_file_based_driver_picks_the_newest_span_of_the_example_gen(tmp_path):
    """TFX's own driver (what LocalDagRunner runs before the executor) on the span ExampleGen's
    exec properties: the newest span, its pattern, and the span number for the artifact."""
    from tfx.components.example_gen.driver import FileBasedDriver

    from components.example_gen import EuroSATSpanExampleGen

    root = _root(tmp_path, ["span-1", "span-2"])
    (tmp_path / "span-2" / "a.tfrecord").write_bytes(b"")
    gen = EuroSATSpanExampleGen(source=root, modality="rgb", max_bad_fraction=0.01)
    assert gen.driver_class is FileBasedDriver
    props = dict(gen.exec_properties)  # the protos as JSON, as the orchestrator passes them
    resolved = FileBasedDriver(None).resolve_exec_properties(props, None, None)
    assert resolved["span"] == 2
    assert json.loads(resolved["input_config"])["splits"][0]["pattern"] == "span-2"
    assert resolved["input_base"] == root


def _pipeline(tmp_path, local=True, **changes):
    from tfx.orchestration import metadata

    from pipeline.config import PipelineConfig
    from pipeline.pipeline import create_pipeline

    root = _root(tmp_path, ["span-1", "span-2"])
    config = PipelineConfig(data=root, modality="rgb", output_dir=str(tmp_path / "out")).replace(**changes)
    conn = metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite")) if local else None
    return {c.id: c for c in create_pipeline(config, conn).components}


def test_a_span_root_builds_the_span_example_gen_window_and_gate(tmp_path):
    from components.example_gen import EuroSATSpanExampleGen
    from pipeline.pipeline import PREVIOUS_SPAN_ID, SPAN_WINDOW_ID

    nodes = _pipeline(tmp_path, spans=3, allow_drift=True)
    assert isinstance(nodes["ExampleGen"], EuroSATSpanExampleGen)
    window = nodes[SPAN_WINDOW_ID]
    from tfx.dsl.components.common import resolver

    assert window.exec_properties[resolver.RESOLVER_CONFIG] == {"num_spans": 3}
    assert nodes["Transform"].inputs["examples"] is window.outputs["examples"]
    # the Evaluator keeps to the new span's own test split
    assert nodes["Evaluator"].inputs["examples"] is nodes["ExampleGen"].outputs["examples"]
    gate = nodes["AnomalyCheck"]
    assert gate.inputs["previous_statistics"] is nodes[PREVIOUS_SPAN_ID].outputs["statistics"]
    assert gate.exec_properties["allow_drift"] == 1
    # the skew gate: the new span's statistics against the served model's training statistics
    assert gate.inputs["served_model"] is nodes["latest_blessed_model_resolver"].outputs["model"]
    assert gate.inputs["statistics"] is nodes["StatisticsGen"].outputs["statistics"]
    # warm start: the Trainer's base_model is the latest blessed model
    assert nodes["Trainer"].inputs["base_model"] is nodes["latest_blessed_model_resolver"].outputs["model"]


def test_one_span_window_and_from_scratch(tmp_path):
    from pipeline.pipeline import SPAN_WINDOW_ID

    nodes = _pipeline(tmp_path, from_scratch=True)
    assert SPAN_WINDOW_ID not in nodes
    assert nodes["Transform"].inputs["examples"] is nodes["ExampleGen"].outputs["examples"]
    assert "base_model" not in nodes["Trainer"].inputs
    assert json.loads(nodes["Trainer"].exec_properties["custom_config"])["warm_start"] is False


def test_one_folder_trains_as_before_no_warm_start_no_kept_weights(tmp_path):
    """A single folder's re-run must stay cached: no base_model input that changes once a model is
    blessed, and no warm-start switch (so its Trainer keeps no warm-start weights either)."""
    from tfx.orchestration import metadata

    from pipeline.config import PipelineConfig
    from pipeline.pipeline import create_pipeline

    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.tfrecord").write_bytes(b"")
    config = PipelineConfig(data=str(folder), modality="rgb", output_dir=str(tmp_path / "out"))
    conn = metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))
    nodes = {c.id: c for c in create_pipeline(config, conn).components}
    assert "base_model" not in nodes["Trainer"].inputs
    assert "served_model" not in nodes["AnomalyCheck"].inputs  # nor a skew gate against the served model
    assert "warm_start" not in json.loads(nodes["Trainer"].exec_properties["custom_config"])


def test_a_compiled_pipeline_refuses_a_span_window(tmp_path):
    with pytest.raises(ConfigError, match="--spans 2: Kubeflow/Vertex"):
        _pipeline(tmp_path, local=False, spans=2)
    nodes = _pipeline(tmp_path, local=False)  # newest span, no previous-span resolver
    assert "previous_statistics" not in nodes["AnomalyCheck"].inputs


def test_split_files_with_a_span_root_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="drop --split-files"):
        _pipeline(tmp_path, split_files="a.txt,b.txt,c.txt")


@pytest.mark.e2e
def test_two_spans_gate_the_shifted_one_and_warm_start_with_allow_drift(two_span_run):
    import glob
    import os

    out, stderr = two_span_run
    (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert "the new span drifted from span 1: label l_infty" in line and "--allow-drift" in line
    root = os.path.join(out, "pipelines", "e2e")
    drift = [json.load(open(p)) for p in glob.glob(os.path.join(root, "AnomalyCheck", "drift", "*", "drift.json"))]
    assert any(d["drifted"] and d["allowed"] and d["span"] == 2 and d["previous_span"] == 1 for d in drift)
    # the skew gate: span-1's Trainer exported its training statistics, and span-2's gate compared with them
    from serving import training_statistics

    assert glob.glob(os.path.join(root, "Trainer", "model", "*", "Format-Serving", "assets.extra",
                                  training_statistics.FEATURE_STATISTICS_FILE))
    skewed = [d["skew"] for d in drift if d.get("span") == 2 and d.get("skew")]
    assert skewed and all([m["feature"] for m in s["measurements"]] == ["patch_mean"] for s in skewed), drift
    # both Trainers left the weights a later run warm-starts from, and said how they trained:
    # span-1's anew, span-2's (--allow-drift) from span-1's blessed model
    assert len(glob.glob(os.path.join(root, "Trainer", "model", "*", "warm_start", "model.weights.h5"))) == 2
    from components import warm_start

    models = sorted(glob.glob(os.path.join(root, "Trainer", "model", "*")), key=lambda p: int(os.path.basename(p)))
    first, second = (warm_start.plan_line(m) for m in models)
    assert first == "training from scratch: no blessed model yet"
    assert second.startswith(f"warm start from the blessed model {models[0]}")


def test_the_driver_span_becomes_the_property_statistics_gen_copies():
    """The driver sets the custom property only; StatisticsGen copies `examples.span` (the property)
    to its statistics, which the previous-span resolver reads: without it every span counts as 0."""
    from tfx.types import standard_artifacts

    from components.example_gen import record_span

    examples = standard_artifacts.Examples()
    examples.set_int_custom_property("span", 3)  # what FileBasedDriver's update_output_artifact does
    record_span(examples, None)
    assert examples.span == 3
    statistics = standard_artifacts.ExampleStatistics()
    statistics.span = examples.span  # tfx/components/statistics_gen/executor.py
    assert spans.span_of(statistics) == 3
    other = standard_artifacts.Examples()
    record_span(other, 5)
    assert other.span == 5 and other.get_int_custom_property("span") == 5
