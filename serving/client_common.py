"""What the gRPC and the REST clients share, without TensorFlow.

The result types (class probabilities as an ndarray, Prediction, Signature), errors, file reading, the top-k
ranking, and sending files so that one file the model cannot take fails alone, named, while the rest are classified.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from schema import modalities
from schema.classes import CLASS_NAMES, NUM_CLASSES
from schema.errors import ServingError as ServingError  # re-exported: the clients raise it
from serving import contract

DEFAULT_SERVER = "localhost:8500"
DEFAULT_REST_SERVER = "http://localhost:8501"
DEFAULT_MODEL = contract.MODEL_NAME
MAX_MESSAGE_BYTES = contract.MAX_MESSAGE_BYTES


C = TypeVar("C", bound="FilesClient")


def server_hint() -> str:
    """How to start a server, for the errors that find none."""
    return ("start one with `python -m serving.server --model-base-path <output>/serving/eurosat "
            "--model-name eurosat [--rest_api_port 8501]` or `docker compose -f serving/docker-compose.yml up`")


class ServerUnavailable(ServingError):
    """Nothing answers at the address (after the retries)."""


class ModelNotFound(ServingError):
    """The server runs but does not serve the model (or the version) asked for."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The classes of one file, best first, as (class name, score).

    With all the class probabilities (CLASS_NAMES order) they come from; or why it has none.
    """

    source: str
    top: Tuple[Tuple[str, float], ...] = ()
    error: Optional[str] = None
    probabilities: Optional[np.ndarray] = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Signature:
    """A served SignatureDef as both clients report it.

    Its input and output names (sorted) and its method name (tensorflow/serving/predict, .../classify).
    """

    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    method_name: str

    def describe(self) -> str:
        """``(inputs) -> (outputs) [method]``, as serving.client --metadata prints it."""
        return f"({', '.join(self.inputs)}) -> ({', '.join(self.outputs)}) [{self.method_name}]"


T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of `size` (the last one shorter)."""
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def top_k(probabilities: np.ndarray, k: int) -> List[Tuple[Tuple[str, float], ...]]:
    """(class name, score) of the k best classes of each row of [N, classes], best first."""
    k = max(1, min(k, NUM_CLASSES))
    order = np.argsort(-probabilities, axis=-1)[:, :k]
    return [tuple((CLASS_NAMES[i], float(row[i])) for i in idx) for row, idx in zip(probabilities, order)]


def is_bands_file(path: str) -> bool:
    """Whether `path` names a 13-band GeoTIFF (by its extension)."""
    return path.lower().endswith(modalities.ALL_BANDS.file_extensions)


def read_image_file(path: str) -> bytes:
    """The bytes of an image file, with an error naming the file when it cannot be read or is empty."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ServingError(f"cannot read image file {path!r}: {err.strerror}") from None
    if not data:
        raise ServingError(f"{path!r} is empty (0 bytes): not an image")
    return data


class FilesClient(abc.ABC):
    """What the gRPC and the REST client share, built on predict_pixels.

    They send pixels to the modality's pixel signature through TF Serving's Predict API (predict_pixels) and get class
    probabilities [N, classes] back as an ndarray; the images, bands and files methods, and the top-k ranking, are built
    on that here.

    Predict ranks for both because it is the API the pixel signatures (schema.modalities) answer for
    every modality, RGB JPEGs and 13-band patches alike, and the one the map and the benchmarks call;
    Classify takes tf.Examples and cannot tell a JPEG sent to a 13-band model from a bad file.
    """

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the client holds (its channel)."""

    @abc.abstractmethod
    def predict_pixels(self, modality: str, pixels: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, classes] of patches of `modality` through its pixel signature.

        The patches are encoded image bytes, or uint16 [64, 64, C] band values (schema.modalities); `batch_size` per
        request.
        """

    @abc.abstractmethod
    def classify_images(self, images: Sequence[bytes], batch_size: int = 16) -> List[Dict[str, float]]:
        """TF Serving's Classify API: {class name: score} per image."""

    @abc.abstractmethod
    def model_status(self) -> Dict[int, str]:
        """Version -> state name (AVAILABLE, LOADING, END...) of the model's versions."""

    @abc.abstractmethod
    def model_metadata(self) -> Dict[str, Signature]:
        """The served version's signatures by name."""

    @abc.abstractmethod
    def _read_bands(self, path: str) -> np.ndarray:
        """The 13 bands of a GeoTIFF, or a ServingError naming the file."""

    def predict_images(self, images: Sequence[bytes], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, classes] of encoded JPEG/PNG images, `batch_size` per request."""
        return self.predict_pixels(modalities.RGB.name, images, batch_size)

    def predict_bands(self, bands: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Class probabilities [N, classes] of 13-band patches (uint16 [64, 64, 13] each)."""
        return self.predict_pixels(modalities.ALL_BANDS.name, bands, batch_size)

    def predict_files(self, paths: Sequence[str], top_k_classes: int = 3, batch_size: int = 16) -> List[Prediction]:
        """The top classes of each file: JPEG/PNG images, or 13-band GeoTIFFs (not mixed).

        They are not mixed because a model takes one modality. A file that cannot be read or that the server refuses
        (INVALID_ARGUMENT) gets a Prediction with its `error`; the others are classified. Errors of the server itself
        (down, model not found) are raised.
        """
        is_bands = [is_bands_file(path) for path in paths]
        if any(is_bands) and not all(is_bands):
            raise ServingError(
                "give either image files (JPEG/PNG, an RGB model) or 13-band GeoTIFFs (.tif, a 13-band "
                "model), not both in one call")
        modality = modalities.ALL_BANDS if paths and all(is_bands) else modalities.RGB
        results: Dict[int, Prediction] = {}
        readable: List[Tuple[int, Any]] = []
        for i, path in enumerate(paths):
            try:
                readable.append((i, read_image_file(path) if modality.encoded else self._read_bands(path)))
            except ServingError as err:
                results[i] = Prediction(path, error=str(err))
        for batch in batches(readable, batch_size):
            try:
                rows = self._predict_alone_on_failure(modality.name, [d for _, d in batch])
            except ServingError as err:
                if err.code != "FAILED_PRECONDITION":  # e.g. JPEGs to a 13-band model: no such signature
                    raise
                names = [paths[i] for i, _ in batch]
                named = names[0] + (f" (and {len(names) - 1} more)" if len(names) > 1 else "")
                raise ServingError(f"{named}: the model cannot take these files: {err}", err.code) from None
            for (i, _), row in zip(batch, rows):
                if isinstance(row, ServingError):
                    results[i] = Prediction(paths[i], error=str(row))
                else:
                    (top,) = top_k(row[None], top_k_classes)
                    results[i] = Prediction(paths[i], top, probabilities=row)
        return [results[i] for i in range(len(paths))]

    def _predict_alone_on_failure(self, modality: str, items: Sequence[Any]) -> List[Union[np.ndarray, ServingError]]:
        """Probabilities per item; when the server refuses the batch, each item alone (its own error)."""
        try:
            return list(self.predict_pixels(modality, items, batch_size=len(items)))
        except ServingError as err:
            if err.code != "INVALID_ARGUMENT":
                raise
            if len(items) == 1:
                return [err]
        rows: List[Union[np.ndarray, ServingError]] = []
        for item in items:
            try:
                rows.extend(self.predict_pixels(modality, [item], batch_size=1))
            except ServingError as err:
                if err.code != "INVALID_ARGUMENT":
                    raise
                rows.append(err)
        return rows


def format_predictions(predictions: Sequence[Prediction]) -> str:
    """The command line's output: each classified file, then its top classes and scores."""
    lines = []
    for prediction in predictions:
        if prediction.error is None:
            lines.append(prediction.source)
            lines.extend(f"  {name:<22s} {score:.4f}" for name, score in prediction.top)
    return "\n".join(lines)
