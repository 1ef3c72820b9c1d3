"""A client of TF Serving's REST API that imports no TensorFlow.

It talks to serving.server --rest_api_port, or tensorflow/serving's 8501, with JSON and base64 over the standard
library, so it starts in a blink.

    with RestClient("http://localhost:8501") as client:
        client.predict_files(["a.jpg"])          # :predict on predict_images, the top classes by name
        client.predict_images([jpeg_bytes])      # the class probabilities, an ndarray [N, 10]
        client.model_status()                    # GET /v1/models/eurosat

The same methods as the gRPC client, returning the same types (serving.client_common.FilesClient).
13-band GeoTIFF files need the band reader (schema.features, TensorFlow): use the gRPC client for
them (band arrays go through predict_bands here too).
"""
from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from schema import modalities
from schema.classes import NUM_CLASSES
from serving import contract
from serving.client_common import (
    DEFAULT_MODEL,
    DEFAULT_REST_SERVER,
    FilesClient,
    ModelNotFound,
    ServerUnavailable,
    ServingError,
    Signature,
    batches,
    server_hint,
)

# TF Serving's HTTP status -> gRPC code name (the inverse of its ToHTTPStatusCode, where unique)
STATUS_CODE = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
               501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _b64(data: bytes) -> Dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


class RestClient(FilesClient):
    """The EuroSAT model over TF Serving's REST API."""

    def __init__(self, server: str = DEFAULT_REST_SERVER, model_name: str = DEFAULT_MODEL,
                 version: Optional[int] = None, timeout: float = 10.0, retries: int = 3) -> None:
        self.server = server if "://" in server else f"http://{server}"
        self.model_name, self.version, self.timeout, self.retries = model_name, version, timeout, retries
        path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version is not None else "")
        self._model_url = self.server.rstrip("/") + path

    def close(self) -> None:
        """Nothing to release: one connection per call."""

    def _call(self, suffix: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._model_url + suffix, data=data,
                                         headers={"Content-Type": "application/json"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer: Dict[str, Any] = json.loads(response.read())
                    return answer
            except urllib.error.HTTPError as err:
                raise self._error(err) from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", err)
                if "timed out" in str(reason):
                    raise ServingError(f"{self.server} did not answer within {self.timeout}s; raise --timeout "
                                       "or send smaller batches", "DEADLINE_EXCEEDED") from None
                if attempt == self.retries:
                    raise ServerUnavailable(f"no model server answers at {self.server} ({reason}); {server_hint()}",
                                            "UNAVAILABLE") from None
                time.sleep(min(1.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _error(self, err: urllib.error.HTTPError) -> ServingError:
        try:
            message = json.loads(err.read()).get("error", "")
        except ValueError:
            message = err.reason
        code = STATUS_CODE.get(err.code, "UNKNOWN")
        if code == "NOT_FOUND":
            return ModelNotFound(
                f"the server at {self.server} does not serve model {self.model_name!r} ({message}); check "
                "--model-name, and that the Pusher pushed a version into the server's model base path", code)
        return ServingError(f"{code}: {message}", code)

    def predict_pixels(self, modality: str, pixels: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, 10] of patches of `modality` through its pixel signature (:predict).

        The rows go in row format: encoded images as base64, band values as nested lists; `batch_size` per request.
        """
        record = modalities.get(modality)
        rows: List[List[float]] = []
        for batch in batches(list(pixels), batch_size):
            instances = [_b64(p) if record.encoded else np.asarray(p).tolist() for p in batch]
            response = self._call(":predict", {"signature_name": record.signature, "instances": instances})
            rows.extend(p[contract.PROBABILITIES] for p in response["predictions"])
        return np.asarray(rows, np.float32).reshape(-1, NUM_CLASSES)

    def classify_images(self, images: Sequence[bytes], batch_size: int = 16) -> List[Dict[str, float]]:
        """TF Serving's :classify: {class name: score} per image."""
        results: List[Dict[str, float]] = []
        for batch in batches(list(images), batch_size):
            response = self._call(":classify", {
                "signature_name": contract.CLASSIFY,
                "examples": [{contract.IMAGE_FEATURE: _b64(b)} for b in batch]})
            results.extend({label: score for label, score in row} for row in response["result"])
        return results

    def _read_bands(self, path: str) -> np.ndarray:
        raise ServingError(f"{path!r}: 13-band GeoTIFFs are read with TensorFlow's helpers; "
                           "use the gRPC client (drop --rest)")

    def model_status(self) -> Dict[int, str]:
        """Version -> state name (AVAILABLE, LOADING, END...) of the model's versions."""
        return {int(s["version"]): s["state"] for s in self._call("")["model_version_status"]}

    def model_metadata(self) -> Dict[str, Signature]:
        """The served version's signatures by name."""
        signature_defs: Dict[str, Dict[str, Any]] = self._call("/metadata")["metadata"]["signature_def"][
            "signature_def"]
        return {name: Signature(tuple(sorted(d.get("inputs", {}))), tuple(sorted(d.get("outputs", {}))),
                                d.get("method_name", ""))
                for name, d in signature_defs.items()}
