"""What the gRPC and the REST clients share, without TensorFlow: errors, file reading, and sending
files so that one file the model cannot take fails alone, named, while the rest are classified."""
from __future__ import annotations

import dataclasses
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from schema import modalities
from schema.errors import ServingError as ServingError  # re-exported: the clients raise it
from serving import contract

DEFAULT_SERVER = "localhost:8500"
DEFAULT_REST_SERVER = "http://localhost:8501"
DEFAULT_MODEL = contract.MODEL_NAME
MAX_MESSAGE_BYTES = contract.MAX_MESSAGE_BYTES


def server_hint() -> str:
    return ("start one with `python -m serving.server --model-base-path <output>/serving/eurosat "
            "--model-name eurosat [--rest_api_port 8501]` or `docker compose -f serving/docker-compose.yml up`")


class ServerUnavailable(ServingError):
    """Nothing answers at the address (after the retries)."""


class ModelNotFound(ServingError):
    """The server runs but does not serve the model (or the version) asked for."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The classes of one file, best first, as (class name, score); or why it has none."""

    source: str
    top: Tuple[Tuple[str, float], ...] = ()
    error: Optional[str] = None


def batches(items: Sequence, size: int) -> Iterable[Sequence]:
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def is_bands_file(path: str) -> bool:
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


class FilesClient:
    """predict_files on top of a client's `_rank(kind, items, k)` (one request: a top-k per item)."""

    IMAGES, BANDS = "images", "bands"

    def _rank(self, kind: str, items: Sequence, k: int) -> List[Tuple[Tuple[str, float], ...]]:
        raise NotImplementedError

    def _read_bands(self, path: str):
        raise NotImplementedError

    def predict_files(self, paths: Sequence[str], top_k_classes: int = 3, batch_size: int = 16) -> List[Prediction]:
        """The top classes of each file: JPEG/PNG images, or 13-band GeoTIFFs (not mixed: a model
        takes one modality). A file that cannot be read or that the server refuses (INVALID_ARGUMENT)
        gets a Prediction with its `error`; the others are classified. Errors of the server itself
        (down, model not found) are raised."""
        is_bands = [is_bands_file(path) for path in paths]
        if any(is_bands) and not all(is_bands):
            raise ServingError(
                "give either image files (JPEG/PNG, an RGB model) or 13-band GeoTIFFs (.tif, a 13-band "
                "model), not both in one call")
        kind = self.BANDS if paths and all(is_bands) else self.IMAGES
        results: dict = {}
        readable = []
        for i, path in enumerate(paths):
            try:
                readable.append((i, self._read_bands(path) if kind == self.BANDS else read_image_file(path)))
            except ServingError as err:
                results[i] = Prediction(path, error=str(err))
        for batch in batches(readable, batch_size):
            try:
                outcomes = self._rank_alone_on_failure(kind, [d for _, d in batch], top_k_classes)
            except ServingError as err:
                if err.code != "FAILED_PRECONDITION":  # e.g. JPEGs to a 13-band model: no such signature
                    raise
                names = [paths[i] for i, _ in batch]
                named = names[0] + (f" (and {len(names) - 1} more)" if len(names) > 1 else "")
                raise ServingError(f"{named}: the model cannot take these files: {err}", err.code) from None
            for (i, _), outcome in zip(batch, outcomes):
                results[i] = (Prediction(paths[i], error=outcome) if isinstance(outcome, str)
                              else Prediction(paths[i], outcome))
        return [results[i] for i in range(len(paths))]

    def _rank_alone_on_failure(self, kind: str, items: Sequence, k: int) -> list:
        """Top-k per item; when the server refuses the batch, each item alone (its own error as a str)."""
        try:
            return self._rank(kind, items, k)
        except ServingError as err:
            if err.code != "INVALID_ARGUMENT":
                raise
            if len(items) == 1:
                return [str(err)]
        outcomes: List[Union[Tuple[Tuple[str, float], ...], str]] = []
        for item in items:
            try:
                outcomes.extend(self._rank(kind, [item], k))
            except ServingError as err:
                if err.code != "INVALID_ARGUMENT":
                    raise
                outcomes.append(str(err))
        return outcomes


def format_predictions(predictions: Sequence[Prediction]) -> str:
    lines = []
    for prediction in predictions:
        if prediction.error is None:
            lines.append(prediction.source)
            lines.extend(f"  {name:<22s} {score:.4f}" for name, score in prediction.top)
    return "\n".join(lines)
