"""The export contract: which signatures a pushed model has, and what goes in and out.

- ``serving_default``: serialized tf.Example (``examples``) -> ``probabilities`` [N, 10].
  What the Evaluator and TF Serving's Predict use.
- ``predict_images`` (RGB models): encoded image bytes (``images``, JPEG/PNG) -> ``probabilities``,
  ``class_id`` and ``class_name``. For clients that have files, not tf.Examples.
- ``predict_bands`` (13-band models): ``bands`` uint16 [N, 64, 64, 13], the GeoTIFF's digital
  numbers as they are (2 bytes a value on the wire, no tf.Example around them) -> the same outputs.
- ``classify``: serialized tf.Example (``inputs``) -> ``classes`` (class names) and ``scores``,
  method name ``tensorflow/serving/classify``: TF Serving's Classify API.
- ``transform_features``: serialized tf.Example -> the Transform's outputs (debugging, TFMA).

All prediction signatures run the Transform graph (TFT layer), so the decode and scaling are
the very ops used to make the training data.
"""
from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft

from schema import features, modalities

# The names live in serving.names (no TensorFlow there, for the client); re-exported here.
from serving.names import (
    BANDS_INPUT,
    CLASS_ID,
    CLASS_NAME,
    CLASSIFY,
    CLASSIFY_CLASSES,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_SCORES,
    EXAMPLES_INPUT,
    IMAGES_INPUT,
    PROBABILITIES,
    SAVED_MODEL_FILE,
    SERVING_DEFAULT,
    TRANSFORM_FEATURES,
    pixel_signature,
)


def modality_of(tft_output: tft.TFTransformOutput) -> str:
    """The modality a Transform graph was built for (its raw features say it)."""
    return modalities.of_feature_keys(tft_output.raw_feature_spec()).name


def make_serving_signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput) -> dict:
    """The signatures to export with `model`; attaches the Transform layer to it."""
    model.tft_layer = tft_output.transform_features_layer()
    class_names = tf.constant(features.CLASS_NAMES)
    modality = modality_of(tft_output)
    request_spec = features.serving_feature_spec(modality)

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        return model(transformed[features.TRANSFORMED_IMAGE_KEY], training=False)

    def with_classes(probabilities):
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            PROBABILITIES: probabilities,
            CLASS_ID: class_id,
            CLASS_NAME: tf.gather(class_names, class_id),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(examples):
        raw = tf.io.parse_example(examples, request_spec)
        return {PROBABILITIES: predict(raw)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGES_INPUT)])
    def serve_images(images):
        return with_classes(predict({features.IMAGE_KEY: images}))

    @tf.function(input_signature=[tf.TensorSpec([None, *features.BANDS_SHAPE], tf.uint16, name=BANDS_INPUT)])
    def serve_bands(bands):
        return with_classes(predict({features.BANDS_KEY: tf.cast(bands, tf.int64)}))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS)])
    def classify(inputs):
        raw = tf.io.parse_example(inputs, request_spec)
        scores = predict(raw)
        classes = tf.tile(class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {CLASSIFY_CLASSES: classes, CLASSIFY_SCORES: scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, tft_output.raw_feature_spec())
        return model.tft_layer(raw)

    pixels_name, _ = pixel_signature(modality)
    return {
        SERVING_DEFAULT: serve_examples,
        pixels_name: {features.RGB: serve_images, features.ALL_BANDS: serve_bands}[modality],
        CLASSIFY: classify,
        TRANSFORM_FEATURES: transform_features,
    }


def set_classify_method_name(export_dir: str, signature_name: str = CLASSIFY) -> None:
    """Mark `signature_name` as a classification signature in the SavedModel on disk.

    TF2's saver gives every signature the Predict method name, but TF Serving's Classify API
    only accepts signatures whose method_name is tensorflow/serving/classify. The SignatureDef
    is plain metadata (the loader ignores method_name), so it is set in saved_model.pb itself.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if signature_name not in meta_graph.signature_def:
            raise ValueError(f"{path} has no {signature_name!r} signature to mark as classify.")
        meta_graph.signature_def[signature_name].method_name = CLASSIFY_METHOD_NAME
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
