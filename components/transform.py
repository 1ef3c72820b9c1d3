"""Transform module file: `preprocessing_fn` turns raw EuroSAT examples into model inputs.

The decode lives in components.features and is traced into the Transform graph, which the
Trainer attaches to the exported model: training and serving run the very same ops.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from typing import Any, Dict, Optional  # noqa: E402

import tensorflow as tf  # noqa: E402

from components import features  # noqa: E402


def preprocessing_fn(inputs: Dict[str, tf.Tensor], custom_config: Optional[Dict[str, Any]] = None):
    """Decode + scale the image to [0, 1]; keep the label id and add its one-hot form."""
    del custom_config  # the RGB transform has no options (yet)
    image = features.decode_images(inputs[features.IMAGE_KEY])
    label = tf.reshape(inputs[features.LABEL_KEY], [-1])
    return {
        features.TRANSFORMED_IMAGE_KEY: image,
        features.TRANSFORMED_LABEL_KEY: label,
        features.TRANSFORMED_ONEHOT_KEY: tf.one_hot(label, features.NUM_CLASSES, dtype=tf.float32),
    }
