"""Published split lists (`--split-files train.txt,val.txt,test.txt`, e.g. the Neumann et al.
EuroSAT split) instead of ExampleGen's hash buckets, so results compare with published ones.

The TFRecords of any source are re-written into per-split sub-folders (train/, eval/, test/);
create_pipeline then gives ExampleGen one input pattern per split instead of hash buckets.
A split file lists one image per line, with or without its class folder and extension
(``Forest/Forest_1.jpg``, ``Forest_1.jpg`` and ``Forest_1`` name the same image): EuroSAT file
names are unique across classes and the 13-band archive names them the same with ``.tif``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from typing import Dict, List, Optional, Sequence

from schema import features
from schema.errors import DataError, DataNotFound
from schema.records import RECORD_PATTERN, SPLIT_NAMES  # the files' "val" is "eval"

log = logging.getLogger(__name__)

SPLIT_REPORT = "split.json"
UNASSIGNED = "unassigned"


def split_key(name: str) -> str:
    """`Forest/Forest_1.jpg` -> `Forest_1`: what a split-file line and an example's source share."""
    return os.path.splitext(os.path.basename(name.strip()))[0]


def parse_split_files(spec: str) -> List[str]:
    """`train.txt,val.txt,test.txt` -> the three paths, checked to exist."""
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    if len(paths) != len(SPLIT_NAMES):
        raise DataError(f"--split-files {spec!r}: expected three files, train,val,test (comma-separated)")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataNotFound(f"--split-files: {', '.join(missing)} not found")
    return paths


def read_split_lists(paths: Sequence[str]) -> Dict[str, str]:
    """{split key: split name} from the three files; an image listed in two splits is an error."""
    split_of: Dict[str, str] = {}
    for split, path in zip(SPLIT_NAMES, paths):
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                key = split_key(line)
                if split_of.get(key, split) != split:
                    raise DataError(f"{line.strip()!r} is listed in both the {split_of[key]} and the "
                                     f"{split} split files ({path}): a split must not leak into another")
                split_of[key] = split
    return split_of


def _source_of(serialized: bytes) -> str:
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    return ex.features.feature[features.SOURCE_KEY].bytes_list.value[0].decode()


def write_presplit(records_glob: str, split_of: Dict[str, str], out_dir: str,
                   beam_args: Optional[List[str]] = None) -> Dict[str, int]:
    """Beam: read every example, route it by its source to out_dir/<split>/; returns counts per
    split (examples in no split file are counted as 'unassigned' and left out)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    order = list(SPLIT_NAMES) + [UNASSIGNED]
    counts_path = os.path.join(out_dir, "_counts")

    def route(serialized, _n):
        return order.index(split_of.get(split_key(_source_of(serialized)), UNASSIGNED))

    with beam.Pipeline(options=PipelineOptions(beam_args or ["--direct_running_mode=in_memory"])) as p:
        parts = (p | "Read" >> beam.io.ReadFromTFRecord(records_glob)
                 | "BySplit" >> beam.Partition(route, len(order)))
        for name, part in zip(order, parts):
            if name != UNASSIGNED:
                _ = part | f"Write{name}" >> beam.io.WriteToTFRecord(
                    os.path.join(out_dir, name, "eurosat"), file_name_suffix=".tfrecord.gz")
        _ = ([part | f"Tag{name}" >> beam.Map(lambda _, n=name: n) for name, part in zip(order, parts)]
             | beam.Flatten() | beam.combiners.Count.PerElement()
             | beam.Map(lambda kv: json.dumps(list(kv)))
             | beam.io.WriteToText(counts_path, shard_name_template=""))
    with open(counts_path) as f:
        counts = dict(json.loads(line) for line in f if line.strip())
    os.remove(counts_path)
    return {name: counts.get(name, 0) for name in order}


def resolve_split(records_dir: str, split_files: str, cache_dir: str,
                  beam_args: Optional[List[str]] = None) -> str:
    """The per-split copy of `records_dir` for these split files, written once (keyed by a hash
    of the records listing and the split files' contents) and reused."""
    import tensorflow as tf

    paths = parse_split_files(split_files)
    split_of = read_split_lists(paths)
    records = sorted(tf.io.gfile.glob(os.path.join(records_dir, RECORD_PATTERN)))
    h = hashlib.sha256()
    for path in records:
        h.update(f"{path}\0{tf.io.gfile.stat(path).length}\n".encode())
    for path in paths:
        h.update(open(path, "rb").read())
    out = os.path.join(cache_dir, f"{os.path.basename(records_dir.rstrip('/'))}-split-{h.hexdigest()[:12]}")
    report = os.path.join(out, SPLIT_REPORT)
    if os.path.exists(report):
        return os.path.abspath(out)
    shutil.rmtree(out, ignore_errors=True)
    counts = write_presplit(os.path.join(records_dir, RECORD_PATTERN), split_of, out, beam_args)
    if not all(counts[s] for s in SPLIT_NAMES):
        raise DataError(f"--split-files: the splits got {counts} examples; every split needs some. "
                         "Do the files name this data set's images (e.g. Forest/Forest_1.jpg)?")
    if counts[UNASSIGNED]:
        log.warning("%d examples are in no split file and are left out", counts[UNASSIGNED])
    with open(report, "w") as f:
        json.dump({"split_files": [os.path.abspath(p) for p in paths], "examples": counts}, f, indent=1)
    log.info("split by files %s: %s", split_files, counts)
    return os.path.abspath(out)
