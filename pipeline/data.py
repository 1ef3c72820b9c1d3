"""Turn the `--data` value into a folder of TFRecords that ImportExampleGen can read."""
from __future__ import annotations

import os

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


def resolve_data(spec: str, cache_dir: str, seed: int = 0) -> str:
    """The folder of TFRecords for `spec`, generating synthetic data on first use."""
    n = parse_synthetic(spec)
    if n is not None:
        from components.synthetic import write_synthetic_tfrecords

        folder = os.path.join(cache_dir, f"synthetic-{n}-seed{seed}")
        write_synthetic_tfrecords(folder, n, seed=seed, num_shards=max(1, min(8, n // 2000)))
        return os.path.abspath(folder)
    if not tf.io.gfile.isdir(spec):
        raise DataNotFound(
            f"--data {spec!r} is neither an existing folder of TFRecords nor synthetic[:N]."
        )
    records = [f for f in tf.io.gfile.listdir(spec) if "tfrecord" in f]
    if not records:
        raise DataNotFound(
            f"--data {spec!r} holds no TFRecord files (*.tfrecord*); convert your images first "
            "or use synthetic[:N]."
        )
    return spec if "://" in spec else os.path.abspath(spec)
