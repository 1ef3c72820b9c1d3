"""Published split files: parsing, leak detection, and the per-split copy ExampleGen reads."""
import json
import os

import pytest

from components import convert, splits
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline, describe_split

BEAM = ["--direct_running_mode=in_memory"]


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


def test_records_are_rewritten_per_split_once(synthetic_records, tmp_path):
    # synthetic_records: 100 images named synthetic/<Class>/<Class>_<i>.jpg, i = 1..10
    names = [f"{c}_{i}" for c in ("Forest", "River", "SeaLake") for i in range(1, 11)]
    spec = _write_lists(tmp_path, [names[:20], names[20:25], names[25:]])
    out = splits.resolve_split(synthetic_records, spec, str(tmp_path / "cache"), BEAM)
    report = json.load(open(os.path.join(out, splits.SPLIT_REPORT)))
    assert report["examples"] == {"train": 20, "eval": 5, "test": 5, "unassigned": 70}
    train = list(convert.iter_examples(os.path.join(out, "train")))
    got = {splits.split_key(e.features.feature["source"].bytes_list.value[0].decode()) for e in train}
    assert got == set(names[:20])
    assert splits.resolve_split(synthetic_records, spec, str(tmp_path / "cache"), BEAM) == out  # reused
    foreign = _write_lists(tmp_path, [["Cat_1"], ["Cat_2"], ["Cat_3"]])
    with pytest.raises(ValueError, match="every split needs some"):
        splits.resolve_split(synthetic_records, foreign, str(tmp_path / "cache"), BEAM)


def test_example_gen_reads_split_folders_when_split_files_are_given(tmp_path):
    cfg = PipelineConfig(split_files="a.txt,b.txt,c.txt")
    example_gen = create_pipeline(cfg, data_root=str(tmp_path)).components[0]
    inputs = example_gen.exec_properties["input_config"]
    for name in ("train", "eval", "test"):
        assert f'"pattern": "{name}/*tfrecord*"' in inputs
    assert "hash_buckets" not in (example_gen.exec_properties.get("output_config") or "")
    assert describe_split(cfg) == "split files a.txt,b.txt,c.txt"
    assert "hash" in describe_split(PipelineConfig())
