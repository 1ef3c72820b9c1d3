"""The export contract (names, signatures, warm-up, export), the dev server (gRPC + REST) and the clients."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras (Keras 2) before TensorFlow loads
