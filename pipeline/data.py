"""Turn the `--data` value into a folder of TFRecords that ImportExampleGen can read.

`--data` may be: a folder of TFRecords of EuroSAT tf.Examples (used as it is), `synthetic[:N]`
or `synthetic/all[:N]` (RGB or 13-band, generated once), `tfds:eurosat/rgb` or `tfds:eurosat/all`
(tensorflow-datasets, written once), or a folder / .zip of class folders of images, such as the
EuroSAT RGB or all-bands archive (converted once by components.convert into
<cache_dir>/<name>-<fingerprint>/, then reused).
"""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

from schema import modalities
from schema.errors import DataError, DataNotFound
from schema.records import DEFAULT_MAX_BAD_FRACTION, RECORD_PATTERN, is_record_file

SYNTHETIC = "synthetic"
DEFAULT_SYNTHETIC_SIZE = 2000


def parse_synthetic(spec: str) -> Optional[Tuple[int, str]]:
    """`synthetic[/rgb|/all][:N]` -> (N, modality); anything else -> None."""
    name, _, size = spec.partition(":")
    base, _, modality = name.partition("/")
    if base != SYNTHETIC:
        return None
    modality = modality or "rgb"
    if modality not in ("rgb", "all") or (size and (not size.isdigit() or int(size) <= 0)):
        raise DataError(
            f"--data {spec!r}: expected synthetic:N (RGB) or synthetic/all:N (13 bands), "
            "N a positive number of images"
        )
    return (int(size) if size else DEFAULT_SYNTHETIC_SIZE), modality


RECORDS_CHECKED = 100  # records read from each TFRecord file before the pipeline starts


def _holds_tfrecords(spec: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.isdir(spec) and any(is_record_file(f) for f in tf.io.gfile.listdir(spec))


def check_tfrecords(folder: str, records: int = RECORDS_CHECKED) -> None:
    """Read the first `records` records of every TFRecord file in `folder` (as ExampleGen will:
    GZIP by the .gz suffix) and parse them as tf.Examples; DataError naming the first file that
    is not one, before any component runs."""
    import tensorflow as tf

    for name in sorted(tf.io.gfile.listdir(folder)):
        path = folder.rstrip("/") + "/" + name
        if not is_record_file(name) or tf.io.gfile.isdir(path):
            continue
        compression = "GZIP" if name.endswith(".gz") else ""
        try:
            for raw in tf.data.TFRecordDataset(path, compression_type=compression).take(records):
                tf.train.Example.FromString(raw.numpy())
        except (tf.errors.OpError, ValueError) as err:  # DataLossError, DecodeError
            detail = getattr(err, "message", str(err)).splitlines()[0]
            raise DataError(
                f"--data: {path!r} is not a file of tf.Example records ({type(err).__name__}: {detail}); "
                "remove it from the folder or rewrite it (schema/features.py make_example)"
            ) from None


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


def _not_found(spec: str) -> DataNotFound:
    return DataNotFound(
        f"--data {spec!r} does not exist; give a folder of TFRecords, a folder or .zip of "
        "class folders of images (the EuroSAT RGB or all-bands archive), tfds:eurosat/rgb, "
        "tfds:eurosat/all, synthetic[:N] or synthetic/all[:N]."
    )


def check_data_spec(spec: str) -> None:
    """What can be said of `--data` before TensorFlow loads: a malformed synthetic[:N], or a local
    path that does not exist (DataNotFound). The rest is resolve_data's."""
    from components.tfds_source import parse_tfds

    if parse_synthetic(spec) is None and parse_tfds(spec) is None and "://" not in spec \
            and not os.path.exists(spec):
        raise _not_found(spec)


def _resolve_records(spec, cache_dir, seed, max_bad_fraction, beam_args, tfds_data_dir) -> str:
    synthetic = parse_synthetic(spec)
    if synthetic is not None:
        from components.synthetic import write_synthetic_tfrecords

        n, modality = synthetic
        folder = os.path.join(cache_dir, f"synthetic{modalities.get(modality).name_suffix}-{n}-seed{seed}")
        write_synthetic_tfrecords(folder, n, seed=seed, num_shards=max(1, min(8, n // 2000)), modality=modality)
        return os.path.abspath(folder)
    from components import tfds_source

    tfds_name = tfds_source.parse_tfds(spec)
    if tfds_name is not None:
        return tfds_source.write_tfds_tfrecords(tfds_name, cache_dir, tfds_data_dir)
    if _holds_tfrecords(spec):
        check_tfrecords(spec)
        return spec if "://" in spec else os.path.abspath(spec)
    from components import convert

    if convert.holds_class_folders(spec):
        fraction = DEFAULT_MAX_BAD_FRACTION if max_bad_fraction is None else max_bad_fraction
        return convert.convert_source(spec, cache_dir, fraction, beam_args)
    import tensorflow as tf

    if not tf.io.gfile.exists(spec):
        raise _not_found(spec)
    raise DataNotFound(
        f"--data {spec!r} holds neither TFRecord files ({RECORD_PATTERN}) nor class folders of images "
        "(<ClassName>/*.jpg or *.tif, as in the EuroSAT archives); give one of those, "
        "tfds:eurosat/rgb, tfds:eurosat/all, synthetic[:N] or synthetic/all[:N]."
    )


def resolve_modality(requested: str, data_root: str) -> str:
    """The data's modality (from its first example); `requested` 'rgb'/'all' must agree with it."""
    from schema import features

    try:
        found = features.detect_modality(data_root)
    except ValueError as err:
        raise DataError(f"cannot tell the modality of {data_root!r}: {err}") from None
    if requested not in (modalities.AUTO, found):
        raise DataError(
            f"--modality {requested} but the data in {data_root!r} is {found!r} "
            f"({modalities.get(found).description}); drop --modality or pass --modality {found}"
        )
    return found
