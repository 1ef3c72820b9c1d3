"""One source file's bytes -> what is stored, or why not.

The validation and normalisation of the conversion (components.convert), pure functions the tests call directly.

RGB: decodable by the contract's decoder, declared size bounded before decoding (decompression
bombs), not too small; other sizes, modes and formats are normalised to 64x64 RGB PNG.
13 bands: features.read_bands' checks (13 bands, 64x64, 16-bit digital numbers), never resampled.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
from typing import Optional

from schema import features, modalities

STORED_AS_IS = ("JPEG", "PNG")  # formats the contract's decoder reads; others are re-encoded
MAX_IMAGE_PIXELS = 4096 * 4096
MIN_IMAGE_SIDE = 16  # a smaller image holds too little to become a 64x64 patch


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of the source: `source` is its path relative to the class root (Forest/Forest_1.jpg)."""

    path: str  # a file on any Beam filesystem, or a member name of `archive`
    source: str
    label: Optional[int]  # None: cannot be used, see `problem`
    problem: Optional[str] = None
    archive: Optional[str] = None  # the .zip `path` is read from (in place, never unpacked)
    size: int = 0  # bytes, as listed
    stamp: str = ""  # modification time (files) or CRC (zip members): part of the fingerprint


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A usable file.

    The bytes to store (the encoded image for rgb, the uint16 [64, 64, 13] band array's bytes for all), their hash
    (duplicates are found on it) and whether they were normalized (and why).
    """

    image: bytes
    sha256: str
    normalized: Optional[str] = None


def prepare_bands(data: bytes, modality: str = features.ALL_BANDS) -> Prepared:
    """Validate one GeoTIFF's bytes as band values of `modality`.

    features.read_bands reads them (its ValueError says why not), and a 13-band GeoTIFF is cut to a band-subset
    modality's bands. The stored bytes are the uint16 band values, so duplicates are found on the pixels, not the tags.
    """
    try:
        _check_declared_bands(data)
        bands = features.read_bands(data, modality)
    except ValueError as err:
        message = str(err)
        if not message.startswith("cannot decode"):
            message = f"unusable {modalities.get(modality).channels}-band GeoTIFF: {message}"
        raise ValueError(message) from None
    raw = bands.tobytes()
    return Prepared(raw, hashlib.sha256(raw).hexdigest())


def _check_declared_bands(data: bytes) -> None:
    """A GeoTIFF's shape from its header, before decoding.

    Refuse what could not be a patch and would be expensive to decode (features.read_bands then checks the exact
    shape).
    """
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            shape = tif.series[0].shape
    except Exception:  # unreadable header: read_bands says why
        return
    values = 1
    for n in shape:
        values *= n
    if values > MAX_IMAGE_PIXELS:
        raise ValueError(f"cannot decode GeoTIFF: it declares shape {tuple(shape)}, more than "
                         f"{MAX_IMAGE_PIXELS:,} values: refused before decoding")


def to_example(stored: bytes, label: int, source: str, modality: str):
    """The contract tf.Example of one prepared file (Prepared.image) in `modality`."""
    record = modalities.get(modality)
    if record.encoded:  # stored: the image file's bytes
        return features.example_of(modality, stored, label, source)
    import numpy as np

    values = np.frombuffer(stored, dtype=record.pixel_dtype).reshape(record.feature_shape)
    return features.example_of(modality, values, label, source)


def check_declared_size(width: int, height: int) -> None:
    """An image's size as its header declares it, checked before decoding.

    ValueError when it is too large to decode safely (a decompression bomb) or too small to be a patch.
    """
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"image declares {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,}-pixel "
                         "limit: refused before decoding (a EuroSAT patch is 64x64)")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ValueError(f"image of {width}x{height} pixels, smaller than the {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} "
                         "minimum: too little to become a 64x64 patch")


def prepare_image(data: bytes, image_size: int = modalities.IMAGE_SIZE) -> Prepared:
    """Validate one file's bytes.

    64x64 RGB JPEG/PNG are kept as they are, anything else that decodes is converted to 64x64 RGB PNG. Raises
    ValueError saying why a file is unusable.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            check_declared_size(*img.size)  # from the header, before any pixel is decoded
            img.load()  # full decode: catches truncated and corrupt files
            fmt, mode, size = img.format, img.mode, img.size
            reasons = []
            if size != (image_size, image_size):
                reasons.append(f"size {size[0]}x{size[1]} resized to {image_size}x{image_size}")
            if mode != "RGB":
                reasons.append(f"mode {mode} converted to RGB")
            if fmt not in STORED_AS_IS:
                reasons.append(f"{fmt} re-encoded as PNG")
            if reasons:
                rgb = img.convert("RGB")
                if size != (image_size, image_size):
                    rgb = rgb.resize((image_size, image_size), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                rgb.save(buf, format="PNG")
                data = buf.getvalue()
    except UnidentifiedImageError:
        raise ValueError("cannot decode image: not a recognised image format") from None
    except Image.DecompressionBombError as err:  # Pillow's own limit, should ours ever be higher
        raise ValueError(f"image refused as a decompression bomb: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot decode image: {err}") from None
    _check_contract_decode(data)
    return Prepared(data, hashlib.sha256(data).hexdigest(), "; ".join(reasons) or None)


_decode_fn = None


def _check_contract_decode(data: bytes) -> None:
    """The stored bytes must decode with the contract's decoder (what Transform and serving use).

    Traced once per process: calling the decoder eagerly costs as much as the rest of the check.
    """
    global _decode_fn
    import tensorflow as tf

    if _decode_fn is None:
        _decode_fn = tf.function(features.decode_image, input_signature=[tf.TensorSpec([], tf.string)])
    try:
        _decode_fn(tf.constant(data))
    except tf.errors.InvalidArgumentError as err:
        raise ValueError(f"TensorFlow cannot decode image: {err.message.splitlines()[0]}") from None


def bad_fraction_error(num_bad: int, num_files: int, max_bad_fraction: float, report: str) -> Optional[str]:
    """The error message when too many files are unusable, else None."""
    if num_files == 0:
        return "the source holds no files"
    if num_bad / num_files > max_bad_fraction:
        return (f"{num_bad} of {num_files} files ({num_bad / num_files:.1%}) cannot be used, more than "
                f"--max-bad-fraction {max_bad_fraction:g}; see {report} for each file and reason, fix "
                "or remove them, or raise --max-bad-fraction")
    return None


def prepare(data: bytes, modality: str) -> Prepared:
    """Validate one file's bytes as a patch of `modality`.

    prepare_image for an encoded modality, prepare_bands for band values.
    """
    if modalities.get(modality).encoded:
        return prepare_image(data)
    return prepare_bands(data, modality)
