"""What TFX runs. tensorflow-transform needs Keras 2 (tf_keras): chosen before TensorFlow loads."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
