"""A folder or zip of georeferenced patches -> one mosaic GeoTIFF, mapped like a scene.

EuroSAT's all-bands GeoTIFFs, say: the patches are checked (``check_patches``: one kind, one
CRS, the model's bands; a folder of single-band files of mixed resolutions is refused here, it is
a product for ``product``), then stitched by their own coordinates (``mosaic_patches``,
rasterio.merge in chunks: bounded memory); places no patch covers are 0, so they are masked.
"""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from pipeline.mapping.errors import MapError
from schema import modalities

MAX_MOSAIC_PIXELS = 4 * 10980 * 10980  # a folder/zip of patches: four Sentinel-2 tiles at most
PATCH_FILE_SUFFIXES = (".tif", ".tiff")
MOSAIC_FILE = "mosaic.tif"  # written into the map's folder


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


def check_patches(path: str, modality: str) -> None:
    """Refuse, before anything is written, a folder/zip that is not a set of neighbouring patches.

    The patches must be georeferenced and of the model's bands; refused are patches without georeference, in several
    CRSs, of mixed band counts or resolutions (single-band files of a product, say), of the other modality, or spread
    too far. Messages name the user's files, never the mosaic.
    """
    import rasterio

    from pipeline.mapping.scene import describe_modality, expected_bands

    files = patch_files(path)
    crss: Dict[str, str] = {}  # CRS -> the first patch in it
    kinds: Dict[Tuple[int, Tuple[float, ...]], str] = {}  # (bands, resolution) -> the first patch of it
    for name in files:
        try:
            with rasterio.open(name) as src:
                if src.crs is None or src.transform.is_identity:
                    raise MapError(f"patch {name!r} has no georeference, so it cannot be placed on a map "
                                   "(EuroSAT's all-bands GeoTIFFs have one, its RGB JPEGs do not)")
                crss.setdefault(src.crs.to_string(), name)
                kinds.setdefault((src.count, tuple(round(r, 6) for r in src.res)), name)
        except rasterio.errors.RasterioIOError:
            raise MapError(f"patch {name!r} is not a raster GDAL can read") from None
    if len(kinds) > 1:
        shown = "; ".join(f"{os.path.basename(n)}: {c} band{'s' * (c != 1)} at {r[0]:g} m"
                          for (c, r), n in sorted(kinds.items())[:3])
        raise MapError(f"--input {path!r} is neither a Sentinel-2 product (band files named like B02.jp2 or "
                       f"T32TMT_20230621T103629_B02.jp2) nor neighbouring patches of one kind ({shown}): give a "
                       ".SAFE folder, its .zip or band files named by band, or patches of the same bands")
    if len(crss) > 1:
        raise MapError(f"the patches of {path!r} are in {len(crss)} coordinate systems ({', '.join(sorted(crss))}): "
                       "reproject them into one first (gdalwarp -t_srs)")
    (count, _), = kinds
    want = expected_bands(modality)
    if count != want and not (count == want + 1 and modalities.get(modality).encoded):  # RGBA: alpha
        raise MapError(f"the patches of {path!r} have {count} band{'s' * (count != 1)} but the model is "
                       f"{describe_modality(modality)}; give patches of {want} bands or the model of the other "
                       "modality")
    pixels = mosaic_pixels(files)
    if pixels > MAX_MOSAIC_PIXELS:
        raise MapError(f"the patches of {path!r} spread over {pixels:,} pixels, more than {MAX_MOSAIC_PIXELS:,} "
                       "(four Sentinel-2 tiles); map the areas separately")


def mosaic_patches(path: str, destination: str) -> str:
    """Stitch a folder or zip of georeferenced patches into one GeoTIFF by their own coordinates.

    The patches are checked by check_patches (beforehand); rasterio.merge writes them in chunks (bounded memory). Places
    no patch covers are 0 (masked).
    """
    from rasterio.merge import merge

    merge(patch_files(path), dst_path=destination, nodata=0,
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
