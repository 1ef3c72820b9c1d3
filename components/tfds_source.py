"""`--data tfds:eurosat/rgb` or `tfds:eurosat/all`: EuroSAT through tensorflow-datasets.

Read by the ExampleGen (components.example_gen) into the example contract (encoded RGB images, or the 13 Sentinel-2
bands as digital numbers).

TFDS downloads the archive when online, or reads a dataset already prepared in `--tfds-data-dir`.
Offline with nothing prepared, it fails at once with a message naming the alternatives, instead
of letting the download retry (and hang) until a network timeout.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Callable, Iterator, Optional
from urllib.parse import urlparse

from schema import features
from schema.errors import DataError

log = logging.getLogger(__name__)

PREFIX = "tfds:"
SUPPORTED = ("eurosat/rgb", "eurosat/all")  # the contract's modalities rgb and all


class TfdsUnavailableError(DataError):
    """The TFDS dataset is neither prepared locally nor downloadable now."""


def parse_tfds(spec: str) -> Optional[str]:
    """`tfds:eurosat/rgb` -> 'eurosat/rgb'; other specs -> None; unsupported names -> TfdsUnavailableError."""
    if not spec.startswith(PREFIX):
        return None
    name = spec[len(PREFIX):]
    if name not in SUPPORTED:
        supported = ", ".join(PREFIX + s for s in SUPPORTED)
        raise TfdsUnavailableError(f"--data {spec!r}: supported TFDS datasets are {supported}")
    return name


def reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout_s` (no data sent)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _source_name(filename: str, label: int) -> str:
    """The contract's source name of a TFDS example: Forest/Forest_1.jpg, as in the archive.

    TFDS keeps the archive's file name (Forest_1.jpg); the contract's source is Forest/Forest_1.jpg, as in the
    archive, so splits and split files agree across sources.
    """
    return f"{features.class_name(label)}/{os.path.basename(filename)}"


def to_example(ex: dict):
    """One TFDS EuroSAT example (numpy) -> the contract's tf.Example.

    `image` (rgb, still encoded) or `sentinel2` (all: float32 [64, 64, 13] holding digital numbers, checked by
    features.make_bands_example).
    """
    label = int(ex["label"])
    source = _source_name(ex["filename"].decode(), label)
    if "sentinel2" in ex:
        return features.make_bands_example(ex["sentinel2"], label, source)
    return features.make_example(ex["image"], label, source)


def prepare_builder(name: str, data_dir: Optional[str], is_reachable: Optional[Callable[[str], bool]] = None):
    """The TFDS builder, prepared.

    The TFDS builder, prepared (downloading only when the download host answers: `is_reachable`, by default
    reachable()).
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir or None)
    if builder.is_prepared():
        return builder
    url = builder.builder_config.download_url
    if not (is_reachable or reachable)(url):
        raise TfdsUnavailableError(
            f"tfds:{name} is not prepared in {builder.data_dir!r} and {url} cannot be reached (offline?). "
            "Alternatives: pass --tfds-data-dir pointing at a data dir where eurosat was prepared; or "
            f"download {os.path.basename(url)} elsewhere and give it (zipped or unpacked) as --data; "
            "or use --data synthetic[:N] to try the pipeline."
        )
    log.info("downloading and preparing tfds:%s into %s", name, builder.data_dir)
    builder.download_and_prepare()
    return builder


def iter_tfds(name: str, data_dir: Optional[str] = None) -> Iterator[dict]:
    """Every example of the prepared TFDS dataset, as numpy, RGB images still encoded.

    All of its splits are read: ExampleGen splits them.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir or None)
    decoders = {"image": tfds.decode.SkipDecoding()} if "image" in builder.info.features else None
    ds = builder.as_dataset(split="+".join(builder.info.splits), decoders=decoders)
    for count, ex in enumerate(ds.as_numpy_iterator(), start=1):
        if count % 5000 == 0:
            log.info("tfds:%s: %d examples read", name, count)
        yield ex
