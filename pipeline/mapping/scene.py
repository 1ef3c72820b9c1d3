"""A scene on disk -> 64x64 patches the model takes, read in windows so memory stays bounded.

The scene is opened and checked against the model's modality first (bands, size, the bounds on
what it makes us hold), then read one strip of patch rows at a time (64 rows of pixels by the
grid's width), never whole: a full Sentinel-2 tile (10,980 x 10,980 px, 13 bands of uint16) is
3.1 GB, one strip of it 18 MB. Any raster GDAL reads works (a GeoTIFF, a VRT), and anything that
reads like one: a Sentinel-2 product's bands (``bands.ProductRaster``). The tile grid is ``grid``'s, the
nodata mask and the scaling to the model's pixels ``pixels``'s.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Iterator, Optional, Tuple

import numpy as np

from pipeline.mapping.errors import MapError
from pipeline.mapping.grid import TileGrid
from pipeline.mapping.pixels import (
    EUROSAT_DN_RANGE,
    check_float_values,
    classifiable_patches,
    dn_to_uint8,
    nonfinite_to_nodata,
    to_model_pixels,
)
from schema import features, modalities
from schema.locations import is_local
from schema.modalities import IMAGE_SIZE

# Bounds on what a scene may make us hold, so a huge (or lying) header is refused, not allocated:
MAX_MAP_CELLS = 25_000_000  # the probability sums, 44 bytes a cell: 1.1 GB (a full tile at stride 8: 1.9 M)
MAX_STRIP_BYTES = 1 << 30  # one strip of 64 rows (a full 13-band tile: 18 MB)
FLOAT_SAMPLE_SIDE = 512  # a floating-point scene's values are checked on a decimated read this size


@dataclasses.dataclass(frozen=True)
class Scene:
    """What the map needs to know about a scene (no pixels)."""

    path: str
    width: int
    height: int
    bands: int  # bands used: 3 (RGB) or 13
    dtype: str
    crs: Optional[str]  # WKT, or None for a raster without a CRS
    transform: object  # affine.Affine of the pixels


def expected_bands(modality: str) -> int:
    """The number of bands the modality's model takes."""
    return modalities.get(modality).channels


def describe_modality(modality: str) -> str:
    """The modality's model and the Sentinel-2 bands it takes, for messages."""
    record = modalities.get(modality)
    if record.encoded:  # an image model's bands are a picture's red, green, blue: Sentinel-2's B04, B03, B02
        return f"an RGB model ({record.channels} bands: red B04, green B03, blue B02)"
    return f"a {record.channels}-band model ({', '.join(features.BAND_NAMES)})"


def require_input(path: str) -> None:
    """MapError when a local --input does not exist."""
    if is_local(path) and not os.path.exists(path):
        raise MapError(f"--input {path!r}: no such file")


def open_raster(path: str):
    """The rasterio dataset for `path`, or MapError saying what the file is not."""
    import rasterio
    from rasterio.errors import RasterioIOError

    require_input(path)
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MapError(f"--input {path!r} is not a raster GDAL can read ({reason}); give a GeoTIFF") from None


def bands_to_read(dataset, modality: str) -> Tuple[int, ...]:
    """Band indexes (1-based) holding the model's inputs; an RGBA scene's alpha is a mask, not a band."""
    from rasterio.enums import ColorInterp

    count = dataset.count
    want = expected_bands(modality)
    # Only a picture (an image model's scene: RGBA) carries an alpha band after its colours.
    if modalities.get(modality).encoded and count == want + 1 and dataset.colorinterp[want] == ColorInterp.alpha:
        count = want
    if count != want:
        raise MapError(
            f"{dataset.name!r} has {count} band{'s' * (count != 1)} but the model is {describe_modality(modality)}; "
            f"give a {want}-band scene" + (" in that order" if want > 3 else "")
            + " or the model of the other modality")
    return tuple(range(1, want + 1))


def grid_for(scene: "Scene", stride: int) -> TileGrid:
    """The scene's tile grid, refused when its map or one strip would not fit the bounds above."""
    grid = TileGrid(scene.height, scene.width, stride)
    cells = grid.cell_rows * grid.cell_cols
    if cells > MAX_MAP_CELLS:
        raise MapError(f"{scene.path!r} ({scene.width}x{scene.height} px) at --stride {stride} makes a map of "
                       f"{cells:,} cells, more than the {MAX_MAP_CELLS:,} kept in memory; use a larger --stride "
                       "or split the scene")
    strip = grid.strip_width * IMAGE_SIZE * scene.bands * np.dtype(scene.dtype).itemsize
    if strip > MAX_STRIP_BYTES:
        raise MapError(f"{scene.path!r} is {scene.width} px wide: one strip of 64 rows would take "
                       f"{strip / 2**30:.1f} GiB; split the scene into narrower pieces")
    return grid


def describe(dataset, modality: str) -> Scene:
    """Check `dataset` against the model's modality; MapError names what does not fit."""
    bands = bands_to_read(dataset, modality)
    if dataset.width == 0 or dataset.height == 0:
        raise MapError(f"{dataset.name!r} is empty (0 pixels)")
    TileGrid(dataset.height, dataset.width)  # checks it holds one patch at least
    if np.issubdtype(np.dtype(dataset.dtypes[0]), np.floating):  # reflectance is refused, not mapped black
        scale = min(1.0, FLOAT_SAMPLE_SIDE / max(dataset.width, dataset.height))
        shape = (len(bands), max(1, int(dataset.height * scale)), max(1, int(dataset.width * scale)))
        check_float_values(dataset.name, dataset.read(bands, out_shape=shape))
    crs = dataset.crs.to_wkt() if dataset.crs else None
    return Scene(dataset.name, dataset.width, dataset.height, len(bands), str(dataset.dtypes[0]), crs,
                 dataset.transform)


@contextlib.contextmanager
def read_errors(dataset, where: str) -> Iterator[None]:
    """GDAL's failed read of a damaged file (a truncated GeoTIFF: 'Read failed') -> MapError."""
    from rasterio.errors import RasterioIOError

    try:
        yield
    except RasterioIOError as err:
        reason = str(err).splitlines()[0].split(". See previous")[0] if str(err) else type(err).__name__
        raise MapError(f"--input {dataset.name!r}: GDAL cannot read its {where} ({reason}): the file is "
                       "truncated or damaged; copy or download it again") from None


@dataclasses.dataclass
class Strip:
    """The classifiable patches of one patch row."""

    row: int
    cols: np.ndarray  # int [n]: the patch columns that are classified
    pixels: np.ndarray  # [n, 64, 64, C], uint8 (RGB) or uint16 (13 bands)
    masked: int  # patches of the row left out for nodata
    nonfinite: int = 0  # pixels of the strip with a NaN/inf value (nodata), each counted in one strip only


def read_strip(dataset, grid: TileGrid, row: int, modality: str,
               dn_range: Tuple[float, float] = EUROSAT_DN_RANGE, max_nodata_fraction: float = 0.0) -> Strip:
    """One windowed read of patch row `row`: its patches, without those with too much nodata."""
    from rasterio.windows import Window

    bands = bands_to_read(dataset, modality)
    window = Window(0, row * grid.stride, grid.strip_width, IMAGE_SIZE)
    with read_errors(dataset, f"pixel rows {row * grid.stride}-{row * grid.stride + IMAGE_SIZE - 1}"):
        raw = dataset.read(bands, window=window)
        mask = dataset.dataset_mask(window=window)
    values, bad = nonfinite_to_nodata(np.moveaxis(raw, 0, -1))  # [64, W, C]
    # NaN/inf pixels counted once each: overlapping strips (stride < 64) count their first `stride` rows
    nonfinite = int(bad[: IMAGE_SIZE if row == grid.rows - 1 else grid.stride].sum())
    starts = np.arange(grid.cols) * grid.stride
    keep, patches = classifiable_patches(values, mask, starts, max_nodata_fraction)
    return Strip(row, keep, to_model_pixels(patches, modality, dn_range), grid.cols - len(keep), nonfinite)


def iter_strips(dataset, grid: TileGrid, modality: str, rows: Optional[range] = None,
                dn_range: Tuple[float, float] = EUROSAT_DN_RANGE,
                max_nodata_fraction: float = 0.0) -> Iterator[Strip]:
    """read_strip for each patch row (all, or `rows`), in order."""
    for row in rows if rows is not None else range(grid.rows):
        yield read_strip(dataset, grid, row, modality, dn_range, max_nodata_fraction)


def true_colour_preview(dataset, modality: str, max_side: int = 1024,
                        dn_range: Tuple[float, float] = EUROSAT_DN_RANGE) -> np.ndarray:
    """A decimated uint8 RGB picture of the scene (GDAL reads overviews/decimates: bounded memory)."""
    from rasterio.enums import Resampling

    scale = min(1.0, max_side / max(dataset.width, dataset.height))
    shape = (max(1, int(dataset.height * scale)), max(1, int(dataset.width * scale)))
    if modalities.get(modality).encoded:
        # an image model's scene is the picture itself (red, green, blue), scaled as its patches are
        with read_errors(dataset, "overview (the true-colour picture)"):
            values = dataset.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
        rgb = dn_to_uint8(values, dn_range)
    else:  # Sentinel-2's bands: B04, B03, B02 with the usual true-colour stretch
        bands = [b + 1 for b in features.TRUE_COLOUR_BANDS]
        with read_errors(dataset, "overview (the true-colour picture)"):
            values = dataset.read(bands, out_shape=(3, *shape), resampling=Resampling.average).astype(np.float32)
        rgb = np.clip(values / features.TRUE_COLOUR_SCALE * 255.0, 0, 255).astype(np.uint8)
    return np.moveaxis(rgb, 0, -1)
