"""Change between two dates: the from -> to transition matrix of two maps of the same grid.

``compare(earlier_dir, later_dir)`` reads both ``landuse.tif`` files, checks they lie on the same
grid (CRS, transform, size: map both dates from scenes of the same footprint with the same
--stride), and writes into the later map's folder:

- ``transitions.csv``: hectares from each class (rows, the earlier map) to each class (columns);
- ``change.png``: the earlier map, the later map, and the cells whose class changed (in their new
  class's colour; unchanged cells grey);
- a ``change`` entry in ``summary.json`` (changed hectares, the largest transitions).

The earlier map must be whole (its summary.json, moved in last, is there: folders.commit), and the
local command line checks the new scene against its grid before any inference
(``check_scene_grid``), then writes the change files into the new map before it is moved in.

Cells that are nodata in either map are left out of the matrix. A map's errors look like change
(a patch classified differently on the two dates), so ``min_confidence`` also leaves out the cells
whose top probability (confidence.tif) is below it in either map: fewer cells, truer change.
"""
from __future__ import annotations

import csv
import json
import os
from typing import Any, Dict, Tuple

import numpy as np

from pipeline.mapping.cells import NODATA_CLASS
from pipeline.mapping.errors import MapError
from pipeline.mapping.folders import CHANGE_FILES, COMPLETE
from pipeline.mapping.grid import TileGrid
from pipeline.mapping.outputs import cell_area_ha, colourise, legend_handles
from schema import features
from schema.locations import is_local

MAP_FILE = "landuse.tif"
CONFIDENCE_FILE = "confidence.tif"


def map_file(map_dir: str, name: str = MAP_FILE) -> str:
    """The path of `name` in the folder of a whole map, or MapError.

    Not local, not a map, or a map whose writing did not finish (no summary.json, which is moved in last:
    folders.commit).
    """
    if not is_local(map_dir):
        raise MapError(f"--compare reads local map folders; copy {map_dir!r} here first (gsutil -m cp -r)")
    path = os.path.join(map_dir, name)
    if not os.path.exists(path):
        raise MapError(f"--compare {map_dir!r}: no {name} there; give the output folder of an earlier map")
    if not os.path.exists(os.path.join(map_dir, COMPLETE)):
        raise MapError(f"--compare {map_dir!r}: no {COMPLETE} beside its {name}, so that map was not written to "
                       "the end (interrupted?); map that date again")
    return path


def read_map(map_dir: str, name: str = MAP_FILE) -> Tuple[np.ndarray, Any, Any]:
    """(values, transform, crs) of `name` (landuse.tif or confidence.tif) in `map_dir`."""
    import rasterio

    with rasterio.open(map_file(map_dir, name)) as src:
        return src.read(1), src.transform, src.crs


def read_grid(map_dir: str) -> Tuple[Tuple[int, int], Any, Any]:
    """((rows, cols), transform, crs) of the map in `map_dir`, its pixels not read."""
    import rasterio

    with rasterio.open(map_file(map_dir)) as src:
        return src.shape, src.transform, src.crs


def transition_counts(earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """[10, 10] cell counts from class i (earlier) to class j (later), nodata in either left out."""
    both = (earlier != NODATA_CLASS) & (later != NODATA_CLASS)
    n = features.NUM_CLASSES
    flat = earlier[both].astype(np.int64) * n + later[both].astype(np.int64)
    return np.bincount(flat, minlength=n * n).reshape(n, n)


def check_same_grid(earlier, later, earlier_dir: str) -> None:
    """`earlier`, `later`: ((rows, cols), transform, crs) of two maps; MapError unless they match."""
    (e_shape, e_transform, e_crs), (l_shape, l_transform, l_crs) = earlier, later
    problems = []
    if tuple(e_shape) != tuple(l_shape):
        problems.append(f"size {e_shape[1]}x{e_shape[0]} cells vs {l_shape[1]}x{l_shape[0]}")
    if e_crs != l_crs:
        problems.append(f"CRS {e_crs} vs {l_crs}")
    if not e_transform.almost_equals(l_transform, precision=1e-6 * max(abs(e_transform.a), 1e-9)):
        problems.append(f"transform {tuple(e_transform)[:6]} vs {tuple(l_transform)[:6]}")
    if problems:
        raise MapError(f"--compare {earlier_dir!r} is not on this map's grid ({'; '.join(problems)}): map both "
                       "dates from scenes of the same footprint (clip or reproject them to one grid) with the "
                       "same --stride")


def check_scene_grid(earlier_dir: str, dataset, grid: TileGrid) -> None:
    """Before any inference.

    MapError unless the map of `dataset` (a rasterio dataset, cut by `grid`) would lie on the grid of the earlier
    map in `earlier_dir`.
    """
    later = ((grid.cell_rows, grid.cell_cols), grid.cell_transform(dataset.transform), dataset.crs)
    check_same_grid(read_grid(earlier_dir), later, earlier_dir)


def write_change_png(path: str, earlier: np.ndarray, later: np.ndarray, compared: np.ndarray, title: str) -> None:
    """The change picture: earlier map, later map and the cells that changed.

    Earlier map, later map, and the compared cells that changed in their new class's colour (unchanged: grey; not
    compared (nodata, or uncertain): white).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    changed = (earlier != later) & compared
    highlight = np.full((*later.shape, 3), 255, np.uint8)
    highlight[compared] = 215
    highlight[changed] = colourise(later)[changed]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6), gridspec_kw={"wspace": 0.05})
    for ax, picture, name in zip(axes, (colourise(earlier), colourise(later), highlight),
                                 ("earlier", "later", f"changed cells ({int(changed.sum())}, in their new class)")):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(handles=legend_handles({}), loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.84, top=0.9, bottom=0.02)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check_min_confidence(min_confidence: float) -> None:
    """Refuse a --min-confidence outside [0, 1) with a one-line MapError."""
    if not 0.0 <= min_confidence < 1.0:
        raise MapError(f"--min-confidence {min_confidence}: give a probability in [0, 1)")


def compare(earlier_dir: str, later_dir: str, min_confidence: float = 0.0) -> Dict[str, object]:
    """Write transitions.csv and change.png into `later_dir`.

    Returns the change summary (also added to later_dir's summary.json). Cells below `min_confidence` in either map
    are left out.
    """
    check_min_confidence(min_confidence)
    earlier = read_map(earlier_dir)
    later = read_map(later_dir)
    check_same_grid((earlier[0].shape, *earlier[1:]), (later[0].shape, *later[1:]), earlier_dir)
    valid = (earlier[0] != NODATA_CLASS) & (later[0] != NODATA_CLASS)
    compared = valid.copy()
    if min_confidence > 0:
        compared &= (read_map(earlier_dir, CONFIDENCE_FILE)[0] >= min_confidence)
        compared &= (read_map(later_dir, CONFIDENCE_FILE)[0] >= min_confidence)
    counts = transition_counts(np.where(compared, earlier[0], NODATA_CLASS), later[0])
    cell_ha = cell_area_ha(later[2].to_wkt() if later[2] else None, later[1])
    scale = cell_ha if cell_ha is not None else 1.0
    unit = "ha" if cell_ha is not None else "cells"
    matrix = counts * scale
    transitions, picture = (os.path.join(later_dir, name) for name in CHANGE_FILES)
    with open(transitions, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"from \\ to ({unit})", *features.CLASS_NAMES])
        for name, row in zip(features.CLASS_NAMES, matrix):
            writer.writerow([name, *(f"{v:.2f}" for v in row)])
    off_diagonal = matrix - np.diag(np.diag(matrix))
    order = np.dstack(np.unravel_index(np.argsort(-off_diagonal, axis=None), off_diagonal.shape))[0]
    largest = [{"from": features.CLASS_NAMES[i], "to": features.CLASS_NAMES[j], unit: round(float(matrix[i, j]), 2)}
               for i, j in order[:5] if off_diagonal[i, j] > 0]  # a class to itself is no change
    change = {
        "earlier_map": os.path.abspath(earlier_dir),
        "unit": unit,
        "min_confidence": min_confidence,
        "compared": round(float(matrix.sum()), 2),
        "left_out_uncertain": round(float((valid & ~compared).sum() * scale), 2),
        "changed": round(float(off_diagonal.sum()), 2),
        "changed_fraction": round(float(off_diagonal.sum() / matrix.sum()), 4) if matrix.sum() else None,
        "largest_transitions": largest,
        "matrix": {name: {to: round(float(v), 2) for to, v in zip(features.CLASS_NAMES, row)}
                   for name, row in zip(features.CLASS_NAMES, matrix)},
    }
    uncertain = f"; cells below confidence {min_confidence:g} left out (white)" if min_confidence else ""
    write_change_png(picture, earlier[0], later[0], compared,
                     f"change: {change['changed']:,.1f} {unit} of {change['compared']:,.1f} {unit} changed class"
                     + uncertain)
    summary_path = os.path.join(later_dir, COMPLETE)
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        summary["change"] = change
        with open(summary_path + ".partial", "w") as f:  # replaced at once: never a half-written summary
            json.dump(summary, f, indent=2)
        os.replace(summary_path + ".partial", summary_path)
    return change
