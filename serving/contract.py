"""The names of the serving contract (signatures, their inputs and outputs), without TensorFlow.

serving.signatures builds the signatures under these names; clients that must start fast (the
REST path of serving.client imports no TensorFlow) read them from here.
"""
SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = "predict_images"
PREDICT_BANDS = "predict_bands"
TRANSFORM_FEATURES = "transform_features"
CLASSIFY = "classify"
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = "images"
BANDS_INPUT = "bands"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class_name"
# TF Serving's Classify API names (tensorflow/cc/saved_model/signature_constants.h).
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
SAVED_MODEL_FILE = "saved_model.pb"
# The tf.Example feature that carries an RGB patch's encoded bytes: components.features.IMAGE_KEY
# (the example contract; tests/test_serving.py checks the two agree).
IMAGE_FEATURE = "image"
