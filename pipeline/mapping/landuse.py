"""Patches' probabilities -> a land-use map of the scene, and the files a user opens.

Outputs of one scene (``write_outputs``; the local run and the Beam pipeline both call it):

- ``landuse.tif``: uint8 class ids (EuroSAT's order), nodata 255, the scene's CRS and its transform
  scaled to the map cells (stride x stride pixels), a colour table with the fixed class colours;
- ``confidence.tif``: float32, the top (averaged) probability of each cell, nodata 0;
- ``landuse.png``: the true-colour scene beside the map, with a legend (hectares per class);
- ``tiles.csv``: one line per classified patch: row, col, x, y (map coordinates of its centre),
  class_id, class_name, probability;
- ``summary.json``: hectares per class (from the cell size; projected CRSs only), the model and
  its version, tile counts and timing.

Memory: the map is kept as float32 probability sums per cell (44 bytes a cell): 1.3 MB for a full
Sentinel-2 tile at stride 64. The scene itself is only ever read one strip at a time.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from typing import Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from pipeline.mapping import scene as scenes
from pipeline.mapping.scene import EUROSAT_DN_RANGE, MapError, TileGrid
from schema import features

log = logging.getLogger(__name__)

NODATA_CLASS = 255
NODATA_CONFIDENCE = 0.0  # a top probability is at least 0.1, so 0 cannot be a real value
# One fixed colour per class (RGB), in features.CLASS_NAMES order: maps of different dates and
# scenes read the same.
CLASS_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (255, 211, 0),  # AnnualCrop: gold
    (0, 100, 0),  # Forest: dark green
    (154, 205, 50),  # HerbaceousVegetation: yellow-green
    (80, 80, 80),  # Highway: dark grey
    (204, 77, 242),  # Industrial: purple
    (240, 150, 60),  # Pasture: orange
    (150, 80, 30),  # PermanentCrop: brown
    (230, 0, 0),  # Residential: red
    (0, 170, 255),  # River: light blue
    (0, 40, 160),  # SeaLake: dark blue
)
assert len(CLASS_COLOURS) == features.NUM_CLASSES
FILES = ("landuse.tif", "confidence.tif", "landuse.png", "tiles.csv", "summary.json")


@dataclasses.dataclass(frozen=True)
class MapOptions:
    stride: int = scenes.PATCH  # pixels between patch starts; < 64 overlaps and averages
    batch_size: int = 64  # patches per model call / request
    dn_range: Tuple[float, float] = EUROSAT_DN_RANGE  # RGB digital numbers mapped to 1..255
    max_nodata_fraction: float = 0.0  # patches with more nodata pixels are not classified
    preview_size: int = 1024  # longest side of the true-colour picture in landuse.png

    def __post_init__(self) -> None:
        scenes.check_stride(self.stride)
        if self.batch_size < 1:
            raise MapError(f"--batch-size {self.batch_size}: give 1 or more")
        if not self.dn_range[1] > self.dn_range[0]:
            raise MapError(f"--dn-range {self.dn_range[0]:g},{self.dn_range[1]:g}: the high end must be above "
                           "the low end")
        if not 0.0 <= self.max_nodata_fraction < 1.0:
            raise MapError(f"--max-nodata-fraction {self.max_nodata_fraction}: give a fraction in [0, 1)")


class MapAccumulator:
    """Sums of the probabilities of the patches covering each map cell; averages on demand."""

    def __init__(self, grid: TileGrid):
        self.grid = grid
        self.sums = np.zeros((grid.cell_rows, grid.cell_cols, features.NUM_CLASSES), np.float32)
        self.counts = np.zeros((grid.cell_rows, grid.cell_cols), np.uint16)
        self.classified = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, probabilities: np.ndarray) -> None:
        """Add patches (rows[i], cols[i]) to the cells each covers."""
        k = self.grid.cells_per_patch
        for dr in range(k):
            for dc in range(k):
                np.add.at(self.sums, (rows + dr, cols + dc), probabilities)
                np.add.at(self.counts, (rows + dr, cols + dc), 1)
        self.classified += len(rows)

    def result(self) -> Tuple[np.ndarray, np.ndarray]:
        """(uint8 class ids with NODATA_CLASS, float32 confidence with NODATA_CONFIDENCE)."""
        mapped = self.counts > 0
        mean = self.sums / np.maximum(self.counts, 1)[..., None]
        classes = np.where(mapped, mean.argmax(-1), NODATA_CLASS).astype(np.uint8)
        confidence = np.where(mapped, mean.max(-1), NODATA_CONFIDENCE).astype(np.float32)
        return classes, confidence


@dataclasses.dataclass
class Batch:
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
        self.done += n
        now = self.clock()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            log.info("%s", self.line(now))

    def rate(self, now: Optional[float] = None) -> float:
        elapsed = (now if now is not None else self.clock()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> str:
        rate = self.rate(now)
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (f"{self.label}: {self.done}/{self.total} tiles ({100.0 * self.done / max(self.total, 1):.0f} %), "
                f"{rate:.1f} tiles/s, {left:.0f} s left")


class TileTable:
    """tiles.csv, written as predictions arrive."""

    HEADER = ("row", "col", "x", "y", "class_id", "class_name", "probability")

    def __init__(self, path: str, grid: TileGrid, transform):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.HEADER)
        self.grid, self.transform = grid, transform

    def add(self, rows: np.ndarray, cols: np.ndarray, probabilities: np.ndarray) -> None:
        ids = probabilities.argmax(-1)
        for r, c, i, p in zip(rows, cols, ids, probabilities):
            x, y = self.grid.patch_centre(self.transform, int(r), int(c))
            self._writer.writerow((int(r), int(c), f"{x:.3f}", f"{y:.3f}", int(i), features.CLASS_NAMES[i],
                                   f"{p[i]:.4f}"))

    def close(self) -> None:
        self._file.close()


def cell_area_ha(crs_wkt: Optional[str], cell_transform) -> Optional[float]:
    """The area of one map cell in hectares; None when the CRS is not projected (degrees) or absent."""
    if not crs_wkt:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_wkt(crs_wkt)
    if not crs.is_projected:
        return None
    _, metres = crs.linear_units_factor
    area = abs(cell_transform.a * cell_transform.e - cell_transform.b * cell_transform.d) * metres ** 2
    return area / 10_000.0


def crs_name(crs_wkt: Optional[str]) -> Optional[str]:
    """'EPSG:32632' when the CRS has an EPSG code, else its WKT."""
    if not crs_wkt:
        return None
    from rasterio.crs import CRS

    crs = CRS.from_wkt(crs_wkt)
    return crs.to_string() if crs.to_epsg() else crs_wkt


def area_by_class(classes: np.ndarray, cell_ha: Optional[float]) -> Dict[str, Optional[float]]:
    counts = np.bincount(classes[classes != NODATA_CLASS].ravel(), minlength=features.NUM_CLASSES)
    return {name: (round(float(n) * cell_ha, 2) if cell_ha is not None else None)
            for name, n in zip(features.CLASS_NAMES, counts)}


def colour_table() -> Dict[int, Tuple[int, int, int, int]]:
    table = {i: (*c, 255) for i, c in enumerate(CLASS_COLOURS)}
    table[NODATA_CLASS] = (0, 0, 0, 0)
    return table


def colourise(classes: np.ndarray, nodata_colour=(255, 255, 255)) -> np.ndarray:
    """uint8 RGB picture of a class map."""
    palette = np.array([*CLASS_COLOURS] + [nodata_colour] * (256 - len(CLASS_COLOURS)), np.uint8)
    return palette[classes]


def write_geotiff(path: str, values: np.ndarray, crs_wkt: Optional[str], transform, nodata,
                  colours: Optional[dict] = None, tags: Optional[dict] = None) -> None:
    import rasterio

    profile = dict(driver="GTiff", width=values.shape[1], height=values.shape[0], count=1, dtype=values.dtype.name,
                   crs=crs_wkt, transform=transform, nodata=nodata, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        if colours:
            dst.write_colormap(1, colours)
        if tags:
            dst.update_tags(**tags)


def legend_handles(areas: Dict[str, Optional[float]]):
    from matplotlib.patches import Patch

    handles = []
    for name, colour in zip(features.CLASS_NAMES, CLASS_COLOURS):
        ha = areas.get(name)
        label = f"{name} ({ha:,.0f} ha)" if ha is not None else name
        handles.append(Patch(facecolor=np.array(colour) / 255.0, edgecolor="black", linewidth=0.3, label=label))
    handles.append(Patch(facecolor="white", edgecolor="black", linewidth=0.3, label="not classified"))
    return handles


def write_png(path: str, preview: np.ndarray, classes: np.ndarray, areas: Dict[str, Optional[float]],
              title: str, scene_extent=None, map_extent=None) -> None:
    """True colour (left) beside the map (right), on the same extent in pixels of the scene (the map
    leaves out the edge remainder), legend with hectares per class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), gridspec_kw={"wspace": 0.05})
    axes[0].imshow(preview, interpolation="bilinear", extent=scene_extent)
    axes[0].set_title("true colour")
    axes[1].imshow(colourise(classes), interpolation="nearest", extent=map_extent)
    axes[1].set_title("land use")
    for ax in axes:
        if scene_extent is not None:
            ax.set_xlim(scene_extent[0], scene_extent[1])
            ax.set_ylim(scene_extent[2], scene_extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(handles=legend_handles(areas), loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.78, top=0.9, bottom=0.02)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(output_dir: str, dataset, scene: scenes.Scene, grid: TileGrid, accumulator: MapAccumulator,
                  modality: str, model: str, version: str, options: MapOptions, stats: dict) -> dict:
    """landuse.tif, confidence.tif, landuse.png and summary.json of a finished map; returns the summary."""
    classes, confidence = accumulator.result()
    transform = grid.cell_transform(scene.transform)
    cell_ha = cell_area_ha(scene.crs, transform)
    areas = area_by_class(classes, cell_ha)
    tags = {f"CLASS_{i}": name for i, name in enumerate(features.CLASS_NAMES)}
    tags.update(MODEL=model, MODEL_VERSION=version, STRIDE=str(grid.stride))
    write_geotiff(os.path.join(output_dir, "landuse.tif"), classes, scene.crs, transform, NODATA_CLASS,
                  colour_table(), tags)
    write_geotiff(os.path.join(output_dir, "confidence.tif"), confidence, scene.crs, transform, NODATA_CONFIDENCE)
    preview = scenes.true_colour_preview(dataset, modality, options.preview_size, options.dn_range)
    write_png(os.path.join(output_dir, "landuse.png"), preview, classes, areas,
              f"{os.path.basename(scene.path)}: model version {version}, {accumulator.classified} tiles",
              scene_extent=(0, scene.width, scene.height, 0),
              map_extent=(0, grid.cell_cols * grid.stride, grid.cell_rows * grid.stride, 0))
    mapped = int((classes != NODATA_CLASS).sum())
    summary = {
        "scene": scene.path,
        "size_px": [scene.width, scene.height],
        "crs": crs_name(scene.crs),
        "modality": modality,
        "model": model,
        "model_version": version,
        "stride_px": grid.stride,
        "grid": {"patch_rows": grid.rows, "patch_cols": grid.cols, "cell_rows": grid.cell_rows,
                 "cell_cols": grid.cell_cols},
        "tiles": grid.patches,
        "tiles_classified": accumulator.classified,
        "tiles_masked": grid.patches - accumulator.classified,
        "cells_mapped": mapped,
        "cell_area_ha": cell_ha,
        "area_ha": areas,
        "area_ha_total": round(mapped * cell_ha, 2) if cell_ha is not None else None,
        "area_note": None if cell_ha is not None else
        "no hectares: the scene's CRS is not projected (or missing); reproject it to UTM first",
        **({"dn_range": list(options.dn_range)} if modality == features.RGB else {}),
        **stats,
    }
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


# GDAL's block cache defaults to 5 % of the RAM and would fill with every block read; the map reads
# each block once or a few times in a row, so a small cache holds what it re-reads.
GDAL_CACHE_MB = 128


def rasterio_env():
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Items of `items` produced in a background thread, `depth` ahead: the next batch is read and
    encoded while the model runs on this one (both release the GIL). Errors re-raise here."""
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


def map_scene(scene_path: str, predictor, output_dir: str, options: MapOptions = MapOptions()) -> dict:
    """Classify every patch of a scene (or of a folder/zip of georeferenced patches, mosaicked into
    output_dir first) with `predictor` and write the outputs; returns the summary."""
    started = time.monotonic()
    scene_path = scenes.scene_path(scene_path, output_dir)
    with rasterio_env(), scenes.open_raster(scene_path) as dataset:
        scene = scenes.describe(dataset, predictor.modality)
        grid = scenes.grid_for(scene, options.stride)
        os.makedirs(output_dir, exist_ok=True)
        log.info("mapping %s (%dx%d px, %d bands) with model %s version %s: %d tiles of %d px, stride %d",
                 scene_path, scene.width, scene.height, scene.bands, predictor.model, predictor.version,
                 grid.patches, scenes.PATCH, grid.stride)
        accumulator = MapAccumulator(grid)
        progress = Progress(grid.patches, os.path.basename(scene_path))
        table = TileTable(os.path.join(output_dir, "tiles.csv"), grid, scene.transform)
        try:
            strips = scenes.iter_strips(dataset, grid, predictor.modality, dn_range=options.dn_range,
                                        max_nodata_fraction=options.max_nodata_fraction)
            encoded = ((b, predictor.encode(b.pixels)) for b in batches(strips, options.batch_size, progress.add))
            for batch, inputs in prefetch(encoded):
                probabilities = predictor.run(inputs)
                accumulator.add(batch.rows, batch.cols, probabilities)
                table.add(batch.rows, batch.cols, probabilities)
                progress.add(len(batch.rows))
        finally:
            table.close()
        if accumulator.classified == 0:
            raise MapError(f"{scene_path!r} has no patch without nodata (nodata value, mask or all-zero "
                           "pixels): nothing to classify; check the scene, or raise --max-nodata-fraction")
        elapsed = time.monotonic() - started
        stats = {"wall_time_s": round(elapsed, 2),
                 "tiles_per_s": round(accumulator.classified / elapsed, 1) if elapsed > 0 else None}
        summary = write_outputs(output_dir, dataset, scene, grid, accumulator, predictor.modality,
                                predictor.model, predictor.version, options, stats)
    log.info("map of %s written to %s: %d tiles classified, %d masked, %.1f tiles/s, %.1f s", scene_path,
             output_dir, summary["tiles_classified"], summary["tiles_masked"], stats["tiles_per_s"] or 0, elapsed)
    return summary
