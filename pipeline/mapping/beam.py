"""The same tiling and inference as a Beam pipeline: many scenes on Dataflow, or locally.

    scenes' patch rows ─► ReadPatches (one windowed read per row: scene.read_strip of a raster or
        a Sentinel-2 product, opened by inputs.open_scene as in the local run)
        ─► (side output) each row's pixel statistics, combined per scene (training_check)
        ─► RunInference (SignatureModelHandler: the SavedModel's pixel signature, batched by Beam)
        ─► group by scene (with the scene list, so a scene with nothing to classify is an error)
        ─► WriteMap (outputs.write_outputs: the very files of the local run)

Workers read scenes and the model where they are (gs:// on Dataflow: GDAL and tf.io.gfile read
Cloud Storage) and write each map locally before copying it to the output folder with Beam's
FileSystems, so a gs:// output works too. The runner is the pipeline's own --beam-* settings:
the DirectRunner here, Dataflow with ``--beam-runner dataflow --project --region --image``.
Beam's counters ``tiles_classified`` / ``tiles_masked`` show progress (Dataflow's job page).
"""
from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from pipeline.mapping import inputs as scene_inputs
from pipeline.mapping import scene as scenes
from pipeline.mapping import training_check
from pipeline.mapping.cells import MapAccumulator
from pipeline.mapping.errors import MapError
from pipeline.mapping.folders import COMPLETE, staged
from pipeline.mapping.grid import TileGrid
from pipeline.mapping.options import MapOptions
from pipeline.mapping.outputs import TileTable, write_outputs
from pipeline.mapping.predictors import SavedModelPredictor, export_modality, resolve_model
from schema.locations import is_local

log = logging.getLogger(__name__)
NAMESPACE = "landuse_map"


class SignatureModelHandler(ModelHandler[np.ndarray, np.ndarray, SavedModelPredictor]):
    """RunInference through the exported model's pixel signature (predict_images / predict_bands).

    So the Transform graph decodes and normalises as in serving. Beam batches, loads the model once per worker
    process and reports inference metrics.
    """

    def __init__(self, export_dir: str, max_batch_size: int = 64):
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size)
        self._export_dir = export_dir

    def load_model(self) -> SavedModelPredictor:
        """The SavedModel's predictor, loaded once per worker."""
        return SavedModelPredictor(self._export_dir)

    def run_inference(self, batch: Sequence[np.ndarray], model: SavedModelPredictor,
                      inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
        """Class probabilities of a batch of patches, one PredictionResult each."""
        probabilities = model.predict(np.stack(batch))
        return [PredictionResult(x, p) for x, p in zip(batch, probabilities)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        """The batch's size in bytes (Beam's batching measure)."""
        return sum(x.nbytes for x in batch)

    def get_metrics_namespace(self) -> str:
        """The namespace of the map's Beam metrics."""
        return NAMESPACE


class ReadPatches(beam.DoFn):
    """(scene, patch row) -> ((scene, row, col), pixels) for each patch of the row worth classifying."""

    PIXELS = "pixels"  # the side output: (scene, its row's training_check.SceneStatistics)

    def __init__(self, modality: str, options: MapOptions, training: Optional[dict] = None):
        self.modality, self.options, self.training = modality, options, training
        self.classified = beam.metrics.Metrics.counter(NAMESPACE, "tiles_classified")
        self.masked = beam.metrics.Metrics.counter(NAMESPACE, "tiles_masked")

    def setup(self) -> None:
        """Start the worker with no scene open."""
        self._open: Dict[str, Any] = {}  # path -> its open raster (rasterio dataset or ProductRaster)

    def process(self, element: Tuple[str, int]):
        """The patches of one strip of a scene worth classifying, and the strip's statistics on the side."""
        path, row = element
        if path not in self._open:
            self._open[path] = scene_inputs.open_scene(path, self.modality, self.options)
        dataset = self._open[path]
        grid = TileGrid(dataset.height, dataset.width, self.options.stride)
        strip = scenes.read_strip(dataset, grid, row, self.modality, self.options.dn_range,
                                  self.options.max_nodata_fraction)
        self.masked.inc(strip.masked)
        self.classified.inc(len(strip.cols))
        pixels = training_check.SceneStatistics.for_training(self.training, strip.pixels.shape[-1])
        pixels.add(strip.pixels, strip.nonfinite)
        yield beam.pvalue.TaggedOutput(self.PIXELS, (path, pixels))
        for col, pixels in zip(strip.cols, strip.pixels):
            yield (path, row, int(col)), pixels

    def teardown(self) -> None:
        """Close the scenes this worker opened."""
        for dataset in self._open.values():
            dataset.close()


class WriteMap(beam.DoFn):
    """A scene's tiles, grouped -> the scene's map files.

    (scene, {'scene': [..], 'tiles': [(row, col, probabilities), ...], 'pixels': [SceneStatistics]}) -> the scene's
    map files.
    """

    def __init__(self, output_dirs: Dict[str, str], modality: str, model: str, version: str, options: MapOptions,
                 training: Optional[dict] = None, no_statistics_reason: str = ""):
        self.output_dirs, self.modality, self.model, self.version, self.options = (
            output_dirs, modality, model, version, options)
        self.training, self.no_statistics_reason = training, no_statistics_reason

    def process(self, element):
        """Write one scene's map files from its classified tiles; MapError when none was classified."""
        path, grouped = element
        tiles = list(grouped["tiles"])
        if not tiles:
            raise MapError(f"{path!r} has no patch without nodata: nothing to classify")
        with scene_inputs.open_scene(path, self.modality, self.options) as dataset, \
                tempfile.TemporaryDirectory() as local:
            scene = scenes.describe(dataset, self.modality)
            grid = TileGrid(scene.height, scene.width, self.options.stride)
            rows = np.array([t[0] for t in tiles])
            cols = np.array([t[1] for t in tiles])
            probabilities = np.stack([t[2] for t in tiles])
            accumulator = MapAccumulator(grid)
            accumulator.add(rows, cols, probabilities)
            table = TileTable(os.path.join(local, "tiles.csv"), grid, scene.transform)
            order = np.lexsort((cols, rows))
            table.add(rows[order], cols[order], probabilities[order])
            table.close()
            pixels = training_check.merge_all(grouped["pixels"]) or training_check.SceneStatistics(scene.bands)
            check = training_check.summary(pixels, self.training, self.no_statistics_reason, self.modality,
                                           self.options.dn_range)
            stats = {"runner": "beam", **check, **scene_inputs.product_summary(dataset, self.options)}
            write_outputs(local, dataset, scene, grid, accumulator, self.modality, self.model,
                          self.version, self.options, stats)
            copy_folder(local, self.output_dirs[path])
        yield self.output_dirs[path]


def copy_folder(local_dir: str, destination: str) -> None:
    """Copy a local folder's files to `destination` (a local or gs:// folder) with Beam's FileSystems.

    A local one at once (folders.staged), a gs:// one with summary.json last.
    """
    from apache_beam.io.filesystems import FileSystems

    if is_local(destination):
        with staged(destination) as staging:
            for name in os.listdir(local_dir):
                shutil.copyfile(os.path.join(local_dir, name), os.path.join(staging, name))
        return
    for name in sorted(os.listdir(local_dir), key=lambda n: (n == COMPLETE, n)):
        target = posixpath.join(destination, name)
        with open(os.path.join(local_dir, name), "rb") as src, FileSystems.create(target) as dst:
            dst.write(src.read())


def output_dirs(inputs: Sequence[str], output_dir: str) -> Dict[str, str]:
    """One scene: its map goes into output_dir; several: into output_dir/<scene name>/ each."""
    if len(inputs) == 1:
        return {inputs[0]: output_dir}
    names = [os.path.splitext(os.path.basename(p))[0] for p in inputs]
    if len(set(names)) != len(names):
        raise MapError("several --input scenes share a file name; their maps would overwrite each other: rename them")
    join = os.path.join if is_local(output_dir) else posixpath.join
    return {p: join(output_dir, n) for p, n in zip(inputs, names)}


def run_beam_maps(inputs: Sequence[str], model_path: str, output_dir: str, beam_args: List[str],
                  options: MapOptions = MapOptions(), training_statistics_file: Optional[str] = None) -> Dict[str, str]:
    """Map every scene of `inputs` with a Beam pipeline; returns {scene: its map folder}."""
    from apache_beam.options.pipeline_options import PipelineOptions

    export_dir, version = resolve_model(model_path)
    modality = export_modality(export_dir)
    training, no_statistics = training_check.statistics_of_model(export_dir)
    if training_statistics_file:
        training = training_check.statistics_file(training_statistics_file)
    work: List[Tuple[str, int]] = []
    for path in inputs:  # check every scene before any worker starts
        with scene_inputs.open_scene(path, modality, options) as dataset:  # a folder/zip of patches is refused
            scene = scenes.describe(dataset, modality)
        work.extend((path, row) for row in range(scenes.grid_for(scene, options.stride).rows))
    destinations = output_dirs(inputs, output_dir)
    handler = KeyedModelHandler(SignatureModelHandler(export_dir, options.batch_size))
    log.info("Beam map of %d scene(s), %d patch rows, model %s version %s, args %s", len(inputs), len(work),
             export_dir, version, " ".join(beam_args))
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        listed = p | "Scenes" >> beam.Create([(path, None) for path in inputs])
        read = (
            p
            | "PatchRows" >> beam.Create(work)
            | "Spread" >> beam.Reshuffle()
            | "ReadPatches" >> beam.ParDo(ReadPatches(modality, options, training)).with_outputs(
                ReadPatches.PIXELS, main="patches")
        )
        pixels = read[ReadPatches.PIXELS] | "PixelStatistics" >> beam.CombinePerKey(training_check.merge_all)
        tiles = (
            read.patches
            | "Classify" >> RunInference(handler)
            | "ByScene" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[0][2], kv[1].inference)))
        )
        _ = (
            {"scene": listed, "tiles": tiles, "pixels": pixels}
            | "Group" >> beam.CoGroupByKey()
            | "WriteMap" >> beam.ParDo(WriteMap(destinations, modality, export_dir, version, options, training,
                                                no_statistics))
        )
    return destinations
