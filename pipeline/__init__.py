"""The pipeline: config, the DAG, runners, run results and the report."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2) before TensorFlow loads
