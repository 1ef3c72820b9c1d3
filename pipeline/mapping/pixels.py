"""A strip's values -> the patches the model takes: the nodata mask, then the model's pixel dtype.

Masking: a pixel is nodata when GDAL's dataset mask says so (the raster's nodata value, an alpha
band or an internal mask) or when every band is 0 (the all-zero borders of Sentinel-2 products). A
patch with more than ``max_nodata_fraction`` nodata pixels (default 0: any) is not classified;
EuroSAT's patches never contain nodata, so the model has never seen any.

Digital numbers -> 8 bits, for models of 8-bit pixels (RGB), as EuroSAT's RGB images were made
from the all-bands data (the dataset's authors: ``gdal_translate -scale 0 2750 1 255 -a_nodata 0``,
bands B04, B03, B02): the range [low, high] (default 0..2750) goes linearly to 1..255, clipped;
8-bit scenes are used as they are. Models of 16-bit pixels (13 bands) take the values as they are.

Floating-point scenes: a pixel with a NaN or infinite value in any band is nodata (counted, and
given in summary.json as ``pixels_nonfinite``); a scene of reflectance (values 0..1, not digital
numbers) is refused by ``check_float_values``, since every patch of it would look black to the model.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import numpy as np

from pipeline.mapping.errors import MapError
from schema import modalities
from schema.modalities import IMAGE_SIZE

# EuroSAT RGB's scaling of the digital numbers of B04/B03/B02 to 1..255 (0 was left for nodata).
EUROSAT_DN_RANGE = (0.0, 2750.0)
# A floating-point scene whose values stay below this is reflectance (0..1, bright clouds a little more),
# not digital numbers (EuroSAT's are 0..10,000 and more): Sentinel-2's QUANTIFICATION_VALUE is 10,000.
REFLECTANCE_MAX = 2.0
QUANTIFICATION_VALUE = 10_000


def check_dn_range(low: float, high: float) -> None:
    """MapError unless LOW,HIGH are finite digital numbers with HIGH above LOW."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise MapError(f"--dn-range {low:g},{high:g}: give finite digital numbers, e.g. 0,2750")
    if not high > low:
        raise MapError(f"--dn-range {low:g},{high:g}: the high end must be above the low end")


def nonfinite_to_nodata(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(values with NaN/inf pixels set to 0 in all bands, the mask of those pixels).

    (values [..., C] with every pixel that has a NaN/inf band set to 0 in all bands, i.e. nodata; the mask [...] of
    those pixels). Integer values are returned as they are.
    """
    if not np.issubdtype(values.dtype, np.floating):
        return values, np.zeros(values.shape[:-1], bool)
    bad = ~np.all(np.isfinite(values), axis=-1)
    if bad.any():
        values = values.copy()
        values[bad] = 0
    return values, bad


def check_float_values(name: str, sample: np.ndarray) -> None:
    """MapError when a floating-point scene's `sample` [bands, h, w] holds reflectance, not digital numbers."""
    finite = sample[np.isfinite(sample) & (sample != 0)]
    if finite.size and float(np.percentile(finite, 99)) <= REFLECTANCE_MAX:
        raise MapError(
            f"{name!r} holds floating-point values of at most {float(finite.max()):.2f}: reflectance (0..1), not "
            f"the digital numbers the model was trained on; scale it to digital numbers first (x "
            f"{QUANTIFICATION_VALUE:,}: gdal_translate -ot UInt16 -scale 0 1 0 {QUANTIFICATION_VALUE} IN OUT)")


def scaled_to_8_bits(modality: str) -> bool:
    """Whether the model takes 8-bit pixels (EuroSAT RGB) rather than the scene's digital numbers.

    A scene's digital numbers are scaled to 8 bits by --dn-range; a model of 16-bit pixels (the 13 bands) takes them as
    they are.
    """
    return np.dtype(modalities.get(modality).pixel_dtype) == np.uint8


def classifiable_patches(values: np.ndarray, mask: np.ndarray, starts: Union[Sequence[int], np.ndarray],
                         max_nodata_fraction: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """(indexes into `starts` of the patches kept, their values [n, 64, 64, C]) of one strip.

    `values` [64, W, C], GDAL's dataset `mask` [64, W], patches starting at columns `starts`.
    """
    columns = np.asarray(starts)
    valid = (mask > 0) & np.any(values != 0, axis=-1)
    # the fraction of nodata pixels in each patch of the row
    nodata = 1.0 - np.stack([valid[:, s : s + IMAGE_SIZE].mean() for s in columns]) if len(columns) else np.zeros(0)
    keep = np.flatnonzero(nodata <= max_nodata_fraction)
    patches = np.stack([values[:, s : s + IMAGE_SIZE] for s in columns[keep]]) if len(keep) else (
        np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, values.shape[-1]), values.dtype))
    return keep, patches


def dn_to_uint8(pixels: np.ndarray, dn_range: Tuple[float, float] = EUROSAT_DN_RANGE) -> np.ndarray:
    """RGB digital numbers -> uint8 as EuroSAT's RGB images.

    [low, high] -> [1, 255] linearly, clipped. uint8 input is returned unchanged.
    """
    if pixels.dtype == np.uint8:
        return pixels
    low, high = dn_range
    check_dn_range(low, high)
    scaled = 1.0 + (pixels.astype(np.float32) - low) * (254.0 / (high - low))
    return np.clip(np.rint(scaled), 1, 255).astype(np.uint8)


def to_model_pixels(pixels: np.ndarray, modality: str, dn_range: Tuple[float, float]) -> np.ndarray:
    """[..., C] scene values -> what the model's pixel signature takes: uint8 RGB or uint16 bands."""
    if scaled_to_8_bits(modality):
        return dn_to_uint8(pixels, dn_range)
    dtype = np.dtype(modalities.get(modality).pixel_dtype)
    if pixels.dtype != dtype:
        pixels = np.clip(np.rint(pixels.astype(np.float64)), 0, np.iinfo(dtype).max)
    return pixels.astype(dtype)
