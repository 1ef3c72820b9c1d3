"""Query the EuroSAT model on TF Serving (or serving.server) over gRPC.

    python -m serving.client --server localhost:8500 image.jpg [more.png ...]
    python -m serving.client --server localhost:8500 patch.tif [...]     # a 13-band model
    python -m serving.client --server localhost:8500 --status

Prints the top-k classes with their scores for each file. As a library:

    with ServingClient("localhost:8500") as client:
        for p in client.predict_files(["a.jpg", "b.png"], top_k=3):
            print(p.source, p.top)

Image files go to the ``predict_images`` signature in batches (one request per ``batch_size``
files), so the server decodes them with the very code Transform used; 13-band GeoTIFFs are read
here (schema.features.read_bands, which checks them) and sent to ``predict_bands`` as uint16.
Every call has a deadline, and
calls that find the server unavailable are retried by gRPC itself (a service-config retry
policy with back-off). Failures become ServingError subclasses whose messages say what to do.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

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
from serving import names

DEFAULT_SERVER = "localhost:8500"
DEFAULT_MODEL = names.MODEL_NAME
MAX_MESSAGE_BYTES = names.MAX_MESSAGE_BYTES
START_HINT = (
    "start one with `python -m serving.server --model-base-path <output>/serving/eurosat "
    "--model-name eurosat` or `docker compose -f serving/docker-compose.yml up`"
)


class ServingError(RuntimeError):
    """A failed call; `code` is the gRPC status code."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(message)
        self.code = code


class ServerUnavailable(ServingError):
    """Nothing answers at the address (after the retries)."""


class ModelNotFound(ServingError):
    """The server runs but does not serve the model (or the version) asked for."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The classes of one image, best first, as (class name, score)."""

    source: str
    top: Tuple[Tuple[str, float], ...]


def retry_service_config(attempts: int) -> str:
    """gRPC's own retry policy: UNAVAILABLE calls are retried with exponential back-off."""
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


def top_k(probabilities: np.ndarray, k: int) -> List[Tuple[Tuple[str, float], ...]]:
    """(class name, score) of the k best classes of each row, best first."""
    k = max(1, min(k, features.NUM_CLASSES))
    order = np.argsort(-probabilities, axis=-1)[:, :k]
    return [
        tuple((features.CLASS_NAMES[i], float(row[i])) for i in idx)
        for row, idx in zip(probabilities, order)
    ]


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ServingClient:
    """A small client for the EuroSAT model's TF Serving API."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        model_name: str = DEFAULT_MODEL,
        version: Optional[int] = None,
        timeout: float = 10.0,
        retries: int = 3,
    ):
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

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _spec(self, spec, signature_name: str = "") -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise self._error(err) from None

    def _error(self, err: grpc.RpcError) -> ServingError:
        code, details = err.code(), err.details()
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServerUnavailable(f"no model server answers at {self.server} ({details}); {START_HINT}", code)
        if code == grpc.StatusCode.NOT_FOUND:
            version = f" version {self.version}" if self.version is not None else ""
            return ModelNotFound(
                f"the server at {self.server} does not serve model {self.model_name!r}{version} ({details}); "
                "check --model-name, and that the Pusher pushed a version into the server's model base path",
                code,
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServingError(
                f"{self.server} did not answer within {self.timeout}s; raise --timeout or send smaller batches",
                code,
            )
        return ServingError(f"{code.name}: {details}", code)

    # --- PredictionService -------------------------------------------------------------------
    def _predict_batches(self, signature_name: str, input_name: str, protos: Iterable) -> np.ndarray:
        rows = []
        for proto in protos:
            request = predict_pb2.PredictRequest()
            self._spec(request.model_spec, signature_name)
            request.inputs[input_name].CopyFrom(proto)
            request.output_filter.append(names.PROBABILITIES)
            response = self._call(self._predictions.Predict, request)
            rows.append(tf.make_ndarray(response.outputs[names.PROBABILITIES]))
        return np.concatenate(rows) if rows else np.zeros([0, features.NUM_CLASSES], np.float32)

    def predict_images(self, images: Sequence[bytes], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, 10] of encoded JPEG/PNG images, `batch_size` per request."""
        protos = (tf.make_tensor_proto(list(b), dtype=tf.string) for b in _batches(list(images), batch_size))
        return self._predict_batches(names.PREDICT_IMAGES, names.IMAGES_INPUT, protos)

    def predict_bands(self, bands: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, 10] of 13-band patches (uint16 [64, 64, 13] each)."""
        protos = (tf.make_tensor_proto(np.stack(b).astype(np.uint16)) for b in _batches(list(bands), batch_size))
        return self._predict_batches(names.PREDICT_BANDS, names.BANDS_INPUT, protos)

    def predict_files(self, paths: Sequence[str], top_k_classes: int = 3, batch_size: int = 16) -> List[Prediction]:
        """The top classes of each file: JPEG/PNG images, or 13-band GeoTIFFs (not mixed: a model
        takes one modality)."""
        is_bands = [is_bands_file(path) for path in paths]
        if any(is_bands) and not all(is_bands):
            raise ServingError(
                "give either image files (JPEG/PNG, an RGB model) or 13-band GeoTIFFs (.tif, a 13-band "
                "model), not both in one call")
        if paths and all(is_bands):
            probabilities = self.predict_bands([read_bands_file(path) for path in paths], batch_size)
        else:
            probabilities = self.predict_images([read_image_file(path) for path in paths], batch_size)
        return [Prediction(path, top) for path, top in zip(paths, top_k(probabilities, top_k_classes))]

    def classify_images(self, images: Sequence[bytes], batch_size: int = 16) -> List[Dict[str, float]]:
        """TF Serving's Classify API: {class name: score} per image (tf.Examples on the wire)."""
        results = []
        for batch in _batches(list(images), batch_size):
            request = classification_pb2.ClassificationRequest()
            self._spec(request.model_spec, names.CLASSIFY)
            for image in batch:
                example = request.input.example_list.examples.add()
                example.features.feature[features.IMAGE_KEY].bytes_list.value.append(image)
            response = self._call(self._predictions.Classify, request)
            for row in response.result.classifications:
                results.append({c.label: c.score for c in row.classes})
        return results

    def model_metadata(self) -> Dict[str, object]:
        """The served version's SignatureDefs by name."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return dict(signature_map.signature_def)

    # --- ModelService ------------------------------------------------------------------------
    def model_status(self) -> Dict[int, str]:
        """Version -> state name (AVAILABLE, LOADING, END...) of the model's versions."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        state = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: state.Name(s.state) for s in response.model_version_status}


def read_image_file(path: str) -> bytes:
    """The bytes of an image file, with an error naming the file when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise ServingError(f"cannot read image file {path!r}: {err.strerror}") from None


def is_bands_file(path: str) -> bool:
    return path.lower().endswith(modalities.ALL_BANDS.file_extensions)


def read_bands_file(path: str) -> np.ndarray:
    """The 13 bands of a GeoTIFF, with an error naming the file and what is wrong with it."""
    try:
        return features.read_bands(read_image_file(path))
    except ValueError as err:
        raise ServingError(f"{path!r} is not a usable 13-band patch: {err}") from None


def format_predictions(predictions: Sequence[Prediction]) -> str:
    lines = []
    for prediction in predictions:
        lines.append(prediction.source)
        lines.extend(f"  {name:<22s} {score:.4f}" for name, score in prediction.top)
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Classify EuroSAT images with a model on TF Serving (gRPC).")
    parser.add_argument("images", nargs="*", help="JPEG/PNG files, or 13-band GeoTIFFs (.tif) for a 13-band model")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="host:port of the gRPC endpoint")
    parser.add_argument("--model-name", default=DEFAULT_MODEL)
    parser.add_argument("--version", type=int, default=None, help="a model version (default: the served one)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="images per request")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call, seconds")
    parser.add_argument("--retries", type=int, default=3, help="retries while the server is unavailable")
    parser.add_argument("--status", action="store_true", help="print the model's version states")
    parser.add_argument("--metadata", action="store_true", help="print the model's signatures")
    args = parser.parse_args(argv)
    if not (args.images or args.status or args.metadata):
        parser.error("give image files, --status or --metadata")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        with ServingClient(args.server, args.model_name, args.version, args.timeout, args.retries) as client:
            if args.status:
                for version, state in sorted(client.model_status().items()):
                    print(f"{args.model_name} version {version}: {state}")
            if args.metadata:
                for name, signature_def in sorted(client.model_metadata().items()):
                    if name.startswith("__"):
                        continue  # the SavedModel's init op, not a signature to call
                    inputs = ", ".join(sorted(signature_def.inputs))
                    outputs = ", ".join(sorted(signature_def.outputs))
                    print(f"{name}: ({inputs}) -> ({outputs}) [{signature_def.method_name}]")
            if args.images:
                print(format_predictions(client.predict_files(args.images, args.top_k, args.batch_size)))
    except ServingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
