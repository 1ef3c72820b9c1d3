"""What TFX runs, in data-flow order: ingestion, anomaly check, transform, model, trainer, tuner, evaluator."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2) before TensorFlow loads
