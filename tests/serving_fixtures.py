"""An exported serving model without the TFX pipeline, for the serving tests and the benchmark.

Runs Transform's analysis (tft_beam) on a few synthetic examples, builds a tiny untrained model
and exports it with serving.export.export_serving_model into
``<base>/serving/eurosat/<version>/`` exactly as the Trainer + Pusher lay it out.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile

import tensorflow as tf
import tensorflow_transform as tft

from schema import features, modalities, samples

MODEL_NAME = "eurosat"
FIRST_VERSION = 1


def raw_rows(count: int, seed: int = 11, modality: str = features.RGB) -> list[dict]:
    """Raw examples as the dicts TFT's in-memory Beam input takes."""
    encoded = modalities.get(modality).encoded
    rows = ((p if encoded else p.astype("int64"), label, s) for p, label, s in samples.samples_of(modality, count, seed))
    return [
        {
            features.input_key(modality): pixels,
            features.LABEL_KEY: label,
            features.CLASS_NAME_KEY: features.class_name(label),
            features.SOURCE_KEY: source,
            features.PATCH_MEAN_KEY: features.patch_mean(modality, pixels),  # as the ExampleGen adds it
        }
        for pixels, label, source in rows
    ]


# The analysis of the same four rows writes the same graph every time: each built-in modality is
# analysed once per process (a Beam pipeline: seconds) and copied after that. Other modalities (a
# test's registered one) are analysed every time.
_ANALYSED: dict[str, str] = {}


def write_transform_output(output_dir: str, modality: str = features.RGB) -> tft.TFTransformOutput:
    """Analyse a few synthetic examples with preprocessing_fn; TFTransformOutput layout."""
    cached = _ANALYSED.get(modality)
    if cached and os.path.isdir(cached):
        shutil.copytree(cached, output_dir, dirs_exist_ok=True)
        return tft.TFTransformOutput(output_dir)
    _analyse(output_dir, modality)
    if modality in (features.RGB, features.ALL_BANDS):
        keep = tempfile.mkdtemp(prefix=f"transform-{modality}-")
        atexit.register(shutil.rmtree, keep, True)
        _ANALYSED[modality] = os.path.join(keep, "transform_output")
        shutil.copytree(output_dir, _ANALYSED[modality])
    return tft.TFTransformOutput(output_dir)


def _analyse(output_dir: str, modality: str) -> None:
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from components.transform import preprocessing_fn

    # the raw examples as the pipeline's Transform sees them: with the ExampleGen's patch_mean, which
    # no signature may then require (requests do not carry it)
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(features.raw_feature_spec(modality, with_patch_mean=True))
    )
    with tempfile.TemporaryDirectory() as temp_dir, tft_beam.Context(temp_dir=temp_dir):
        transform_fn = (raw_rows(4, modality=modality), metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    # The raw schema too: the transform_features signature parses with it (as Transform writes it).
    metadata_io.write_metadata(metadata, os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))


HEAD_SCALE = 200.0


def tiny_model(channels: int = features.RGB_CHANNELS) -> tf.keras.Model:
    """The project's model, untrained and without augmentation (deterministic outputs).

    Its head is scaled up so different images get clearly different probabilities: an
    untrained model answers ~0.1 for everything, and a skew test could not fail on that.
    """
    from components.hparams import HParams
    from components.model import build_model

    tf.keras.utils.set_random_seed(1)
    model = build_model(HParams(weights="none", augment=False), channels)
    head = model.get_layer("probabilities")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * HEAD_SCALE, bias])
    return model


@dataclasses.dataclass
class ExportedModel:
    model: tf.keras.Model  # the in-memory Keras model that was exported
    tft_output: tft.TFTransformOutput
    export_dir: str  # <base>/serving/eurosat/<version>

    @property
    def model_base_path(self) -> str:
        return os.path.dirname(self.export_dir)


def feature_statistics(modality: str = features.RGB):
    """A small DatasetFeatureStatisticsList, as StatisticsGen gives the Trainer (the export copies it)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = statistics.datasets.add(name="train", num_examples=4)
    dataset.features.add(name=features.PATCH_MEAN_KEY).num_stats.mean = 100.0
    return statistics


def export_model(base_dir: str, version: int = FIRST_VERSION, modality: str = features.RGB) -> ExportedModel:
    """Export a model version under <base_dir>/serving/eurosat/<version>/ as the Trainer does."""
    from serving.export import export_serving_model

    tft_output = write_transform_output(os.path.join(base_dir, "transform_output"), modality)
    export_dir = os.path.join(base_dir, "serving", MODEL_NAME, str(version))
    model = tiny_model(features.channels(modality))
    export_serving_model(model, tft_output, export_dir, feature_statistics=feature_statistics(modality))
    return ExportedModel(model, tft_output, export_dir)


def model_server(**settings):
    """An in-process serving.server (not started yet) on a free gRPC port serving MODEL_NAME, built
    from serving.settings.ServerSettings as the command line builds it."""
    from serving.server import server_from_settings
    from serving.settings import ServerSettings

    return server_from_settings(ServerSettings(**{"model_name": MODEL_NAME, "port": 0, **settings}))
