"""A TF Serving-compatible endpoint (gRPC, and REST on --rest_api_port) for development and tests.

    python -m serving.server --model-base-path <output>/serving/eurosat --model-name eurosat --port 8500
    python -m serving.server --model_config_file serving/models.config --port 8500 --rest_api_port 8501 \\
        --enable_batching --batching_parameters_file serving/batching_parameters.txt

Production runs the official tensorflow/serving image (see serving/docker-compose.yml); this
server exists because ``tensorflow_model_server`` cannot be installed everywhere. It speaks the
same protocols (tensorflow_serving.apis: PredictionService.Predict / Classify / GetModelMetadata
and ModelService.GetModelStatus; TF Serving's REST API, serving/rest.py), reads the same
configuration files (``--model_config_file``, ``--batching_parameters_file``), and follows the
same rules over the Pusher's directory:

- versions are the numeric sub-directories of a model's base path; which are served is the
  model's ``model_version_policy`` (default: the newest, ``latest { num_versions: 1 }``); the
  directory is polled, so a new push is loaded while the previous version keeps answering, and a
  deleted version is unloaded (the newest remaining one is served);
- a version is complete once its ``saved_model.pb`` exists: the Pusher copies that file last, so a
  half-copied version is never loaded; a load that still fails (``variables/`` arriving after
  ``saved_model.pb``, as some copy tools do) is retried whenever the version's files change;
- the version's ``assets.extra/tf_serving_warmup_requests`` are replayed before it is served;
- errors carry TF Serving's gRPC status codes (NOT_FOUND for an unknown model or version,
  INVALID_ARGUMENT for bad input, FAILED_PRECONDITION for an unknown signature, RESOURCE_EXHAUSTED
  for an over-size message from gRPC itself, UNAVAILABLE for a full batching queue).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import argparse
import dataclasses
import logging
import threading
from concurrent import futures
from typing import Dict, Iterable, List, Optional, Set, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from schema.errors import ServingError
from serving import batching, contract, warmup

log = logging.getLogger("serving.server")

DEFAULT_SIGNATURE = contract.SERVING_DEFAULT  # what TF Serving uses when none is named
METADATA_SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving answers
DEFAULT_MAX_MESSAGE_BYTES = contract.MAX_MESSAGE_BYTES
_GRPC_CODE = {code.value[0]: code for code in grpc.StatusCode}  # TF error codes are gRPC's
Arrays = Dict[str, np.ndarray]


def _status(code: grpc.StatusCode, message: str) -> ServingError:
    """The error a request gets back: its message, with gRPC status `code` (REST: the matching HTTP status)."""
    return ServingError(message, code.name)


def grpc_status(err: ServingError) -> grpc.StatusCode:
    """The gRPC status of a ServingError (INTERNAL when it has none)."""
    return getattr(grpc.StatusCode, err.code or "", grpc.StatusCode.INTERNAL)


# --- which versions to serve -------------------------------------------------------------------
def versions_to_serve(policy: model_server_config_pb2.ModelConfig, available: Iterable[int]) -> Set[int]:
    """The versions a ModelConfig's model_version_policy asks for among those on disk (TF Serving's
    latest / all / specific; no policy means latest 1)."""
    available = sorted(available)
    kind = policy.model_version_policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(available)
    if kind == "specific":
        return set(policy.model_version_policy.specific.versions) & set(available)
    count = policy.model_version_policy.latest.num_versions if kind == "latest" else 1
    return set(available[-max(1, count):]) if available else set()


def complete_versions(base_path: str) -> Dict[int, str]:
    """Version number -> directory for the versions that are fully written (saved_model.pb exists)."""
    if not tf.io.gfile.isdir(base_path):
        return {}
    found = {}
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        path = os.path.join(base_path, name)
        if name.isdigit() and tf.io.gfile.exists(os.path.join(path, contract.SAVED_MODEL_FILE)):
            found[int(name)] = path
    return found


def directory_stamp(path: str) -> Tuple:
    """Every file under `path` with its size and modification time: changes when any file does."""
    stamp = []
    for folder, _, files in tf.io.gfile.walk(path):
        for name in files:
            try:
                stat = tf.io.gfile.stat(os.path.join(folder, name))
            except tf.errors.NotFoundError:
                continue
            stamp.append((os.path.relpath(os.path.join(folder, name), path), stat.length, stat.mtime_nsec))
    return tuple(sorted(stamp))


@dataclasses.dataclass
class ModelVersion:
    """One loaded SavedModel version: its callable signatures and their SignatureDefs."""

    name: str
    version: int
    path: str
    loaded: object
    signature_defs: Dict[str, object]

    @classmethod
    def load(cls, name: str, version: int, path: str) -> "ModelVersion":
        return cls(name, version, path, tf.saved_model.load(path), read_signature_defs(path))

    def signature(self, name: str):
        if name not in self.loaded.signatures:
            # TF Serving's code and wording (predict_util.cc)
            raise _status(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{name}" not found. '
                f"This model has: {', '.join(sorted(self.loaded.signatures))}",
            )
        return self.loaded.signatures[name]

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        """What GetModelMetadata answers: the version's SignatureDefs."""
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map


def read_signature_defs(export_dir: str) -> Dict[str, object]:
    """The SignatureDefs of a SavedModel (with their method names), read from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, contract.SAVED_MODEL_FILE), "rb") as f:
        saved_model.ParseFromString(f.read())
    return dict(saved_model.meta_graphs[0].signature_def)


class ServedModel:
    """One model's served versions under its base path, re-checked on every poll()."""

    def __init__(self, config: model_server_config_pb2.ModelConfig, warm_up=None):
        self.config = config
        self.name, self.base_path = config.name, config.base_path
        self._warm_up = warm_up or (lambda version: None)
        self._loaded: Dict[int, ModelVersion] = {}
        self._failed: Dict[int, Tuple[Tuple, str]] = {}  # version -> (directory stamp, error)
        self._loading: Optional[int] = None
        self._lock = threading.Lock()

    def poll(self) -> None:
        """Unload deleted versions, load the versions the policy asks for (newest first), and
        unload the ones it no longer asks for once every asked-for version is loaded."""
        on_disk = complete_versions(self.base_path)
        with self._lock:
            for version in [v for v in self._loaded if v not in on_disk]:
                log.info("unloading %s version %d: its directory was removed", self.name, version)
                del self._loaded[version]
            self._failed = {v: f for v, f in self._failed.items() if v in on_disk}
        wanted = versions_to_serve(self.config, on_disk)
        for version in sorted(wanted - set(self._loaded), reverse=True):
            self._load(version, on_disk[version])
        with self._lock:
            if wanted <= set(self._loaded):
                for version in [v for v in self._loaded if v not in wanted]:
                    log.info("unloading %s version %d (not in the version policy any more)", self.name, version)
                    del self._loaded[version]

    def _load(self, version: int, path: str) -> None:
        stamp = directory_stamp(path)
        if version in self._failed and self._failed[version][0] == stamp:
            return  # the same files failed last time; retried once they change
        self._loading = version
        try:
            candidate = ModelVersion.load(self.name, version, path)
            self._warm_up(candidate)
        except Exception as err:  # a broken version must not stop the server
            log.error("could not load %s version %d from %s (retried when its files change): %s",
                      self.name, version, path, err)
            with self._lock:
                self._failed[version] = (stamp, f"{type(err).__name__}: {err}")
                self._loading = None
            return
        with self._lock:
            self._loaded[version] = candidate
            self._failed.pop(version, None)
            self._loading = None
        log.info("serving %s version %d from %s", self.name, version, path)

    def labels(self) -> Dict[str, int]:
        return dict(self.config.version_labels)

    def get(self, version: Optional[int] = None, label: Optional[str] = None) -> ModelVersion:
        """A loaded version: the newest by default, or the one asked for; NOT_FOUND like TF Serving."""
        loaded = dict(self._loaded)
        if label is not None:
            if label not in self.config.version_labels:
                raise _status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Unrecognized servable version label: {label!r} (model {self.name!r} has labels "
                    f"{sorted(self.config.version_labels) or 'none'}; see version_labels in the model config)",
                )
            version = self.config.version_labels[label]
        if not loaded:
            raise _status(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {self.name!r} has no complete version "
                f"under {self.base_path} yet",
            )
        if version is None:
            return loaded[max(loaded)]
        if version not in loaded:
            raise _status(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {self.name!r} version {version} "
                f"(served: {', '.join(map(str, sorted(loaded)))})",
            )
        return loaded[version]

    def statuses(self) -> List[get_model_status_pb2.ModelVersionStatus]:
        with self._lock:
            loaded, failed, loading = sorted(self._loaded), dict(self._failed), self._loading
        result = [
            get_model_status_pb2.ModelVersionStatus(
                version=v, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
            )
            for v in loaded
        ]
        if loading is not None and loading not in loaded:
            result.append(get_model_status_pb2.ModelVersionStatus(
                version=loading, state=get_model_status_pb2.ModelVersionStatus.LOADING))
            failed.pop(loading, None)
        for version, (_, error) in sorted(failed.items()):
            status = get_model_status_pb2.ModelVersionStatus(
                version=version, state=get_model_status_pb2.ModelVersionStatus.END
            )
            status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
            status.status.error_message = error
            result.append(status)
        return sorted(result, key=lambda s: s.version)


# --- model config -----------------------------------------------------------------------------
def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """What --model_name/--model_base_path mean: one model, the newest version."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return config


def read_model_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    """A ModelServerConfig text file (serving/models.config); relative base paths are taken from the
    file's folder, as TF Serving does."""
    try:
        with open(path) as f:
            config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    except OSError as err:
        raise ValueError(f"cannot read the model config file {path!r}: {err.strerror}") from None
    except text_format.ParseError as err:
        raise ValueError(f"{path}: not a ModelServerConfig in text format: {err}") from None
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise ValueError(f"{path}: needs a model_config_list with at least one config {{ name base_path }}")
    names = [m.name for m in config.model_config_list.config]
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ValueError(f"{path}: every model config needs a name and a base_path")
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {model.name!r}: only model_platform \"tensorflow\" is served")
        if not model.base_path.startswith("/") and "://" not in model.base_path:
            model.base_path = os.path.join(os.path.dirname(os.path.abspath(path)), model.base_path)
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: model names must be unique, got {names}")
    return config


def with_base_path(config, model_name: str, base_path: str):
    """`config` with one model's base_path replaced (run a production models.config over a local
    push directory)."""
    for model in config.model_config_list.config:
        if model.name == model_name:
            model.base_path = base_path
            return config
    raise ValueError(f"the model config has no model {model_name!r} (it has "
                     f"{[m.name for m in config.model_config_list.config]})")


# --- requests ---------------------------------------------------------------------------------
def check_inputs(signature, arrays: Arrays) -> Arrays:
    """Check a request's arrays against the signature; clear INVALID_ARGUMENT otherwise."""
    specs = signature.structured_input_signature[1]
    expected = ", ".join(f"{k} ({spec.dtype.name} {spec.shape})" for k, spec in sorted(specs.items()))
    if not arrays:
        raise _status(grpc.StatusCode.INVALID_ARGUMENT, f"the request has no inputs; expected: {expected}")
    unknown, missing = set(arrays) - set(specs), set(specs) - set(arrays)
    if unknown or missing:
        raise _status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"inputs {sorted(unknown)} are unknown and {sorted(missing)} are missing; expected: {expected}",
        )
    for key, value in arrays.items():
        if not specs[key].shape.is_compatible_with(value.shape):
            raise _status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} has shape {tuple(value.shape)}, the signature expects {specs[key].shape}",
            )
    return arrays


def input_dtypes(signature) -> Dict[str, tf.DType]:
    return {key: spec.dtype for key, spec in signature.structured_input_signature[1].items()}


def arrays_from_protos(signature, protos) -> Arrays:
    """TensorProtos of a gRPC request -> arrays, each of the dtype its signature input has."""
    dtypes, arrays = input_dtypes(signature), {}
    for key, proto in protos.items():
        if key in dtypes and proto.dtype != dtypes[key].as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
            spec = signature.structured_input_signature[1][key]
            raise _status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} must be {spec.dtype.name} with shape {spec.shape}, got {got}",
            )
        try:
            arrays[key] = tf.make_ndarray(proto)
        except Exception as err:
            raise _status(grpc.StatusCode.INVALID_ARGUMENT, f"input {key!r} is malformed: {err}") from None
    return arrays


def op_error_reason(err: tf.errors.OpError) -> str:
    """The sentence of a TensorFlow error that says what was wrong, without graph-node noise."""
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")
    lines = [line.strip() for line in (err.message or str(err)).splitlines()]
    reasons = [line for line in lines if line and not line.startswith(noise)]
    reason = reasons[-1] if reasons else lines[0]
    if "assertion failed: [" in reason:  # the signatures' own checks: just their sentence
        reason = reason.split("assertion failed: [", 1)[1].rsplit("]", 1)[0]
    return reason


class ServingCore:
    """The served models and how a request runs on them; gRPC, REST and warm-up all go through it."""

    def __init__(self, config: model_server_config_pb2.ModelServerConfig,
                 batching_parameters: Optional[batching.BatchingParameters] = None):
        self.models = {
            c.name: ServedModel(c, warm_up=self.warm_up) for c in config.model_config_list.config
        }
        self.batcher = batching.Batcher(batching_parameters) if batching_parameters else None

    def poll(self) -> None:
        for model in self.models.values():
            model.poll()

    def model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise _status(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {name!r} (this server serves "
                f"{', '.join(repr(n) for n in sorted(self.models))})",
            )
        return self.models[name]

    def version(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> ModelVersion:
        return self.model(name).get(version, label)

    def version_of(self, spec) -> ModelVersion:
        """The version a gRPC ModelSpec names."""
        choice = spec.WhichOneof("version_choice")
        return self.version(
            spec.name,
            spec.version.value if choice == "version" else None,
            spec.version_label if choice == "version_label" else None,
        )

    def run(self, version: ModelVersion, signature_name: str, arrays: Arrays, batch: bool = True) -> Arrays:
        """Run a signature on arrays (checked here), through the batcher when batching is on."""
        signature = version.signature(signature_name)
        check_inputs(signature, arrays)
        dtypes = input_dtypes(signature)

        def call(inputs: Arrays) -> Arrays:
            try:
                outputs = signature(**{k: tf.constant(v, dtype=dtypes[k]) for k, v in inputs.items()})
            except tf.errors.OpError as err:
                raise _status(
                    _GRPC_CODE.get(err.error_code, grpc.StatusCode.INTERNAL),
                    f"signature {signature_name!r} failed: {op_error_reason(err)}",
                ) from None
            return {key: value.numpy() for key, value in outputs.items()}

        if self.batcher is None or not batch:
            return call(arrays)
        try:
            return self.batcher.run((version.name, version.version, signature_name), call, arrays)
        except batching.BatchingError as err:
            raise _status(getattr(grpc.StatusCode, err.code_name), str(err)) from None

    def classify(self, version: ModelVersion, signature_name: str, serialized: List[bytes],
                 batch: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """TF Serving's Classify: serialized tf.Examples -> (classes [N, K], scores [N, K])."""
        version.signature(signature_name)
        method = version.signature_defs[signature_name].method_name
        if method != contract.CLASSIFY_METHOD_NAME:
            raise _status(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expected classification signature method_name to be {contract.CLASSIFY_METHOD_NAME}. "
                f"Was: {method} (signature {signature_name!r}; use signature_name={contract.CLASSIFY!r})",
            )
        if not serialized:
            raise _status(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty: send at least one tf.Example")
        outputs = self.run(version, signature_name,
                           {contract.CLASSIFY_INPUTS: np.array(serialized, dtype=object)}, batch)
        return outputs[contract.CLASSIFY_CLASSES], outputs[contract.CLASSIFY_SCORES]

    def warm_up(self, version: ModelVersion) -> None:
        """Replay the version's warm-up requests (TF Serving does it before serving a version)."""
        for record in warmup.read_warmup_requests(version.path):
            kind = record.WhichOneof("log_type")
            if kind == "predict_log":
                request = record.predict_log.request
                name = request.model_spec.signature_name or DEFAULT_SIGNATURE
                self.run(version, name, arrays_from_protos(version.signature(name), request.inputs), batch=False)
            elif kind == "classify_log":
                request = record.classify_log.request
                self.classify(version, request.model_spec.signature_name or DEFAULT_SIGNATURE,
                              [e.SerializeToString() for e in request.input.example_list.examples], batch=False)
            else:
                raise ValueError(f"unsupported warm-up record {kind!r} (predict_log and classify_log are)")

    def statuses(self, name: str, version: Optional[int] = None) -> List[get_model_status_pb2.ModelVersionStatus]:
        """Version states of a model (GetModelStatus); NOT_FOUND when there is nothing to report."""
        model = self.model(name)
        statuses = model.statuses()
        if version is not None:
            statuses = [s for s in statuses if s.version == version]
        if not statuses:
            model.get(version)  # raises NOT_FOUND with the reason
        return statuses

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()


# --- gRPC -------------------------------------------------------------------------------------
def predict(core: ServingCore, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """TF Serving's Predict."""
    version = core.version_of(request.model_spec)
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    outputs = core.run(version, name, arrays_from_protos(version.signature(name), request.inputs))
    wanted = list(request.output_filter) or list(outputs)
    unknown = [key for key in wanted if key not in outputs]
    if unknown:
        raise _status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"output_filter names {unknown}, signature {name!r} has outputs {sorted(outputs)}",
        )
    response = predict_pb2.PredictResponse()
    _fill_spec(response.model_spec, version, name)
    for key in wanted:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
    return response


def classify(core: ServingCore, request: classification_pb2.ClassificationRequest
             ) -> classification_pb2.ClassificationResponse:
    """TF Serving's Classify: tf.Examples in, (class, score) lists out; needs a classify signature."""
    version = core.version_of(request.model_spec)
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if request.input.WhichOneof("kind") not in (None, "example_list"):
        raise _status(grpc.StatusCode.INVALID_ARGUMENT, "send an example_list of tf.Examples")
    classes, scores = core.classify(
        version, name, [e.SerializeToString() for e in request.input.example_list.examples])
    response = classification_pb2.ClassificationResponse()
    _fill_spec(response.model_spec, version, name)
    for row_classes, row_scores in zip(classes, scores):
        row = response.result.classifications.add()
        for label, score in zip(row_classes, row_scores):
            row.classes.add(label=label.decode(), score=float(score))
    return response


def model_metadata(core: ServingCore, request: get_model_metadata_pb2.GetModelMetadataRequest
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The version's SignatureDefs, as TF Serving answers GetModelMetadata."""
    unsupported = [f for f in request.metadata_field if f != METADATA_SIGNATURE_DEF]
    if unsupported or not request.metadata_field:
        raise _status(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metadata_field must be [{METADATA_SIGNATURE_DEF!r}], got {list(request.metadata_field)}",
        )
    version = core.version_of(request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _fill_spec(response.model_spec, version, "")
    response.metadata[METADATA_SIGNATURE_DEF].Pack(version.signature_def_map())
    return response


def _fill_spec(spec, version: ModelVersion, signature_name: str) -> None:
    spec.name = version.name
    spec.version.value = version.version
    if signature_name:
        spec.signature_name = signature_name


def _grpc_handler(fn):
    """Turn ServingError into the gRPC status; anything else is INTERNAL, and the server goes on."""

    def handler(self, request, context):
        try:
            return fn(self.core, request)
        except ServingError as err:
            context.abort(grpc_status(err), str(err))
        except Exception as err:  # a request must never take the server down
            log.exception("internal error")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    return handler


def model_status(core: ServingCore, request) -> get_model_status_pb2.GetModelStatusResponse:
    spec = request.model_spec
    return get_model_status_pb2.GetModelStatusResponse(
        model_version_status=core.statuses(spec.name, spec.version.value if spec.HasField("version") else None)
    )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    Predict = _grpc_handler(predict)  # gRPC method names (CamelCase)
    Classify = _grpc_handler(classify)
    GetModelMetadata = _grpc_handler(model_metadata)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore):
        self.core = core

    GetModelStatus = _grpc_handler(model_status)


class ModelServer:
    """The gRPC server (and the REST server, when given a port) plus the version poller."""

    def __init__(
        self,
        model_base_path: Optional[str] = None,
        model_name: str = contract.MODEL_NAME,
        port: int = 8500,
        host: str = "localhost",
        poll_seconds: float = 1.0,
        max_workers: int = 64,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        rest_api_port: Optional[int] = None,
        batching_parameters: Optional[batching.BatchingParameters] = None,
        model_config: Optional[model_server_config_pb2.ModelServerConfig] = None,
    ):
        if model_config is None:
            if model_base_path is None:
                raise ValueError("give a model base path or a model config")
            model_config = single_model_config(model_name, model_base_path)
        self.core = ServingCore(model_config, batching_parameters)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="serving"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.core), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.core), self._grpc)
        self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port} (in use?); pick another --port")
        self._rest = None
        if rest_api_port is not None:
            from serving import rest

            self._rest = rest.RestServer(self.core, host, rest_api_port, max_body_bytes=max_message_bytes)
        self._poller = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)

    @property
    def model(self) -> ServedModel:
        """The served model, when there is one (the single-model command line)."""
        (model,) = self.core.models.values()
        return model

    @property
    def rest_port(self) -> Optional[int]:
        return None if self._rest is None else self._rest.port

    def start(self) -> "ModelServer":
        self.core.poll()  # the first versions are loaded before the ports answer
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.core.poll()
            except Exception:  # e.g. the base path vanished for a moment
                log.exception("polling the model base paths failed")

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()
        self.core.stop()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """A flag under the project's spelling (--model-base-path) and TF Serving's (--model_base_path)."""
    parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", **kwargs)


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _flag(parser, "model_base_path", help="directory holding <version>/ SavedModels")
    _flag(parser, "model_name", default=contract.MODEL_NAME)
    _flag(parser, "model_config_file",
          help="a ModelServerConfig text file (serving/models.config): several models, version policies, labels")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    _flag(parser, "rest_api_port", type=int, default=None,
          help="serve TF Serving's REST API on this port too (0: any free port; default: no REST)")
    parser.add_argument("--host", default="localhost", help="address to bind; 0.0.0.0 exposes it to the network")
    _flag(parser, "enable_batching", type=_bool, nargs="?", const=True, default=False,
          help="merge concurrent requests into batches (TF Serving's server-side batching)")
    _flag(parser, "batching_parameters_file", help="BatchingParameters text file (serving/batching_parameters.txt)")
    _flag(parser, "poll_seconds", type=float, default=1.0, help="how often to look for new versions")
    _flag(parser, "max_workers", type=int, default=64, help="concurrent gRPC requests")
    _flag(parser, "max_message_bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    args = parser.parse_args(argv)
    if args.model_config_file is None and args.model_base_path is None:
        parser.error("give --model-base-path (one model) or --model_config_file")
    if args.batching_parameters_file and not args.enable_batching:
        parser.error("--batching_parameters_file needs --enable_batching (as in TF Serving)")
    return args


def server_from_args(args: argparse.Namespace) -> ModelServer:
    config = None
    if args.model_config_file:
        config = read_model_config(args.model_config_file)
        if args.model_base_path:  # e.g. the production models.config over a local push directory
            config = with_base_path(config, args.model_name, args.model_base_path)
    params = None
    if args.enable_batching:
        params = (batching.read_batching_parameters(args.batching_parameters_file)
                  if args.batching_parameters_file else batching.BatchingParameters())
    return ModelServer(
        args.model_base_path, args.model_name, args.port, args.host, args.poll_seconds, args.max_workers,
        args.max_message_bytes, args.rest_api_port, params, config,
    )


def main(argv: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        server = server_from_args(args).start()
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from None
    names = ", ".join(repr(n) for n in server.core.models)
    notes = (["batching on"] if args.enable_batching else []) + (
        [f"REST on {args.host}:{server.rest_port}"] if server.rest_port is not None else [])
    notes = f" ({'; '.join(notes)})" if notes else ""
    # tests and scripts read this line to learn the ports (with --port 0)
    print(f"serving models {names}{notes} on {args.host}:{server.port}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
