import numpy as np
import pytest
import tensorflow as tf

from components import model as model_lib
from components.hparams import TUTORIAL_RECIPE, HParams


@pytest.fixture(scope="module")
def small_model():
    return model_lib.build_model(HParams(weights="none", augment=True))


def test_model_maps_images_to_class_probabilities(small_model):
    probs = small_model(tf.random.uniform((2, 64, 64, 3)), training=False).numpy()
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_backbone_is_fed_the_pixel_range_it_was_trained_for(small_model):
    """Keras EfficientNetV2 (built-in preprocessing) expects [0, 255]; Transform gives [0, 1]."""
    to_range = small_model.get_layer("to_backbone_range")
    probe = tf.keras.Model(small_model.input, to_range.output)
    out = probe(tf.ones((1, 64, 64, 3)), training=False).numpy()
    np.testing.assert_allclose(out, 255.0)
    backbone = small_model.get_layer(model_lib.BACKBONE_LAYER)
    assert any(isinstance(layer, tf.keras.layers.Rescaling) for layer in backbone.layers[:3])


def test_augmentation_only_in_training(small_model):
    aug = small_model.get_layer("augmentation")
    x = tf.random.uniform((8, 64, 64, 3), seed=1)
    np.testing.assert_array_equal(aug(x, training=False).numpy(), x.numpy())
    assert not np.allclose(aug(x, training=True).numpy(), x.numpy())


def test_rotations_are_multiples_of_90_degrees():
    layer = model_lib.RandomRot90(seed=0)
    x = tf.reshape(tf.range(2 * 4 * 4 * 1, dtype=tf.float32), (2, 4, 4, 1))
    out = layer(tf.tile(x, [8, 1, 1, 1]), training=True).numpy()
    rotations = [np.rot90(x.numpy()[i % 2], k) for k in range(4) for i in range(2)]
    for i, image in enumerate(out):
        assert any(np.array_equal(image, r) for r in rotations[(i % 2)::2])
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())


def test_upscaling_input_size():
    assert HParams(weights="none").input_size == 64  # EuroSAT's native size by default
    m = model_lib.build_model(HParams(weights="none", image_size=96, augment=False))
    assert m.get_layer("upscale").output.shape[1:3] == (96, 96)


def test_missing_weights_file_names_the_fix(tmp_path):
    with pytest.raises(model_lib.PretrainedWeightsUnavailable, match="--weights none"):
        model_lib.build_model(HParams(weights=str(tmp_path / "missing.h5")))


def test_unavailable_pretrained_weights_are_loud(monkeypatch):
    def offline(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise OSError("URL fetch failure: no network")
        return real(*args, weights=weights, **kwargs)

    real = tf.keras.applications.EfficientNetV2B0
    monkeypatch.setattr(tf.keras.applications, "EfficientNetV2B0", offline)
    with pytest.raises(model_lib.PretrainedWeightsUnavailable, match="--weights none"):
        model_lib.build_model(HParams(weights="imagenet"))
    m = model_lib.build_model(HParams(weights="imagenet", allow_random_init=True))
    assert m.output.shape[-1] == 10


def test_local_weights_file_is_loaded(tmp_path):
    hp = HParams(weights="none")
    source = model_lib.build_backbone(hp)
    path = str(tmp_path / "backbone.h5")
    source.save_weights(path)
    loaded = model_lib.build_backbone(HParams(weights=path))
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_compile_uses_adamw_and_label_smoothing(small_model):
    hp = HParams(weights="none", label_smoothing=0.2)
    m = model_lib.compile_model(small_model, hp, steps_per_epoch=10)
    assert "AdamW" in type(m.optimizer).__name__
    assert m.loss.get_config()["label_smoothing"] == 0.2


@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_compile_clips_the_global_gradient_norm_unless_switched_off(small_model, optimizer):
    clipped = model_lib.compile_model(small_model, HParams(weights="none", optimizer=optimizer), steps_per_epoch=10)
    assert clipped.optimizer.global_clipnorm == HParams().gradient_clip_norm == 1.0
    spike = [tf.constant([300.0, 400.0])]  # norm 500
    assert float(tf.norm(clipped.optimizer._clip_gradients(spike)[0])) == pytest.approx(1.0)
    unclipped = model_lib.compile_model(small_model, HParams(weights="none", optimizer=optimizer,
                                                             gradient_clip_norm=None), steps_per_epoch=10)
    assert unclipped.optimizer.global_clipnorm is None
    assert float(tf.norm(unclipped.optimizer._clip_gradients(spike)[0])) == pytest.approx(500.0)


def test_thirteen_band_model_reuses_rgb_weights(tmp_path):
    rgb = model_lib.build_backbone(HParams(weights="none"))
    path = str(tmp_path / "rgb.h5")
    rgb.save_weights(path)
    multi = model_lib.build_backbone(HParams(weights=path), channels=13)
    stem_rgb = rgb.get_layer("stem_conv").get_weights()[0]
    stem_multi = multi.get_layer("stem_conv").get_weights()[0]
    assert stem_multi.shape == stem_rgb.shape[:2] + (13,) + stem_rgb.shape[3:]
    np.testing.assert_allclose(stem_multi.sum(axis=2), stem_rgb.sum(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        rgb.get_layer("stem_bn").get_weights()[0], multi.get_layer("stem_bn").get_weights()[0])
    model = model_lib.build_model(HParams(weights="none", augment=True), channels=13)
    assert model(tf.zeros((2, 64, 64, 13))).shape == (2, 10)
    with pytest.raises(ValueError):  # multispectral inputs are standardised, not [0, 255]
        model.get_layer("to_backbone_range")


def test_hparams_validation():
    with pytest.raises(ValueError, match="unknown backbone"):
        HParams(backbone="ResNet50")
    with pytest.raises(ValueError, match="epochs"):
        HParams(epochs=0)
    with pytest.raises(ValueError, match="unknown configuration key 'epochz'; did you mean 'epochs'"):
        HParams.from_dict({"epochz": 3})
    assert HParams.from_dict(HParams(epochs=3).to_dict()) == HParams(epochs=3)


def test_augmentation_modes_for_data_with_and_without_an_up():
    assert HParams(augment=True).augment == "full" and HParams(augment=False).augment == "none"
    with pytest.raises(ValueError, match="augment must be one of full, flips, none"):
        HParams(augment="rotate")
    names = lambda hp: [type(layer).__name__ for layer in model_lib.augmentation(hp, 3).layers]  # noqa: E731
    assert names(HParams(augment="full")) == ["RandomFlip", "RandomRot90", "RandomBrightness", "RandomContrast"]
    flips = model_lib.augmentation(HParams(augment="flips"), 3).layers
    assert [(type(layer).__name__, layer.mode) for layer in flips] == [("RandomFlip", "horizontal")]
    # Left-right mirroring only: "up" stays up (row order is kept, columns may be reversed).
    x = tf.reshape(tf.range(64 * 64 * 3, dtype=tf.float32), (1, 64, 64, 3))
    for _ in range(4):
        out = flips[0](x, training=True).numpy()[0]
        assert np.array_equal(out, x.numpy()[0]) or np.array_equal(out, x.numpy()[0][:, ::-1])
    none = model_lib.build_model(HParams(weights="none", augment="none"))
    assert "augmentation" not in [layer.name for layer in none.layers]


def test_stochastic_depth_sets_the_rate_of_every_block_drop():
    def block_drops(model):
        backbone = model.get_layer(model_lib.BACKBONE_LAYER)
        return {layer.name: layer.rate for layer in backbone.layers
                if isinstance(layer, tf.keras.layers.Dropout) and layer.name.endswith("drop")}

    keras = block_drops(model_lib.build_model(HParams(weights="none", augment="none")))
    assert keras and max(keras.values()) < model_lib.KERAS_STOCHASTIC_DEPTH  # Keras' own rates, rising
    half = block_drops(model_lib.build_model(HParams(weights="none", augment="none", stochastic_depth=0.1)))
    assert half.keys() == keras.keys()
    assert all(half[name] == pytest.approx(keras[name] / 2) for name in keras)
    # Off: the backbone in training mode is deterministic (BatchNorm aside, which uses the batch either way).
    off = model_lib.build_model(HParams(weights="none", augment="none", stochastic_depth=0.0, dropout=0.0))
    assert set(block_drops(off).values()) == {0.0}
    x = tf.random.stateless_uniform((4, 64, 64, 3), seed=(1, 2), maxval=255.0)
    np.testing.assert_allclose(off(x, training=True).numpy(), off(x, training=True).numpy(), rtol=1e-5)


def test_batch_norm_momentum_is_what_every_backbone_batch_norm_trains_with():
    def momenta(model):
        return {layer.momentum for layer in model.get_layer(model_lib.BACKBONE_LAYER).layers
                if isinstance(layer, tf.keras.layers.BatchNormalization)}

    assert momenta(model_lib.build_model(HParams(weights="none", augment="none"))) == {0.9}  # Keras applications'
    assert momenta(model_lib.build_model(HParams(weights="none", augment="none", batch_norm_momentum=0.99))) == {0.99}
    # Set after construction, it is the momentum the moving statistics are updated with.
    layer = tf.keras.layers.BatchNormalization()
    layer.build((None, 2))
    model_lib.set_batch_norm_momentum(tf.keras.Sequential([tf.keras.Input((2,)), layer]), 0.25)
    layer(tf.ones((8, 2)), training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), [0.75, 0.75], rtol=1e-6)
    from schema.errors import ConfigError

    with pytest.raises(ConfigError, match="batch_norm_momentum"):
        HParams.from_dict({"batch_norm_momentum": 1.0})


def test_budget_rule_scales_regularisers_with_the_number_of_steps():
    from components.hparams import BUDGET_SCALED

    hp = HParams(weights="none", epochs=10)  # 90 steps: the texture set from scratch
    short = hp.for_budget(steps_per_epoch=9)
    assert hp.budget_scale(9) == pytest.approx(90 / hp.full_strength_steps)
    for name in BUDGET_SCALED:
        assert getattr(short, name) == pytest.approx(getattr(hp, name) * 90 / hp.full_strength_steps)
    assert not short.budget_scaling  # applied once: the values are final
    assert short.for_budget(9) == short
    # A long run (EuroSAT fine-tuning, 15 epochs of 254 steps) keeps every strength as given.
    long = HParams(epochs=15).for_budget(254)
    assert all(getattr(long, n) == getattr(HParams(), n) for n in BUDGET_SCALED)
    # Switched off: exactly as configured, whatever the budget.
    off = HParams(weights="none", epochs=10, budget_scaling=False)
    assert off.budget_scale(9) == 1.0 and off.for_budget(9) == off
    with pytest.raises(ValueError):
        HParams(full_strength_steps=0)


def test_augmentation_share_augments_only_that_share_of_a_batch():
    hp = HParams(weights="none", augment="full", augment_share=0.5, colour_jitter=0.0)
    model = model_lib.build_model(hp)
    share = model.get_layer("random_share")
    assert share.layer.built  # built with the model: fitting and saving need its weights
    x = tf.random.uniform((400, 64, 64, 3), seed=3)
    changed = np.any(share(x, training=True).numpy() != x.numpy(), axis=(1, 2, 3)).mean()
    assert 0.35 < changed < 0.6  # about half (some flips/rotations of a random image leave it as it was)
    np.testing.assert_array_equal(share(x, training=False).numpy(), x.numpy())
    again = model_lib.RandomShare.from_config(share.get_config())
    assert again.rate == 0.5 and [type(a).__name__ for a in again.layer.layers] == ["RandomFlip", "RandomRot90"]
    none = model_lib.build_model(HParams(weights="none", augment="full", augment_share=0.0))
    assert not {"augmentation", "random_share"} & {layer.name for layer in none.layers}


def test_from_scratch_trains_at_a_higher_rate_than_pretrained_features():
    lr = 1e-3
    scratch = HParams(weights="none", learning_rate=lr)
    assert scratch.peak_learning_rate == pytest.approx(lr * scratch.scratch_lr_factor)
    assert scratch.scratch_lr_factor > 1  # the measured default (README "Why the recipe lost")
    # Pretrained: fine-tuning after the head phase, or a one-phase run, keep their rates.
    assert HParams(learning_rate=lr).peak_learning_rate == pytest.approx(lr * HParams().fine_tune_lr_factor)
    assert HParams(learning_rate=lr, head_epochs=0).peak_learning_rate == pytest.approx(lr)
    # Switched off, and the tutorial's recipe: learning_rate as given.
    assert HParams(weights="none", learning_rate=lr, scratch_lr_factor=1).peak_learning_rate == lr
    assert HParams(weights="none", learning_rate=lr, **TUTORIAL_RECIPE).peak_learning_rate == lr
    with pytest.raises(ValueError):
        HParams(scratch_lr_factor=0)
