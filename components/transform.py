"""Transform module file: `preprocessing_fn` turns raw EuroSAT examples into model inputs.

RGB (an encoded modality): the encoded image is decoded and scaled to [0, 1] (schema.features.decode_images).
Band values (13 bands, or a band subset): each band is standardised with its own mean and standard deviation, which tft
analyzers compute over every pixel of the training split; the bands' ranges differ by two
orders of magnitude (B10 cirrus ~15, B08 near infrared ~2,500), so one global scale would drown
the faint bands. The decode and the statistics are traced into the Transform graph, which the
Trainer attaches to the exported model: training and serving run the very same ops.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf

from schema import features, modalities

# A band that is constant in the training data (possible on tiny sets) must not divide by zero.
MIN_BAND_STD = 1.0


def standardise(bands: tf.Tensor, mean: tf.Tensor, var: tf.Tensor) -> tf.Tensor:
    """(bands - mean) / std per band, the last axis being the bands."""
    std = tf.maximum(tf.sqrt(var), MIN_BAND_STD)
    return (bands - mean) / std


def band_values(bands: tf.Tensor, modality: str = features.ALL_BANDS) -> tf.Tensor:
    """int64 digital numbers of `modality` ([N, 64, 64, C], or flat) -> float32 [N, 64, 64, C]."""
    return tf.cast(tf.reshape(bands, [-1, *modalities.get(modality).feature_shape]), tf.float32)


def standardise_bands(bands: tf.Tensor, modality: str = features.ALL_BANDS) -> tf.Tensor:
    """int64 [N, 64, 64, C] digital numbers -> float32.

    Each band zero-mean unit-variance over the analysed split (tft.mean / tft.var over every pixel: a [C] statistic
    each).
    """
    import tensorflow_transform as tft

    x = band_values(bands, modality)
    pixels = tf.reshape(x, [-1, modalities.get(modality).channels])
    mean = tft.mean(pixels, reduce_instance_dims=False, name="band_mean")
    var = tft.var(pixels, reduce_instance_dims=False, name="band_var")
    return standardise(x, mean, var)


def patch_moments(pixels: tf.Tensor) -> Dict[str, tf.Tensor]:
    """float32 [N, 64, 64, C] pixels -> each patch's per-band mean and mean of squares ([N, C] each).

    The pixels are in the units a scene delivers them. The Trainer sums the moments into the statistics the model
    carries (serving/training_statistics.py), for the map's check that a scene is like the training data.
    """
    return {features.PATCH_MEAN_KEY: tf.reduce_mean(pixels, axis=[1, 2]),
            features.PATCH_MEAN_SQ_KEY: tf.reduce_mean(tf.square(pixels), axis=[1, 2])}


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Optional[Dict[str, Any]] = None):
    """Pixels to model inputs (RGB in [0, 1], or standardised bands); the label id and its one-hot."""
    del custom_config  # the modality comes from the data's features, nothing else is configurable
    record = modalities.of_feature_keys(inputs)
    if record.encoded:
        image = features.decode_images(inputs[record.feature_key])
        pixels = image * 255.0  # the uint8 values of the decoded image
    else:
        image = standardise_bands(inputs[record.feature_key], record.name)
        pixels = band_values(inputs[record.feature_key], record.name)
    label = tf.reshape(inputs[features.LABEL_KEY], [-1])
    return {
        **patch_moments(pixels),
        features.TRANSFORMED_IMAGE_KEY: image,
        features.TRANSFORMED_LABEL_KEY: label,
        features.TRANSFORMED_ONEHOT_KEY: tf.one_hot(label, features.NUM_CLASSES, dtype=tf.float32),
    }
