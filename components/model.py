"""The classifier: an EfficientNetV2 backbone (Keras applications or TF Hub) with a EuroSAT head.

Inputs are the Transform's images: RGB scaled to [0, 1], or per-band standardised multispectral
bands. The model itself feeds each backbone what it was trained on: Keras EfficientNetV2 with its
built-in preprocessing expects RGB in [0, 255]; TF Hub image models expect [0, 1] at their own
input size (512x512 for the tutorial's EfficientNetV2-XL). Augmentation runs only in training.
"""
from __future__ import annotations

import logging
import warnings
from typing import Optional

import tensorflow as tf

from components.hparams import HParams
from schema import features
from schema.errors import DataError, PretrainedWeightsUnavailable
from schema.modalities import IMAGE_SIZE

log = logging.getLogger(__name__)

# Keras EfficientNetV2 (include_preprocessing=True) rescales [0, 255] itself.
KERAS_PIXEL_SCALE = 255.0
BACKBONE_LAYER = "backbone"
# Keras applications' EfficientNetV2 drop_connect_rate: the stochastic depth its blocks are built with.
KERAS_STOCHASTIC_DEPTH = 0.2


@tf.keras.utils.register_keras_serializable(package="eurosat")
class RandomRot90(tf.keras.layers.Layer):
    """Rotate each image by a random multiple of 90 degrees (training only).

    Overhead imagery has no 'up': every 90-degree rotation is a real-looking patch, and unlike
    arbitrary angles it needs no interpolation or corner filling.
    """

    def __init__(self, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def call(self, images, training=None):
        """The images, each rotated by a random multiple of 90 degrees when training."""
        if not training:
            return images

        def rotate(image):
            k = tf.random.uniform([], 0, 4, dtype=tf.int32, seed=self.seed)
            return tf.image.rot90(image, k)

        return tf.map_fn(rotate, images)

    def get_config(self):
        """The layer's Keras config, with its seed."""
        return {**super().get_config(), "seed": self.seed}


@tf.keras.utils.register_keras_serializable(package="eurosat")
class RandomShare(tf.keras.layers.Layer):
    """Apply `layer` (the augmentation) to a random share `rate` of each training batch's images.

    Leaving the others as they are: the budget rule's augmentation strength (HParams.augment_share).
    """

    def __init__(self, layer, rate: float, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.layer = tf.keras.layers.deserialize(layer) if isinstance(layer, dict) else layer
        self.rate, self.seed = float(rate), seed

    def build(self, input_shape):
        """Build the wrapped augmentation too, so that it has its weights when the model fits or saves."""
        # The functional model traces this in inference mode, where `layer` is not called: build
        # it here, or Keras finds the augmentation without weights when it fits or saves.
        self.layer.build(input_shape)
        super().build(input_shape)

    def call(self, images, training=None):
        """The images with a random share `rate` of them augmented when training."""
        if not training or self.rate <= 0:
            return images
        augmented = self.layer(images, training=True)
        if self.rate >= 1:
            return augmented
        chosen = tf.random.uniform(tf.shape(images)[:1], seed=self.seed) < self.rate
        return tf.where(chosen[:, None, None, None], augmented, images)

    def get_config(self):
        """The layer's Keras config: the serialised augmentation, the rate and the seed."""
        return {**super().get_config(), "layer": tf.keras.layers.serialize(self.layer), "rate": self.rate,
                "seed": self.seed}


def is_colour(channels: int) -> bool:
    """Whether inputs are colour images (3 channels).

    As ImageNet weights, Keras' built-in preprocessing, colour jitter and TF Hub image models take them; any other
    channel count (13 bands) arrives standardised per band by Transform and gets none of these.
    """
    return channels == features.RGB_CHANNELS


def augmentation(hp: HParams, channels: int) -> tf.keras.Sequential:
    """The training augmentation of `hp.augment` ('full' or 'flips') as a Keras model.

    "full": flips + 90-degree rotations, mild brightness/contrast jitter for RGB in [0, 1]; "flips": left-right
    mirroring only (keeps "up" where the data has one).
    """
    if hp.augment == "flips":
        return tf.keras.Sequential([tf.keras.layers.RandomFlip("horizontal", seed=hp.seed)], name="augmentation")
    layers = [
        tf.keras.layers.RandomFlip("horizontal_and_vertical", seed=hp.seed),
        RandomRot90(seed=hp.seed),
    ]
    if hp.colour_jitter > 0 and is_colour(channels):
        layers += [
            tf.keras.layers.RandomBrightness(hp.colour_jitter, value_range=(0.0, 1.0), seed=hp.seed),
            tf.keras.layers.RandomContrast(hp.colour_jitter, seed=hp.seed),
        ]
    return tf.keras.Sequential(layers, name="augmentation")


def _check_weights_file(hp: HParams) -> None:
    if hp.pretrained and hp.weights != "imagenet" and not tf.io.gfile.exists(hp.weights):
        raise PretrainedWeightsUnavailable(
            f"weights file {hp.weights!r} does not exist; pass --weights imagenet, a local "
            "weights file, or --weights none to train from scratch."
        )


def set_stochastic_depth(backbone: tf.keras.Model, rate: float) -> None:
    """Scale a Keras EfficientNetV2, as Keras built it, so that its last block's stochastic depth is `rate`.

    Keras applications build each block's residual dropout (`Dropout` with one draw per image, `noise_shape`
    (batch, 1, 1, 1)) at KERAS_STOCHASTIC_DEPTH x block index / blocks; the layers read their rate when the
    training step is traced, so setting it after construction is what the model trains with.
    """
    for layer in backbone.layers:
        if isinstance(layer, tf.keras.layers.Dropout) and tuple(layer.noise_shape or ()) == (None, 1, 1, 1):
            layer.rate = layer.rate * rate / KERAS_STOCHASTIC_DEPTH


def set_batch_norm_momentum(backbone: tf.keras.Model, momentum: float) -> None:
    """Give every BatchNormalization of `backbone` this moving-statistics momentum.

    Like the block drops' rates, a layer reads its momentum when the training step is traced, so setting it after
    construction is what the model trains (and keeps its inference statistics) with.
    """
    for layer in backbone.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = momentum


def _keras_backbone(hp: HParams, channels: int, weights: Optional[str]) -> tf.keras.Model:
    constructor = getattr(tf.keras.applications, hp.backbone)
    with warnings.catch_warnings():
        # Keras warns that it "usually expects 1 or 3 input channels": 13 bands are intended.
        warnings.filterwarnings("ignore", message="This model usually expects")
        backbone = constructor(
            include_top=False,
            weights=weights,
            input_shape=(hp.input_size, hp.input_size, channels),
            pooling="avg",
            # RGB: the backbone's own [0, 255] preprocessing. Multispectral: inputs arrive
            # standardised per band by Transform, so none.
            include_preprocessing=is_colour(channels),
        )
    set_stochastic_depth(backbone, hp.stochastic_depth)
    set_batch_norm_momentum(backbone, hp.batch_norm_momentum)
    return backbone


def _adapt_to_channels(rgb: tf.keras.Model, target: tf.keras.Model) -> None:
    """Copy pretrained RGB weights into a many-band backbone wherever shapes allow.

    The stem convolution's RGB kernel is averaged over its input channels and spread over all
    bands (scaled so activations keep their magnitude); every other layer is copied as is.
    """
    rgb_layers = {layer.name: layer for layer in rgb.layers}
    for layer in target.layers:
        source = rgb_layers.get(layer.name)
        if source is None or not layer.weights:
            continue
        new = []
        for w_src, w_dst in zip(source.get_weights(), layer.get_weights()):
            if w_src.shape == w_dst.shape:
                new.append(w_src)
            elif w_src.ndim == 4 and w_src.shape[:2] == w_dst.shape[:2] and w_src.shape[3] == w_dst.shape[3]:
                mean = w_src.mean(axis=2, keepdims=True)
                new.append((mean * w_src.shape[2] / w_dst.shape[2]).repeat(w_dst.shape[2], axis=2))
            else:
                new.append(w_dst)
        layer.set_weights(new)


def build_backbone(hp: HParams, channels: int = features.RGB_CHANNELS) -> tf.keras.Model:
    """The Keras application without its top, with the requested weights (loudly)."""
    _check_weights_file(hp)
    weights = hp.weights if hp.pretrained else None
    try:
        if is_colour(channels) or weights is None:
            return _keras_backbone(hp, channels, weights)
        backbone = _keras_backbone(hp, channels, None)
        _adapt_to_channels(_keras_backbone(hp, features.RGB_CHANNELS, weights), backbone)
        log.info("adapted %s's RGB weights to %d input bands", hp.backbone, channels)
        return backbone
    except Exception as err:  # download, file or format errors
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
        return _keras_backbone(hp, channels, None)


def check_backbone_takes(hp: HParams, channels: int) -> None:
    """TF Hub image models take RGB only; the runner calls this before any component runs."""
    if hp.hub and not is_colour(channels):
        raise DataError(
            f"--backbone {hp.backbone!r} is a TF Hub image model, which takes RGB only; this data has "
            f"{channels} bands. Use a Keras EfficientNetV2 backbone (e.g. --backbone EfficientNetV2B0), "
            "whose first convolution is adapted to 13 bands."
        )


def build_hub_backbone(hp: HParams, channels: int) -> tf.keras.layers.Layer:
    """A TF Hub feature-vector model (URL or local SavedModel path); expects [0, 1] RGB."""
    import tensorflow_hub as hub

    check_backbone_takes(hp, channels)
    try:
        return hub.KerasLayer(hp.backbone, trainable=True, name=BACKBONE_LAYER)
    except Exception as err:
        raise PretrainedWeightsUnavailable(
            f"could not load the TF Hub model {hp.backbone!r} ({type(err).__name__}: {err}). "
            "Download it once and pass its local folder, or set TFHUB_CACHE_DIR to a cache "
            "that holds it."
        ) from err


def build_model(hp: HParams, channels: int = features.RGB_CHANNELS) -> tf.keras.Model:
    """EfficientNetV2 classifier: transformed images in, class probabilities out."""
    inputs = tf.keras.Input(
        shape=(IMAGE_SIZE, IMAGE_SIZE, channels),
        name=features.TRANSFORMED_IMAGE_KEY,
    )
    x = inputs
    if hp.augment != "none" and hp.augment_share > 0:
        augment = augmentation(hp, channels)
        if hp.augment_share < 1:  # the budget rule's share of each batch
            augment = RandomShare(augment, hp.augment_share, hp.seed, name="random_share")
        x = augment(x)
    if hp.input_size != IMAGE_SIZE:
        x = tf.keras.layers.Resizing(hp.input_size, hp.input_size, name="upscale")(x)
    if hp.hub:
        x = build_hub_backbone(hp, channels)(x)  # [0, 1] as TF Hub image models expect
    else:
        if is_colour(channels):
            x = tf.keras.layers.Rescaling(KERAS_PIXEL_SCALE, name="to_backbone_range")(x)
        backbone = build_backbone(hp, channels)
        backbone._name = BACKBONE_LAYER  # one name for every backbone: freezing finds it
        # Pretrained: BatchNorm stays in inference mode even when unfrozen, so fine-tuning
        # does not wreck the statistics learned on ImageNet. From scratch it must learn them.
        x = backbone(x, training=False) if hp.pretrained else backbone(x)
    x = tf.keras.layers.Dropout(hp.dropout, seed=hp.seed)(x)
    # float32 output even under mixed precision: softmax and the loss need the range.
    outputs = tf.keras.layers.Dense(
        features.NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    name = "hub" if hp.hub else hp.backbone.lower()
    return tf.keras.Model(inputs, outputs, name=f"eurosat_{name}")


def set_backbone_trainable(model: tf.keras.Model, trainable: bool) -> None:
    """Freeze (False) or unfreeze (True) the backbone layer of `model`."""
    model.get_layer(BACKBONE_LAYER).trainable = trainable


def learning_rate_schedule(hp: HParams, peak: float, steps: int, warmup_steps: int):
    """Warm-up then cosine decay over `steps` (or a constant rate, the tutorial's)."""
    if hp.lr_schedule == "constant":
        return peak
    warmup = min(warmup_steps, steps // 5)
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10 if warmup else peak,
        decay_steps=max(1, steps - warmup),
        alpha=0.01,
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(
    model: tf.keras.Model,
    hp: HParams,
    steps_per_epoch: int,
    epochs: Optional[int] = None,
    learning_rate: Optional[float] = None,
    jit_compile: Optional[bool] = None,
) -> tf.keras.Model:
    """AdamW (or Adam) with warm-up + cosine decay, label-smoothed cross-entropy."""
    epochs = hp.epochs if epochs is None else epochs
    peak = hp.learning_rate if learning_rate is None else learning_rate
    schedule = learning_rate_schedule(
        hp, peak, max(1, epochs * steps_per_epoch), int(hp.warmup_epochs * steps_per_epoch)
    )
    clipping = {"global_clipnorm": hp.gradient_clip_norm} if hp.gradient_clip_norm else {}
    if hp.optimizer == "adamw":
        optimizer = tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=hp.weight_decay, **clipping)
    else:
        optimizer = tf.keras.optimizers.Adam(learning_rate=schedule, **clipping)
    model.compile(
        optimizer=optimizer,
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
        metrics=[tf.keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model
