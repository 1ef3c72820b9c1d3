"""The export contract (signatures, warm-up, export), the dev server and the gRPC client."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2) before TensorFlow loads
