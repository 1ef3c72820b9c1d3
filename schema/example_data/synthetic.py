"""A synthetic EuroSAT look-alike, so that the pipeline and its tests run offline.

Each class gets a texture that resembles what it is from above (water smooth and blue, forest
dark green and blotchy, a highway a grey band, residential a grid of roofs, crops stripes ...),
with random orientation, colour jitter and noise, so a model has to learn the textures and
can reach high accuracy. Images are 64x64 RGB JPEGs written as tf.Examples in the contract of
schema.features, named like the EuroSAT archive's files (``Forest/Forest_17.jpg``).

The 13-band mode (``synthetic/all:N``) turns the same textures into Sentinel-2 digital numbers:
the visible bands (B02-B04) follow the RGB picture and the other bands each class's typical
spectrum (vegetation bright in the red edge and near infrared, water dark there, built-up
areas bright in the short-wave infrared), modulated by the texture, named ``Forest/Forest_17.tif``.

The pictures themselves come from schema.samples; this module writes them as TFRecords and scenes.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from schema import features, modalities, records
from schema.errors import DataError
from schema.samples import (
    encode_jpeg,
    samples_of,
    synthetic_band_examples,
    synthetic_bands,
    synthetic_examples,
    synthetic_image,
    synthetic_patch,
)

# The sample generators are part of this module's public face (tests, benchmarks, maps use them).
__all__ = [
    "encode_jpeg", "synthetic_band_examples", "synthetic_bands", "synthetic_examples", "synthetic_image",
    "synthetic_records", "write_synthetic_tfrecords", "scene_patch", "write_synthetic_scene",
    "SCENE_CRS", "SCENE_ORIGIN", "SCENE_PIXEL_M", "NODATA_PATCH",
]


def synthetic_records(num_examples: int, seed: int = 0, modality: str = features.RGB) -> Iterator[bytes]:
    """Serialized contract tf.Examples of a synthetic set in `modality`."""
    for pixels, label, source in samples_of(modality, num_examples, seed):
        yield features.example_of(modality, pixels, label, f"synthetic/{source}").SerializeToString()


def write_synthetic_tfrecords(
    output_dir: str, num_examples: int, seed: int = 0, num_shards: int = 1, modality: str = features.RGB
) -> list[str]:
    """Write a synthetic EuroSAT set as TFRecords of tf.Example; returns the files written.

    Idempotent: an existing complete set with the same size and seed is reused.
    """
    import tensorflow as tf

    if num_examples < features.NUM_CLASSES:
        raise DataError(
            f"synthetic:{num_examples} is too small: ask for at least {features.NUM_CLASSES} "
            "examples (one per class), e.g. synthetic:500."
        )
    os.makedirs(output_dir, exist_ok=True)
    paths = [
        os.path.join(output_dir, f"synthetic-{s:05d}-of-{num_shards:05d}.tfrecord")
        for s in range(num_shards)
    ]
    marker = os.path.join(output_dir, records.COMPLETE_MARKER)
    stamp = f"num_examples={num_examples} seed={seed} shards={num_shards} modality={modality}\n"
    if os.path.exists(marker) and open(marker).read() == stamp and all(map(os.path.exists, paths)):
        return paths
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    try:
        for i, record in enumerate(synthetic_records(num_examples, seed, modality)):
            writers[i % num_shards].write(record)
    finally:
        for w in writers:
            w.close()
    with open(marker, "w") as f:
        f.write(stamp)
    return paths


# A georeferenced scene stitched from synthetic patches: what the map tests and benchmark classify.
SCENE_CRS = "EPSG:32632"  # UTM zone 32N, metres
SCENE_ORIGIN = (500_000.0, 5_200_000.0)  # top-left corner (x, y)
SCENE_PIXEL_M = 10.0  # Sentinel-2's 10 m bands
NODATA_PATCH = -1  # a layout cell of zeros (the all-zero border of a Sentinel-2 product)


def scene_patch(label: int, rng: np.random.Generator, modality: str, rgb_dn: bool = False) -> np.ndarray:
    """One [64, 64, C] patch of a scene: uint8 RGB, uint16 RGB digital numbers (`rgb_dn`, the inverse
    of EuroSAT's 0..2750 -> 1..255 scaling) or uint16 13 bands; zeros for NODATA_PATCH."""
    record = modalities.get(modality)
    dtype = np.uint16 if rgb_dn else np.dtype(record.pixel_dtype)
    if label == NODATA_PATCH:
        return np.zeros((modalities.IMAGE_SIZE, modalities.IMAGE_SIZE, record.channels), dtype)
    patch = synthetic_patch(modality, label, rng)
    if rgb_dn:
        scaled: np.ndarray = np.clip(np.rint((patch.astype(np.float32) - 1.0) * (2750.0 / 254.0)), 0, None)
        return scaled.astype(np.uint16)
    return patch


def write_synthetic_scene(path: str, layout: np.ndarray, modality: str = features.RGB, seed: int = 0,
                          rgb_dn: bool = False, crs: str = SCENE_CRS) -> str:
    """A GeoTIFF whose 64x64 patch (i, j) is a synthetic patch of class layout[i, j] (NODATA_PATCH:
    zeros), 10 m pixels from SCENE_ORIGIN. Written one patch row at a time (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    layout = np.asarray(layout)
    size = modalities.IMAGE_SIZE
    rng = np.random.default_rng(seed)
    channels = features.channels(modality)
    dtype = "uint16" if rgb_dn else modalities.get(modality).pixel_dtype
    profile = dict(driver="GTiff", width=layout.shape[1] * size, height=layout.shape[0] * size, count=channels,
                   dtype=dtype, crs=crs, transform=from_origin(*SCENE_ORIGIN, SCENE_PIXEL_M, SCENE_PIXEL_M),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   **({"photometric": "RGB"} if channels == 3 else {}))
    with rasterio.open(path, "w", **profile) as dst:
        for i, labels in enumerate(layout):
            strip = np.concatenate([scene_patch(int(label), rng, modality, rgb_dn) for label in labels], axis=1)
            dst.write(np.moveaxis(strip, -1, 0), window=Window(0, i * size, strip.shape[1], size))
    return path
