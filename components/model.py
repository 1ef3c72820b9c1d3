"""The classifier: a Keras-applications EfficientNetV2 backbone with a EuroSAT head.

Inputs are the Transform's images in [0, 1]; the model itself rescales them to the pixel range
the backbone was trained for (Keras EfficientNetV2 with its built-in preprocessing expects
[0, 255]), resizes them to the configured input size, and augments them only in training.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import logging  # noqa: E402

import tensorflow as tf  # noqa: E402

from components import features  # noqa: E402
from components.errors import PretrainedWeightsUnavailable  # noqa: E402,F401 (re-exported)
from components.hparams import HParams  # noqa: E402

log = logging.getLogger(__name__)

# Keras EfficientNetV2 (include_preprocessing=True) rescales [0, 255] to [-1, 1] itself.
KERAS_PIXEL_SCALE = 255.0


def augmentation(seed: int) -> tf.keras.Sequential:
    """Augmentations that suit overhead imagery: any flip and any 90-degree rotation look real."""
    return tf.keras.Sequential(
        [
            tf.keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            tf.keras.layers.RandomRotation(0.25, fill_mode="reflect", seed=seed),
        ],
        name="augmentation",
    )


def build_backbone(hp: HParams, channels: int = features.RGB_CHANNELS) -> tf.keras.Model:
    """The Keras application without its top, loading the requested weights."""
    constructor = getattr(tf.keras.applications, hp.backbone)
    weights = hp.weights if hp.pretrained else None
    if weights and weights != "imagenet" and not tf.io.gfile.exists(weights):
        raise FileNotFoundError(
            f"weights file {weights!r} does not exist; pass --weights imagenet, a local "
            "weights file, or --weights none to train from scratch."
        )
    kwargs = dict(
        include_top=False,
        input_shape=(hp.image_size, hp.image_size, channels),
        pooling="avg",
        include_preprocessing=True,
    )
    try:
        return constructor(weights=weights, **kwargs)
    except Exception as err:  # download or file errors
        if not hp.allow_random_init:
            raise PretrainedWeightsUnavailable(
                f"could not load {weights!r} weights for {hp.backbone} ({type(err).__name__}: {err}). "
                "Pass a local weights file with --weights PATH, or --weights none (or "
                "--allow-random-init) to train from scratch."
            ) from err
        log.warning(
            "!!! could not load %r weights for %s (%s); training from RANDOM initialisation "
            "because allow_random_init is set. Expect lower accuracy.",
            weights, hp.backbone, err,
        )
        return constructor(weights=None, **kwargs)


def build_model(hp: HParams, channels: int = features.RGB_CHANNELS) -> tf.keras.Model:
    """EfficientNetV2 classifier: [0, 1] images of any size in, class probabilities out."""
    inputs = tf.keras.Input(
        shape=(features.IMAGE_SIZE, features.IMAGE_SIZE, channels),
        name=features.TRANSFORMED_IMAGE_KEY,
    )
    x = inputs
    if hp.augment:
        x = augmentation(hp.seed)(x)
    if hp.image_size != features.IMAGE_SIZE:
        x = tf.keras.layers.Resizing(hp.image_size, hp.image_size, name="upscale")(x)
    x = tf.keras.layers.Rescaling(KERAS_PIXEL_SCALE, name="to_backbone_range")(x)
    x = build_backbone(hp, channels)(x)
    x = tf.keras.layers.Dropout(hp.dropout, seed=hp.seed)(x)
    # float32 output even under mixed precision: softmax and the loss need the range.
    outputs = tf.keras.layers.Dense(
        features.NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return tf.keras.Model(inputs, outputs, name=f"eurosat_{hp.backbone.lower()}")


def compile_model(model: tf.keras.Model, hp: HParams, steps_per_epoch: int) -> tf.keras.Model:
    """AdamW with warm-up + cosine decay, label-smoothed cross-entropy."""
    total = max(1, hp.epochs * steps_per_epoch)
    warmup = min(max(1, steps_per_epoch), total // 5)
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=hp.learning_rate / 10,
        decay_steps=max(1, total - warmup),
        alpha=0.01,
        warmup_target=hp.learning_rate,
        warmup_steps=warmup,
    )
    model.compile(
        optimizer=tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=hp.weight_decay),
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
        metrics=[tf.keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
