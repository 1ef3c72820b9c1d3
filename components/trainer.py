"""Trainer module file: `run_fn` fine-tunes EfficientNetV2 on the Transform's output."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from typing import List, Tuple  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from components import features  # noqa: E402
from components.hparams import HParams  # noqa: E402
from components.model import build_model, compile_model  # noqa: E402

log = logging.getLogger(__name__)
HISTORY_FILE = "history.json"  # in the model run directory: the report plots it


def _files(patterns: List[str]) -> List[str]:
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {patterns}")
    return files


def count_records(patterns: List[str]) -> int:
    """Number of examples in the (GZIP) TFRecord files: sizes the schedule and the epochs."""
    ds = tf.data.TFRecordDataset(_files(patterns), compression_type="GZIP")
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def input_fn(
    patterns: List[str],
    tft_output: tft.TFTransformOutput,
    batch_size: int,
    training: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """(image, one-hot label) batches from transformed TFRecords, cached and prefetched."""
    spec = tft_output.transformed_feature_spec()
    spec = {k: spec[k] for k in (features.TRANSFORMED_IMAGE_KEY, features.TRANSFORMED_ONEHOT_KEY)}
    ds = tf.data.TFRecordDataset(
        _files(patterns), compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE
    ).cache()  # serialized records: the epochs after the first read from memory
    if training:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.map(
        lambda s: _to_xy(tf.io.parse_example(s, spec)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def _to_xy(parsed) -> Tuple[tf.Tensor, tf.Tensor]:
    return parsed[features.TRANSFORMED_IMAGE_KEY], parsed[features.TRANSFORMED_ONEHOT_KEY]


def distribution_strategy() -> tf.distribute.Strategy:
    """All visible GPUs when there are several; the default strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class ProgressLog(tf.keras.callbacks.Callback):
    """One log line per epoch with the metrics and the time left."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.start = epochs, time.time()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self.start
        left = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if k != "lr")
        # keras prints its own line too; this one adds the time left
        log.info("epoch %d/%d %s (%.0fs elapsed, ~%.0fs left at most)", epoch + 1, self.epochs, metrics, elapsed, left)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    from serving.signatures import export_serving_model

    hp = HParams.from_dict((fn_args.custom_config or {}).get("hparams", {}))
    log.info("training %s with %s", hp.backbone, json.dumps(hp.to_dict()))
    tf.keras.utils.set_random_seed(hp.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)

    n_train = count_records(fn_args.train_files)
    steps_per_epoch = math.ceil(n_train / hp.batch_size)
    train_ds = input_fn(fn_args.train_files, tft_output, hp.batch_size, training=True, seed=hp.seed)
    eval_ds = input_fn(fn_args.eval_files, tft_output, hp.batch_size, training=False)

    with distribution_strategy().scope():
        model = compile_model(build_model(hp), hp, steps_per_epoch)

    callbacks = [
        tf.keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, "tensorboard")),
        tf.keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=hp.early_stopping_patience, restore_best_weights=True
        ),
        ProgressLog(hp.epochs),
    ]
    history = model.fit(
        train_ds, validation_data=eval_ds, epochs=hp.epochs, callbacks=callbacks, verbose=2
    )
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump({k: [float(v) for v in vs] for k, vs in history.history.items()}, f)

    export_serving_model(model, tft_output, fn_args.serving_model_dir)
    log.info("saved the serving model to %s", fn_args.serving_model_dir)
