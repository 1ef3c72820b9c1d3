"""A scene on disk -> 64x64 patches the model takes, read in windows so memory stays bounded.

The scene is read one strip of patch rows at a time (64 rows of pixels by the grid's width), never
whole: a full Sentinel-2 tile (10,980 x 10,980 px, 13 bands of uint16) is 3.1 GB, one strip of it
18 MB. Any raster GDAL reads works: a GeoTIFF, or a VRT that stacks a Sentinel-2 product's band
files (``gdalbuildvrt -separate``).

Tile grid: patches start every ``stride`` pixels from the scene's top-left corner; the map's cells
are stride x stride pixels, so a cell is covered by (64 / stride)^2 patches, whose probabilities are
averaged. Pixels right of or below the last whole patch (the edge remainder) are not mapped.

Masking: a pixel is nodata when GDAL's dataset mask says so (the raster's nodata value, an alpha
band or an internal mask) or when every band is 0 (the all-zero borders of Sentinel-2 products). A
patch with more than ``max_nodata_fraction`` nodata pixels (default 0: any) is not classified;
EuroSAT's patches never contain nodata, so the model has never seen any.

A folder or zip of georeferenced patches (EuroSAT's all-bands GeoTIFFs, say) is first stitched into
one mosaic GeoTIFF by the patches' own coordinates (``mosaic_patches``), then mapped like a scene.

RGB digital numbers -> 8 bits, as EuroSAT's RGB images were made from the all-bands data (the
dataset's authors: ``gdal_translate -scale 0 2750 1 255 -a_nodata 0``, bands B04, B03, B02): the
range [low, high] (default 0..2750) goes linearly to 1..255, clipped; 8-bit scenes are used as
they are.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Optional, Tuple

import numpy as np

from schema import features
from schema.errors import UserError

PATCH = features.IMAGE_SIZE
# Bounds on what a scene may make us hold, so a huge (or lying) header is refused, not allocated:
MAX_MAP_CELLS = 25_000_000  # the probability sums, 44 bytes a cell: 1.1 GB (a full tile at stride 8: 1.9 M)
MAX_STRIP_BYTES = 1 << 30  # one strip of 64 rows (a full 13-band tile: 18 MB)
MAX_MOSAIC_PIXELS = 4 * 10980 * 10980  # a folder/zip of patches: four Sentinel-2 tiles at most
# EuroSAT RGB's scaling of the digital numbers of B04/B03/B02 to 1..255 (0 was left for nodata).
EUROSAT_DN_RANGE = (0.0, 2750.0)


class MapError(UserError, ValueError):
    """A scene, model or option that cannot be mapped; the message names it and the fix."""


def check_stride(stride: int) -> int:
    if stride < 1 or PATCH % stride:
        raise MapError(f"--stride {stride}: it must divide {PATCH} (64, 32, 16 or 8), so that "
                       "overlapping patches cover whole map cells")
    return stride


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Where the patches of a height x width scene lie, and the map cells they cover."""

    height: int
    width: int
    stride: int = PATCH

    def __post_init__(self) -> None:
        check_stride(self.stride)
        if self.height < PATCH or self.width < PATCH:
            raise MapError(f"the scene is {self.width}x{self.height} px, smaller than one {PATCH}x{PATCH} "
                           "patch: there is nothing to classify")

    @property
    def cells_per_patch(self) -> int:
        return PATCH // self.stride

    @property
    def rows(self) -> int:
        """Patch rows."""
        return (self.height - PATCH) // self.stride + 1

    @property
    def cols(self) -> int:
        return (self.width - PATCH) // self.stride + 1

    @property
    def patches(self) -> int:
        return self.rows * self.cols

    @property
    def cell_rows(self) -> int:
        return self.rows - 1 + self.cells_per_patch

    @property
    def cell_cols(self) -> int:
        return self.cols - 1 + self.cells_per_patch

    @property
    def strip_width(self) -> int:
        return (self.cols - 1) * self.stride + PATCH

    def cell_transform(self, scene_transform):
        """The map's affine transform: the scene's, with pixels `stride` times larger."""
        from affine import Affine

        return scene_transform @ Affine.scale(self.stride)

    def patch_centre(self, scene_transform, row: int, col: int) -> Tuple[float, float]:
        """Map coordinates (x, y) of the centre of patch (row, col)."""
        return scene_transform @ (col * self.stride + PATCH / 2, row * self.stride + PATCH / 2)


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
    return features.channels(modality)


def describe_modality(modality: str) -> str:
    if modality == features.ALL_BANDS:
        return f"a 13-band model ({', '.join(features.BAND_NAMES)})"
    return "an RGB model (3 bands: red B04, green B03, blue B02)"


def open_raster(path: str):
    """rasterio's dataset for `path`, or MapError saying what the file is not."""
    import rasterio
    from rasterio.errors import RasterioIOError

    if "://" not in path and not os.path.exists(path):
        raise MapError(f"--input {path!r}: no such file")
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MapError(f"--input {path!r} is not a raster GDAL can read ({reason}); give a GeoTIFF") from None


PATCH_FILE_SUFFIXES = (".tif", ".tiff")


def patch_files(path: str) -> list:
    """The GeoTIFF patches of a folder or .zip, as paths rasterio opens (zip://archive!/member)."""
    import zipfile

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.lower().endswith(PATCH_FILE_SUFFIXES)
                           and "__MACOSX" not in n and not os.path.basename(n).startswith("."))
        files = [f"zip://{os.path.abspath(path)}!/{n}" for n in names]
    else:
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                       if f.lower().endswith(PATCH_FILE_SUFFIXES) and not f.startswith("."))
    if not files:
        raise MapError(f"--input {path!r} holds no GeoTIFF patches (*.tif): give a scene, or a folder/zip of "
                       "georeferenced patches such as EuroSAT's all-bands GeoTIFFs")
    return files


def mosaic_patches(path: str, destination: str) -> str:
    """Stitch a folder or zip of georeferenced patches into one GeoTIFF by their own coordinates
    (rasterio.merge, in chunks: bounded memory); places no patch covers are 0 (masked)."""
    import rasterio
    from rasterio.merge import merge

    files = patch_files(path)
    crss = {}
    for name in files:
        try:
            with rasterio.open(name) as src:
                if src.crs is None or src.transform.is_identity:
                    raise MapError(f"patch {name!r} has no georeference, so it cannot be placed on a map "
                                   "(EuroSAT's all-bands GeoTIFFs have one, its RGB JPEGs do not)")
                crss.setdefault(src.crs.to_string(), name)
        except rasterio.errors.RasterioIOError:
            raise MapError(f"patch {name!r} is not a raster GDAL can read") from None
    if len(crss) > 1:
        raise MapError(f"the patches of {path!r} are in {len(crss)} coordinate systems ({', '.join(sorted(crss))}): "
                       "reproject them into one first (gdalwarp -t_srs)")
    pixels = mosaic_pixels(files)
    if pixels > MAX_MOSAIC_PIXELS:
        raise MapError(f"the patches of {path!r} spread over {pixels:,} pixels, more than {MAX_MOSAIC_PIXELS:,} "
                       "(four Sentinel-2 tiles); map the areas separately")
    merge(files, dst_path=destination, nodata=0,
          dst_kwds={"compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256})
    return destination


def is_patch_collection(path: str) -> bool:
    """A folder or zip (of patches), not a raster."""
    import zipfile

    return os.path.isdir(path) or (os.path.isfile(path) and zipfile.is_zipfile(path))


def mosaic_pixels(files: list) -> int:
    """Pixels of the mosaic of `files`: their union's bounds at the first file's resolution."""
    import rasterio

    with rasterio.open(files[0]) as src:
        res_x, res_y = src.res
    bounds = []
    for name in files:
        with rasterio.open(name) as src:
            bounds.append(tuple(src.bounds))
    left, bottom, right, top = np.array(bounds).T
    return int(round((right.max() - left.min()) / res_x)) * int(round((top.max() - bottom.min()) / res_y))


def scene_path(path: str, work_dir: str) -> str:
    """The raster to map: `path` itself, or the mosaic of a folder/zip of patches in `work_dir`."""
    if is_patch_collection(path):
        os.makedirs(work_dir, exist_ok=True)
        return mosaic_patches(path, os.path.join(work_dir, "mosaic.tif"))
    return path


def _bands_to_read(dataset, modality: str) -> Tuple[int, ...]:
    """Band indexes (1-based) holding the model's inputs; an RGBA scene's alpha is a mask, not a band."""
    from rasterio.enums import ColorInterp

    count = dataset.count
    if modality == features.RGB and count == 4 and dataset.colorinterp[3] == ColorInterp.alpha:
        count = 3
    want = expected_bands(modality)
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
    strip = grid.strip_width * PATCH * scene.bands * np.dtype(scene.dtype).itemsize
    if strip > MAX_STRIP_BYTES:
        raise MapError(f"{scene.path!r} is {scene.width} px wide: one strip of 64 rows would take "
                       f"{strip / 2**30:.1f} GiB; split the scene into narrower pieces")
    return grid


def describe(dataset, modality: str) -> Scene:
    """Check `dataset` against the model's modality; MapError names what does not fit."""
    bands = _bands_to_read(dataset, modality)
    if dataset.width == 0 or dataset.height == 0:
        raise MapError(f"{dataset.name!r} is empty (0 pixels)")
    TileGrid(dataset.height, dataset.width)  # checks it holds one patch at least
    crs = dataset.crs.to_wkt() if dataset.crs else None
    return Scene(dataset.name, dataset.width, dataset.height, len(bands), str(dataset.dtypes[0]), crs,
                 dataset.transform)


def dn_to_uint8(pixels: np.ndarray, dn_range: Tuple[float, float] = EUROSAT_DN_RANGE) -> np.ndarray:
    """RGB digital numbers -> uint8 as EuroSAT's RGB images: [low, high] -> [1, 255] linearly,
    clipped. uint8 input is returned unchanged."""
    if pixels.dtype == np.uint8:
        return pixels
    low, high = dn_range
    if not high > low:
        raise MapError(f"--dn-range {low:g},{high:g}: the high end must be above the low end")
    scaled = 1.0 + (pixels.astype(np.float32) - low) * (254.0 / (high - low))
    return np.clip(np.rint(scaled), 1, 255).astype(np.uint8)


def to_model_pixels(pixels: np.ndarray, modality: str, dn_range: Tuple[float, float]) -> np.ndarray:
    """[..., C] scene values -> what the model's pixel signature takes: uint8 RGB or uint16 bands."""
    if modality == features.RGB:
        return dn_to_uint8(pixels, dn_range)
    if pixels.dtype != np.uint16:
        pixels = np.clip(np.rint(pixels.astype(np.float64)), 0, features.BANDS_MAX)
    return pixels.astype(np.uint16)


@dataclasses.dataclass
class Strip:
    """The classifiable patches of one patch row."""

    row: int
    cols: np.ndarray  # int [n]: the patch columns that are classified
    pixels: np.ndarray  # [n, 64, 64, C], uint8 (RGB) or uint16 (13 bands)
    masked: int  # patches of the row left out for nodata


def read_strip(dataset, grid: TileGrid, row: int, modality: str,
               dn_range: Tuple[float, float] = EUROSAT_DN_RANGE, max_nodata_fraction: float = 0.0) -> Strip:
    """One windowed read of patch row `row`: its patches, without those with too much nodata."""
    from rasterio.windows import Window

    bands = _bands_to_read(dataset, modality)
    window = Window(0, row * grid.stride, grid.strip_width, PATCH)
    values = np.moveaxis(dataset.read(bands, window=window), 0, -1)  # [64, W, C]
    valid = (dataset.dataset_mask(window=window) > 0) & np.any(values != 0, axis=-1)
    starts = np.arange(grid.cols) * grid.stride
    # the fraction of nodata pixels in each patch of the row
    nodata = 1.0 - np.stack([valid[:, s : s + PATCH].mean() for s in starts]) if len(starts) else np.zeros(0)
    keep = np.flatnonzero(nodata <= max_nodata_fraction)
    patches = np.stack([values[:, s : s + PATCH] for s in starts[keep]]) if len(keep) else (
        np.zeros((0, PATCH, PATCH, len(bands)), values.dtype))
    return Strip(row, keep, to_model_pixels(patches, modality, dn_range), grid.cols - len(keep))


def iter_strips(dataset, grid: TileGrid, modality: str, rows: Optional[range] = None,
                dn_range: Tuple[float, float] = EUROSAT_DN_RANGE,
                max_nodata_fraction: float = 0.0) -> Iterator[Strip]:
    for row in rows if rows is not None else range(grid.rows):
        yield read_strip(dataset, grid, row, modality, dn_range, max_nodata_fraction)


def true_colour_preview(dataset, modality: str, max_side: int = 1024,
                        dn_range: Tuple[float, float] = EUROSAT_DN_RANGE) -> np.ndarray:
    """A decimated uint8 RGB picture of the scene (GDAL reads overviews/decimates: bounded memory)."""
    from rasterio.enums import Resampling

    scale = min(1.0, max_side / max(dataset.width, dataset.height))
    shape = (max(1, int(dataset.height * scale)), max(1, int(dataset.width * scale)))
    if modality == features.ALL_BANDS:
        bands = [b + 1 for b in features.TRUE_COLOUR_BANDS]
        values = dataset.read(bands, out_shape=(3, *shape), resampling=Resampling.average).astype(np.float32)
        rgb = np.clip(values / features.TRUE_COLOUR_SCALE * 255.0, 0, 255).astype(np.uint8)
    else:
        values = dataset.read([1, 2, 3], out_shape=(3, *shape), resampling=Resampling.average)
        rgb = dn_to_uint8(values, dn_range)
    return np.moveaxis(rgb, 0, -1)
