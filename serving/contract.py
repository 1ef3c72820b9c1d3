"""The names of the serving contract (signatures, their inputs and outputs, the model), without TensorFlow.

serving.signatures builds the signatures under these names; clients that must start fast (the
REST path of serving.client imports no TensorFlow), the dev server, the exporter and the pipeline
read them from here. What differs by modality comes from the registry (schema.modalities).
"""
from typing import Collection

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
# Monitoring, TF Serving's and the dev server's alike: --monitoring_config_file names a
# MonitoringConfig text file (serving/monitoring_config.txt) whose prometheus_config enables the
# metrics page on the REST port, at its path or at TF Serving's default (PrometheusExporter::kPrometheusPath).
MONITORING_CONFIG_FILE = "monitoring_config.txt"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

# --- the dev server's limits (each a flag of serving.server; README "Serving") ----------------
# gRPC message limit of the dev server and the gRPC client, and the REST body limit (TF Serving's
# own gRPC default is 4 MiB). --max_message_bytes
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Rows one request may hold, batching on or off: each row costs the model its activations (on the
# tests' tiny model ~0.3 MB; 10,000 1x1 PNGs in one 10 MB body took 3.4 GB). The map and the
# clients send 16-64. --max_request_rows
MAX_REQUEST_ROWS = 256
# Bytes of a request's input tensors once read from the wire (b64 decoded, a TensorProto's one
# value repeated over its shape, JSON numbers as int64), checked before they are built.
# --max_request_decoded_bytes
MAX_REQUEST_DECODED_BYTES = 64 * 1024 * 1024
# JSON nesting a REST body may have: the deepest valid one (13-band patches, columnar) is 6.
MAX_JSON_DEPTH = 32
# REST: connections waiting to be accepted (the standard library's default is 5), connections
# served at once (TF Serving's --rest_api_num_threads), and how long a connection may stay silent
# while a request is read or awaited, idle keep-alive connections included (TF Serving's
# --rest_api_timeout_in_ms, 30 s by default there too).
REST_LISTEN_BACKLOG = 1024
REST_API_NUM_THREADS = 64
REST_API_TIMEOUT_MS = 30_000


def pixel_signature(modality: str) -> tuple[str, str]:
    """(signature name, input name) of the signature that takes pixels without a tf.Example."""
    record = modalities.get(modality)
    return record.signature, record.signature_input


def modality_hint(asked: str, signature_names: Collection[str]) -> str:
    """'; this model takes 13 bands ...' when `asked` is another modality's pixel signature."""
    try:
        wanted, served = modalities.of_signature([asked]), modalities.of_signature(signature_names)
    except KeyError:
        return ""
    if wanted == served:
        return ""
    return (f"; this model takes {served.description} ({served.signature!r}, input {served.signature_input!r}; "
            f"files {', '.join(served.file_extensions)}), not {wanted.description}")
