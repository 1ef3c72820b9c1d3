"""Published split lists instead of ExampleGen's hash buckets, so results compare with published ones.

Published split lists (`--split-files train.txt,val.txt,test.txt`, e.g. the Neumann et al. EuroSAT split) instead of
ExampleGen's hash buckets, so results compare with published ones.

The ExampleGen (components.example_gen) reads the source once and routes each example to the
split its source name is listed in (route_by_lists), instead of hash buckets.
A split file lists one image per line, with or without its class folder and extension
(``Forest/Forest_1.jpg``, ``Forest_1.jpg`` and ``Forest_1`` name the same image): EuroSAT file
names are unique across classes and the 13-band archive names them the same with ``.tif``.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Sequence

from schema import features
from schema.errors import DataError, DataNotFound
from schema.records import SPLIT_NAMES  # the files' "val" is "eval"

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
COUNTS_PART = "split_counts"


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


def _split_index(example, _num_partitions: int, split_of: Dict[str, str], order: Sequence[str]) -> int:
    source = example.features.feature[features.SOURCE_KEY].bytes_list.value[0].decode()
    return order.index(split_of.get(split_key(source), UNASSIGNED))


def route_by_lists(examples, split_of: Dict[str, str], report_dir: str) -> Dict[str, object]:
    """Beam, inside the ExampleGen.

    Each tf.Example to the split its source is listed in; the counts per split ('unassigned': in no file, left out)
    go to report_dir/split_counts.
    """
    import apache_beam as beam

    order = list(SPLIT_NAMES) + [UNASSIGNED]
    parts = examples | "BySplitFiles" >> beam.Partition(_split_index, len(order), split_of, order)
    _ = ([part | f"Tag{name}" >> beam.Map(lambda _, n=name: n) for name, part in zip(order, parts)]
         | "AllTags" >> beam.Flatten() | "CountPerSplit" >> beam.combiners.Count.PerElement()
         | "CountJson" >> beam.Map(lambda kv: json.dumps(list(kv)))
         | "WriteCounts" >> beam.io.WriteToText(os.path.join(report_dir, COUNTS_PART), shard_name_template=""))
    return {name: part for name, part in zip(order, parts) if name != UNASSIGNED}


def read_counts(report_dir: str) -> Dict[str, int]:
    """The examples per split that route_by_lists counted."""
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(report_dir, COUNTS_PART)) as f:
        counts = dict(json.loads(line) for line in f if line.strip())
    return {name: counts.get(name, 0) for name in list(SPLIT_NAMES) + [UNASSIGNED]}


def check_counts(counts: Dict[str, int]) -> None:
    """DataError when a split got no example (the files name another data set's images).

    A warning for the examples no file lists.
    """
    if not all(counts[s] for s in SPLIT_NAMES):
        raise DataError(f"--split-files: the splits got {counts} examples; every split needs some. "
                         "Do the files name this data set's images (e.g. Forest/Forest_1.jpg)?")
    if counts[UNASSIGNED]:
        log.warning("%d examples are in no split file and are left out", counts[UNASSIGNED])
    log.info("split by files: %s", counts)
