"""The export contract: which signatures a pushed model has, and what goes in and out.

- ``serving_default``: serialized tf.Example (``examples``) -> ``probabilities`` [N, 10].
  What the Evaluator and TF Serving's Predict use.
- ``predict_images``: encoded image bytes (``images``, JPEG/PNG) -> ``probabilities``,
  ``class_id`` and ``class_name``. For clients that have files, not tf.Examples.
- ``transform_features``: serialized tf.Example -> the Transform's outputs (debugging, TFMA).

Both prediction signatures run the Transform graph (TFT layer), so the decode and scaling are
the very ops used to make the training data.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from components import features  # noqa: E402

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
TRANSFORM_FEATURES = "transform_features"
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class_name"


def make_serving_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput) -> dict:
    """The signatures to export with `model`; attaches the Transform layer to it."""
    model.tft_layer = tft_output.transform_features_layer()
    class_names = tf.constant(features.CLASS_NAMES)

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        return model(transformed[features.TRANSFORMED_IMAGE_KEY], training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples):
        raw = tf.io.parse_example(examples, features.serving_feature_spec())
        return {PROBABILITIES: predict(raw)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGES_INPUT)])
    def serve_images(images):
        probabilities = predict({features.IMAGE_KEY: images})
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            PROBABILITIES: probabilities,
            CLASS_ID: class_id,
            CLASS_NAME: tf.gather(class_names, class_id),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, tft_output.raw_feature_spec())
        return model.tft_layer(raw)

    return {
        SERVING_DEFAULT: serve_examples,
        PREDICT_IMAGES: serve_images,
        TRANSFORM_FEATURES: transform_features,
    }
