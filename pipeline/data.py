"""Turn the `--data` value into a folder of TFRecords that ImportExampleGen can read.

`--data` may be: a folder of TFRecords of EuroSAT tf.Examples (used as it is), `synthetic[:N]`
(generated once), `tfds:eurosat/rgb` (tensorflow-datasets, written once), or a folder / .zip of class folders of images, such as the EuroSAT RGB archive
(converted once by components.convert into <cache_dir>/<name>-<fingerprint>/, then reused).
"""
from __future__ import annotations

import os
from typing import List, Optional

import tensorflow as tf

from components.errors import DataError, DataNotFound

SYNTHETIC = "synthetic"
DEFAULT_SYNTHETIC_SIZE = 2000


def parse_synthetic(spec: str) -> int | None:
    """`synthetic` or `synthetic:N` -> N; anything else -> None."""
    name, _, size = spec.partition(":")
    if name != SYNTHETIC:
        return None
    if not size:
        return DEFAULT_SYNTHETIC_SIZE
    if not size.isdigit() or int(size) <= 0:
        raise DataError(f"--data {spec!r}: expected synthetic:N with N a positive number of images")
    return int(size)


def _holds_tfrecords(spec: str) -> bool:
    return tf.io.gfile.isdir(spec) and any("tfrecord" in f for f in tf.io.gfile.listdir(spec))


def resolve_data(
    spec: str,
    cache_dir: str,
    seed: int = 0,
    max_bad_fraction: Optional[float] = None,
    beam_args: Optional[List[str]] = None,
    tfds_data_dir: Optional[str] = None,
    split_files: str = "",
) -> str:
    """The folder of TFRecords for `spec`, generating or converting it on first use; with
    `split_files`, its per-split copy (train/, eval/, test/ sub-folders)."""
    records = _resolve_records(spec, cache_dir, seed, max_bad_fraction, beam_args, tfds_data_dir)
    if not split_files:
        return records
    from components.splits import resolve_split

    return resolve_split(records, split_files, cache_dir, beam_args)


def _resolve_records(spec, cache_dir, seed, max_bad_fraction, beam_args, tfds_data_dir) -> str:
    n = parse_synthetic(spec)
    if n is not None:
        from components.synthetic import write_synthetic_tfrecords

        folder = os.path.join(cache_dir, f"synthetic-{n}-seed{seed}")
        write_synthetic_tfrecords(folder, n, seed=seed, num_shards=max(1, min(8, n // 2000)))
        return os.path.abspath(folder)
    from components import tfds_source

    tfds_name = tfds_source.parse_tfds(spec)
    if tfds_name is not None:
        return tfds_source.write_tfds_tfrecords(tfds_name, cache_dir, tfds_data_dir)
    if _holds_tfrecords(spec):
        return spec if "://" in spec else os.path.abspath(spec)
    from components import convert

    if "://" not in spec and convert.holds_class_folders(spec):
        fraction = convert.DEFAULT_MAX_BAD_FRACTION if max_bad_fraction is None else max_bad_fraction
        return convert.convert_source(spec, cache_dir, fraction, beam_args)
    if not tf.io.gfile.exists(spec):
        raise DataNotFound(
            f"--data {spec!r} does not exist; give a folder of TFRecords, a folder or .zip of "
            "class folders of images (the EuroSAT RGB archive), tfds:eurosat/rgb, or synthetic[:N]."
        )
    raise DataNotFound(
        f"--data {spec!r} holds neither TFRecord files (*.tfrecord*) nor class folders of images "
        "(<ClassName>/*.jpg, as in the EuroSAT RGB archive); give one of those, tfds:eurosat/rgb, "
        "or synthetic[:N]."
    )
