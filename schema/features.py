"""The EuroSAT example contract: class names, feature keys, the image decode and the band reader.

Every source (synthetic, TFDS, archive folders, existing TFRecords) writes tf.Examples with
these features, Transform reads them, and the serving signatures decode images with the same
functions, so training and serving cannot skew. Nothing else in the project spells a feature
key or a class name.

Two modalities, named like TFDS's EuroSAT configs:

* ``rgb``: ``image`` holds the encoded JPEG/PNG bytes (the EuroSAT RGB archive);
* ``all``: ``bands`` holds the 13 Sentinel-2 bands as a fixed-shape int64 feature [64, 64, 13]
  of the L1C digital numbers (reflectance x 10,000, uint16 range), in the band order of the
  all-bands GeoTIFFs (modalities.BAND_NAMES: B01 ... B12, then B8A 13th). Numeric, so statistics and the schema can
  check the values, and Transform standardises each band with its own mean and deviation.

Both carry ``label``, ``class_name`` and ``source``; a dataset holds one modality. The ExampleGen adds
``patch_mean`` to every example it writes (``with_patch_mean``): the per-band mean of the patch, a
numeric feature TFDV can compare between spans and with a model's training data (on RGB the pixels
are inside JPEG bytes, which TFDV cannot read). Only statistics use it: the model never takes it as an
input and requests never carry it (``not_in_environment: "SERVING"`` in the curated schemas).
"""
from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Dict

import numpy as np
from numpy.typing import ArrayLike

from schema import modalities, records
from schema.classes import CLASS_NAMES as CLASS_NAMES  # re-exported: the contract
from schema.classes import NUM_CLASSES as NUM_CLASSES
from schema.modalities import BAND_NAMES as BAND_NAMES  # re-exported: the contract
from schema.modalities import IMAGE_SIZE as IMAGE_SIZE

if TYPE_CHECKING:  # TensorFlow loads in the functions that use it: command lines check their input first
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import schema_pb2


RGB_CHANNELS = modalities.RGB.channels

# Modalities (TFDS eurosat/rgb and eurosat/all): their records are in schema.modalities.
RGB = modalities.RGB.name
ALL_BANDS = modalities.ALL_BANDS.name
MODALITIES = modalities.NAMES

NUM_BANDS = len(BAND_NAMES)
BANDS_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, NUM_BANDS)
BANDS_MAX = 65535  # 16-bit digital numbers
TRUE_COLOUR_BANDS = (3, 2, 1)  # B04 red, B03 green, B02 blue: for pictures of 13-band data
TRUE_COLOUR_SCALE = 3000.0  # reflectance 0.3 shown as white, the usual Sentinel-2 true-colour stretch

# Raw (tf.Example) feature keys.
IMAGE_KEY = modalities.RGB.feature_key  # encoded JPEG/PNG bytes (rgb)
BANDS_KEY = modalities.ALL_BANDS.feature_key  # int64 [64, 64, 13] digital numbers (all)
LABEL_KEY = "label"  # int64 class id in CLASS_NAMES order
CLASS_NAME_KEY = "class_name"  # the class name, for people and slicing
SOURCE_KEY = "source"  # the source file name: traces a prediction back to its file

# Transformed feature keys (what the Trainer reads).
# float32 [IMAGE_SIZE, IMAGE_SIZE, C]: RGB scaled to [0, 1], or 13 bands standardised per band.
TRANSFORMED_IMAGE_KEY = "image_xf"
TRANSFORMED_LABEL_KEY = "label_xf"  # int64 class id
TRANSFORMED_ONEHOT_KEY = "label_onehot"  # float32 [NUM_CLASSES]
# float32 [C]: each patch's per-band mean and mean of squares, in the units a scene delivers (RGB: the
# uint8 values; 13 bands: the digital numbers); the Trainer sums them into the model's training statistics.
# `patch_mean` is also a raw feature, the same values: the ExampleGen adds it (with_patch_mean) for the
# drift and skew gates' statistics; Transform recomputes its own from the pixels (serving sends none).
PATCH_MEAN_KEY = "patch_mean"
PATCH_MEAN_SQ_KEY = "patch_mean_sq"
# The raw features only the ingestion writes, for statistics: not a model input, not in a request.
INGESTION_ONLY_KEYS = (PATCH_MEAN_KEY,)
# The schema environments (TFDV): training data carries every feature, a request not the INGESTION_ONLY_KEYS.
TRAINING_ENVIRONMENT = "TRAINING"
SERVING_ENVIRONMENT = "SERVING"


def class_name(label: int) -> str:
    """The EuroSAT class name of a label id, with a clear error for unknown ids."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f"label {label} is not a EuroSAT class id (0..{NUM_CLASSES - 1}).")
    return CLASS_NAMES[int(label)]


def class_id(name: str) -> int:
    """The label id of a EuroSAT class name; names the known classes when it is unknown."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown class {name!r}; EuroSAT classes are: {', '.join(CLASS_NAMES)}"
        ) from None


def check_modality(modality: str) -> str:
    """`modality` when it is a registered modality; ValueError naming the registered ones otherwise."""
    return modalities.get(modality).name


def input_key(modality: str = RGB) -> str:
    """The feature that carries the pixels: `image` (rgb) or `bands` (all)."""
    return modalities.get(modality).feature_key


def channels(modality: str = RGB) -> int:
    """How many channels the model sees for `modality`: the decoded image's (rgb) or one per band."""
    return modalities.get(modality).channels


def raw_feature_spec(modality: str = RGB, with_patch_mean: bool = False) -> Dict[str, tf.io.FixedLenFeature]:
    """The tf.Example parsing spec of the raw examples of `modality`.

    `with_patch_mean` parses them as the ExampleGen writes them, with the per-band ``patch_mean`` (schema/*.pbtxt
    say the same).
    """
    import tensorflow as tf

    record = modalities.get(modality)
    spec = {
        record.feature_key: tf.io.FixedLenFeature(list(record.feature_shape), tf.dtypes.as_dtype(record.feature_dtype)),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
        CLASS_NAME_KEY: tf.io.FixedLenFeature([], tf.string),
        SOURCE_KEY: tf.io.FixedLenFeature([], tf.string),
    }
    if with_patch_mean:
        spec[PATCH_MEAN_KEY] = tf.io.FixedLenFeature([record.channels], tf.float32)
    return spec


def serving_feature_spec(modality: str = RGB) -> Dict[str, tf.io.FixedLenFeature]:
    """What a request must carry: the pixels only (labels and metadata are optional)."""
    key = input_key(modality)
    return {key: raw_feature_spec(modality)[key]}


def _metadata(label: int, source: str) -> Dict[str, tf.train.Feature]:
    import tensorflow as tf

    name = class_name(label)
    return {
        LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        CLASS_NAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        SOURCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode()])),
    }


def make_example(image_bytes: bytes, label: int, source: str) -> tf.train.Example:
    """One raw RGB EuroSAT tf.Example in the contract's form."""
    return example_of(RGB, image_bytes, label, source)


def make_bands_example(bands: np.ndarray, label: int, source: str) -> tf.train.Example:
    """One raw 13-band EuroSAT tf.Example; `bands` is checked with check_bands first."""
    return example_of(ALL_BANDS, bands, label, source)


def example_of(modality: str, pixels: bytes | np.ndarray, label: int, source: str) -> tf.train.Example:
    """One raw tf.Example of `modality`, from its `pixels`, `label` and `source`.

    `pixels` are encoded image bytes for an encoded modality, the band array for the others (checked with
    check_bands: a 13-band patch is cut to the modality's bands).
    """
    import tensorflow as tf

    record = modalities.get(modality)
    if record.encoded:
        assert isinstance(pixels, bytes), f"{record.name}: pixels are encoded image bytes"
        pixel_feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels]))
    else:
        values = check_bands(np.asarray(pixels), modality).ravel().astype(np.int64)
        pixel_feature = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    feature = {record.feature_key: pixel_feature, **_metadata(label, source)}
    return tf.train.Example(features=tf.train.Features(feature=feature))


def patch_mean(modality: str, pixels: bytes | np.ndarray) -> np.ndarray:
    """The per-band mean of one patch, float32 [C], in the units a scene delivers (the patch_mean Transform computes).

    Encoded images are decoded once as Transform decodes them (uint8 values); band arrays (the modality's bands,
    checked with check_bands) are averaged as digital numbers.
    """
    record = modalities.get(modality)
    if record.encoded:
        assert isinstance(pixels, bytes), f"{record.name}: pixels are encoded image bytes"
        values = decode_image(pixels).numpy().astype(np.float64) * 255.0
    else:
        values = check_bands(np.asarray(pixels), modality).astype(np.float64)
    means: np.ndarray = values.reshape(-1, record.channels).mean(axis=0).astype(np.float32)
    return means


def with_patch_mean(example: tf.train.Example, modality: str | None = None) -> tf.train.Example:
    """`example` with its ``patch_mean`` feature (patch_mean of its pixels), replaced if it had one.

    This is what the ExampleGen writes. `modality` is the example's; modality_of finds it when not given.
    """
    import tensorflow as tf

    record = modalities.get(modality or modality_of(example))
    pixel = example.features.feature[record.feature_key]
    if record.encoded:
        pixels: bytes | np.ndarray = pixel.bytes_list.value[0]
    else:
        pixels = np.asarray(pixel.int64_list.value, np.int64).reshape(record.feature_shape)
    out = tf.train.Example()
    out.CopyFrom(example)
    out.features.feature[PATCH_MEAN_KEY].float_list.value[:] = patch_mean(record.name, pixels).tolist()
    return out


def check_bands(bands: np.ndarray, modality: str = ALL_BANDS) -> np.ndarray:
    """The bands of `modality` as uint16 [64, 64, C], or ValueError saying what is wrong with them.

    Band-first arrays ([C, 64, 64], as some GeoTIFF writers store them) are transposed. A 13-band
    patch (EuroSAT's GeoTIFFs) given for a modality of fewer bands is cut to that modality's bands
    (modalities.Modality.band_indices). Other sizes are rejected rather than resampled: resampling
    would change what a pixel means (10/20/60 m bands), which is the user's call, not the
    converter's. Integer values must fit 16 bits; float arrays are accepted only when they hold
    whole numbers in that range (TFDS's eurosat/all gives the digital numbers as float32), not
    scaled reflectances in [0, 1].
    """
    record = modalities.get(modality)
    count = record.channels
    bands = np.asarray(bands)
    accepted = {count, NUM_BANDS}
    if bands.ndim == 3 and bands.shape[0] in accepted and bands.shape[-1] not in accepted:
        bands = np.transpose(bands, (1, 2, 0))
    if bands.ndim == 3 and bands.shape[-1] == NUM_BANDS != count:
        bands = bands[..., list(record.band_indices)]
    if bands.ndim != 3 or bands.shape[-1] != count:
        raise ValueError(
            f"expected {count} Sentinel-2 bands ({', '.join(record.band_names)}), got an array of shape "
            f"{bands.shape}; EuroSAT {record.name} patches are {IMAGE_SIZE}x{IMAGE_SIZE}x{count}"
        )
    if bands.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"size {bands.shape[1]}x{bands.shape[0]}: {count}-band patches must be {IMAGE_SIZE}x{IMAGE_SIZE} "
            "(they are not resampled; crop or resample them yourself if that is what you want)"
        )
    if bands.dtype.kind == "f":
        if not np.all(np.isfinite(bands)) or np.any(bands != np.round(bands)):
            raise ValueError(
                "bands hold non-integer values: expected Sentinel-2 L1C digital numbers "
                f"(reflectance x 10000, 0..{BANDS_MAX}), not scaled reflectances"
            )
    elif bands.dtype.kind not in "iu":
        raise ValueError(f"bands have dtype {bands.dtype}; expected 16-bit integer digital numbers")
    if bands.size and (bands.min() < 0 or bands.max() > BANDS_MAX):
        raise ValueError(
            f"band values {bands.min()}..{bands.max()} outside 0..{BANDS_MAX}: expected 16-bit "
            "Sentinel-2 L1C digital numbers"
        )
    return bands.astype(np.uint16)


def read_bands(data: bytes, modality: str = ALL_BANDS) -> np.ndarray:
    """Read a GeoTIFF's bytes into uint16 [64, 64, C], the bands of `modality`; ValueError says why not.

    check_bands checks them, so a 13-band GeoTIFF serves every band-subset modality.
    """
    import tifffile

    try:
        bands = tifffile.imread(io.BytesIO(data))
    except Exception as err:  # tifffile raises many types for corrupt/truncated/non-TIFF input
        raise ValueError(f"cannot decode GeoTIFF: {type(err).__name__}: {err}") from None
    if bands.size == 0:  # a TIFF header with nothing readable after it (tifffile only warns)
        raise ValueError("cannot decode GeoTIFF: no image data")
    return check_bands(bands, modality)


def raw_schema(modality: str = RGB, with_patch_mean: bool = False) -> schema_pb2.Schema:
    """The raw examples' schema (TFDV/ImportSchemaGen's proto) of `modality`, from its record alone.

    It holds the pixel feature (an image domain for encoded images; the shape and the 16-bit range of band values
    otherwise), then the label, class name and source every modality shares; `with_patch_mean` adds the
    ExampleGen's ``patch_mean`` (one float per band, in the pixels' range, not in the SERVING environment). The
    curated schema/*.pbtxt files are exactly this with patch_mean for rgb and all, less their drift and skew
    comparators (tests/test_modality_registry.py).
    """
    from tensorflow_metadata.proto.v0 import schema_pb2

    record = modalities.get(modality)
    schema = schema_pb2.Schema()
    pixels = schema.feature.add(name=record.feature_key)
    pixels.type = schema_pb2.BYTES if record.feature_dtype == "string" else schema_pb2.INT
    pixels.presence.min_fraction, pixels.presence.min_count = 1.0, 1
    pixels.shape.SetInParent()
    for size in record.feature_shape:
        pixels.shape.dim.add(size=size)
    if record.encoded:
        pixels.image_domain.SetInParent()
    else:
        pixels.int_domain.name, pixels.int_domain.min, pixels.int_domain.max = record.feature_key, 0, BANDS_MAX
    label = schema.feature.add(name=LABEL_KEY, type=schema_pb2.INT)
    label.int_domain.name, label.int_domain.min, label.int_domain.max = LABEL_KEY, 0, NUM_CLASSES - 1
    label.int_domain.is_categorical = True
    schema.feature.add(name=CLASS_NAME_KEY, type=schema_pb2.BYTES, domain=CLASS_NAME_KEY)
    schema.feature.add(name=SOURCE_KEY, type=schema_pb2.BYTES)
    for feature in schema.feature[1:]:
        feature.presence.min_fraction, feature.presence.min_count = 1.0, 1
        feature.shape.SetInParent()
    if with_patch_mean:
        mean = schema.feature.add(name=PATCH_MEAN_KEY, type=schema_pb2.FLOAT)
        mean.presence.min_fraction, mean.presence.min_count = 1.0, 1
        mean.shape.dim.add(size=record.channels)
        mean.float_domain.min, mean.float_domain.max = 0.0, float(255 if record.encoded else BANDS_MAX)
        mean.not_in_environment.append(SERVING_ENVIRONMENT)
        schema.default_environment.extend([TRAINING_ENVIRONMENT, SERVING_ENVIRONMENT])
    schema.string_domain.add(name=CLASS_NAME_KEY, value=CLASS_NAMES)
    return schema


def encode_bands_tiff(bands: np.ndarray) -> bytes:
    """A TIFF of `bands` [H, W, C] as given, for synthetic sets and tests, including wrong ones.

    The bands are pixel-interleaved, like EuroSAT's all-bands GeoTIFFs, without the geo tags.
    """
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.asarray(bands), photometric="minisblack", planarconfig="contig")
    return buf.getvalue()


def true_colour(bands: ArrayLike) -> np.ndarray:
    """A displayable RGB picture (float [H, W, 3] in [0, 1]) of 13-band data (B04, B03, B02)."""
    values = np.asarray(bands, np.float32).reshape(BANDS_SHAPE)
    picture: np.ndarray = np.clip(values[..., list(TRUE_COLOUR_BANDS)] / TRUE_COLOUR_SCALE, 0.0, 1.0)
    return picture


def modality_of(example: tf.train.Example) -> str:
    """Which modality a raw tf.Example is in; ValueError when it carries neither pixel feature."""
    keys = example.features.feature
    try:
        return modalities.of_feature_keys(keys).name
    except KeyError:
        pass
    known = " nor ".join(f"{m.feature_key!r} ({m.description})" for m in modalities.REGISTRY.values())
    raise ValueError(
        f"the example has neither {known}; "
        f"it has {sorted(keys)}. Write examples with schema.features.example_of."
    )


def detect_modality(records_dir: str) -> str:
    """The modality of a folder of raw TFRecords (GZIP or not), from its first example."""
    import tensorflow as tf

    files = sorted(
        os.path.join(d, f) for d, _, fs in tf.io.gfile.walk(records_dir) for f in fs if records.is_record_file(f)
    )
    if not files:
        raise ValueError(f"{records_dir!r} holds no TFRecord files ({records.RECORD_PATTERN})")
    compression = "GZIP" if files[0].endswith(".gz") else ""
    for record in tf.data.TFRecordDataset(files[:1], compression_type=compression).take(1):
        return modality_of(tf.train.Example.FromString(record.numpy()))
    raise ValueError(f"{files[0]!r} holds no examples")


def decode_image(encoded: tf.Tensor, image_size: int = IMAGE_SIZE) -> tf.Tensor:
    """Decode one encoded RGB image (JPEG/PNG/BMP/GIF) to float32 [size, size, 3] in [0, 1].

    Grayscale is expanded and alpha dropped (channels=3); an image of another size is resized
    with antialiasing (EuroSAT is 64x64; other folder-per-class sets may not be). Undecodable
    bytes raise InvalidArgumentError from TensorFlow's decoder.
    """
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=RGB_CHANNELS, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape([image_size, image_size, RGB_CHANNELS])
    return image


def decode_images(encoded: tf.Tensor, image_size: int = IMAGE_SIZE) -> tf.Tensor:
    """Decode a batch of encoded images: string [N] or [N, 1] -> float32 [N, size, size, 3]."""
    import tensorflow as tf

    encoded = tf.reshape(encoded, [-1])
    return tf.map_fn(
        lambda e: decode_image(e, image_size),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, RGB_CHANNELS], tf.float32),
    )
