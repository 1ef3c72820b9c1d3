"""What a local run can say of `--data` before the pipeline runs.

A malformed name or a missing path (before TensorFlow loads), and the data's modality (`--modality auto`), read from
the source itself. Nothing is converted here: the ExampleGen reads every source inside the DAG
(components.example_gen), and compiling for the cloud reads no data at all.
"""
from __future__ import annotations

import os

from components.data_sources import PATH_KIND, not_found, parse_synthetic, source_kind, spec_modality
from schema import modalities
from schema.errors import DataError, DataNotFound
from schema.locations import is_local

__all__ = ["check_data_spec", "parse_synthetic", "source_modality", "resolve_modality"]


def check_data_spec(spec: str) -> None:
    """What can be said of `--data` before TensorFlow loads.

    A malformed synthetic[:N] or tfds name, or a local path that does not exist (DataNotFound); a root of spans
    without a span (DataError).
    """
    from components.spans import SPAN_SPEC, latest_local_span

    if SPAN_SPEC in spec and is_local(spec):
        latest_local_span(spec)
        return
    if source_kind(spec) == PATH_KIND and is_local(spec) and not os.path.exists(spec):
        raise DataNotFound(not_found(spec))


def source_modality(spec: str) -> str:
    """The modality of the source.

    Named by it (synthetic/all, tfds:eurosat/all), or read from it (a TFRecord folder's first example; an image
    set's first readable TIFF, components.convert).
    """
    named = spec_modality(spec)
    if named is not None:
        return named
    from components import convert, data_sources
    from components.spans import latest_local_span

    latest = latest_local_span(spec)  # a root of spans: the newest one, which the ExampleGen reads
    if latest is not None:
        spec = latest[1]

    if data_sources.holds_tfrecords(spec):
        data_sources.check_tfrecords(spec)
        from schema import features

        try:
            return features.detect_modality(spec)
        except ValueError as err:
            raise DataError(f"cannot tell the modality of {spec!r}: {err}") from None
    if convert.holds_class_folders(spec):
        return convert.scan_source(spec.rstrip("/"))[2]
    raise DataNotFound(data_sources.not_a_source(spec))


def resolve_modality(requested: str, spec: str) -> str:
    """The data's modality (source_modality); `requested` 'rgb'/'all' must agree with it."""
    found = source_modality(spec)
    if requested not in (modalities.AUTO, found):
        raise DataError(
            f"--modality {requested} but the data in {spec!r} is {found!r} "
            f"({modalities.get(found).description}); drop --modality or pass --modality {found}"
        )
    return found
