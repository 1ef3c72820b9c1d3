"""TF Serving's gRPC API over the dev server's ServingCore.

The API is tensorflow_serving.apis' Predict, Classify, GetModelMetadata and GetModelStatus, with TF Serving's status
codes; Predict and Classify are counted and timed in the core's metrics (serving.monitoring) as TF Serving counts them.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from schema.errors import ServingError
from serving import monitoring
from serving.core import DEFAULT_SIGNATURE, ServingCore, arrays_from_protos, log
from serving.models import ModelVersion
from serving.status import grpc_status, status_error

METADATA_SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving answers


def predict(core: ServingCore, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """TF Serving's Predict."""
    version = core.version_of(request.model_spec)
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    outputs = core.run(version, name, arrays_from_protos(version.signature(name), request.inputs, core.limits))
    wanted = list(request.output_filter) or list(outputs)
    unknown = [key for key in wanted if key not in outputs]
    if unknown:
        raise status_error(
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
        raise status_error(grpc.StatusCode.INVALID_ARGUMENT, "send an example_list of tf.Examples")
    examples = request.input.example_list.examples
    core.limits.check(len(examples), request.input.example_list.ByteSize())
    classes, scores = core.classify(version, name, [e.SerializeToString() for e in examples])
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
        raise status_error(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"metadata_field must be [{METADATA_SIGNATURE_DEF!r}], got {list(request.metadata_field)}",
        )
    version = core.version_of(request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _fill_spec(response.model_spec, version, "")
    response.metadata[METADATA_SIGNATURE_DEF].Pack(version.signature_def_map())
    return response


def _fill_spec(spec: Any, version: ModelVersion, signature_name: str) -> None:
    spec.name = version.name
    spec.version.value = version.version
    if signature_name:
        spec.signature_name = signature_name


def _grpc_handler(fn: Callable[[ServingCore, Any], Any], api: Optional[str] = None) -> Callable[..., Any]:
    """Turn ServingError into the gRPC status; anything else is INTERNAL, and the server goes on.

    With `api` (TF Serving's API label) the request is counted and timed under its model's name.
    """

    def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        start, code = time.monotonic(), grpc.StatusCode.OK
        try:
            return fn(self.core, request)
        except ServingError as err:
            code = grpc_status(err)
            context.abort(code, str(err))
        except Exception as err:  # a request must never take the server down
            log.exception("internal error")
            code = grpc.StatusCode.INTERNAL
            context.abort(code, f"{type(err).__name__}: {err}")
        finally:
            if api is not None:
                self.core.metrics.request(request.model_spec.name, code.name, api, monitoring.GRPC,
                                          time.monotonic() - start)

    return handler


def model_status(core: ServingCore, request: Any) -> get_model_status_pb2.GetModelStatusResponse:
    """ModelService.GetModelStatus: the states of the model's versions (or of the one named)."""
    spec = request.model_spec
    return get_model_status_pb2.GetModelStatusResponse(
        model_version_status=core.statuses(spec.name, spec.version.value if spec.HasField("version") else None)
    )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's PredictionService over a ServingCore."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    Predict = _grpc_handler(predict, monitoring.PREDICT)  # gRPC method names (CamelCase)
    Classify = _grpc_handler(classify, monitoring.CLASSIFY)
    GetModelMetadata = _grpc_handler(model_metadata)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's ModelService (GetModelStatus) over a ServingCore."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    GetModelStatus = _grpc_handler(model_status)
