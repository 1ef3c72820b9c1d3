"""The conversion as Beam (ConvertImages; DirectRunner locally, the same code on Dataflow).

Read + validate + normalize every usable file, drop duplicates, yield contract tf.Examples. The ExampleGen
(components.example_gen) applies it inside the DAG; components.convert lists the source and gives the reader
(make_reader).
"""
from __future__ import annotations

import json
import logging
import posixpath
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

import apache_beam as beam

from components.prepare import SourceFile, prepare, to_example
from schema import features, modalities

log = logging.getLogger("components.convert.beam")  # a child of the conversion's logger

RECORD_PREFIX = "eurosat"  # the converted TFRecords' file name prefix


class Reader(Protocol):
    """What the pipeline reads files with (components.sources.SourceReader)."""

    def read(self, f: Any) -> bytes:
        """The bytes of file `f` (a SourceFile); ValueError when it cannot be used."""

    def close(self) -> None:
        """Close the archives the reader opened."""

BAD_TAG = "bad"


class _ReadAndPrepare(beam.DoFn):
    """SourceFile -> ('ok', (sha, (source, label, bytes, normalized))) or a bad record.

    Each worker keeps one SourceReader, so a zip archive is opened once, not once per file.
    """

    def __init__(self, modality: str, make_reader: Callable[[], Reader]):
        self.modality = modality
        self.make_reader = make_reader
        self.reader: Optional[Reader] = None

    def setup(self) -> None:
        self.reader = self.make_reader()

    def process(self, f: SourceFile):
        from apache_beam.metrics import Metrics

        try:
            assert self.reader is not None, "setup() opens the reader"
            data = self.reader.read(f)
            prepared = prepare(data, self.modality)
        except (OSError, ValueError) as err:
            Metrics.counter("convert", "bad").inc()
            yield beam.pvalue.TaggedOutput(BAD_TAG, {"path": f.source, "reason": str(err)})
            return
        Metrics.counter("convert", "read").inc()
        if prepared.normalized:
            Metrics.counter("convert", "normalized").inc()
        yield prepared.sha256, (f.source, f.label, prepared.image, prepared.normalized)

    def teardown(self) -> None:
        if self.reader:
            self.reader.close()


def _resolve_duplicates(keyed, modality: str):
    """Group of identical bytes -> the one example to keep (first path), plus report records."""
    from apache_beam.metrics import Metrics

    _, copies = keyed
    copies = sorted(copies)
    labels = {label for _, label, _, _ in copies}
    if len(labels) > 1:
        names = ", ".join(f"{s} ({features.class_name(lbl)})" for s, lbl, _, _ in copies)
        for source, _, _, _ in copies:
            Metrics.counter("convert", "bad").inc()
            yield beam.pvalue.TaggedOutput(
                BAD_TAG, {"path": source, "reason": f"same {_what(modality)} in different classes: {names}"})
        return
    first = copies[0]
    for source, _, _, _ in copies[1:]:
        Metrics.counter("convert", "duplicate").inc()
        yield beam.pvalue.TaggedOutput(
            "duplicate", {"path": source, "reason": f"duplicate of {first[0]} (same {_same(modality)})"})
    if first[3]:
        yield beam.pvalue.TaggedOutput("normalized", {"path": first[0], "reason": first[3]})
    Metrics.counter("convert", "written").inc()
    yield to_example(first[2], first[1], first[0], modality)


def _what(modality: str) -> str:
    return modalities.get(modality).patch_noun


def _same(modality: str) -> str:
    """What duplicates share: the stored bytes (encoded images) or the values (GeoTIFF tags may differ)."""
    return "bytes" if modalities.get(modality).encoded else modalities.get(modality).patch_noun


class _LogProgress:
    """A log line every `every` elements per worker: progress on long conversions."""

    def __init__(self, every: int = 1000):
        self.every, self.seen = every, 0

    def __call__(self, element):
        self.seen += 1
        if self.seen % self.every == 0:
            log.info("converted %d images (this worker)", self.seen)
        return element


class ConvertImages(beam.PTransform):
    """A source's listing -> contract tf.Examples: read + validate + normalize every usable file, drop duplicates.

    What is refused, dropped or normalized goes, one JSON line a file, to `report_dir`/<kind> (read back with
    read_report_parts once the pipeline has run).

    The ExampleGen (components.example_gen) applies it.
    """

    def __init__(self, files: Sequence[SourceFile], modality: str, make_reader: Callable[[], Reader],
                 report_dir: str):
        super().__init__()
        self.files = [f for f in files if f.label is not None]
        self.modality, self.make_reader, self.report_dir = modality, make_reader, report_dir

    def expand(self, pbegin):
        """List, read and convert the files, write the TFRecords and the bad files' report."""
        prepared = (
            pbegin
            | "ListFiles" >> beam.Create(self.files, reshuffle=True)
            | "ReadAndValidate" >> beam.ParDo(_ReadAndPrepare(self.modality, self.make_reader)).with_outputs(
                BAD_TAG, main="ok")
        )
        examples = (
            prepared.ok
            | "Progress" >> beam.Map(_LogProgress())
            | "GroupIdenticalBytes" >> beam.GroupByKey()
            | "DropDuplicates" >> beam.FlatMap(_resolve_duplicates, self.modality).with_outputs(
                BAD_TAG, "duplicate", "normalized", main="examples")
        )
        bad = (prepared[BAD_TAG], examples[BAD_TAG]) | "AllBad" >> beam.Flatten()
        for kind, pcoll in ((BAD_TAG, bad), ("duplicate", examples.duplicate),
                            ("normalized", examples.normalized)):
            _ = (pcoll | f"Json{kind}" >> beam.Map(json.dumps)
                 | f"Write{kind}" >> beam.io.WriteToText(posixpath.join(self.report_dir, kind),
                                                         shard_name_template=""))
        return examples.examples


REPORT_KINDS = (BAD_TAG, "duplicate", "normalized")


def read_report_parts(report_dir: str) -> Dict[str, List[dict]]:
    """The records ConvertImages wrote to `report_dir`, by kind, sorted by path; the parts are removed."""
    import tensorflow as tf

    records = {}
    for kind in REPORT_KINDS:
        with tf.io.gfile.GFile(posixpath.join(report_dir, kind)) as f:
            records[kind] = sorted((json.loads(line) for line in f if line.strip()), key=lambda r: r["path"])
    tf.io.gfile.rmtree(report_dir)
    return records
