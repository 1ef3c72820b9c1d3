"""The ExampleGen's executor on synthetic data and TFRecord folders (image archives: test_convert.py,
TFDS: test_tfds_source.py, split lists: test_splits.py), against what TFX's ImportExampleGen made
of the same data before ingestion moved into the DAG."""
import json
import os

import pytest

from tests.ingest import BEAM, run_example_gen, sources_of, split_examples


def _import_example_gen(records: str, out: str) -> None:
    """What a run did until now: TFX's ImportExampleGen over a folder of TFRecords, hash split."""
    from tfx import v1 as tfx
    from tfx.components.example_gen.import_example_gen.executor import Executor
    from tfx.dsl.components.base import base_beam_executor
    from tfx.types import standard_artifacts

    from pipeline.pipeline import hash_split_config
    from schema.records import RECORD_PATTERN

    component = tfx.components.ImportExampleGen(
        input_base=records, output_config=hash_split_config(),
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="all", pattern=RECORD_PATTERN)]))
    examples = standard_artifacts.Examples()
    examples.uri = out
    Executor(base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=BEAM)).Do(
        {}, {"examples": [examples]}, dict(component.exec_properties, input_base=records))


@pytest.mark.parametrize("modality", ["rgb", "all"])
def test_synthetic_data_is_the_same_in_the_same_splits_as_before(tmp_path, modality):
    from schema.example_data.synthetic import write_synthetic_tfrecords
    from schema.features import with_patch_mean

    records = str(tmp_path / "records")
    write_synthetic_tfrecords(records, 60, seed=3, modality=modality)
    _import_example_gen(records, str(tmp_path / "before"))
    spec = "synthetic/all:60" if modality == "all" else "synthetic:60"
    artifact, report = run_example_gen(spec, str(tmp_path / "after"), seed=3)
    for split in ("train", "eval", "test"):
        before, after = split_examples(str(tmp_path / "before"), split), split_examples(str(tmp_path / "after"), split)
        assert sources_of(after) == sources_of(before) and after, split
        # the same examples, plus the per-band patch mean the ExampleGen adds to each
        by_source = {e.features.feature["source"].bytes_list.value[0]: with_patch_mean(e, modality) for e in before}
        assert all(by_source[e.features.feature["source"].bytes_list.value[0]] == e for e in after)
    assert report["summary"] == {
        "source": spec, "kind": "synthetic", "modality": modality, "files": 60, "examples": 60, "bad": 0,
        "duplicates": 0, "normalized": 0,
        "source_identity": {"kind": "synthetic", "source": spec, "seed": 3, "ingest_version": "2"}}
    assert json.loads(artifact.split_names) == ["train", "eval", "test"]


def test_a_folder_of_tfrecords_is_read_as_it_is(tmp_path, synthetic_records):
    out = str(tmp_path / "examples")
    artifact, report = run_example_gen(synthetic_records, out)
    assert report["summary"]["kind"] == "records" and report["summary"]["examples"] == 100
    assert len(split_examples(out)) == 100
    assert artifact.mlmd_artifact.custom_properties["source"].string_value == synthetic_records
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-test", "Split-train", "conversion_report.json"]


def test_bad_synthetic_and_modality_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match=r"synthetic:5 is too small: ask for at least 10"):
        run_example_gen("synthetic:5", str(tmp_path / "a"))
    with pytest.raises(ValueError, match="'all' data .* built for 'rgb'; pass --modality all"):
        run_example_gen("synthetic/all:20", str(tmp_path / "b"), modality="rgb")


def test_tfx_caches_the_examples_until_the_source_is_touched(tmp_path):
    """The ExampleGen alone under the LocalDagRunner, three times: run, reused from TFX's cache
    (nothing changed), run again once the archive is touched (its identity changed)."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    from pipeline.config import PipelineConfig
    from pipeline.pipeline import make_example_gen
    from tests.test_convert import make_archive, zip_folder

    make_archive(tmp_path / "src", per_class=1)
    zpath = tmp_path / "EuroSAT_RGB.zip"
    zip_folder(tmp_path / "src", zpath)
    config = PipelineConfig(data=str(zpath), output_dir=str(tmp_path / "out"), modality="rgb")
    connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))

    def run():
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="ingest", pipeline_root=config.pipeline_root, components=[make_example_gen(config)],
            enable_cache=True, metadata_connection_config=connection, beam_pipeline_args=BEAM))
        store = metadata_store.MetadataStore(connection)
        return [e.last_known_state for e in sorted(store.get_executions(), key=lambda e: e.id)]

    complete, cached = metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED
    assert run() == [complete]
    assert run() == [complete, cached]
    os.utime(zpath, ns=(1, 1))  # touched: same bytes, another modification time
    assert run() == [complete, cached, complete]
