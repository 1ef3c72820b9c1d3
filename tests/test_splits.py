"""Published split files: parsing, leak detection, and the ExampleGen routing each example by them."""
import json

import pytest

from components import splits
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline, describe_split
from tests.ingest import run_example_gen, sources_of, split_examples


def _write_lists(tmp_path, lists):
    paths = []
    for name, lines in zip(("train.txt", "val.txt", "test.txt"), lists):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        paths.append(str(tmp_path / name))
    return ",".join(paths)


def test_split_key_accepts_every_spelling_of_a_file():
    assert {splits.split_key(s) for s in ("Forest/Forest_1.jpg", "Forest_1.jpg", "Forest_1\n", "x/Forest/Forest_1.tif")} == {"Forest_1"}


def test_split_lists_are_parsed_and_leaks_rejected(tmp_path):
    spec = _write_lists(tmp_path, [["Forest/Forest_1.jpg"], ["Forest_2.jpg"], ["River_1", ""]])
    assert splits.read_split_lists(splits.parse_split_files(spec)) == {
        "Forest_1": "train", "Forest_2": "eval", "River_1": "test"}
    leak = _write_lists(tmp_path, [["Forest_1.jpg"], ["Forest/Forest_1.jpg"], ["River_1"]])
    with pytest.raises(ValueError, match="both the train and the eval split"):
        splits.read_split_lists(splits.parse_split_files(leak))
    with pytest.raises(ValueError, match="three files"):
        splits.parse_split_files(str(tmp_path / "train.txt"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        splits.parse_split_files(f"{tmp_path}/train.txt,{tmp_path}/val.txt,{tmp_path}/nope.txt")


def test_example_gen_routes_by_the_split_lists_in_one_read(synthetic_records, tmp_path):
    # synthetic_records: 100 images named synthetic/<Class>/<Class>_<i>.jpg, i = 1..10
    names = [f"{c}_{i}" for c in ("Forest", "River", "SeaLake") for i in range(1, 11)]
    spec = _write_lists(tmp_path, [names[:20], names[20:25], names[25:]])
    out = str(tmp_path / "examples")
    artifact, report = run_example_gen(synthetic_records, out, split_files=spec)
    assert report["summary"]["split_examples"] == {"train": 20, "eval": 5, "test": 5, "unassigned": 70}
    assert json.loads(artifact.split_names) == ["train", "eval", "test"]
    got = {splits.split_key(s) for s in sources_of(split_examples(out, "train"))}
    assert got == set(names[:20])
    assert {splits.split_key(s) for s in sources_of(split_examples(out, "test"))} == set(names[25:])
    foreign = _write_lists(tmp_path, [["Cat_1"], ["Cat_2"], ["Cat_3"]])
    with pytest.raises(ValueError, match="every split needs some"):
        run_example_gen(synthetic_records, str(tmp_path / "foreign"), split_files=foreign)


def test_example_gen_takes_the_split_files_when_given(tmp_path):
    lists = _write_lists(tmp_path, [["Forest_1"], ["Forest_2"], ["Forest_3"]])
    cfg = PipelineConfig(split_files=lists)
    example_gen = create_pipeline(cfg).components[0]
    props = example_gen.exec_properties
    for name in ("train", "eval", "test"):
        assert f'"name": "{name}"' in props["input_config"]
    assert "hash_buckets" not in (props.get("output_config") or "")
    assert props["split_files"] == lists
    assert json.loads(props["source_identity"])["split_files"][0]["sha256"]  # a changed list re-runs it
    assert describe_split(cfg) == f"split files {lists}"
    assert "hash" in describe_split(PipelineConfig())
