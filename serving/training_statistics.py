"""The training split's per-band statistics, which an exported model carries beside its SavedModel.

The Transform graph gives every example its per-band patch mean and mean of squares, in the units
a scene delivers the pixels to the model (RGB: the uint8 values, after EuroSAT's DN scaling for a
scene of digital numbers; 13 bands: the uint16 digital numbers); the Trainer reads them on the
pass over the train split it makes anyway (counting the examples) and ``summarise`` turns them into:

- per band, the pixels' mean and standard deviation over the split;
- per band, the distribution of the patch means (mean, std and the 1st/5th/50th/95th/99th percentiles)
  and of the patch standard deviations (5th/50th/95th percentiles).

The export writes them to ``assets.extra/training_statistics.json`` (TF Serving ignores the folder's
other files), so a model found in a push directory is enough for the map's training-data check
(pipeline/mapping/training_check.py). Pure numpy and json: no TensorFlow.

Beside it, ``assets.extra/training_feature_statistics.pb``: TFDV's statistics of the raw train split
(a DatasetFeatureStatisticsList, StatisticsGen's), which the skew gate compares a new span with
(components/anomaly_check.py). Read and written as the proto's bytes, without TFDV.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from schema.locations import is_local

ASSETS_EXTRA = "assets.extra"  # the SavedModel's folder for files TF Serving does not load
FILE = "training_statistics.json"
FEATURE_STATISTICS_FILE = "training_feature_statistics.pb"  # TFDV's DatasetFeatureStatisticsList, binary
FORMAT = 1
PATCH_MEAN_QUANTILES = (1, 5, 50, 95, 99)  # percentiles of the per-patch means
PATCH_STD_QUANTILES = (5, 50, 95)


def summarise(patch_means: np.ndarray, patch_mean_squares: np.ndarray, band_names: Sequence[str],
              units: str) -> Dict[str, Any]:
    """The statistics of a split from its patches' per-band means and means of squares, [n, C] each."""
    means = np.asarray(patch_means, np.float64)
    squares = np.asarray(patch_mean_squares, np.float64)
    if means.ndim != 2 or means.shape != squares.shape or means.shape[1] != len(band_names) or not len(means):
        raise ValueError(f"patch statistics of shape {means.shape} / {squares.shape} for {len(band_names)} bands")
    pixel_mean = means.mean(0)
    pixel_var = np.maximum(squares.mean(0) - pixel_mean ** 2, 0.0)
    patch_std = np.sqrt(np.maximum(squares - means ** 2, 0.0))
    mean_q = np.percentile(means, PATCH_MEAN_QUANTILES, axis=0)
    std_q = np.percentile(patch_std, PATCH_STD_QUANTILES, axis=0)
    bands = {}
    for c, name in enumerate(band_names):
        bands[name] = {
            "pixel_mean": round(float(pixel_mean[c]), 3),
            "pixel_std": round(float(np.sqrt(pixel_var[c])), 3),
            "patch_mean": {"mean": round(float(pixel_mean[c]), 3), "std": round(float(means[:, c].std()), 3),
                           **{f"p{q:02d}": round(float(v), 3) for q, v in zip(PATCH_MEAN_QUANTILES, mean_q[:, c])}},
            "patch_std": {f"p{q:02d}": round(float(v), 3) for q, v in zip(PATCH_STD_QUANTILES, std_q[:, c])},
        }
    return {"format": FORMAT, "split": "train", "patches": int(len(means)), "units": units,
            "band_order": list(band_names), "bands": bands}


def of_modality(patch_means: np.ndarray, patch_mean_squares: np.ndarray, modality: str) -> Dict[str, Any]:
    """``summarise`` with the modality's band names and pixel units (schema.modalities)."""
    from schema import modalities

    record = modalities.get(modality)
    return {"modality": record.name, **summarise(
        patch_means, patch_mean_squares, record.band_names,
        f"{record.pixel_dtype} values as the model's pixel signature takes them")}


def path_in(export_dir: str) -> str:
    """Where an exported model keeps its training statistics."""
    return os.path.join(export_dir, ASSETS_EXTRA, FILE)


def _write_asset(path: str, data: bytes) -> str:
    """Write `data` to `path` in an export's assets.extra, making the folder; returns `path`."""
    import tensorflow as tf  # gfile: the export folder may be gs://

    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(data)
    return path


def write(export_dir: str, statistics: Dict[str, Any]) -> str:
    """Write `statistics` into the exported model's assets.extra; the file's path."""
    return _write_asset(path_in(export_dir), json.dumps(statistics, indent=2).encode())


def read(path: str) -> Dict[str, Any]:
    """The statistics in `path` (a JSON file), ValueError naming what is wrong with it."""
    with open(path) if is_local(path) else _gfile(path) as f:
        try:
            data = json.load(f)
        except ValueError as err:
            raise ValueError(f"{path!r} is not JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("bands"), dict) \
            or list(data["bands"]) != list(data.get("band_order", ())):
        raise ValueError(f"{path!r} is not a training_statistics.json of format {FORMAT} written by the Trainer")
    return data


def _gfile(path: str) -> Any:
    import tensorflow as tf

    return tf.io.gfile.GFile(path)


def read_from_model(export_dir: str) -> Optional[Dict[str, Any]]:
    """The statistics an exported model carries, None when it has none (exported before they existed)."""
    path = path_in(export_dir)
    if not is_local(path):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            return None
    elif not os.path.isfile(path):
        return None
    return read(path)


def feature_statistics_path_in(export_dir: str) -> str:
    """Where an exported model keeps the TFDV statistics of its raw train split."""
    return os.path.join(export_dir, ASSETS_EXTRA, FEATURE_STATISTICS_FILE)


def write_feature_statistics(export_dir: str, statistics: Any) -> str:
    """Write `statistics` into the exported model's assets.extra; returns the file's path.

    `statistics` is a DatasetFeatureStatisticsList; `export_dir` may be on gs://.
    """
    return _write_asset(feature_statistics_path_in(export_dir), statistics.SerializeToString())


def read_feature_statistics(export_dir: str) -> Optional[Any]:
    """The DatasetFeatureStatisticsList an exported model carries; None when it has none.

    A model has none when it was exported before the file existed, or by a Trainer given no statistics. ValueError
    when the file is not a DatasetFeatureStatisticsList.
    """
    import tensorflow as tf

    path = feature_statistics_path_in(export_dir)
    if not tf.io.gfile.exists(path):
        return None
    return load_feature_statistics(path)


def load_feature_statistics(path: str) -> Any:
    """The DatasetFeatureStatisticsList in `path`; ValueError naming the file when it is not one.

    `path` is a binary proto: StatisticsGen's FeatureStats.pb, or an export's copy.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow_metadata.proto.v0 import statistics_pb2

    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        statistics.ParseFromString(data)
    except DecodeError:
        raise ValueError(f"{path!r} is not a DatasetFeatureStatisticsList; re-export the model") from None
    if not statistics.datasets:
        raise ValueError(f"{path!r} holds no dataset statistics; re-export the model")
    return statistics
