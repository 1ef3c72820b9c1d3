"""The dev server's requests, protocol-neutral.

Check and convert inputs, run a signature (batched when batching is on), answer Predict / Classify; the gRPC
(serving.server) and REST (serving.rest) front ends both call ServingCore.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from serving import batching, contract, monitoring, warmup
from serving.limits import RequestLimits, arrays_size, proto_size, total
from serving.models import ModelVersion, ServedModel, read_model_config, single_model_config, with_base_path
from serving.settings import ServerSettings
from serving.status import TF_ERROR_CODES, status_error

log = logging.getLogger("serving.server")  # one logger for the dev server's modules

DEFAULT_SIGNATURE = contract.SERVING_DEFAULT  # what TF Serving uses when none is named
Arrays = Dict[str, np.ndarray]


def check_inputs(signature: Any, arrays: Arrays) -> Arrays:
    """Check a request's arrays against the signature; clear INVALID_ARGUMENT otherwise."""
    specs = signature.structured_input_signature[1]
    expected = ", ".join(f"{k} ({spec.dtype.name} {spec.shape})" for k, spec in sorted(specs.items()))
    if not arrays:
        raise status_error(grpc.StatusCode.INVALID_ARGUMENT, f"the request has no inputs; expected: {expected}")
    unknown, missing = set(arrays) - set(specs), set(specs) - set(arrays)
    if unknown or missing:
        raise status_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"inputs {sorted(unknown)} are unknown and {sorted(missing)} are missing; expected: {expected}",
        )
    for key, value in arrays.items():
        if not specs[key].shape.is_compatible_with(value.shape):
            raise status_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} has shape {tuple(value.shape)}, the signature expects {specs[key].shape}",
            )
    return arrays


def input_dtypes(signature: Any) -> Dict[str, tf.DType]:
    """The dtype of each input of a signature (a concrete function)."""
    return {key: spec.dtype for key, spec in signature.structured_input_signature[1].items()}


def arrays_from_protos(signature: Any, protos: Mapping[str, Any], limits: RequestLimits) -> Arrays:
    """TensorProtos of a gRPC request -> arrays, once they are known to be within `limits`.

    Each array has the dtype its signature input has; the rows and decoded bytes checked against `limits` are read from
    the protos' shapes.
    """
    dtypes, arrays = input_dtypes(signature), {}
    limits.check(*total(proto_size(p, dtypes[k].size if k in dtypes else 1) for k, p in protos.items()))
    for key, proto in protos.items():
        if key in dtypes and proto.dtype != dtypes[key].as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
            spec = signature.structured_input_signature[1][key]
            raise status_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input {key!r} must be {spec.dtype.name} with shape {spec.shape}, got {got}",
            )
        try:
            arrays[key] = tf.make_ndarray(proto)
        except Exception as err:
            raise status_error(grpc.StatusCode.INVALID_ARGUMENT, f"input {key!r} is malformed: {err}") from None
    return arrays


def op_error_reason(err: tf.errors.OpError) -> str:
    """The sentence of a TensorFlow error that says what was wrong, without graph-node noise."""
    return error_reason(err.message or str(err))


def error_reason(message: str) -> str:
    """The one line of a TensorFlow error message that says what went wrong."""
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")
    lines = [line.strip() for line in message.splitlines()]
    reasons = [line for line in lines if line and not line.startswith(noise)]
    reason = reasons[-1] if reasons else lines[0]
    if "assertion failed: [" in reason:  # the signatures' own checks: just their sentence
        reason = reason.split("assertion failed: [", 1)[1].rsplit("]", 1)[0]
    return reason


class ServingCore:
    """The served models and how a request runs on them; gRPC, REST and warm-up all go through it."""

    def __init__(self, config: model_server_config_pb2.ModelServerConfig,
                 batching_parameters: Optional[batching.BatchingParameters] = None,
                 limits: Optional[RequestLimits] = None) -> None:
        self.limits = limits or RequestLimits()
        self.metrics = monitoring.ServerMetrics()  # what gRPC, REST and the batcher record
        self.models = {
            c.name: ServedModel(c, warm_up=self.warm_up) for c in config.model_config_list.config
        }
        self.batcher = (batching.Batcher(batching_parameters, self.metrics.queued)
                        if batching_parameters else None)

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> ServingCore:
        """The core the settings describe.

        The model config file's models (the base path given overriding its model's) or the one model at the base
        path, batching, the request limits.
        """
        if settings.model_config_file:
            config = read_model_config(settings.model_config_file)
            if settings.model_base_path:  # e.g. the production models.config over a local push directory
                config = with_base_path(config, settings.model_name, settings.model_base_path)
        else:
            assert settings.model_base_path is not None  # ServerSettings asks for one of the two
            config = single_model_config(settings.model_name, settings.model_base_path)
        params = None
        if settings.enable_batching:
            params = (batching.read_batching_parameters(settings.batching_parameters_file)
                      if settings.batching_parameters_file else batching.BatchingParameters())
        return cls(config, params, RequestLimits(settings.max_request_rows, settings.max_request_decoded_bytes))

    def poll(self) -> None:
        """Load and unload versions as the models' base paths changed."""
        for model in self.models.values():
            model.poll()

    def model(self, name: str) -> ServedModel:
        """The served model `name`; NOT_FOUND naming the served ones, like TF Serving."""
        if name not in self.models:
            raise status_error(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model {name!r} (this server serves "
                f"{', '.join(repr(n) for n in sorted(self.models))})",
            )
        return self.models[name]

    def version(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> ModelVersion:
        """A loaded version of model `name`: the newest, or by number or label."""
        return self.model(name).get(version, label)

    def version_of(self, spec: Any) -> ModelVersion:
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
        self.limits.check(*arrays_size(arrays))  # REST and warm-up too (gRPC checked its protos)
        dtypes = input_dtypes(signature)

        def call(inputs: Arrays) -> Arrays:
            try:
                outputs = signature(**{k: tf.constant(v, dtype=dtypes[k]) for k, v in inputs.items()})
            except tf.errors.OpError as err:
                raise status_error(
                    TF_ERROR_CODES.get(err.error_code, grpc.StatusCode.INTERNAL),
                    f"signature {signature_name!r} failed: {op_error_reason(err)}",
                ) from None
            except UnicodeDecodeError as err:
                # TensorFlow's error quoted the request's bytes (e.g. a JPEG sent to a tf.Example
                # input) and could not turn its message into text: still the client's input.
                raise status_error(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"signature {signature_name!r} failed: "
                    f"{error_reason(err.object.decode('utf-8', 'backslashreplace'))[:500]}",
                ) from None
            return {key: value.numpy() for key, value in outputs.items()}

        if self.batcher is None or not batch:
            return call(arrays)
        try:
            return self.batcher.run((version.name, version.version, signature_name), call, arrays)
        except batching.BatchingError as err:
            raise status_error(getattr(grpc.StatusCode, err.code_name), str(err)) from None

    def classify(self, version: ModelVersion, signature_name: str, serialized: List[bytes],
                 batch: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """TF Serving's Classify: serialized tf.Examples -> (classes [N, K], scores [N, K])."""
        version.signature(signature_name)
        method = version.signature_defs[signature_name].method_name
        if method != contract.CLASSIFY_METHOD_NAME:
            raise status_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Expected classification signature method_name to be {contract.CLASSIFY_METHOD_NAME}. "
                f"Was: {method} (signature {signature_name!r}; use signature_name={contract.CLASSIFY!r})",
            )
        if not serialized:
            raise status_error(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty: send at least one tf.Example")
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
                arrays = arrays_from_protos(version.signature(name), request.inputs, self.limits)
                self.run(version, name, arrays, batch=False)
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
        """Stop the batcher, if any."""
        if self.batcher is not None:
            self.batcher.stop()
