"""A synthetic EuroSAT look-alike, so that the pipeline and its tests run offline.

Each class gets a texture that resembles what it is from above (water smooth and blue, forest
dark green and blotchy, a highway a grey band, residential a grid of roofs, crops stripes ...),
with random orientation, colour jitter and noise, so a model has to learn the textures and
can reach high accuracy. Images are 64x64 RGB JPEGs in the contract of
schema.features, named like the EuroSAT archive's files (``Forest/Forest_17.jpg``).

The 13-band mode (``synthetic/all:N``) turns the same textures into Sentinel-2 digital numbers:
the visible bands (B02-B04) follow the RGB picture and the other bands each class's typical
spectrum (vegetation bright in the red edge and near infrared, water dark there, built-up
areas bright in the short-wave infrared), modulated by the texture, named ``Forest/Forest_17.tif``.

Pure generators of contract-shaped samples (no files, no TensorFlow): the synthetic ingester
(schema.example_data.synthetic), the serving warm-up requests and the tests all draw from here.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Iterator, Tuple

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from schema import features, modalities

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


def _fill(size: int, colour: ArrayLike) -> np.ndarray:
    return np.ones((size, size, 3), np.float32) * np.asarray(colour, np.float32)


def _jitter(rng: np.random.Generator, colour: ArrayLike, amount: float = 12.0) -> np.ndarray:
    return np.asarray(colour, np.float32) + rng.normal(0, amount, 3)


def _annual_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    u, _ = _rotated(rng, size)
    period = rng.uniform(6, 12)
    stripes = (np.sin(2 * np.pi * u / period) > 0)[..., None]
    a, b = _jitter(rng, (150, 120, 80)), _jitter(rng, (110, 150, 70))
    return np.where(stripes, a, b) * np.ones((size, size, 3), np.float32)


def _forest(rng: np.random.Generator, size: int) -> np.ndarray:
    field = _blobs(rng, size, 6)[..., None]
    return np.asarray(_fill(size, _jitter(rng, (25, 60, 30), 6)) + field * np.array([15, 35, 10], np.float32))


def _herbaceous(rng: np.random.Generator, size: int) -> np.ndarray:
    field = _blobs(rng, size, 4)[..., None]
    return np.asarray(_fill(size, _jitter(rng, (110, 130, 70))) + field * np.array([60, 50, 20], np.float32))


def _highway(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _rotated(rng, size)
    img = _fill(size, _jitter(rng, (100, 120, 80))) + _blobs(rng, size, 8)[..., None] * 30
    road = (np.abs(v - rng.uniform(-8, 8)) < rng.uniform(3, 6))[..., None]
    return np.where(road, _jitter(rng, (130, 130, 135), 8), img)


def _industrial(rng: np.random.Generator, size: int) -> np.ndarray:
    img = _fill(size, _jitter(rng, (120, 115, 110)))
    for _ in range(rng.integers(3, 7)):
        x0, y0 = rng.integers(0, size - 12, 2)
        w, h = rng.integers(10, 30, 2)
        img[y0 : y0 + h, x0 : x0 + w] = _jitter(rng, (200, 200, 205), 20)
    return img


def _pasture(rng: np.random.Generator, size: int) -> np.ndarray:
    field = _blobs(rng, size, 16)[..., None]
    return np.asarray(_fill(size, _jitter(rng, (120, 160, 80))) + field * 20)


def _permanent_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _rotated(rng, size)
    period = rng.uniform(5, 8)
    dots = ((np.cos(2 * np.pi * u / period) > 0.5) & (np.cos(2 * np.pi * v / period) > 0.5))[..., None]
    return np.where(dots, _jitter(rng, (50, 90, 40)), _jitter(rng, (150, 130, 90))) * np.ones(
        (size, size, 3), np.float32
    )


def _residential(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _rotated(rng, size)
    block = rng.uniform(9, 14)
    road = ((np.mod(u, block) < 2.5) | (np.mod(v, block) < 2.5))[..., None]
    roofs = _fill(size, _jitter(rng, (170, 110, 100))) + _blobs(rng, size, 3)[..., None] * 50
    return np.where(road, _jitter(rng, (110, 110, 110), 8), roofs)


def _river(rng: np.random.Generator, size: int) -> np.ndarray:
    u, v = _rotated(rng, size)
    img = _fill(size, _jitter(rng, (70, 110, 60))) + _blobs(rng, size, 8)[..., None] * 30
    centre = rng.uniform(4, 10) * np.sin(u / rng.uniform(6, 12) + rng.uniform(0, 6))
    water = (np.abs(v - centre) < rng.uniform(3, 7))[..., None]
    return np.where(water, _jitter(rng, (40, 70, 120), 8), img)


def _sea_lake(rng: np.random.Generator, size: int) -> np.ndarray:
    field = _blobs(rng, size, 32)[..., None]
    return np.asarray(_fill(size, _jitter(rng, (20, 50, 100), 8)) + field * 10)


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


def synthetic_image(label: int, rng: np.random.Generator, size: int = modalities.IMAGE_SIZE) -> np.ndarray:
    """One uint8 [size, size, 3] image of class `label`, with sensor-like noise."""
    img = PAINTERS[features.class_name(label)](rng, size)
    img = img + rng.normal(0, 6, img.shape)  # sensor noise
    img = img * rng.uniform(0.85, 1.15)  # illumination
    return np.clip(img, 0, 255).astype(np.uint8)


# Typical Sentinel-2 L1C digital numbers per class, bands in EuroSAT's
# order (modalities.BAND_NAMES: B01 ... B08, B09 ... B12, then B8A 13th): the spectral
# shapes that separate the classes in the real all-bands data, rounded.
SPECTRA: dict[str, tuple[int, ...]] = {
    #                       B01   B02   B03   B04   B05   B06   B07   B08   B09   B10   B11   B12   B8A
    "AnnualCrop":         (1300, 1100, 1050, 1200, 1450, 2000, 2300, 2250,  750,   15, 2400, 1700, 2500),
    "Forest":             (1200,  900,  750,  550,  900, 2100, 2600, 2500,  850,   12, 1500,  700, 2800),
    "HerbaceousVegetation": (1250, 1000,  950,  900, 1250, 2200, 2600, 2550,  850,   13, 2100, 1300, 2850),
    "Highway":            (1350, 1150, 1100, 1150, 1400, 1900, 2150, 2100,  700,   14, 2200, 1650, 2350),
    "Industrial":         (1600, 1450, 1450, 1550, 1700, 1850, 1950, 1900,  650,   16, 2500, 2100, 2050),
    "Pasture":            (1250,  950,  900,  750, 1150, 2400, 2900, 2850,  900,   13, 2000, 1100, 3150),
    "PermanentCrop":      (1300, 1050, 1000, 1000, 1350, 2100, 2450, 2400,  800,   14, 2300, 1500, 2650),
    "Residential":        (1450, 1250, 1200, 1250, 1450, 1900, 2100, 2050,  700,   15, 2300, 1800, 2250),
    "River":              (1300, 1050,  950,  800, 1000, 1500, 1700, 1650,  550,   12, 1300,  850, 1800),
    "SeaLake":            (1250, 1000,  800,  500,  450,  380,  360,  300,  120,   10,  120,   70,  260),
}
assert tuple(SPECTRA) == features.CLASS_NAMES and all(len(v) == features.NUM_BANDS for v in SPECTRA.values())
_VISIBLE = {1: 2, 2: 1, 3: 0}  # band index -> RGB channel: B02 blue, B03 green, B04 red


def synthetic_bands(label: int, rng: np.random.Generator, size: int = modalities.IMAGE_SIZE) -> np.ndarray:
    """One uint16 [size, size, 13] patch of class `label`: the RGB texture, in Sentinel-2 bands."""
    rgb = synthetic_image(label, rng, size).astype(np.float32) / 255.0
    texture = rgb.mean(-1, keepdims=True)
    texture = texture / max(float(texture.mean()), 1e-3)  # relative brightness, mean 1
    spectrum = np.asarray(SPECTRA[features.class_name(label)], np.float32)
    spectrum = spectrum * rng.uniform(0.9, 1.1, features.NUM_BANDS).astype(np.float32)  # per-scene variation
    bands = texture * spectrum
    for band, channel in _VISIBLE.items():
        bands[..., band] = rgb[..., channel] * features.TRUE_COLOUR_SCALE
    bands = bands + rng.normal(0, 20, bands.shape)  # sensor noise
    patch: np.ndarray = np.clip(np.round(bands), 0, features.BANDS_MAX).astype(np.uint16)
    return patch


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """An RGB uint8 image as JPEG bytes."""
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


def samples_of(modality: str, num_examples: int, seed: int = 0) -> Iterator[Tuple[Any, int, str]]:
    """(pixels, label, source name) of `modality`.

    Encoded JPEGs (an encoded modality) or uint16 band arrays (the 13 bands cut to the modality's,
    modalities.Modality.band_indices).
    """
    record = modalities.get(modality)
    if record.encoded:
        return synthetic_examples(num_examples, seed)
    bands = list(record.band_indices)
    return ((b[..., bands], label, name) for b, label, name in synthetic_band_examples(num_examples, seed))


def synthetic_patch(modality: str, label: int, rng: np.random.Generator) -> np.ndarray:
    """One patch of class `label` as a raster holds it: uint8 RGB pixels or uint16 band values."""
    record = modalities.get(modality)
    if record.encoded:
        return synthetic_image(label, rng)
    return synthetic_bands(label, rng)[..., list(record.band_indices)]


def _balanced(num_examples: int, seed: int, suffix: str) -> Iterator[tuple[int, np.random.Generator, str]]:
    rng = np.random.default_rng(seed)
    counters = [0] * features.NUM_CLASSES
    for i in range(num_examples):
        label = i % features.NUM_CLASSES
        counters[label] += 1
        name = features.class_name(label)
        yield label, rng, f"{name}/{name}_{counters[label]}{suffix}"
