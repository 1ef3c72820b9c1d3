"""New data as spans: what `--data` names when it is a root of spans, and which spans a run uses.

A span root is either

* a `--data` value holding TFX's ``{SPAN}`` placeholder (``gs://b/eurosat/span-{SPAN}``,
  ``/data/{SPAN}/EuroSAT_RGB.zip``): the part before the segment holding it is the ExampleGen's
  ``input_base``, the rest its split pattern; or
* a local folder whose entries are ``span-<N>/`` folders (or ``span-<N>.zip`` archives), each one
  source as a single folder is today: read as ``span-{SPAN}`` (``span-{SPAN}.zip``).

TFX's FileBasedExampleGen driver resolves the pattern to the newest span, ingests only that one
and records its number as the Examples artifact's ``span``
(components.example_gen.EuroSATSpanExampleGen); ``LatestSpansStrategy`` then gives the
Transform/Trainer the latest N spans' examples and the drift gate the previous span's statistics.
Read without TensorFlow (the CLI's early checks); the strategy imports TFX only when used.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional, Tuple

from schema.errors import DataError
from schema.locations import is_local

SPAN_SPEC = "{SPAN}"  # TFX's placeholder (tfx.components.example_gen.utils.SPAN_SPEC)
SPAN_PREFIX = "span-"  # the folders (or zips) of a local span root: span-1/, span-2/, ...
_SPAN_ENTRY = re.compile(r"^span-(\d+)(\.zip)?$")


def split_span_spec(spec: str) -> Optional[Tuple[str, str]]:
    """(input_base, pattern) of a `--data` value holding ``{SPAN}``; None when it holds none."""
    if SPAN_SPEC not in spec:
        return None
    if spec.count(SPAN_SPEC) > 1:
        raise DataError(f"--data {spec!r} holds {SPAN_SPEC} more than once; name the span once, e.g. "
                        f"root/span-{SPAN_SPEC}")
    head = spec[: spec.index(SPAN_SPEC)]
    cut = head.rfind("/")
    if cut <= 0 or "://" in spec and cut <= spec.index("://") + 2:
        raise DataError(f"--data {spec!r}: {SPAN_SPEC} must be in a folder below the root, e.g. "
                        f"gs://BUCKET/eurosat/span-{SPAN_SPEC}")
    return spec[:cut], spec[cut + 1:]


def local_span_entries(folder: str) -> Dict[int, str]:
    """{span number: entry name} of the span-<N> folders / zips directly in a local folder."""
    if not is_local(folder) or not os.path.isdir(folder):
        return {}
    found: Dict[int, str] = {}
    for name in os.listdir(folder):
        match = _SPAN_ENTRY.match(name)
        if match and (os.path.isdir(os.path.join(folder, name)) == (match.group(2) is None)):
            found[int(match.group(1))] = name
    return found


def span_input(spec: str) -> Optional[Tuple[str, str]]:
    """(input_base, split pattern) when `spec` is a span root, None for a single source (as before)."""
    named = split_span_spec(spec)
    if named is not None:
        return named
    entries = local_span_entries(spec)
    if not entries:
        return None
    zips = {name.endswith(".zip") for name in entries.values()}
    if len(zips) > 1:
        raise DataError(f"--data {spec!r} holds both span-N folders and span-N.zip archives; keep one "
                        f"kind, or name it with {SPAN_SPEC}, e.g. {spec.rstrip('/')}/span-{SPAN_SPEC}.zip")
    suffix = ".zip" if zips.pop() else ""
    return spec.rstrip("/"), f"{SPAN_PREFIX}{SPAN_SPEC}{suffix}"


def latest_local_span(spec: str) -> Optional[Tuple[int, str]]:
    """(span, path) of the newest span of a local span root (what the ExampleGen's driver will pick).

    For the checks made before the pipeline runs (the modality); None for other sources.
    """
    parsed = span_input(spec)
    if parsed is None or not is_local(spec):
        return None
    base, pattern = parsed
    prefix, _, suffix = pattern.partition(SPAN_SPEC)
    regex = re.compile("^" + re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    best: Optional[Tuple[int, str]] = None
    import glob

    for path in glob.glob(os.path.join(glob.escape(base), prefix.replace(SPAN_SPEC, "*") + "*" + suffix)):
        match = regex.match(os.path.relpath(path, base))
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), path)
    if best is None:
        raise DataError(f"--data {spec!r}: no span matches {os.path.join(base, pattern)}; add a span "
                        f"folder such as {os.path.join(base, pattern.replace(SPAN_SPEC, '1'))}")
    return best


def span_of(artifact) -> int:
    """An artifact's span: the `span` property (Examples, ExampleStatistics) or TFX's custom one."""
    if artifact.has_custom_property("span"):
        value = artifact.get_string_custom_property("span")
        return int(value) if value else artifact.get_int_custom_property("span")
    return int(getattr(artifact, "span", 0) or 0)


def latest_spans(artifacts: List, num_spans: int, skip_recent: int = 0) -> List:
    """The newest artifact of each of the `num_spans` newest spans, after leaving out the `skip_recent` newest.

    Newest span first. A span ingested twice (a re-run without the cache) counts once: its latest artifact.
    """
    newest: Dict[int, Any] = {}
    for artifact in artifacts:
        span = span_of(artifact)
        if span not in newest or artifact.id > newest[span].id:
            newest[span] = artifact
    spans = sorted(newest, reverse=True)[skip_recent: skip_recent + num_spans]
    return [newest[s] for s in spans]
