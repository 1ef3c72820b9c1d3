"""What TFX runs, in data-flow order.

Ingestion (the ExampleGen, example_gen.py, and the conversion it applies), anomaly check, transform, model, trainer,
tuner, evaluator, push. The example data sets the tests and benchmarks write to disk live in schema.example_data
(the ExampleGen generates synthetic data itself, from schema.samples).
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2) before TensorFlow loads
