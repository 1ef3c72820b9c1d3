"""EuroSAT's ExampleGen: every `--data` source becomes contract tf.Examples inside the DAG.

TFX's way for a custom source (tfx/components/example_gen/custom_executors/avro_executor.py):
an executor of BaseExampleGenExecutor whose GetInputSourceToExamplePTransform is a Beam PTransform
from the source to tf.Examples; TFX then splits (hash buckets on the `source` feature) and writes
them. The input pattern of the one input split is the source itself (components.data_sources):

* a folder or .zip of class folders (EuroSAT RGB JPEGs, 13-band GeoTIFFs): listed and converted
  by components.convert's ConvertImages (bounded reads, bad-file accounting, --max-bad-fraction);
* a folder of TFRecords of contract examples: read as they are (after a check of each file);
* ``tfds:eurosat/rgb|all``: read with tensorflow-datasets (prepared in --tfds-data-dir);
* ``synthetic[/all][:N]``: generated (schema.samples), seeded.

Published split lists (--split-files) replace the hash buckets: the source is read once and each
example routed by its source name (components.splits).

The output artifact holds ``conversion_report.json`` beside its splits (the summary, and every
refused, duplicate and normalized file with its reason) and carries the summary as custom
properties (source, files, examples, refused, ...), so ML Metadata says which source, and how many
refused files, made a model. The source's identity (components.data_sources.source_identity) is
an execution property: TFX's cache re-uses the examples while it holds.
"""
from __future__ import annotations

import json
import logging
import posixpath
from typing import Any, Dict, List, Optional

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components import data_sources
from schema import features, modalities
from schema.errors import DataError, DataNotFound
from schema.records import RECORD_PATTERN

log = logging.getLogger(__name__)

REPORT_NAME = "conversion_report.json"  # in the Examples artifact, beside Split-train/ ...
PARTS = "_report_parts"  # the Beam pipeline's report records, until the report is written
COUNT_PART = "count"
SOURCE_IDENTITY_KEY = "source_identity"
MODALITY_KEY = "modality"
MAX_BAD_FRACTION_KEY = "max_bad_fraction"
SEED_KEY = "seed"
TFDS_DATA_DIR_KEY = "tfds_data_dir"
SPLIT_FILES_KEY = "split_files"
# The report's summary as custom properties of the Examples artifact (ML Metadata lineage).
SUMMARY_PROPERTIES = ("source", "kind", "modality", "files", "examples", "bad", "duplicates", "normalized")


class EuroSATExampleGenSpec(ComponentSpec):
    """ExampleGen's own parameters (input/output config, formats) and what names the source."""

    PARAMETERS = {
        standard_component_specs.INPUT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.Input),
        standard_component_specs.OUTPUT_CONFIG_KEY: ExecutionParameter(type=example_gen_pb2.Output),
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: ExecutionParameter(type=int),
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: ExecutionParameter(type=int),
        SOURCE_IDENTITY_KEY: ExecutionParameter(type=str),
        MODALITY_KEY: ExecutionParameter(type=str),
        MAX_BAD_FRACTION_KEY: ExecutionParameter(type=float),
        SEED_KEY: ExecutionParameter(type=int),
        TFDS_DATA_DIR_KEY: ExecutionParameter(type=str, optional=True),
        SPLIT_FILES_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS: Dict[str, ChannelParameter] = {}
    OUTPUTS = {standard_component_specs.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples)}


class EuroSATSpanExampleGenSpec(EuroSATExampleGenSpec):
    """EuroSATExampleGenSpec for a root of spans: with `input_base` and an optional RangeConfig.

    TFX's FileBasedExampleGen driver reads `input_base` and the split pattern's {SPAN} (and the RangeConfig), and
    picks the span to ingest.
    """

    PARAMETERS = {
        **EuroSATExampleGenSpec.PARAMETERS,
        standard_component_specs.INPUT_BASE_KEY: ExecutionParameter(type=str),
        standard_component_specs.RANGE_CONFIG_KEY: ExecutionParameter(type=range_config_pb2.RangeConfig,
                                                                      optional=True),
    }


def _source_of(exec_properties: Dict[str, Any]) -> str:
    config = example_gen_pb2.Input()
    from tfx.utils import proto_utils

    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], config)
    return config.splits[0].pattern


def _write_json(path: str, value: Any) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(value, f, indent=1)


def _check_modality(source: str, found: str, wanted: str) -> None:
    if found != wanted:
        raise DataError(
            f"--data {source!r} is {found!r} data ({modalities.get(found).description}) but the pipeline was "
            f"built for {wanted!r}; pass --modality {found} (or --modality auto for a local run)")


# ---------------------------------------------------------------------------------------------
# One PTransform per kind of source: (pipeline, source, exec_properties) -> tf.Examples, and the
# report's listing part (a dict) written to <report dir>/listing.json while the pipeline is built.
# ---------------------------------------------------------------------------------------------
def _synthetic_examples(pipeline, source: str, props: Dict[str, Any]):
    from schema.samples import samples_of

    parsed = data_sources.parse_synthetic(source)
    if parsed is None:  # the dispatch reads a source by its data_sources.source_kind: not reached
        raise DataError(f"--data {source!r} is not a synthetic source (synthetic[/rgb|/all][:N])")
    n, modality = parsed
    _check_modality(source, modality, props[MODALITY_KEY])
    seed = int(props[SEED_KEY])

    def generate(_):
        # One generator, one seeded stream: the same N examples as schema.example_data.synthetic writes.
        for pixels, label, name in samples_of(modality, n, seed):
            yield features.example_of(modality, pixels, label, f"synthetic/{name}")

    examples = (pipeline | "Seed" >> beam.Create([seed]) | "Generate" >> beam.FlatMap(generate)
                | "Spread" >> beam.Reshuffle())
    return examples, {"source": source, "kind": data_sources.SYNTHETIC_KIND, "modality": modality,
                      "files": n, "listed_bad": []}


def _tfds_examples(pipeline, source: str, props: Dict[str, Any]):
    from components import tfds_source

    name = tfds_source.parse_tfds(source)
    modality = data_sources.spec_modality(source)
    if name is None or modality is None:  # the dispatch reads a source by its source_kind: not reached
        raise DataError(f"--data {source!r} is not a TFDS source (tfds:eurosat/rgb or tfds:eurosat/all)")
    _check_modality(source, modality, props[MODALITY_KEY])
    data_dir = props.get(TFDS_DATA_DIR_KEY) or None
    tfds_source.prepare_builder(name, data_dir)  # here, before Beam: offline it says so at once

    def read(_):
        for ex in tfds_source.iter_tfds(name, data_dir):
            yield tfds_source.to_example(ex)

    examples = (pipeline | "Dataset" >> beam.Create([name]) | "ReadTfds" >> beam.FlatMap(read)
                | "Spread" >> beam.Reshuffle())
    return examples, {"source": source, "kind": data_sources.TFDS_KIND, "modality": modality,
                      "files": None, "listed_bad": []}


def _records_examples(pipeline, source: str, props: Dict[str, Any]):
    import tensorflow as tf

    data_sources.check_tfrecords(source)
    modality = features.detect_modality(source)
    _check_modality(source, modality, props[MODALITY_KEY])
    examples = (pipeline | "ReadTFRecords" >> beam.io.ReadFromTFRecord(posixpath.join(source, RECORD_PATTERN))
                | "Parse" >> beam.Map(tf.train.Example.FromString))
    return examples, {"source": source, "kind": "records", "modality": modality, "files": None,
                      "listed_bad": []}


def _image_examples(pipeline, source: str, props: Dict[str, Any], report_dir: str):
    from components import convert
    from components.convert_beam import ConvertImages
    from components.sources import SourceReader

    scan = convert.scan_source(source.rstrip("/"))
    files, empty, modality = scan
    convert.check_usable(source, files)
    _check_modality(source, modality, props[MODALITY_KEY])
    log.info("converting %d files (%s) from %s", len(files), modality, source)
    examples = pipeline | "ConvertImages" >> ConvertImages(files, modality, SourceReader, report_dir)
    return examples, {"source": source, "kind": "images", "modality": modality, "files": len(files),
                      "scan": scan}


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
def SourceToExamples(pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    """The source named by `split_pattern` (components.data_sources) -> contract tf.Examples with ``patch_mean``.

    Each example gets its ``patch_mean`` from schema.features.with_patch_mean. What the report needs is left in
    exec_properties['_listing'] for the executor.
    """
    report_dir = exec_properties["_report_dir"]
    input_base = exec_properties.get(standard_component_specs.INPUT_BASE_KEY)
    if input_base:  # a span root: the driver resolved {SPAN} in the pattern, relative to the root
        split_pattern = posixpath.join(input_base, split_pattern)
        log.info("span %s: %s", exec_properties.get("span"), split_pattern)
    kind = data_sources.source_kind(split_pattern)
    if kind == data_sources.SYNTHETIC_KIND:
        examples, listing = _synthetic_examples(pipeline, split_pattern, exec_properties)
    elif kind == data_sources.TFDS_KIND:
        examples, listing = _tfds_examples(pipeline, split_pattern, exec_properties)
    else:
        from components.convert import holds_class_folders

        if data_sources.holds_tfrecords(split_pattern):
            examples, listing = _records_examples(pipeline, split_pattern, exec_properties)
        elif holds_class_folders(split_pattern):
            examples, listing = _image_examples(pipeline, split_pattern, exec_properties, report_dir)
        else:
            raise DataNotFound(data_sources.not_a_source(split_pattern))
    # Every kind of source gets the per-band patch mean here, once (the drift and skew gates' pixel statistics).
    modality = listing["modality"]
    examples = examples | "PatchMean" >> beam.Map(features.with_patch_mean, modality)
    if listing["kind"] != "images":  # the converted count comes from ConvertImages' report
        _ = (examples | "Count" >> beam.combiners.Count.Globally() | "CountJson" >> beam.Map(json.dumps)
             | "WriteCount" >> beam.io.WriteToText(posixpath.join(report_dir, COUNT_PART), shard_name_template=""))
    exec_properties["_listing"] = listing
    return examples


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Reads any EuroSAT source (SourceToExamples), splits it, and writes the conversion report into the artifact.

    The splits are hash buckets, or the published split lists (--split-files).
    """

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """SourceToExamples: TFX applies it to each input split's pattern, the source itself."""
        return SourceToExamples

    def GenerateExamplesByBeam(self, pipeline, exec_properties: Dict[str, Any]):
        """{split name: tf.Examples}: TFX's hash split, or, given split files, one read routed by the lists.

        With --split-files the source is read once and each example goes to the split whose file lists its source
        (components.splits.route_by_lists, which writes the counts per split into the report folder).
        """
        if not exec_properties.get(SPLIT_FILES_KEY):
            return super().GenerateExamplesByBeam(pipeline, exec_properties)
        from components import splits

        split_of = splits.read_split_lists(splits.parse_split_files(exec_properties[SPLIT_FILES_KEY]))
        exec_properties["_beam_pipeline_args"] = self._beam_pipeline_args or []
        examples = pipeline | "InputToRecord" >> SourceToExamples(exec_properties, _source_of(exec_properties))
        return splits.route_by_lists(examples, split_of, exec_properties["_report_dir"])

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """Write the examples (TFX's BaseExampleGenExecutor), then the conversion report into the Examples artifact.

        The report's summary (SUMMARY_PROPERTIES), the source identity, the span and the report's path become the
        artifact's custom properties, so ML Metadata says which source made it. The report's errors stop the run:
        too many refused files, or, with split files, a split that got no example.
        """
        import tensorflow as tf

        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        exec_properties = dict(exec_properties, _report_dir=posixpath.join(examples.uri, PARTS))
        tf.io.gfile.makedirs(exec_properties["_report_dir"])
        super().Do(input_dict, output_dict, exec_properties)
        report = self._report(exec_properties)
        for key in SUMMARY_PROPERTIES:
            value = report["summary"].get(key)
            if isinstance(value, int):
                examples.set_int_custom_property(key, value)
            elif value is not None:
                examples.set_string_custom_property(key, str(value))
        examples.set_string_custom_property(SOURCE_IDENTITY_KEY, exec_properties[SOURCE_IDENTITY_KEY])
        record_span(examples, exec_properties.get("span"))
        examples.set_string_custom_property("conversion_report", posixpath.join(examples.uri, REPORT_NAME))

    def _report(self, exec_properties: Dict[str, Any]) -> dict:
        """The conversion report, written into the artifact; ConversionError (the run stops) on too many refused files.

        Too many is more than --max-bad-fraction of the files, as the conversion always did.
        """
        import tensorflow as tf

        from components import convert, splits
        from components.convert_beam import read_report_parts

        listing = exec_properties["_listing"]
        report_dir = exec_properties["_report_dir"]
        uri = posixpath.dirname(report_dir)
        split_counts = splits.read_counts(report_dir) if exec_properties.get(SPLIT_FILES_KEY) else None
        if listing["kind"] == "images":
            report = convert.build_report(listing["source"], listing["scan"], read_report_parts(report_dir),
                                          float(exec_properties[MAX_BAD_FRACTION_KEY]))
            report["summary"]["kind"] = "images"
        else:
            with tf.io.gfile.GFile(posixpath.join(report_dir, COUNT_PART)) as f:
                counted = int(json.loads(f.read() or "0"))
            tf.io.gfile.rmtree(report_dir)
            report = {"summary": {"source": listing["source"], "kind": listing["kind"], "modality": listing["modality"],
                                  "files": listing["files"] if listing["files"] is not None else counted,
                                  "examples": counted, "bad": 0, "duplicates": 0, "normalized": 0},
                      "bad": [], "duplicates": [], "normalized": []}
        report["summary"]["source_identity"] = json.loads(exec_properties[SOURCE_IDENTITY_KEY])
        if split_counts is not None:
            report["summary"]["split_files"] = exec_properties[SPLIT_FILES_KEY]
            report["summary"]["split_examples"] = split_counts
        path = posixpath.join(uri, REPORT_NAME)
        if listing["kind"] == "images":
            convert.write_report(report, path)
        else:
            _write_json(path, report)
        if split_counts is not None:
            splits.check_counts(split_counts)
        return report


class EuroSATExampleGen(base_beam_component.BaseBeamComponent):
    """ExampleGen for every EuroSAT source (components.data_sources), converted in the DAG.

    The sources are the archive, a folder of TFRecords, TFDS or synthetic data; the DAG's Beam runner (DirectRunner
    or Dataflow) converts them.
    """

    SPEC_CLASS = EuroSATExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, source: str, modality: str, max_bad_fraction: float, seed: int = 0,
                 tfds_data_dir: str = "", split_files: str = "",
                 output_config: Optional[example_gen_pb2.Output] = None,
                 source_identity: Optional[str] = None):
        source = data_sources.absolute(source)
        if split_files:  # one read of the source, routed by the lists (Executor.GenerateExamplesByBeam)
            from schema.records import SPLIT_NAMES

            input_config = example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name=name, pattern=source) for name in SPLIT_NAMES])
            output_config = example_gen_pb2.Output()
        else:
            input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=source)])
        synthetic = data_sources.source_kind(source) == data_sources.SYNTHETIC_KIND
        seed = seed if synthetic else 0  # the seed makes synthetic data only: no re-run of an archive for it
        tfds_data_dir = tfds_data_dir if data_sources.source_kind(source) == data_sources.TFDS_KIND else ""
        spec = EuroSATExampleGenSpec(
            input_config=input_config,
            output_config=output_config or example_gen_pb2.Output(),
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            source_identity=source_identity or data_sources.source_identity(source, seed, tfds_data_dir, split_files),
            modality=modality,
            max_bad_fraction=float(max_bad_fraction),
            seed=int(seed),
            tfds_data_dir=tfds_data_dir,
            split_files=split_files,
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        super().__init__(spec=spec)


def record_span(examples, span: Optional[int] = None) -> None:
    """Record the span TFX's driver picked also as the Examples' `span` property.

    The span is the driver's custom property, or else `span` from the exec properties (then set as the custom
    property too). StatisticsGen copies the `span` property, not the custom one, to its statistics, and the drift
    gate finds the previous span's statistics by it (components/spans.py).
    """
    if examples.has_custom_property("span"):
        span = examples.get_int_custom_property("span")
    elif span is not None:
        examples.set_int_custom_property("span", int(span))
    if span is not None:
        examples.span = int(span)


class EuroSATSpanExampleGen(FileBasedExampleGen):
    """EuroSAT's ExampleGen over a root of spans (components.spans): it ingests the span TFX's driver picks.

    A FileBasedExampleGen, so TFX's driver (locally FileBasedDriver, on Kubeflow/Vertex the file-based ExampleGen
    driver step) picks the newest span of the pattern (or the one a RangeConfig names) and records it as the
    Examples' `span`; the executor reads that span as EuroSATExampleGen reads a single source.
    """

    SPEC_CLASS = EuroSATSpanExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, source: str, modality: str, max_bad_fraction: float, seed: int = 0,
                 output_config: Optional[example_gen_pb2.Output] = None,
                 range_config: Optional[range_config_pb2.RangeConfig] = None,
                 source_identity: Optional[str] = None):
        from components import spans

        source = data_sources.absolute(source) if spans.SPAN_SPEC not in source else source
        input_base, pattern = spans.span_input(source) or (None, None)
        if input_base is None:
            raise DataError(f"--data {source!r} is not a root of spans (span-N/ folders or a {spans.SPAN_SPEC} "
                            "pattern); pass it as a single source")
        spec = EuroSATSpanExampleGenSpec(
            input_base=input_base,
            input_config=example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=pattern)]),
            output_config=output_config or example_gen_pb2.Output(),
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            # the root's identity: a new span (or any change in one) re-runs the ExampleGen
            source_identity=source_identity or data_sources.source_identity(input_base, 0, "", ""),
            modality=modality,
            max_bad_fraction=float(max_bad_fraction),
            seed=int(seed),
            tfds_data_dir="",
            split_files="",
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


def report_of(examples_uri: str) -> Optional[dict]:
    """The conversion report in an Examples artifact (None for one made before this ExampleGen)."""
    import tensorflow as tf

    path = posixpath.join(examples_uri, REPORT_NAME)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)

