"""Class probabilities of patches from the exported model's own pixel signature.

Both predictors send the patches to ``predict_images`` (RGB models: each patch as a lossless PNG,
decoded by the Transform graph exactly as training decoded its JPEGs) or ``predict_bands``
(13-band models: the uint16 digital numbers as they are), so decode and normalisation are the
Transform graph's, as in serving:

- ``SavedModelPredictor``: the SavedModel loaded in this process (a push directory's newest
  version, or a SavedModel folder);
- ``EndpointPredictor``: a running TF Serving (or ``serving.server``) endpoint over gRPC, through
  ``serving.grpc_client.ServingClient``.
"""
from __future__ import annotations

import io
import os
from typing import List, Optional, Protocol, Tuple

import numpy as np

from pipeline.mapping import training_check
from pipeline.mapping.errors import MapError
from schema import modalities
from schema.errors import ServingError
from serving import signatures
from serving.models import complete_versions, read_signature_defs


class Predictor(Protocol):
    """What the map classifies patches with: a SavedModel in process or a TF Serving endpoint."""

    modality: str  # a modality name (schema.modalities)
    model: str  # where the model is: a folder, or model@host:port
    version: str  # the model version used
    training_statistics: Optional[dict]  # the train split's statistics (training_check), None if unknown
    no_statistics_reason: str  # why there are none, for the map's one line

    def encode(self, pixels: np.ndarray):
        """[n, 64, 64, C] uint8 (RGB) / uint16 (13 bands) -> what the signature takes (PNGs or uint16).

        Thread-safe, so the next batch can be encoded while the model runs.
        """

    def run(self, encoded) -> np.ndarray:
        """The signature on encoded patches -> float32 [n, 10] probabilities."""

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """run(encode(pixels))."""


def encode_png(patch: np.ndarray) -> bytes:
    """One uint8 RGB patch as PNG bytes (fast compression)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(patch).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_pngs(pixels: np.ndarray) -> List[bytes]:
    """Each uint8 RGB patch of `pixels` as PNG bytes."""
    return [encode_png(p) for p in pixels]


def encode_patches(pixels: np.ndarray, modality: str):
    """Patches as the modality's pixel signature takes them: PNGs (encoded images) or the raw values."""
    record = modalities.get(modality)
    if record.encoded:
        return encode_pngs(pixels)
    return np.asarray(pixels, record.input_dtype)


def modality_of_signatures(names, where: str) -> str:
    """The model's modality from its signature names (which pixel signature it exports)."""
    try:
        return modalities.of_signature(names).name
    except KeyError:
        known = " nor a ".join(repr(m.signature) for m in modalities.REGISTRY.values())
        raise MapError(f"{where} has neither a {known} "
                       "signature: give a model exported by this project's Trainer (serving.signatures)") from None


def resolve_model(path: str) -> Tuple[str, str]:
    """(SavedModel folder, version) of a SavedModel folder or of a push directory's newest version."""
    import tensorflow as tf

    if tf.io.gfile.exists(os.path.join(path, signatures.SAVED_MODEL_FILE)):
        name = os.path.basename(os.path.normpath(path))
        return path, name
    versions = complete_versions(path)
    if not versions:
        raise MapError(f"--model {path!r} is neither a SavedModel (no saved_model.pb) nor a push directory "
                       "holding versions (<dir>/<version>/saved_model.pb); give e.g. outputs/serving/eurosat")
    newest = max(versions)
    return versions[newest], str(newest)


def export_modality(export_dir: str) -> str:
    """The modality of an exported model, from saved_model.pb's signatures (without loading it)."""
    return modality_of_signatures(read_signature_defs(export_dir), export_dir)


class SavedModelPredictor:
    """The SavedModel in this process; `predict` runs one batch through the pixel signature."""

    def __init__(self, path: str):
        import tensorflow as tf

        self.model, self.version = resolve_model(path)
        self.training_statistics, self.no_statistics_reason = training_check.statistics_of_model(self.model)
        loaded = tf.saved_model.load(self.model)
        self.modality = modality_of_signatures(set(loaded.signatures.keys()), self.model)
        name, self._input = signatures.pixel_signature(self.modality)
        self._loaded = loaded  # keeps the signature's variables alive
        self._signature = loaded.signatures[name]
        # warm-up (graph optimisation on the first call), as TF Serving does before serving
        record = modalities.get(self.modality)
        self.predict(np.zeros((1, modalities.IMAGE_SIZE, modalities.IMAGE_SIZE, record.channels), record.pixel_dtype))

    def encode(self, pixels: np.ndarray):
        """The patches as the model's signature takes them (PNGs or raw values)."""
        return encode_patches(pixels, self.modality)

    def run(self, encoded) -> np.ndarray:
        """The signature on encoded patches -> float32 [n, 10] probabilities."""
        import tensorflow as tf

        value = tf.constant(encoded, dtype=modalities.get(self.modality).input_dtype)
        out = self._signature(**{self._input: value})
        return out[signatures.PROBABILITIES].numpy()

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities [n, 10] of patches [n, 64, 64, C]."""
        return self.run(self.encode(pixels))


class EndpointPredictor:
    """A running TF Serving / serving.server endpoint: one Predict request per batch."""

    def __init__(self, server: str, model_name: str, version: int | None = None, timeout: float = 60.0):
        from serving.grpc_client import ServingClient  # gRPC + TensorFlow: only for an endpoint

        self._error_type = ServingError
        self._client = ServingClient(server, model_name, version, timeout)
        self.model = f"{model_name}@{server}"
        # TF Serving does not serve a model's files: the map's CLI sets them from --training-statistics / --model
        self.training_statistics: Optional[dict] = None
        self.no_statistics_reason = ("TF Serving does not serve the model's training statistics: give "
                                     "--training-statistics FILE (the model's assets.extra/training_statistics.json) "
                                     "or --model (its push directory) with --server")
        try:
            self.modality = modality_of_signatures(set(self._client.model_metadata()), self.model)
            available = [v for v, state in self._client.model_status().items() if state == "AVAILABLE"]
        except ServingError as err:
            raise MapError(f"--server {server}: {err}") from None
        self.version = str(version if version is not None else max(available, default="unknown"))

    def encode(self, pixels: np.ndarray):
        """The patches as the Predict request carries them (PNGs or raw values)."""
        return list(encode_patches(pixels, self.modality))

    def run(self, encoded) -> np.ndarray:
        """One Predict request on encoded patches -> float32 [n, 10]; MapError when the server fails."""
        try:
            return self._client.predict_pixels(self.modality, encoded, batch_size=max(1, len(encoded)))
        except self._error_type as err:
            raise MapError(f"--server: {err}") from None

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities [n, 10] of patches [n, 64, 64, C], from the server."""
        return self.run(self.encode(pixels))

    def close(self) -> None:
        """Close the connection to the server."""
        self._client.close()
