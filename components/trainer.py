"""Trainer module file: `run_fn` fine-tunes EfficientNetV2 on the Transform's output.

Recipe (components/hparams.py): augmentation inside the model, two-phase fine-tuning for
pretrained backbones (head first, then everything at a lower rate), warm-up + cosine decay,
AdamW, label smoothing, early stopping (from half the budget on) with the best weights restored.
All visible GPUs through a distribution strategy, mixed precision and XLA on GPUs, and a clean CPU path. An interrupted
Trainer resumes from its last epoch (Keras BackupAndRestore in a directory keyed by its inputs).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from components import trainer_timing, warm_start
from components.dataset import image_channels, input_fn
from components.hparams import BUDGET_SCALED, HParams
from components.model import build_model, compile_model, set_backbone_trainable
from components.tuner import apply_tuned
from schema import features
from serving import signatures, training_statistics
from serving.export import export_serving_model

log = logging.getLogger(__name__)
HISTORY_FILE = "history.json"  # in the model run directory: the report plots it
def distribution_strategy() -> tf.distribute.Strategy:
    """All visible GPUs when there are several; the default strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_precision(hp: HParams, has_gpu: bool) -> str:
    """'auto': float16 mixed precision on GPUs; float32 on CPUs (bf16 measured no faster there)."""
    if hp.precision != "auto":
        return hp.precision
    return "mixed_float16" if has_gpu else "float32"


def resolve_jit(hp: HParams, has_gpu: bool) -> bool:
    """XLA on GPUs by default (fused kernels); off on CPUs where compile time dominates."""
    return has_gpu if hp.jit_compile is None else bool(hp.jit_compile)


_RESUME_LOCKS: Dict[str, int] = {}  # lock file -> open descriptor, held while this process lives


def resume_dir(model_run_dir: str, hp: HParams, inputs: List[str]) -> str:
    """A checkpoint directory stable across retries of the same Trainer inputs, so a retry resumes.

    TFX gives each execution a new model_run_dir, so a retried Trainer could never find its own checkpoints there.

    Locally the directory is locked (flock on `<key>.lock`, released when the process ends, also
    by a crash or Ctrl-C): a second run with the same inputs at the same time gets a directory of
    its own execution instead, so neither resumes from, nor deletes, the other's checkpoints.
    """
    import fcntl

    key = hashlib.sha256(json.dumps([hp.to_dict(), sorted(inputs)]).encode()).hexdigest()[:16]
    base = os.path.dirname(os.path.dirname(model_run_dir.rstrip("/")))
    shared = os.path.join(base, "resume", key)
    if "://" in base or not os.path.isdir(base):  # cloud storage: one writer per execution there
        return shared
    lock_path = shared + ".lock"
    if lock_path in _RESUME_LOCKS:  # this process holds it: a retry in the same process
        return shared
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        own = f"{shared}-{os.path.basename(model_run_dir.rstrip('/'))}"
        log.warning("another run is training on the same inputs (it holds %s); this one keeps its "
                    "checkpoints in %s", lock_path, own)
        return own
    _RESUME_LOCKS[lock_path] = fd
    return shared


class ProgressLog(tf.keras.callbacks.Callback):
    """One log line per epoch with the metrics and an estimate of the time left."""

    def __init__(self, epochs: int, phase: str):
        super().__init__()
        self.epochs, self.phase, self.start = epochs, phase, time.time()

    def on_epoch_end(self, epoch, logs=None):
        """Log the phase's epoch, its metrics (all but lr) and the seconds elapsed and left.

        The seconds left assume every remaining epoch runs as long as the mean so far: at most, as early stopping
        may end the phase sooner.
        """
        elapsed = time.time() - self.start
        left = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if k != "lr")
        log.info("%s epoch %d/%d %s (%.0fs elapsed, ~%.0fs left at most)", self.phase, epoch + 1,
                 self.epochs, metrics, elapsed, left)


def _merge(histories: List[tf.keras.callbacks.History]) -> Dict[str, List[float]]:
    merged: Dict[str, List[float]] = {}
    for h in histories:
        for k, vs in h.history.items():
            merged.setdefault(k, []).extend(float(v) for v in vs)
    return merged


def early_stopping_start_epoch(hp: HParams, epochs: int) -> int:
    """The first epoch (0-based) early stopping looks at.

    Never inside the warm-up, and not before `early_stopping_start` of the phase's `epochs` have run; at the latest
    the phase's last epoch.
    """
    return min(epochs - 1, max(math.ceil(hp.warmup_epochs), math.ceil(hp.early_stopping_start * epochs)))


class EarlyStoppingWithTies(tf.keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping, with a tie on the monitored value broken by a second one (`tie_monitor`, lower better).

    Keras counts only a strictly better value as an improvement, so of two epochs with the same validation accuracy
    it keeps the earlier one; with this, the later one wins when its validation loss is lower.
    """

    def __init__(self, tie_monitor: str = "val_loss", **kwargs) -> None:
        super().__init__(**kwargs)
        self.tie_monitor = tie_monitor
        self._tie: Optional[float] = None
        self._best_tie: Optional[float] = None

    def on_train_begin(self, logs=None) -> None:
        """Keras' reset, and no best tie value yet."""
        super().on_train_begin(logs)
        self._best_tie = None

    def on_epoch_end(self, epoch, logs=None) -> None:
        """Keras' rule, with this epoch's tie value at hand; the best epoch's kept."""
        self._tie = (logs or {}).get(self.tie_monitor)
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch:
            self._best_tie = self._tie

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if super()._is_improvement(monitor_value, reference_value):
            return True
        return bool(monitor_value == reference_value and self._tie is not None and self._best_tie is not None
                    and self._tie < self._best_tie)


def early_stopping(hp: HParams, epochs: int) -> tf.keras.callbacks.EarlyStopping:
    """Stop when validation accuracy has not improved for `patience` epochs; end with the best weights.

    The best weights are the best among the epochs that count (from early_stopping_start_epoch); Keras restores them
    at the end of training, early stop or not. Accuracy, not loss: the loss of a label-smoothed model can rise while
    its predictions get better, and accuracy is what the blessing gates on. Ties in accuracy go to the lower
    validation loss (`early_stopping_ties`): on the digits, Keras' rule restored epoch 6 of a seed whose epoch 9 had
    the same accuracy, a lower loss and 0.99 training accuracy against 0.96.
    """
    arguments = dict(monitor="val_accuracy", mode="max", patience=hp.early_stopping_patience,
                    restore_best_weights=True, start_from_epoch=early_stopping_start_epoch(hp, epochs))
    if hp.early_stopping_ties == "earlier":
        return tf.keras.callbacks.EarlyStopping(**arguments)
    return EarlyStoppingWithTies(tie_monitor="val_loss", **arguments)


def build_model_with_precision(
    hp: HParams, channels: int, precision: str, strategy: Optional[tf.distribute.Strategy] = None
) -> tf.keras.Model:
    """build_model under `precision` and `strategy`, leaving the global Keras policy as it was.

    Layers take the precision policy when they are built, so the global policy is `precision` only while they are.
    """
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(precision)
    try:
        with (strategy or tf.distribute.get_strategy()).scope():
            return build_model(hp, channels)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def train(
    hp: HParams,
    train_ds: tf.data.Dataset,
    eval_ds: tf.data.Dataset,
    steps_per_epoch: int,
    channels: int = features.RGB_CHANNELS,
    log_dir: Optional[str] = None,
    backup_dir: Optional[str] = None,
    initial_weights: Optional[str] = None,
) -> Tuple[tf.keras.Model, Dict[str, List[float]]]:
    """Build and fit the model with the configured recipe; returns it and the merged history.

    The budget rule (HParams.for_budget) is applied here, on the run's own steps per epoch.
    """
    if hp.budget_scaling:
        scale = hp.budget_scale(steps_per_epoch)
        hp = hp.for_budget(steps_per_epoch)
        log.info("budget rule: %d steps -> regularisers at %.3f of full strength (%s)",
                 hp.epochs * steps_per_epoch, scale,
                 ", ".join(f"{name}={getattr(hp, name):.4g}" for name in BUDGET_SCALED))
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    precision = resolve_precision(hp, has_gpu)
    jit = resolve_jit(hp, has_gpu)
    log.info("precision %s, XLA %s, %d GPU(s)", precision, jit, len(tf.config.list_physical_devices("GPU")))

    # One strategy for building and every compile: Keras refuses to compile a model under a
    # different strategy than the one it was created in (each MirroredStrategy() is new).
    strategy = distribution_strategy()
    with trainer_timing.phase("model build"):
        model = build_model_with_precision(hp, channels, precision, strategy)
        if initial_weights:  # a warm start (components/warm_start.py)
            warm_start.load(model, initial_weights)
    common = [trainer_timing.EpochTimes()] + ([tf.keras.callbacks.TensorBoard(log_dir=log_dir)] if log_dir else [])
    histories = []
    start_epoch = 0
    if hp.two_phase:
        # Phase 1: a new head on frozen pretrained features (high rate, few epochs).
        head_weights = os.path.join(backup_dir, "head.weights.h5") if backup_dir else None
        set_backbone_trainable(model, False)
        with strategy.scope():
            compile_model(model, hp, steps_per_epoch, hp.head_epochs, hp.learning_rate, jit)
        if head_weights and tf.io.gfile.exists(head_weights):
            log.info("resuming: head already trained (%s)", head_weights)
            model.load_weights(head_weights)
        else:
            histories.append(model.fit(
                train_ds, validation_data=eval_ds, epochs=hp.head_epochs, verbose=0,
                callbacks=common + [ProgressLog(hp.head_epochs, "head")]))
            if head_weights:
                tf.io.gfile.makedirs(backup_dir)
                model.save_weights(head_weights)
        set_backbone_trainable(model, True)
        start_epoch = hp.head_epochs
    # Phase 2 (or the only phase): everything, at the fine-tuning rate when pretrained, at the
    # from-scratch rate from random initialisation (HParams.peak_learning_rate).
    with strategy.scope():
        compile_model(model, hp, steps_per_epoch, hp.epochs - start_epoch, hp.peak_learning_rate, jit)
    callbacks = common + [
        early_stopping(hp, hp.epochs - start_epoch),
        ProgressLog(hp.epochs - start_epoch, "fine-tune" if hp.two_phase else "train"),
    ]
    if backup_dir:
        callbacks.append(tf.keras.callbacks.BackupAndRestore(os.path.join(backup_dir, "epochs")))
    histories.append(model.fit(
        train_ds, validation_data=eval_ds, epochs=hp.epochs - start_epoch, verbose=0,
        callbacks=callbacks))
    if backup_dir and tf.io.gfile.exists(backup_dir):  # finished: nothing left to resume
        tf.io.gfile.rmtree(backup_dir)
    return model, _merge(histories)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    import tensorflow_transform as tft

    timing = trainer_timing.start()
    custom_config = fn_args.custom_config or {}
    hp = HParams.from_dict(custom_config.get("hparams", {}))
    if fn_args.hyperparameters:  # from the optional Tuner
        hp = apply_tuned(hp, fn_args.hyperparameters)
    log.info("training %s with %s", hp.backbone, json.dumps(hp.to_dict()))
    tf.keras.utils.set_random_seed(hp.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    channels = image_channels(tft_output)
    # A root of spans (pipeline.trainer_custom_config) warm-starts and keeps weights for the next span.
    spans_run = warm_start.WARM_START_KEY in custom_config
    warm = warm_start.plan(getattr(fn_args, "base_model", None), hp, channels,
                           bool(custom_config.get(warm_start.WARM_START_KEY, False)))
    log.info("%s", warm.line)
    hp = warm.hparams

    started = time.monotonic()
    train_input = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, hp.batch_size,
                           training=True, seed=hp.seed)
    eval_input = input_fn(fn_args.eval_files, fn_args.data_accessor, tft_output, hp.batch_size, training=False)
    statistics = None
    if train_input.moments is not None:  # what the map compares a scene with (pipeline/mapping/training_check.py)
        statistics = training_statistics.of_modality(*train_input.moments, signatures.modality_of(tft_output))
    # TFDV's statistics of the raw train split (components/trainer_executor.py), the next span's skew reference
    statistics_path = getattr(fn_args, "statistics_path", None)
    feature_statistics = training_statistics.load_feature_statistics(statistics_path) if statistics_path else None
    log.info("read the train and eval splits into memory (counted, statistics) in %.2f s", time.monotonic() - started)
    timing.add("reading the splits (count + statistics)", time.monotonic() - started)
    steps_per_epoch = math.ceil(train_input.examples / hp.batch_size)
    log.info("%d training examples, %d steps per epoch, %d channels", train_input.examples, steps_per_epoch, channels)

    model, history = train(
        hp, train_input.batches, eval_input.batches, steps_per_epoch, channels,
        log_dir=os.path.join(fn_args.model_run_dir, "tensorboard"),
        backup_dir=resume_dir(fn_args.model_run_dir, hp, list(fn_args.train_files)),
        initial_weights=warm.weights,
    )
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(history, f)

    # before the export, which attaches the Transform layer (the weights of the bare model load into the next one)
    if spans_run:
        warm_start.save(model, hp, channels, fn_args.serving_model_dir, warm.line)
    with trainer_timing.phase("export + warm-up requests"):
        export_serving_model(model, tft_output, fn_args.serving_model_dir, training_statistics=statistics,
                             feature_statistics=feature_statistics)
    log.info("saved the serving model to %s", fn_args.serving_model_dir)
    timing.finish(fn_args.model_run_dir)
