"""The Trainer's recipe on tiny in-memory data: phases, precision, resume, Hub backbones."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components import model as model_lib
from components import trainer
from components.hparams import TUTORIAL_RECIPE, HParams
from schema.errors import ConfigError


def _tiny_data(n=40, channels=3):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 10
    x = rng.random((n, 64, 64, channels), dtype=np.float32) * 0.1 + (y / 10.0)[:, None, None, None]
    ds = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, 10))).batch(20)
    return ds, int(np.ceil(n / 20))


@pytest.fixture()
def local_weights(tmp_path):
    """A local weights file standing in for the ImageNet download (no network here)."""
    path = str(tmp_path / "pretrained.h5")
    model_lib.build_backbone(HParams(weights="none")).save_weights(path)
    return path


def test_two_phase_freezes_then_unfreezes_the_backbone(local_weights, tmp_path, monkeypatch):
    seen = []
    real_fit = tf.keras.Model.fit

    def spy_fit(self, *args, **kwargs):
        seen.append((self.get_layer(model_lib.BACKBONE_LAYER).trainable, kwargs["epochs"],
                     float(tf.keras.backend.get_value(self.optimizer.learning_rate(0)
                           if callable(self.optimizer.learning_rate) else self.optimizer.learning_rate))))
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(tf.keras.Model, "fit", spy_fit)
    ds, steps = _tiny_data()
    hp = HParams(weights=local_weights, epochs=3, head_epochs=1, batch_size=20, warmup_epochs=0)
    model, history = trainer.train(hp, ds, ds, steps, backup_dir=str(tmp_path / "resume"))
    assert [(t, e) for t, e, _ in seen] == [(False, 1), (True, 2)]
    assert seen[1][2] == pytest.approx(seen[0][2] * hp.fine_tune_lr_factor)
    assert len(history["loss"]) == 3 and len(history["val_loss"]) == 3
    assert not (tmp_path / "resume").exists()  # finished: nothing left to resume


def test_from_scratch_is_one_phase_with_trainable_batchnorm():
    hp = HParams(weights="none", epochs=1, batch_size=20)
    assert not hp.two_phase
    ds, steps = _tiny_data()
    model, history = trainer.train(hp, ds, ds, steps)
    assert model.get_layer(model_lib.BACKBONE_LAYER).trainable and len(history["loss"]) == 1


def test_interrupted_training_resumes_from_its_backup(tmp_path):
    ds, steps = _tiny_data()
    hp = HParams(weights="none", epochs=3, batch_size=20, early_stopping_patience=5)
    backup = str(tmp_path / "resume")

    class Interrupt(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    real_fit = tf.keras.Model.fit
    calls = []

    def interrupted_fit(self, *args, **kwargs):
        calls.append(kwargs["epochs"])
        if len(calls) == 1:
            kwargs["callbacks"] = kwargs["callbacks"] + [Interrupt()]
        return real_fit(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tf.keras.Model, "fit", interrupted_fit)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(hp, ds, ds, steps, backup_dir=backup)
        assert (tmp_path / "resume" / "epochs").exists()
        _, history = trainer.train(hp, ds, ds, steps, backup_dir=backup)
    assert len(history["loss"]) == 1  # epochs 1-2 restored from the backup, only the 3rd ran


def test_precision_and_xla_defaults():
    hp = HParams()
    assert trainer.resolve_precision(hp, has_gpu=True) == "mixed_float16"
    assert trainer.resolve_precision(hp, has_gpu=False) == "float32"
    assert trainer.resolve_precision(HParams(precision="mixed_bfloat16"), False) == "mixed_bfloat16"
    assert trainer.resolve_jit(hp, True) and not trainer.resolve_jit(hp, False)
    assert trainer.resolve_jit(HParams(jit_compile=True), False)


def test_mixed_precision_keeps_float32_probabilities():
    ds, steps = _tiny_data()
    model, _ = trainer.train(HParams(weights="none", epochs=1, batch_size=20, precision="mixed_bfloat16"),
                             ds, ds, steps)
    assert model.output.dtype == tf.float32
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # no global side effect


def test_tutorial_recipe_is_plain_adam():
    hp = HParams(weights="none", **TUTORIAL_RECIPE)
    model = model_lib.compile_model(model_lib.build_model(hp), hp, steps_per_epoch=5)
    assert type(model.optimizer).__name__ == "Adam" and hp.augment == "none"
    assert model.optimizer.global_clipnorm is None
    assert float(tf.keras.backend.get_value(model.optimizer.learning_rate)) == pytest.approx(hp.learning_rate)


def test_resume_dir_is_stable_per_inputs():
    a = trainer.resume_dir("/root/Trainer/model_run/7", HParams(), ["/t/*"])
    assert a == trainer.resume_dir("/root/Trainer/model_run/9", HParams(), ["/t/*"])
    assert a != trainer.resume_dir("/root/Trainer/model_run/7", HParams(epochs=3), ["/t/*"])
    assert a.startswith("/root/Trainer/resume/")


@pytest.fixture(scope="module")
def fake_hub_model(tmp_path_factory):
    """A feature-vector SavedModel in TF Hub's format; its 'features' expose what it was fed."""
    path = str(tmp_path_factory.mktemp("hub") / "efficientnet_v2_imagenet21k_xl_feature_vector")

    class FeatureVector(tf.Module):
        def __init__(self):
            super().__init__()
            self.scale = tf.Variable(1.0)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, images):
            size = tf.cast(tf.shape(images)[1], tf.float32)
            return self.scale * tf.stack(
                [tf.reduce_max(images, axis=[1, 2, 3]), tf.reduce_min(images, axis=[1, 2, 3]),
                 tf.fill(tf.shape(images)[:1], size)], axis=1)

    tf.saved_model.save(FeatureVector(), path)
    return path


def test_hub_backbone_gets_unit_range_at_its_own_size(fake_hub_model):
    hp = HParams(backbone=fake_hub_model, augment=False, dropout=0.0)
    assert hp.hub and hp.input_size == 512  # the tutorial's XL model is built for 512x512
    model = model_lib.build_model(hp)
    probe = tf.keras.Model(model.input, model.get_layer(model_lib.BACKBONE_LAYER).output)
    images = tf.concat([tf.ones((1, 64, 64, 3)), tf.zeros((1, 64, 64, 3))], axis=0)
    feats = probe(images).numpy()
    np.testing.assert_allclose(feats[0, :2], [1.0, 1.0], atol=1e-5)  # [0, 1], not [0, 255]
    assert feats[0, 2] == 512
    assert model(images).shape == (2, 10)


def test_hub_errors_are_clear(fake_hub_model, tmp_path):
    with pytest.raises(model_lib.PretrainedWeightsUnavailable, match="local folder"):
        model_lib.build_model(HParams(backbone=str(tmp_path / "no_such_model")))
    with pytest.raises(ValueError, match="Keras EfficientNetV2 backbone"):
        model_lib.build_model(HParams(backbone=fake_hub_model), channels=13)
    with pytest.raises(ValueError, match="carry their own weights"):
        HParams(backbone=fake_hub_model, weights="none")


def test_early_stopping_waits_for_the_warm_up_and_half_the_budget():
    assert trainer.early_stopping_start_epoch(HParams(epochs=10), 10) == 5
    assert trainer.early_stopping_start_epoch(HParams(epochs=10, warmup_epochs=7), 10) == 7
    assert trainer.early_stopping_start_epoch(HParams(epochs=10, early_stopping_start=0.0), 10) == 1
    assert trainer.early_stopping_start_epoch(HParams(epochs=2), 2) == 1
    with pytest.raises(ValueError, match="early_stopping_start"):
        HParams(early_stopping_start=1.5)


def _run_early_stopping(hp, epoch_logs):
    """Drive the Trainer's early stopping through Keras' hooks, one logs dict per epoch, each epoch's weights set
    to its index; returns the last epoch run, the epoch whose weights end the run, and the callback."""
    callback = trainer.early_stopping(hp, hp.epochs)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        model.layers[0].set_weights([np.full((1, 1), float(epoch)), np.zeros(1)])
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback.on_train_end()
    return epoch, float(model.layers[0].get_weights()[0][0, 0]), callback


def _accuracies(curve):
    return [{"val_accuracy": accuracy} for accuracy in curve]


def test_early_stopping_neither_stops_nor_keeps_weights_from_the_first_half():
    """The collapse seen on real images: the best validation score came in epoch 1, while the
    BatchNorm statistics were still settling, and early stopping after epoch 4 restored it."""
    hp = HParams(weights="none", epochs=10, early_stopping_patience=3)
    # Best validation accuracy in epoch 0, then worse: with patience 3 from the start this would
    # stop after epoch 3 and restore epoch 0.
    curve = [0.9, 0.1, 0.1, 0.1, 0.1, 0.5, 0.6, 0.55, 0.5, 0.5]
    epoch, restored, callback = _run_early_stopping(hp, _accuracies(curve))
    assert epoch == 9  # the whole budget ran: nothing counted before epoch 5
    assert callback.best_epoch == 6 and restored == 6.0


def test_early_stopping_stops_late_plateaus_with_the_best_counted_weights():
    hp = HParams(weights="none", epochs=12, early_stopping_patience=2)
    curve = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.7, 0.7, 0.7, 0.9, 0.9]
    epoch, restored, _ = _run_early_stopping(hp, _accuracies(curve))
    assert epoch == 8  # 6 counted first (12 * 0.5), was the best; 7 and 8 did not improve
    assert restored == 6.0


def _restored_epoch(hp, curve):
    """(last epoch run, epoch restored) for (val_accuracy, val_loss) per epoch."""
    epoch, restored, _ = _run_early_stopping(
        hp, [{"val_accuracy": accuracy, "val_loss": loss} for accuracy, loss in curve])
    return epoch, restored


def test_early_stopping_ties_go_to_the_lower_validation_loss():
    """The digits seed that Keras' rule cost 1.6 points: epochs 6 and 9 (1-based) at the same 0.9712, epoch 9 with
    the lower loss. Keras stopped after epoch 9 and restored epoch 6; the tie rule keeps epoch 9 and runs epoch 10."""
    curve = [(0.60, 3.3), (0.15, 182.0), (0.63, 8.0), (0.86, 0.98), (0.945, 0.27),
             (0.9712, 0.1999), (0.9539, 0.2239), (0.9654, 0.1899), (0.9712, 0.1810), (0.9683, 0.1800)]
    hp = HParams(weights="none", epochs=10, early_stopping_patience=3)
    assert _restored_epoch(hp, curve) == (9, 8)  # all 10 epochs ran; epoch index 8 (the 9th) restored
    assert _restored_epoch(HParams(weights="none", epochs=10, early_stopping_patience=3,
                                   early_stopping_ties="earlier"), curve) == (8, 5)
    # A tie with a higher loss is no improvement: the earlier epoch stays the best.
    worse = curve[:8] + [(0.9712, 0.25), (0.9600, 0.30)]
    assert _restored_epoch(hp, worse) == (8, 5)
    with pytest.raises(ConfigError, match="early_stopping_ties"):
        HParams.from_dict({"early_stopping_ties": "later"})


def test_concurrent_runs_do_not_share_resume_checkpoints(tmp_path):
    """Another process holding the inputs' resume lock: this Trainer gets its own directory, so
    neither resumes from, nor deletes, the other's checkpoints; once released, it is shared again."""
    import fcntl

    run_dir = tmp_path / "Trainer" / "model_run" / "7"
    run_dir.mkdir(parents=True)
    shared = str(tmp_path / "Trainer" / "resume")
    hp = HParams(epochs=3)
    lock = trainer.resume_dir(str(run_dir), hp, ["/t/*"]) + ".lock"
    os.close(trainer._RESUME_LOCKS.pop(lock))  # released: now another process takes it
    other = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        mine = trainer.resume_dir(str(run_dir), hp, ["/t/*"])
        assert mine == lock[: -len(".lock")] + "-7" and mine.startswith(shared)
    finally:
        os.close(other)  # that process ended
    assert trainer.resume_dir(str(tmp_path / "Trainer" / "model_run" / "9"), hp, ["/t/*"]) == lock[: -len(".lock")]


def test_train_applies_the_budget_rule_to_the_model_and_the_loss(monkeypatch):
    seen = {}

    def spy_compile(model, hp, *args, **kwargs):
        seen["label_smoothing"], seen["weight_decay"] = hp.label_smoothing, hp.weight_decay
        seen["dropout"] = next(layer.rate for layer in model.layers if isinstance(layer, tf.keras.layers.Dropout))
        raise StopIteration  # enough seen: no need to fit

    monkeypatch.setattr(trainer, "compile_model", spy_compile)
    ds, steps = _tiny_data()  # 2 steps per epoch, 5 epochs: 10 steps
    hp = HParams(weights="none", epochs=5, batch_size=20)
    with pytest.raises(StopIteration):
        trainer.train(hp, ds, ds, steps)
    scale = 10 / hp.full_strength_steps
    assert seen == pytest.approx({"label_smoothing": hp.label_smoothing * scale,
                                  "weight_decay": hp.weight_decay * scale, "dropout": hp.dropout * scale})


def test_a_short_budget_trains_with_a_share_of_the_batch_augmented(tmp_path):
    """10 steps: the budget rule augments 0.5 % of each batch (RandomShare), and the Trainer's
    fit, backup and restore take that model (its augmentation was once left unbuilt)."""
    ds, steps = _tiny_data()
    hp = HParams(weights="none", epochs=1, batch_size=20, augment="full", full_strength_steps=200)
    model, history = trainer.train(hp, ds, ds, steps, backup_dir=str(tmp_path / "resume"))
    assert model.get_layer("random_share").rate == pytest.approx(steps / 200)
    assert len(history["loss"]) == 1


def test_train_runs_from_scratch_at_the_from_scratch_rate(monkeypatch):
    seen = []

    def spy_compile(model, hp, steps_per_epoch, epochs=None, learning_rate=None, jit_compile=None):
        seen.append(learning_rate)
        raise StopIteration  # the rate is all this test needs

    monkeypatch.setattr(trainer, "compile_model", spy_compile)
    ds, steps = _tiny_data()
    hp = HParams(weights="none", epochs=2, batch_size=20, learning_rate=1e-3, scratch_lr_factor=3.0)
    with pytest.raises(StopIteration):
        trainer.train(hp, ds, ds, steps)
    assert seen == [pytest.approx(3e-3)]


def test_run_fn_trains_on_fn_args_data_accessor(tmp_path, monkeypatch):
    """run_fn as TFX calls it: both splits through fn_args.data_accessor (a real TFX DataAccessor),
    the steps from the read's count, the training statistics from its patch moments."""
    import json
    import types

    from components import dataset, trainer_timing
    from tests.serving_fixtures import write_transform_output

    graph = str(tmp_path / "transform_graph")
    write_transform_output(graph)
    rng = np.random.default_rng(0)
    y = np.eye(10, dtype=np.float32)[np.arange(30) % 10]
    train_files, _ = dataset.write_transformed(rng.random((30, 64, 64, 3), dtype=np.float32), y,
                                               str(tmp_path / "train"), moments=True)
    eval_files, _ = dataset.write_transformed(rng.random((10, 64, 64, 3), dtype=np.float32), y[:10],
                                              str(tmp_path / "eval"), moments=True)
    exported, steps = {}, []
    real_train = trainer.train

    def spy_train(hp, train_ds, eval_ds, steps_per_epoch, *args, **kwargs):
        steps.append(steps_per_epoch)
        return real_train(hp, train_ds, eval_ds, steps_per_epoch, *args, **kwargs)

    def spy_export(model, tft_output, export_dir, training_statistics=None, feature_statistics=None):
        exported["statistics"] = training_statistics  # the export has its own tests
        exported["feature_statistics"] = feature_statistics

    monkeypatch.setattr(trainer, "train", spy_train)
    monkeypatch.setattr(trainer, "export_serving_model", spy_export)
    run_dir = tmp_path / "Trainer" / "model_run" / "1"
    run_dir.mkdir(parents=True)
    fn_args = types.SimpleNamespace(
        custom_config={"hparams": HParams(weights="none", epochs=1, batch_size=16).to_dict()}, hyperparameters=None,
        transform_output=graph, train_files=train_files, eval_files=eval_files,
        data_accessor=dataset.local_data_accessor(), model_run_dir=str(run_dir),
        serving_model_dir=str(tmp_path / "Trainer" / "model" / "1"))
    trainer.run_fn(fn_args)
    assert steps == [2]  # ceil(30 / 16)
    assert exported["statistics"]["patches"] == 30 and exported["statistics"]["modality"] == "rgb"
    assert exported["feature_statistics"] is None  # no StatisticsGen input (fn_args.statistics_path) here
    with open(run_dir / trainer.HISTORY_FILE) as f:
        assert len(json.load(f)["loss"]) == 1
    with open(run_dir / trainer_timing.OVERHEAD_FILE) as f:
        assert "reading the splits (count + statistics)" in json.load(f)
