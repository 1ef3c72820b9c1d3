"""The gRPC client of the EuroSAT model on TF Serving (or serving.server); serving.client's gRPC path.

    with ServingClient("localhost:8500") as client:
        for p in client.predict_files(["a.jpg", "b.png"], top_k_classes=3):
            print(p.source, p.error or p.top)

Image files go to the ``predict_images`` signature in batches (one request per ``batch_size``
files), so the server decodes them with the very code Transform used; 13-band GeoTIFFs are read
here (schema.features.read_bands, which checks them) and sent to ``predict_bands`` as uint16.
Every call has a deadline, and calls that find the server unavailable are retried by gRPC itself
(a service-config retry policy with back-off). Failures become ServingError subclasses whose
messages say what to do; a file the model cannot take fails alone (serving.client_common.FilesClient,
which this client shares with the REST one: the same methods, returning the same types).
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from schema import features, modalities
from serving import contract
from serving.client_common import (
    DEFAULT_MODEL,
    DEFAULT_SERVER,
    MAX_MESSAGE_BYTES,
    FilesClient,
    ModelNotFound,
    ServerUnavailable,
    ServingError,
    Signature,
    batches,
    read_image_file,
    server_hint,
)


def retry_service_config(attempts: int) -> str:
    """GRPC's own retry policy: UNAVAILABLE calls are retried with exponential back-off."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [
                        {"service": "tensorflow.serving.PredictionService"},
                        {"service": "tensorflow.serving.ModelService"},
                    ],
                    "retryPolicy": {
                        "maxAttempts": max(2, min(attempts, 5)),  # gRPC caps it at 5
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


class ServingClient(FilesClient):
    """A small gRPC client for the EuroSAT model's TF Serving API."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        model_name: str = DEFAULT_MODEL,
        version: Optional[int] = None,
        timeout: float = 10.0,
        retries: int = 3,
    ) -> None:
        self.server, self.model_name, self.version, self.timeout = server, model_name, version, timeout
        self._channel = grpc.insecure_channel(
            server,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.enable_retries", 1),
                ("grpc.service_config", retry_service_config(retries + 1)),
            ],
        )
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _spec(self, spec: Any, signature_name: str = "") -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise self._error(err) from None

    def _error(self, err: grpc.RpcError) -> ServingError:
        code, details = err.code(), err.details()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServerUnavailable(f"no model server answers at {self.server} ({details}); {server_hint()}",
                                     code.name)
        if code == grpc.StatusCode.NOT_FOUND:
            version = f" version {self.version}" if self.version is not None else ""
            return ModelNotFound(
                f"the server at {self.server} does not serve model {self.model_name!r}{version} ({details}); "
                "check --model-name, and that the Pusher pushed a version into the server's model base path",
                code.name,
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServingError(
                f"{self.server} did not answer within {self.timeout}s; raise --timeout or send smaller batches",
                code.name,
            )
        return ServingError(f"{code.name}: {details}", code.name)

    # --- PredictionService -------------------------------------------------------------------
    def _read_bands(self, path: str) -> np.ndarray:
        """The 13 bands of a GeoTIFF, with an error naming the file and what is wrong with it."""
        try:
            return features.read_bands(read_image_file(path))
        except ValueError as err:
            raise ServingError(f"{path!r} is not a usable 13-band patch: {err}") from None

    def _predict_batches(self, signature_name: str, input_name: str, protos: Iterable[Any]) -> np.ndarray:
        rows = []
        for proto in protos:
            request = predict_pb2.PredictRequest()
            self._spec(request.model_spec, signature_name)
            request.inputs[input_name].CopyFrom(proto)
            request.output_filter.append(contract.PROBABILITIES)
            response = self._call(self._predictions.Predict, request)
            rows.append(tf.make_ndarray(response.outputs[contract.PROBABILITIES]))
        return np.concatenate(rows) if rows else np.zeros([0, features.NUM_CLASSES], np.float32)

    def predict_pixels(self, modality: str, pixels: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, 10] of patches of `modality` through its pixel signature.

        The patches are encoded image bytes, or uint16 [64, 64, C] band values (schema.modalities); `batch_size` per
        request.
        """
        record = modalities.get(modality)

        def proto(batch: Sequence[Any]) -> Any:
            values = list(batch) if record.encoded else np.stack(batch).astype(record.input_dtype)
            return tf.make_tensor_proto(values, dtype=record.input_dtype)

        protos = (proto(b) for b in batches(list(pixels), batch_size))
        return self._predict_batches(record.signature, record.signature_input, protos)

    def classify_images(self, images: Sequence[bytes], batch_size: int = 16) -> List[Dict[str, float]]:
        """TF Serving's Classify API: {class name: score} per image (tf.Examples on the wire)."""
        results = []
        for batch in batches(list(images), batch_size):
            request = classification_pb2.ClassificationRequest()
            self._spec(request.model_spec, contract.CLASSIFY)
            for image in batch:
                example = request.input.example_list.examples.add()
                example.features.feature[features.IMAGE_KEY].bytes_list.value.append(image)
            response = self._call(self._predictions.Classify, request)
            for row in response.result.classifications:
                results.append({c.label: c.score for c in row.classes})
        return results

    def model_metadata(self) -> Dict[str, Signature]:
        """The served version's signatures by name."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {name: Signature(tuple(sorted(d.inputs)), tuple(sorted(d.outputs)), d.method_name)
                for name, d in signature_map.signature_def.items()}

    # --- ModelService ------------------------------------------------------------------------
    def model_status(self) -> Dict[int, str]:
        """Version -> state name (AVAILABLE, LOADING, END...) of the model's versions."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        state = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: state.Name(s.state) for s in response.model_version_status}
