"""The example contract: features, modalities, errors, and the curated schemas. Imports nothing of the project.

tensorflow-transform needs Keras 2 (tf_keras): the switch is set here, before TensorFlow loads,
because every package of the project imports this one first.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
