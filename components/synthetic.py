"""A synthetic EuroSAT look-alike, so that the pipeline and its tests run offline.

Each class gets a texture that resembles what it is from above (water smooth and blue, forest
dark green and blotchy, a highway a grey band, residential a grid of roofs, crops stripes ...),
with random orientation, colour jitter and noise, so a model has to learn the textures and
can reach high accuracy. Images are 64x64 RGB JPEGs written as tf.Examples in the contract of
components.features, named like the EuroSAT archive's files (``Forest/Forest_17.jpg``).

The 13-band mode (``synthetic/all:N``) turns the same textures into Sentinel-2 digital numbers:
the visible bands (B02-B04) follow the RGB picture and the other bands each class's typical
spectrum (vegetation bright in the red edge and near infrared, water dark there, built-up
areas bright in the short-wave infrared), modulated by the texture, named ``Forest/Forest_17.tif``.
"""
from __future__ import annotations

import io
import os
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from components import features
from components.errors import DataError

Painter = Callable[[np.random.Generator, int], np.ndarray]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))


def _rotated(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates rotated by a random angle: textures get random orientations."""
    x, y = _grid(size)
    a = rng.uniform(0, np.pi)
    c = size / 2
    return (x - c) * np.cos(a) + (y - c) * np.sin(a), -(x - c) * np.sin(a) + (y - c) * np.cos(a)


def _blobs(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Smooth random field in [0, 1] (upsampled noise): canopy, fields, scrub."""
    coarse = rng.random((size // scale + 2, size // scale + 2)).astype(np.float32)
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize(
        (size + 2 * scale, size + 2 * scale), Image.BICUBIC
    )
    return np.asarray(img, dtype=np.float32)[scale : scale + size, scale : scale + size] / 255.0


def _fill(size: int, colour) -> np.ndarray:
    return np.ones((size, size, 3), np.float32) * np.asarray(colour, np.float32)


def _jitter(rng: np.random.Generator, colour, amount: float = 12.0) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.normal(0, amount, 3)


def _annual_crop(rng, size):
    u, _ = _rotated(rng, size)
    period = rng.uniform(6, 12)
    stripes = (np.sin(2 * np.pi * u / period) > 0)[..., None]
    a, b = _jitter(rng, (150, 120, 80)), _jitter(rng, (110, 150, 70))
    return np.where(stripes, a, b) * np.ones((size, size, 3), np.float32)


def _forest(rng, size):
    field = _blobs(rng, size, 6)[..., None]
    return _fill(size, _jitter(rng, (25, 60, 30), 6)) + field * np.array([15, 35, 10], np.float32)


def _herbaceous(rng, size):
    field = _blobs(rng, size, 4)[..., None]
    return _fill(size, _jitter(rng, (110, 130, 70))) + field * np.array([60, 50, 20], np.float32)


def _highway(rng, size):
    u, v = _rotated(rng, size)
    img = _fill(size, _jitter(rng, (100, 120, 80))) + _blobs(rng, size, 8)[..., None] * 30
    road = (np.abs(v - rng.uniform(-8, 8)) < rng.uniform(3, 6))[..., None]
    return np.where(road, _jitter(rng, (130, 130, 135), 8), img)


def _industrial(rng, size):
    img = _fill(size, _jitter(rng, (120, 115, 110)))
    for _ in range(rng.integers(3, 7)):
        x0, y0 = rng.integers(0, size - 12, 2)
        w, h = rng.integers(10, 30, 2)
        img[y0 : y0 + h, x0 : x0 + w] = _jitter(rng, (200, 200, 205), 20)
    return img


def _pasture(rng, size):
    field = _blobs(rng, size, 16)[..., None]
    return _fill(size, _jitter(rng, (120, 160, 80))) + field * 20


def _permanent_crop(rng, size):
    u, v = _rotated(rng, size)
    period = rng.uniform(5, 8)
    dots = ((np.cos(2 * np.pi * u / period) > 0.5) & (np.cos(2 * np.pi * v / period) > 0.5))[..., None]
    return np.where(dots, _jitter(rng, (50, 90, 40)), _jitter(rng, (150, 130, 90))) * np.ones(
        (size, size, 3), np.float32
    )


def _residential(rng, size):
    u, v = _rotated(rng, size)
    block = rng.uniform(9, 14)
    road = ((np.mod(u, block) < 2.5) | (np.mod(v, block) < 2.5))[..., None]
    roofs = _fill(size, _jitter(rng, (170, 110, 100))) + _blobs(rng, size, 3)[..., None] * 50
    return np.where(road, _jitter(rng, (110, 110, 110), 8), roofs)


def _river(rng, size):
    u, v = _rotated(rng, size)
    img = _fill(size, _jitter(rng, (70, 110, 60))) + _blobs(rng, size, 8)[..., None] * 30
    centre = rng.uniform(4, 10) * np.sin(u / rng.uniform(6, 12) + rng.uniform(0, 6))
    water = (np.abs(v - centre) < rng.uniform(3, 7))[..., None]
    return np.where(water, _jitter(rng, (40, 70, 120), 8), img)


def _sea_lake(rng, size):
    field = _blobs(rng, size, 32)[..., None]
    return _fill(size, _jitter(rng, (20, 50, 100), 8)) + field * 10


PAINTERS: dict[str, Painter] = {
    "AnnualCrop": _annual_crop,
    "Forest": _forest,
    "HerbaceousVegetation": _herbaceous,
    "Highway": _highway,
    "Industrial": _industrial,
    "Pasture": _pasture,
    "PermanentCrop": _permanent_crop,
    "Residential": _residential,
    "River": _river,
    "SeaLake": _sea_lake,
}
assert tuple(PAINTERS) == features.CLASS_NAMES, "one painter per EuroSAT class, in order"


def synthetic_image(label: int, rng: np.random.Generator, size: int = features.IMAGE_SIZE) -> np.ndarray:
    """One uint8 [size, size, 3] image of class `label`, with sensor-like noise."""
    img = PAINTERS[features.class_name(label)](rng, size)
    img = img + rng.normal(0, 6, img.shape)  # sensor noise
    img = img * rng.uniform(0.85, 1.15)  # illumination
    return np.clip(img, 0, 255).astype(np.uint8)


# Typical Sentinel-2 L1C digital numbers per class, bands B01..B12 (B08A after B08): the spectral
# shapes that separate the classes in the real all-bands data, rounded.
SPECTRA: dict[str, tuple[int, ...]] = {
    #                      B01   B02   B03   B04   B05   B06   B07   B08  B08A   B09 B10   B11   B12
    "AnnualCrop":         (1300, 1100, 1050, 1200, 1450, 2000, 2300, 2250, 2500, 750, 15, 2400, 1700),
    "Forest":             (1200,  900,  750,  550,  900, 2100, 2600, 2500, 2800, 850, 12, 1500,  700),
    "HerbaceousVegetation": (1250, 1000, 950,  900, 1250, 2200, 2600, 2550, 2850, 850, 13, 2100, 1300),
    "Highway":            (1350, 1150, 1100, 1150, 1400, 1900, 2150, 2100, 2350, 700, 14, 2200, 1650),
    "Industrial":         (1600, 1450, 1450, 1550, 1700, 1850, 1950, 1900, 2050, 650, 16, 2500, 2100),
    "Pasture":            (1250,  950,  900,  750, 1150, 2400, 2900, 2850, 3150, 900, 13, 2000, 1100),
    "PermanentCrop":      (1300, 1050, 1000, 1000, 1350, 2100, 2450, 2400, 2650, 800, 14, 2300, 1500),
    "Residential":        (1450, 1250, 1200, 1250, 1450, 1900, 2100, 2050, 2250, 700, 15, 2300, 1800),
    "River":              (1300, 1050,  950,  800, 1000, 1500, 1700, 1650, 1800, 550, 12, 1300,  850),
    "SeaLake":            (1250, 1000,  800,  500,  450,  380,  360,  300,  260, 120, 10,  120,   70),
}
assert tuple(SPECTRA) == features.CLASS_NAMES and all(len(v) == features.NUM_BANDS for v in SPECTRA.values())
_VISIBLE = {1: 2, 2: 1, 3: 0}  # band index -> RGB channel: B02 blue, B03 green, B04 red


def synthetic_bands(label: int, rng: np.random.Generator, size: int = features.IMAGE_SIZE) -> np.ndarray:
    """One uint16 [size, size, 13] patch of class `label`: the RGB texture, in Sentinel-2 bands."""
    rgb = synthetic_image(label, rng, size).astype(np.float32) / 255.0
    texture = rgb.mean(-1, keepdims=True)
    texture = texture / max(float(texture.mean()), 1e-3)  # relative brightness, mean 1
    spectrum = np.asarray(SPECTRA[features.class_name(label)], np.float32)
    spectrum = spectrum * rng.uniform(0.9, 1.1, features.NUM_BANDS)  # per-scene variation
    bands = texture * spectrum
    for band, channel in _VISIBLE.items():
        bands[..., band] = rgb[..., channel] * features.TRUE_COLOUR_SCALE
    bands = bands + rng.normal(0, 20, bands.shape)  # sensor noise
    return np.clip(np.round(bands), 0, features.BANDS_MAX).astype(np.uint16)


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def synthetic_examples(num_examples: int, seed: int = 0) -> Iterator[tuple[bytes, int, str]]:
    """(jpeg bytes, label, source name) for `num_examples` images, classes balanced, reproducible."""
    for label, rng, name in _balanced(num_examples, seed, ".jpg"):
        yield encode_jpeg(synthetic_image(label, rng)), label, name


def synthetic_band_examples(num_examples: int, seed: int = 0) -> Iterator[tuple[np.ndarray, int, str]]:
    """(uint16 [64, 64, 13] bands, label, source name): the 13-band counterpart of synthetic_examples."""
    for label, rng, name in _balanced(num_examples, seed, ".tif"):
        yield synthetic_bands(label, rng), label, name


def _balanced(num_examples: int, seed: int, suffix: str) -> Iterator[tuple[int, np.random.Generator, str]]:
    rng = np.random.default_rng(seed)
    counters = [0] * features.NUM_CLASSES
    for i in range(num_examples):
        label = i % features.NUM_CLASSES
        counters[label] += 1
        name = features.class_name(label)
        yield label, rng, f"{name}/{name}_{counters[label]}{suffix}"


def synthetic_records(num_examples: int, seed: int = 0, modality: str = features.RGB) -> Iterator[bytes]:
    """Serialized contract tf.Examples of a synthetic set in `modality`."""
    if features.check_modality(modality) == features.RGB:
        for jpeg, label, source in synthetic_examples(num_examples, seed):
            yield features.make_example(jpeg, label, f"synthetic/{source}").SerializeToString()
    else:
        for bands, label, source in synthetic_band_examples(num_examples, seed):
            yield features.make_bands_example(bands, label, f"synthetic/{source}").SerializeToString()


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
    marker = os.path.join(output_dir, "_COMPLETE")
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
    channels = features.channels(modality)
    dtype = np.uint8 if modality == features.RGB and not rgb_dn else np.uint16
    if label == NODATA_PATCH:
        return np.zeros((features.IMAGE_SIZE, features.IMAGE_SIZE, channels), dtype)
    if modality == features.ALL_BANDS:
        return synthetic_bands(label, rng)
    image = synthetic_image(label, rng)
    if rgb_dn:
        return np.clip(np.rint((image.astype(np.float32) - 1.0) * (2750.0 / 254.0)), 0, None).astype(np.uint16)
    return image


def write_synthetic_scene(path: str, layout: np.ndarray, modality: str = features.RGB, seed: int = 0,
                          rgb_dn: bool = False, crs: str = SCENE_CRS) -> str:
    """A GeoTIFF whose 64x64 patch (i, j) is a synthetic patch of class layout[i, j] (NODATA_PATCH:
    zeros), 10 m pixels from SCENE_ORIGIN. Written one patch row at a time (bounded memory)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    layout = np.asarray(layout)
    size = features.IMAGE_SIZE
    rng = np.random.default_rng(seed)
    channels = features.channels(modality)
    dtype = "uint8" if modality == features.RGB and not rgb_dn else "uint16"
    profile = dict(driver="GTiff", width=layout.shape[1] * size, height=layout.shape[0] * size, count=channels,
                   dtype=dtype, crs=crs, transform=from_origin(*SCENE_ORIGIN, SCENE_PIXEL_M, SCENE_PIXEL_M),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   **({"photometric": "RGB"} if channels == 3 else {}))
    with rasterio.open(path, "w", **profile) as dst:
        for i, labels in enumerate(layout):
            strip = np.concatenate([scene_patch(int(label), rng, modality, rgb_dn) for label in labels], axis=1)
            dst.write(np.moveaxis(strip, -1, 0), window=Window(0, i * size, strip.shape[1], size))
    return path
