"""The names of the export contract and of serving: signatures, their inputs and outputs, the model.

Plain strings and numbers, no TensorFlow: the gRPC client, the dev server, the exporter and the
pipeline all spell a signature or an output through this module. What each signature does is in
serving.signatures.
"""
from schema import modalities

MODEL_NAME = "eurosat"  # the default served model (and pipeline) name; 13-band runs add "-all"

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGES = modalities.RGB.signature
PREDICT_BANDS = modalities.ALL_BANDS.signature
TRANSFORM_FEATURES = "transform_features"
CLASSIFY = "classify"
EXAMPLES_INPUT = "examples"
IMAGES_INPUT = modalities.RGB.signature_input
BANDS_INPUT = modalities.ALL_BANDS.signature_input
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class_name"
# TF Serving's Classify API names (tensorflow/cc/saved_model/signature_constants.h).
CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
SAVED_MODEL_FILE = "saved_model.pb"

# gRPC message limit of the dev server and the client (TF Serving's own default is 4 MiB; a batch
# of 13-band patches is 106 KiB each).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def pixel_signature(modality: str) -> tuple[str, str]:
    """(signature name, input name) of the signature that takes pixels without a tf.Example."""
    record = modalities.get(modality)
    return record.signature, record.signature_input
