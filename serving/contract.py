"""The names of the serving contract (signatures, their inputs and outputs, the model), without TensorFlow.

serving.signatures builds the signatures under these names; clients that must start fast (the
REST path of serving.client imports no TensorFlow), the dev server, the exporter and the pipeline
read them from here. What differs by modality comes from the registry (schema.modalities).
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
# The tf.Example feature that carries an RGB patch's encoded bytes (schema.features.IMAGE_KEY).
IMAGE_FEATURE = modalities.RGB.feature_key

# The official TF Serving release this export is served with: the tensorflow/serving image tag of
# kubernetes.yaml, docker-compose.yml, the Dockerfile's tensorflow_model_server and the pipeline's
# infra gate (tensorflow-serving-api in requirements.lock is the same release).
TF_SERVING_VERSION = "2.19.1"
TF_SERVING_BINARY = "tensorflow_model_server"  # the server's executable, in that image and on PATH
# How the pipeline's infra gate (components/infra_gate.py) runs that server before the Pusher: a
# pod beside the step (Kubeflow Pipelines) or a child process of the step (Vertex AI Pipelines).
GATE_KUBERNETES, GATE_PROCESS = "kubernetes", "process"
GATE_RUNNERS = (GATE_KUBERNETES, GATE_PROCESS)

# gRPC message limit of the dev server and the gRPC client (TF Serving's own default is 4 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def pixel_signature(modality: str) -> tuple[str, str]:
    """(signature name, input name) of the signature that takes pixels without a tf.Example."""
    record = modalities.get(modality)
    return record.signature, record.signature_input
