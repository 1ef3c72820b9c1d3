"""A finished map -> the files a user opens, written by the local run and the Beam pipeline alike.

Outputs of one scene (``write_outputs``, and ``TileTable`` as predictions arrive):

- ``landuse.tif``: uint8 class ids (EuroSAT's order), nodata 255, the scene's CRS and its transform
  scaled to the map cells (stride x stride pixels), a colour table with the fixed class colours;
- ``confidence.tif``: float32, the top (averaged) probability of each cell, nodata 0;
- ``landuse.png``: the true-colour scene beside the map, with a legend (hectares per class);
- ``tiles.csv``: one line per classified patch: row, col, x, y (map coordinates of its centre),
  class_id, class_name, probability;
- ``summary.json``: hectares per class (from the cell size; projected CRSs only), the model and
  its version, tile counts and timing.


They are written into a staging folder that ``folders.staged`` moves into ``--output`` when whole.
"""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from typing import Dict, Optional, Tuple

import numpy as np

from pipeline.mapping import scene as scenes
from pipeline.mapping.cells import NODATA_CLASS, NODATA_CONFIDENCE, MapAccumulator
from pipeline.mapping.grid import TileGrid
from pipeline.mapping.options import MapOptions
from pipeline.mapping.pixels import scaled_to_8_bits
from schema import features

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


class TileTable:
    """tiles.csv, written as predictions arrive."""

    HEADER = ("row", "col", "x", "y", "class_id", "class_name", "probability")

    def __init__(self, path: str, grid: TileGrid, transform):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.HEADER)
        self.grid, self.transform = grid, transform

    def add(self, rows: np.ndarray, cols: np.ndarray, probabilities: np.ndarray) -> None:
        """Write one row per patch: grid position, centre coordinates, class and its probability."""
        ids = probabilities.argmax(-1)
        for r, c, i, p in zip(rows, cols, ids, probabilities):
            x, y = self.grid.patch_centre(self.transform, int(r), int(c))
            self._writer.writerow((int(r), int(c), f"{x:.3f}", f"{y:.3f}", int(i), features.CLASS_NAMES[i],
                                   f"{p[i]:.4f}"))

    def close(self) -> None:
        """Close tiles.csv."""
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
    """Hectares of each class in a class map (None per class when the cell area is unknown)."""
    counts = np.bincount(classes[classes != NODATA_CLASS].ravel(), minlength=features.NUM_CLASSES)
    return {name: (round(float(n) * cell_ha, 2) if cell_ha is not None else None)
            for name, n in zip(features.CLASS_NAMES, counts)}


def colour_table() -> Dict[int, Tuple[int, int, int, int]]:
    """The GeoTIFF colour map of the classes, nodata transparent."""
    table = {i: (*c, 255) for i, c in enumerate(CLASS_COLOURS)}
    table[NODATA_CLASS] = (0, 0, 0, 0)
    return table


def colourise(classes: np.ndarray, nodata_colour=(255, 255, 255)) -> np.ndarray:
    """uint8 RGB picture of a class map."""
    palette = np.array([*CLASS_COLOURS] + [nodata_colour] * (256 - len(CLASS_COLOURS)), np.uint8)
    return palette[classes]


def write_geotiff(path: str, values: np.ndarray, crs_wkt: Optional[str], transform, nodata,
                  colours: Optional[dict] = None, tags: Optional[dict] = None) -> None:
    """Write a one-band GeoTIFF; OSError ENOSPC when the disk is full."""
    import rasterio
    from rasterio.errors import RasterioIOError

    profile = dict(driver="GTiff", width=values.shape[1], height=values.shape[0], count=1, dtype=values.dtype.name,
                   crs=crs_wkt, transform=transform, nodata=nodata, compress="deflate")
    try:
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values, 1)
            if colours:
                dst.write_colormap(1, colours)
            if tags:
                dst.update_tags(**tags)
    except RasterioIOError:  # GDAL says only "Write failed"; a full disk is its usual cause
        if shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < values.nbytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from None
        raise


def legend_handles(areas: Dict[str, Optional[float]]):
    """Matplotlib legend entries: each class with its area, and the unclassified colour."""
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
    """True colour (left) beside the map (right).

    On the same extent in pixels of the scene (the map leaves out the edge remainder), legend with hectares per
    class.
    """
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
        # --dn-range only scales the scenes of 8-bit models (RGB): the others' summaries leave it out
        **({"dn_range": list(options.dn_range)} if scaled_to_8_bits(modality) else {}),
        **stats,
    }
    with open(os.path.join(output_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
