"""The local run: a scene and a predictor in, the map's files out.

``map_scene`` reads the scene strip by strip (``scene``), regroups the patches into batches, reads
and encodes the next batch while the model runs on this one (``prefetch``), adds the probabilities
to the map's cells (``cells``), logs progress, and writes the outputs (``outputs``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from pipeline.mapping import folders, training_check
from pipeline.mapping import inputs as scene_inputs
from pipeline.mapping import scene as scenes
from pipeline.mapping.cells import MapAccumulator
from pipeline.mapping.errors import MapError
from pipeline.mapping.options import MapOptions
from pipeline.mapping.outputs import TileTable, write_outputs
from schema.modalities import IMAGE_SIZE

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Batch:
    """Patches to classify together: their grid rows, columns and pixels [n, 64, 64, C]."""

    rows: np.ndarray
    cols: np.ndarray
    pixels: np.ndarray


def batches(strips: Iterable[scenes.Strip], batch_size: int, on_masked=lambda n: None) -> Iterator[Batch]:
    """Patches of consecutive strips regrouped into batches of `batch_size` (the last one smaller)."""
    rows, cols, pixels, held = [], [], [], 0
    for strip in strips:
        if strip.masked:
            on_masked(strip.masked)
        if not len(strip.cols):
            continue
        rows.append(np.full(len(strip.cols), strip.row))
        cols.append(strip.cols)
        pixels.append(strip.pixels)
        held += len(strip.cols)
        while held >= batch_size:
            r, c, p = (np.concatenate(x) for x in (rows, cols, pixels))
            yield Batch(r[:batch_size], c[:batch_size], p[:batch_size])
            rows, cols, pixels, held = [r[batch_size:]], [c[batch_size:]], [p[batch_size:]], held - batch_size
    if held:
        yield Batch(*(np.concatenate(x) for x in (rows, cols, pixels)))


class Progress:
    """Logs done/total tiles, tiles per second and time left every `every_s` seconds."""

    def __init__(self, total: int, label: str, every_s: float = 5.0, clock=time.monotonic):
        self.total, self.label, self.every_s, self.clock = total, label, every_s, clock
        self.done = 0
        self.started = self.last = clock()

    def add(self, n: int) -> None:
        """Count `n` more tiles done; logs the line every `every_s` seconds and at the end."""
        self.done += n
        now = self.clock()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            log.info("%s", self.line(now))

    def rate(self, now: Optional[float] = None) -> float:
        """Tiles per second since the start."""
        elapsed = (now if now is not None else self.clock()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> str:
        """The progress line: done/total, percentage, rate and seconds left."""
        rate = self.rate(now)
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (f"{self.label}: {self.done}/{self.total} tiles ({100.0 * self.done / max(self.total, 1):.0f} %), "
                f"{rate:.1f} tiles/s, {left:.0f} s left")


# GDAL's block cache defaults to 5 % of the RAM and would fill with every block read; the map reads
# each block once or a few times in a row, so a small cache holds what it re-reads.
GDAL_CACHE_MB = 128


def rasterio_env():
    """A rasterio environment with GDAL's block cache held to GDAL_CACHE_MB."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Items of `items` produced in a background thread, `depth` ahead.

    The next batch is read and encoded while the model runs on this one (both release the GIL). Errors re-raise
    here.
    """
    import queue
    import threading

    q: "queue.Queue" = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as err:  # handed to the consumer
            q.put(err)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


def map_scene(scene_path: str, predictor, output_dir: str, options: MapOptions = MapOptions(),
              check: Optional[Callable] = None, finish: Optional[Callable[[str], None]] = None) -> dict:
    """Classify every patch of a scene with `predictor` and write the outputs; returns the summary.

    A folder/zip of georeferenced patches is mosaicked first. The files are written into a folder beside output_dir and
    replace its map only when all are (folders.staged): a map that fails or is interrupted leaves output_dir as it was.
    ``check(dataset, grid)`` runs before any inference (--compare's grid check); ``finish(folder)`` adds files to the
    finished map before it is moved in (--compare's change files).
    """
    started = time.monotonic()
    with folders.staged(output_dir) as staging:
        with rasterio_env(), scene_inputs.open_scene(scene_path, predictor.modality, options, staging) as dataset:
            scene = scenes.describe(dataset, predictor.modality)
            if os.path.dirname(os.path.abspath(scene.path)) == os.path.abspath(staging):  # the mosaic we made
                scene = dataclasses.replace(scene, path=os.path.join(output_dir, os.path.basename(scene.path)))
            grid = scenes.grid_for(scene, options.stride)
            if check is not None:
                check(dataset, grid)
            summary = map_dataset(dataset, scene, grid, predictor, staging, options, started)
        if finish is not None:
            finish(staging)
    log.info("map of %s written to %s: %d tiles classified, %d masked, %.1f tiles/s, %.1f s", scene.path, output_dir,
             summary["tiles_classified"], summary["tiles_masked"], summary["tiles_per_s"] or 0,
             summary["wall_time_s"])
    return summary


def map_dataset(dataset, scene: scenes.Scene, grid, predictor, output_dir: str, options: MapOptions,
                started: float) -> dict:
    """The inference and the files of map_scene, into output_dir."""
    product = scene_inputs.product_summary(dataset, options)
    for warning in product.get("product", {}).get("warnings", []):
        log.warning("%s: %s", scene.path, warning)
    log.info("mapping %s (%dx%d px, %d bands) with model %s version %s: %d tiles of %d px, stride %d",
             scene.path, scene.width, scene.height, scene.bands, predictor.model, predictor.version,
             grid.patches, IMAGE_SIZE, grid.stride)
    accumulator = MapAccumulator(grid)
    progress = Progress(grid.patches, os.path.basename(scene.path))
    table = TileTable(os.path.join(output_dir, "tiles.csv"), grid, scene.transform)
    training = getattr(predictor, "training_statistics", None)
    pixels = training_check.SceneStatistics.for_training(training, scene.bands)
    try:
        strips = pixels.observe(scenes.iter_strips(dataset, grid, predictor.modality, dn_range=options.dn_range,
                                                   max_nodata_fraction=options.max_nodata_fraction))
        encoded = ((b, predictor.encode(b.pixels)) for b in batches(strips, options.batch_size, progress.add))
        for batch, inputs in prefetch(encoded):
            probabilities = predictor.run(inputs)
            accumulator.add(batch.rows, batch.cols, probabilities)
            table.add(batch.rows, batch.cols, probabilities)
            progress.add(len(batch.rows))
    finally:
        table.close()
    if accumulator.classified == 0:
        raise MapError(f"{scene.path!r} has no patch without nodata (nodata value, mask or all-zero "
                       "pixels): nothing to classify; check the scene, or raise --max-nodata-fraction")
    elapsed = time.monotonic() - started
    stats = {"wall_time_s": round(elapsed, 2),
             "tiles_per_s": round(accumulator.classified / elapsed, 1) if elapsed > 0 else None,
             **training_check.summary(pixels, training, getattr(predictor, "no_statistics_reason", ""),
                                      predictor.modality, options.dn_range), **product}
    return write_outputs(output_dir, dataset, scene, grid, accumulator, predictor.modality,
                         predictor.model, predictor.version, options, stats)
