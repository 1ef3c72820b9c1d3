"""A trained model and a running endpoint for the land-use map tests and benchmark, in seconds.

The map tests need a model that tells the synthetic classes apart (to check the map against the
scene's layout), and training EfficientNetV2 takes minutes. So a small CNN is trained on
synthetic patches (through the Transform graph's own output, as the Trainer does) and exported
with serving.export.export_serving_model, the Trainer's export: the map code only sees the
SavedModel's signatures, which are the project's whatever network sits behind them.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from typing import Iterator

import numpy as np
import tensorflow as tf

from schema import features
from schema.example_data import synthetic
from tests import serving_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = serving_fixtures.MODEL_NAME


def synthetic_patches(count: int, modality: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels [n, 64, 64, C] uint8 or uint16, labels [n]), classes balanced."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % features.NUM_CLASSES
    paint = synthetic.synthetic_image if modality == features.RGB else synthetic.synthetic_bands
    return np.stack([paint(int(label), rng) for label in labels]), labels


def small_cnn(channels: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((features.IMAGE_SIZE, features.IMAGE_SIZE, channels))
    x = inputs
    for filters in (32, 32, 32):
        x = tf.keras.layers.Conv2D(filters, 3, strides=2, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(features.NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return tf.keras.Model(inputs, outputs)


def train_and_export(base_dir: str, modality: str = features.RGB, count: int = 1000, epochs: int = 25,
                     with_statistics: bool = True) -> str:
    """Train the small CNN on Transform's outputs of synthetic patches and export it as the Trainer
    does, into <base_dir>/serving/eurosat/1, with the training statistics from the Transform graph's
    patch moments (unless `with_statistics` is False: a model exported before models carried them);
    returns that push directory's model base path."""
    tft_output = serving_fixtures.write_transform_output(os.path.join(base_dir, "transform_output"), modality)
    pixels, labels = synthetic_patches(count, modality, seed=5)
    layer = tft_output.transform_features_layer()
    raw = (
        {features.IMAGE_KEY: tf.constant([synthetic.encode_jpeg(p) for p in pixels])}
        if modality == features.RGB
        else {features.BANDS_KEY: tf.constant(pixels.astype(np.int64))}
    )
    transformed = layer(raw)
    x = transformed[features.TRANSFORMED_IMAGE_KEY].numpy()
    from serving import training_statistics

    statistics = training_statistics.of_modality(transformed[features.PATCH_MEAN_KEY].numpy(),
                                                 transformed[features.PATCH_MEAN_SQ_KEY].numpy(), modality)
    model = small_cnn(features.channels(modality))
    model.compile(tf.keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=epochs, batch_size=32, verbose=0)
    export_dir = os.path.join(base_dir, "serving", MODEL_NAME, str(serving_fixtures.FIRST_VERSION))
    from serving.export import export_serving_model

    export_serving_model(model, tft_output, export_dir, training_statistics=statistics if with_statistics else None)
    return os.path.dirname(export_dir)


def start_dev_server(model_base_path: str) -> tuple[subprocess.Popen, str]:
    """`python -m serving.server` on a free port; (process, "localhost:PORT") once it serves."""
    command = [sys.executable, "-m", "serving.server", "--model-base-path", model_base_path,
               "--model-name", MODEL_NAME, "--port", "0"]
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = []
    for line in process.stdout:
        output.append(line)
        match = re.search(r"^serving models? .* on (\S+):(\d+)$", line.strip())
        if match:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return process, f"localhost:{match.group(2)}"
    process.kill()
    raise RuntimeError("serving.server did not start:\n" + "".join(output[-20:]))


@contextlib.contextmanager
def dev_server(model_base_path: str) -> Iterator[str]:
    """start_dev_server for a `with` block or a fixture: "localhost:PORT", the server stopped after."""
    process, address = start_dev_server(model_base_path)
    try:
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)
