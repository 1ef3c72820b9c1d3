"""A TF Serving-compatible gRPC endpoint for development and tests.

    python -m serving.server --model-base-path <output>/serving/eurosat --model-name eurosat --port 8500

Production runs the official tensorflow/serving image (see serving/docker-compose.yml); this
server exists because ``tensorflow_model_server`` cannot be installed everywhere. It speaks the
same protocol (tensorflow_serving.apis: PredictionService.Predict / Classify / GetModelMetadata
and ModelService.GetModelStatus), so a client cannot tell the difference, and it follows the same
rules over the Pusher's directory:

- versions are the numeric sub-directories of the model base path; the newest complete one is
  served (TF Serving's default ``latest`` version policy) and the directory is polled, so a new
  push is loaded while the server keeps answering with the previous version;
- a version is complete once its ``saved_model.pb`` exists: the Pusher copies that file last, so a
  half-copied version is never loaded (a load that still fails is retried when the file changes);
- the version's ``assets.extra/tf_serving_warmup_requests`` are replayed before it is served;
- errors carry TF Serving's gRPC status codes (NOT_FOUND for an unknown model or version,
  INVALID_ARGUMENT for bad input, FAILED_PRECONDITION for an unknown signature, RESOURCE_EXHAUSTED for an
  over-size message from gRPC itself).

What it does not do: cross-request batching (the batching parameters file is for TF Serving),
model config files with several models, version labels, and the REST API.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import threading
from concurrent import futures
from typing import Dict, List, Optional, Tuple

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import names, signatures, warmup

log = logging.getLogger("serving.server")

DEFAULT_SIGNATURE = signatures.SERVING_DEFAULT  # what TF Serving uses when none is named
METADATA_SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving answers
DEFAULT_MAX_MESSAGE_BYTES = names.MAX_MESSAGE_BYTES
_GRPC_CODE = {code.value[0]: code for code in grpc.StatusCode}  # TF error codes are gRPC's


class ServingError(Exception):
    """A request that fails with a gRPC status code and a message for the client."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


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
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{name}" not found. '
                f"This model has: {', '.join(sorted(self.loaded.signatures))}",
            )
        return self.loaded.signatures[name]


def read_signature_defs(export_dir: str) -> Dict[str, object]:
    """The SignatureDefs of a SavedModel (with their method names), read from saved_model.pb."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, signatures.SAVED_MODEL_FILE), "rb") as f:
        saved_model.ParseFromString(f.read())
    return dict(saved_model.meta_graphs[0].signature_def)


def complete_versions(base_path: str) -> Dict[int, str]:
    """Version number -> directory for the versions that are fully written (saved_model.pb exists)."""
    if not tf.io.gfile.isdir(base_path):
        return {}
    found = {}
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        path = os.path.join(base_path, name)
        if name.isdigit() and tf.io.gfile.exists(os.path.join(path, signatures.SAVED_MODEL_FILE)):
            found[int(name)] = path
    return found


class VersionedModel:
    """The newest complete version under a base path, re-checked on every poll()."""

    def __init__(self, name: str, base_path: str):
        self.name, self.base_path = name, base_path
        self._current: Optional[ModelVersion] = None
        self._failed: Dict[int, Tuple[Tuple[int, float], str]] = {}  # version -> (file stamp, error)
        self._lock = threading.Lock()

    def poll(self) -> None:
        """Load the newest complete version if it is newer than the served one."""
        versions = complete_versions(self.base_path)
        with self._lock:  # forget failures of versions that were deleted
            self._failed = {v: f for v, f in self._failed.items() if v in versions}
        if not versions:
            return
        newest = max(versions)
        current = self._current
        if current is not None and current.version >= newest:
            return
        stamp = _file_stamp(os.path.join(versions[newest], signatures.SAVED_MODEL_FILE))
        if newest in self._failed and self._failed[newest][0] == stamp:
            return  # same broken files as last time; wait until they change
        try:
            candidate = ModelVersion.load(self.name, newest, versions[newest])
            for request in warmup.read_warmup_requests(candidate.path):
                self._run_warmup(candidate, request)
        except Exception as err:  # a broken version must not stop the server
            log.error("could not load %s version %d from %s: %s", self.name, newest, versions[newest], err)
            with self._lock:
                self._failed[newest] = (stamp, f"{type(err).__name__}: {err}")
            return
        with self._lock:
            self._current = candidate
            self._failed.pop(newest, None)
        log.info("serving %s version %d from %s", self.name, newest, versions[newest])

    def _run_warmup(self, version: ModelVersion, log_record) -> None:
        kind = log_record.WhichOneof("log_type")
        if kind == "predict_log":
            predict(version, log_record.predict_log.request)
        elif kind == "classify_log":
            classify(version, log_record.classify_log.request)
        else:
            raise ValueError(f"unsupported warm-up record {kind!r} (predict_log and classify_log are)")

    def get(self, spec) -> ModelVersion:
        """The served version matching a ModelSpec, or NOT_FOUND like TF Serving."""
        if spec.name != self.name:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {spec.name!r} (this server serves {self.name!r})",
            )
        if spec.WhichOneof("version_choice") == "version_label":
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "version labels are not supported by this development server; ask for a version number",
            )
        current = self._current
        if current is None:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {self.name!r} has no complete version "
                f"under {self.base_path} yet",
            )
        if spec.HasField("version") and spec.version.value != current.version:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {self.name!r} version {spec.version.value} "
                f"(version {current.version} is served)",
            )
        return current

    def statuses(self) -> List[get_model_status_pb2.ModelVersionStatus]:
        result = []
        with self._lock:
            current, failed = self._current, dict(self._failed)
        if current is not None:
            result.append(
                get_model_status_pb2.ModelVersionStatus(
                    version=current.version, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
                )
            )
        for version, (_, error) in sorted(failed.items()):
            status = get_model_status_pb2.ModelVersionStatus(
                version=version, state=get_model_status_pb2.ModelVersionStatus.END
            )
            status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
            status.status.error_message = error
            result.append(status)
        return result


def _file_stamp(path: str) -> Tuple[int, float]:
    stat = tf.io.gfile.stat(path)
    return stat.length, stat.mtime_nsec


def _input_tensors(signature, inputs) -> Dict[str, tf.Tensor]:
    """Check a request's TensorProtos against the signature; clear INVALID_ARGUMENT otherwise."""
    specs = signature.structured_input_signature[1]
    expected = ", ".join(f"{k} ({spec.dtype.name} {spec.shape})" for k, spec in sorted(specs.items()))
    if not inputs:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"the request has no inputs; expected: {expected}")
    unknown, missing = set(inputs) - set(specs), set(specs) - set(inputs)
    if unknown or missing:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"inputs {sorted(unknown)} are unknown and {sorted(missing)} are missing; expected: {expected}",
        )
    tensors = {}
    for key, proto in inputs.items():
        spec = specs[key]
        if proto.dtype != spec.dtype.as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} must be {spec.dtype.name} with shape {spec.shape}, got {got}",
            )
        try:
            value = tf.constant(tf.make_ndarray(proto), dtype=spec.dtype)
        except Exception as err:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"input {key!r} is malformed: {err}") from None
        if not spec.shape.is_compatible_with(value.shape):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} has shape {value.shape}, the signature expects {spec.shape}",
            )
        tensors[key] = value
    return tensors


def _run(signature, name: str, tensors: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Call a signature; TensorFlow's own errors keep their (gRPC-numbered) codes."""
    try:
        return signature(**tensors)
    except tf.errors.OpError as err:
        raise ServingError(
            _GRPC_CODE.get(err.error_code, grpc.StatusCode.INTERNAL),
            f"signature {name!r} failed: {op_error_reason(err)}",
        ) from None


def op_error_reason(err: tf.errors.OpError) -> str:
    """The sentence of a TensorFlow error that says what was wrong, without graph-node noise."""
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")
    lines = [line.strip() for line in (err.message or str(err)).splitlines()]
    reasons = [line for line in lines if line and not line.startswith(noise)]
    return reasons[-1] if reasons else lines[0]


def predict(version: ModelVersion, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """TF Serving's Predict on one loaded version."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = version.signature(name)
    outputs = _run(signature, name, _input_tensors(signature, request.inputs))
    wanted = list(request.output_filter) or list(outputs)
    unknown = [key for key in wanted if key not in outputs]
    if unknown:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"output_filter names {unknown}, signature {name!r} has outputs {sorted(outputs)}",
        )
    response = predict_pb2.PredictResponse()
    _fill_spec(response.model_spec, version, name)
    for key in wanted:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
    return response


def classify(
    version: ModelVersion, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    """TF Serving's Classify: tf.Examples in, (class, score) lists out; needs a classify signature."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = version.signature(name)
    method = version.signature_defs[name].method_name
    if method != signatures.CLASSIFY_METHOD_NAME:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected classification signature method_name to be {signatures.CLASSIFY_METHOD_NAME}. "
            f"Was: {method} (signature {name!r}; use signature_name={signatures.CLASSIFY!r})",
        )
    kind = request.input.WhichOneof("kind")
    if kind != "example_list" or not request.input.example_list.examples:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty: send an example_list of tf.Examples")
    serialized = tf.constant([e.SerializeToString() for e in request.input.example_list.examples])
    outputs = _run(signature, name, {signatures.CLASSIFY_INPUTS: serialized})
    classes = outputs[signatures.CLASSIFY_CLASSES].numpy()
    scores = outputs[signatures.CLASSIFY_SCORES].numpy()
    response = classification_pb2.ClassificationResponse()
    _fill_spec(response.model_spec, version, name)
    for row_classes, row_scores in zip(classes, scores):
        row = response.result.classifications.add()
        for label, score in zip(row_classes, row_scores):
            row.classes.add(label=label.decode(), score=float(score))
    return response


def model_metadata(
    version: ModelVersion, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The version's SignatureDefs, as TF Serving answers GetModelMetadata."""
    unsupported = [f for f in request.metadata_field if f != METADATA_SIGNATURE_DEF]
    if unsupported or not request.metadata_field:
        raise ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metadata_field must be [{METADATA_SIGNATURE_DEF!r}], got {list(request.metadata_field)}",
        )
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _fill_spec(response.model_spec, version, "")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in version.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata[METADATA_SIGNATURE_DEF].Pack(signature_map)
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
            return fn(self, request)
        except ServingError as err:
            context.abort(err.code, str(err))
        except Exception as err:  # noqa: BLE001 - a request must never take the server down
            log.exception("internal error")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")

    return handler


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: VersionedModel):
        self.model = model

    @_grpc_handler
    def Predict(self, request):  # noqa: N802 - gRPC method names
        return predict(self.model.get(request.model_spec), request)

    @_grpc_handler
    def Classify(self, request):  # noqa: N802
        return classify(self.model.get(request.model_spec), request)

    @_grpc_handler
    def GetModelMetadata(self, request):  # noqa: N802
        return model_metadata(self.model.get(request.model_spec), request)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, model: VersionedModel):
        self.model = model

    @_grpc_handler
    def GetModelStatus(self, request):  # noqa: N802
        if request.model_spec.name != self.model.name:
            self.model.get(request.model_spec)  # raises NOT_FOUND with the message
        statuses = self.model.statuses()
        if request.model_spec.HasField("version"):
            statuses = [s for s in statuses if s.version == request.model_spec.version.value]
        if not statuses:
            self.model.get(request.model_spec)  # nothing loaded: NOT_FOUND like TF Serving
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=statuses)


class ModelServer:
    """The gRPC server plus the thread that polls the base path for new versions."""

    def __init__(
        self,
        model_base_path: str,
        model_name: str,
        port: int = 8500,
        host: str = "localhost",
        poll_seconds: float = 1.0,
        max_workers: int = 8,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        self.model = VersionedModel(model_name, model_base_path)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="serving"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.model), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.model), self._grpc)
        self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port} (in use?); pick another --port")
        self._poller = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)

    def start(self) -> "ModelServer":
        self.model.poll()  # the first version is loaded before the port answers
        self._grpc.start()
        self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.model.poll()
            except Exception:  # noqa: BLE001 - e.g. the base path vanished for a moment
                log.exception("polling %s failed", self.model.base_path)

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        self._grpc.stop(grace).wait()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", required=True, help="directory holding <version>/ SavedModels")
    parser.add_argument("--model-name", default=names.MODEL_NAME)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    parser.add_argument("--host", default="localhost", help="address to bind; 0.0.0.0 exposes it to the network")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new versions")
    parser.add_argument("--max-workers", type=int, default=8, help="concurrent requests")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    server = ModelServer(
        args.model_base_path, args.model_name, args.port, args.host,
        args.poll_seconds, args.max_workers, args.max_message_bytes,
    ).start()
    # tests and scripts read this line to learn the port (with --port 0)
    print(f"serving model {args.model_name!r} from {args.model_base_path} on {args.host}:{server.port}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
