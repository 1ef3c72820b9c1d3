"""The EuroSAT example contract: class names, feature keys and the image decode.

Every source (synthetic, TFDS, archive folders, existing TFRecords) writes tf.Examples with
these features, Transform reads them, and the serving signatures decode images with the same
functions, so training and serving cannot skew. Nothing else in the project spells a feature
key or a class name.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Dict  # noqa: E402

import tensorflow as tf  # noqa: E402

# EuroSAT's class order (the label ids of TFDS eurosat and of the paper's archive).
CLASS_NAMES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
NUM_CLASSES = len(CLASS_NAMES)

IMAGE_SIZE = 64  # EuroSAT patches are 64x64 pixels (Sentinel-2, 10 m).
RGB_CHANNELS = 3

# Raw (tf.Example) feature keys.
IMAGE_KEY = "image"  # encoded JPEG/PNG bytes
LABEL_KEY = "label"  # int64 class id in CLASS_NAMES order
CLASS_NAME_KEY = "class_name"  # the class name, for people and slicing
SOURCE_KEY = "source"  # the source file name: traces a prediction back to its file

# Transformed feature keys (what the Trainer reads).
TRANSFORMED_IMAGE_KEY = "image_xf"  # float32 [IMAGE_SIZE, IMAGE_SIZE, C] scaled to [0, 1]
TRANSFORMED_LABEL_KEY = "label_xf"  # int64 class id
TRANSFORMED_ONEHOT_KEY = "label_onehot"  # float32 [NUM_CLASSES]


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


def raw_feature_spec() -> Dict[str, tf.io.FixedLenFeature]:
    """The tf.Example parsing spec of the raw examples (schema/schema.pbtxt says the same)."""
    return {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
        CLASS_NAME_KEY: tf.io.FixedLenFeature([], tf.string),
        SOURCE_KEY: tf.io.FixedLenFeature([], tf.string),
    }


def serving_feature_spec() -> Dict[str, tf.io.FixedLenFeature]:
    """What a request must carry: the image only (labels and metadata are optional)."""
    return {IMAGE_KEY: raw_feature_spec()[IMAGE_KEY]}


def make_example(image_bytes: bytes, label: int, source: str) -> tf.train.Example:
    """One raw EuroSAT tf.Example in the contract's form."""
    name = class_name(label)
    feature = {
        IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        CLASS_NAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        SOURCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def decode_image(encoded: tf.Tensor, image_size: int = IMAGE_SIZE) -> tf.Tensor:
    """Decode one encoded RGB image (JPEG/PNG/BMP/GIF) to float32 [size, size, 3] in [0, 1].

    Grayscale is expanded and alpha dropped (channels=3); an image of another size is resized
    with antialiasing (EuroSAT is 64x64; other folder-per-class sets may not be). Undecodable
    bytes raise InvalidArgumentError from TensorFlow's decoder.
    """
    image = tf.io.decode_image(encoded, channels=RGB_CHANNELS, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    image = tf.image.resize(image, [image_size, image_size], antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape([image_size, image_size, RGB_CHANNELS])
    return image


def decode_images(encoded: tf.Tensor, image_size: int = IMAGE_SIZE) -> tf.Tensor:
    """Decode a batch of encoded images: string [N] or [N, 1] -> float32 [N, size, size, 3]."""
    encoded = tf.reshape(encoded, [-1])
    return tf.map_fn(
        lambda e: decode_image(e, image_size),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, RGB_CHANNELS], tf.float32),
    )
