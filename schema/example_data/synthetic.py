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

import dataclasses
import os
from typing import Any, Iterator, Optional, Sequence, Tuple

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
    "Shift", "DEMO_SHIFT", "VEGETATION", "shifted_samples", "write_synthetic_span",
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
    """One [64, 64, C] patch of a scene of one class.

    It is uint8 RGB, uint16 RGB digital numbers (`rgb_dn`, the inverse of EuroSAT's 0..2750 -> 1..255 scaling) or uint16
    13 bands; zeros for NODATA_PATCH.
    """
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
    """A GeoTIFF whose 64x64 patch (i, j) is a synthetic patch of class layout[i, j] (NODATA_PATCH: zeros).

    10 m pixels from SCENE_ORIGIN. Written one patch row at a time (bounded memory).
    """
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


# ---------------------------------------------------------------------------------------------
# New data as spans: a later span drawn from another class mix, with its vegetation brighter
# (another season, another region), for the drift gate and the two-span demo.
# ---------------------------------------------------------------------------------------------
VEGETATION = tuple(features.CLASS_NAMES.index(n) for n in
                   ("AnnualCrop", "Forest", "HerbaceousVegetation", "Pasture", "PermanentCrop"))


@dataclasses.dataclass(frozen=True)
class Shift:
    """How a span differs from the balanced synthetic set.

    `class_weights` (relative, one per class; None = balanced) and `vegetation_gain`, the factor on the vegetation
    classes' pixel values (RGB and every band; 1.0 = unchanged).
    """

    class_weights: Optional[Sequence[float]] = None
    vegetation_gain: float = 1.0

    def __post_init__(self) -> None:
        if self.class_weights is not None and (len(self.class_weights) != features.NUM_CLASSES
                                               or min(self.class_weights) < 0 or not sum(self.class_weights)):
            raise ValueError(f"class_weights: {features.NUM_CLASSES} non-negative weights, not all 0")
        if self.vegetation_gain <= 0:
            raise ValueError(f"vegetation_gain must be > 0, got {self.vegetation_gain}")

    def counts(self, num_examples: int) -> list[int]:
        """Examples per class: the weights' shares of `num_examples`, rounded by largest remainder."""
        weights = np.asarray(self.class_weights if self.class_weights is not None else [1.0] * features.NUM_CLASSES,
                             np.float64)
        exact = weights / weights.sum() * num_examples
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts), kind="stable")[: num_examples - int(counts.sum())]:
            counts[i] += 1
        return [int(c) for c in counts]


# The demo's shifted span: twice the crops and pastures, a third of the water and the built-up
# classes, vegetation 30 % brighter (an early-summer scene after a spring one).
DEMO_SHIFT = Shift(class_weights=(2, 1, 1, 0.34, 0.34, 2, 2, 0.34, 0.34, 0.34), vegetation_gain=1.3)


def _brighter(pixels: np.ndarray, gain: float) -> np.ndarray:
    limit = np.iinfo(pixels.dtype).max
    brighter: np.ndarray = np.clip(np.rint(pixels.astype(np.float32) * gain), 0, limit).astype(pixels.dtype)
    return brighter


def shifted_samples(modality: str, num_examples: int, seed: int = 0, shift: Shift = Shift(),
                    tag: str = "") -> Iterator[Tuple[Any, int, str]]:
    """(pixels, label, source name) like samples_of, drawn with `shift`.

    Encoded JPEGs (rgb) or uint16 bands (all). Names carry `tag` (``Forest/Forest_3_span-2.jpg``) so spans never
    share one.
    """
    from schema.samples import synthetic_patch

    record = modalities.get(modality)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(features.NUM_CLASSES), shift.counts(num_examples))
    rng.shuffle(labels)
    counters = [0] * features.NUM_CLASSES
    ext = ".jpg" if record.name == features.RGB else ".tif"
    suffix = f"_{tag}" if tag else ""
    for label in labels.tolist():
        counters[label] += 1
        pixels = synthetic_patch(record.name, label, rng)
        if label in VEGETATION and shift.vegetation_gain != 1.0:
            pixels = _brighter(pixels, shift.vegetation_gain)
        name = features.class_name(label)
        source = f"{name}/{name}_{counters[label]}{suffix}{ext}"
        yield (encode_jpeg(pixels) if record.name == features.RGB else pixels), label, source


def write_synthetic_span(folder: str, num_examples: int, seed: int = 0, shift: Shift = Shift(),
                         modality: str = features.RGB, with_patch_mean: bool = False) -> str:
    """One span of synthetic data as a folder of TFRecords of contract examples; returns the file written.

    It is what `--data` reads as a source; a span root holds span-1/, span-2/, ...
    `with_patch_mean`: the examples as the ExampleGen writes them (features.with_patch_mean), for
    statistics computed without the pipeline (benchmarks/drift_thresholds.py, tests).
    """
    import tensorflow as tf

    if num_examples < features.NUM_CLASSES:
        raise DataError(f"a span of {num_examples} examples is too small: ask for at least "
                        f"{features.NUM_CLASSES} (one per class)")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "synthetic-00000-of-00001.tfrecord")
    marker = os.path.join(folder, records.COMPLETE_MARKER)
    stamp = f"num_examples={num_examples} seed={seed} shift={shift} modality={modality}"
    stamp += " with_patch_mean\n" if with_patch_mean else "\n"
    if os.path.exists(marker) and open(marker).read() == stamp and os.path.exists(path):
        return path  # idempotent: the same span again is not rewritten (its identity, TFX's cache, hold)
    tag = os.path.basename(os.path.normpath(folder))
    with tf.io.TFRecordWriter(path) as writer:
        for pixels, label, source in shifted_samples(modality, num_examples, seed, shift, tag):
            example = features.example_of(modality, pixels, label, f"synthetic/{source}")
            if with_patch_mean:
                example = features.with_patch_mean(example, modality)
            writer.write(example.SerializeToString())
    with open(marker, "w") as f:
        f.write(stamp)
    return path
