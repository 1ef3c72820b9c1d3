"""The one export of a trained model: SavedModel with the serving signatures, TF Serving's warm-up requests."""
from __future__ import annotations

from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from serving import signatures, warmup
from serving import training_statistics as statistics_module


def export_serving_model(
    model: tf.keras.Model, tft_output: tft.TFTransformOutput, export_dir: str,
    max_image_pixels: int = signatures.DEFAULT_MAX_IMAGE_PIXELS, training_statistics: Optional[Dict[str, Any]] = None,
    feature_statistics: Any = None,
) -> str:
    """Save `model` with the serving signatures, the warm-up requests and the training statistics.

    The training statistics, when given, go to assets.extra: the train split's per-band json
    (serving/training_statistics.py), and `feature_statistics`, TFDV's DatasetFeatureStatisticsList of
    the raw train split (the skew gate's).

    The one export the Trainer (and the tests) use, so what is tested is what is pushed.
    `max_image_pixels` bounds the images the signatures decode (width x height).
    """
    # save_traces=False: the signatures are the model's interface (everything loads it with
    # tf.saved_model.load); Keras' traces of every layer's call for tf.keras.models.load_model
    # halved the export's CPU seconds and quartered each load's (benchmarks/export_overhead.py).
    model.save(export_dir, save_format="tf", save_traces=False,
               signatures=signatures.make_serving_signatures(model, tft_output, max_image_pixels))
    signatures.set_classify_method_name(export_dir)
    warmup.write_warmup_requests(export_dir, signatures.modality_of(tft_output))
    if training_statistics is not None:
        statistics_module.write(export_dir, training_statistics)
    if feature_statistics is not None:
        statistics_module.write_feature_statistics(export_dir, feature_statistics)
    return export_dir
