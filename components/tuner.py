"""Tuner module file: `tuner_fn` searches the recipe's most sensitive knobs with KerasTuner.

Optional (`--tune`): the Tuner component runs before the Trainer and hands it the best values,
which run_fn applies on top of the configured hyperparameters.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import keras_tuner

from components.dataset import image_channels, input_fn
from components.hparams import HParams
from components.model import build_model, compile_model
from serving import contract

TUNED = ("learning_rate", "dropout", "label_smoothing")


def search_space(base: HParams) -> keras_tuner.HyperParameters:
    """Learning rate (log scale), dropout and label smoothing around the configured values."""
    hps = keras_tuner.HyperParameters()
    hps.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=base.learning_rate)
    hps.Choice("dropout", sorted({0.1, 0.2, 0.3, base.dropout}), default=base.dropout)
    hps.Choice("label_smoothing", sorted({0.0, 0.1, base.label_smoothing}), default=base.label_smoothing)
    return hps


def apply_tuned(base: HParams, values: Mapping[str, Any]) -> HParams:
    """`base` with the tuned values (a KerasTuner config or a plain {name: value}) applied."""
    values = values.get("values", values)
    return dataclasses.replace(base, **{k: values[k] for k in TUNED if k in values})


def tuner_fn(fn_args):
    """TFX Tuner entry point: a RandomSearch over `search_space`, each trial a short training."""
    import tensorflow_transform as tft
    from tfx import v1 as tfx

    config = fn_args.custom_config or {}
    base = HParams.from_dict(config.get("hparams", {}))
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    channels = image_channels(tft_output)
    train_input = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, base.batch_size,
                           training=True, seed=base.seed)
    eval_input = input_fn(fn_args.eval_files, fn_args.data_accessor, tft_output, base.batch_size, training=False)
    steps = math.ceil(train_input.examples / base.batch_size)
    epochs = int(config["tuner_epochs"])  # the pipeline passes both (PipelineConfig declares their defaults)

    def build(hps: keras_tuner.HyperParameters):
        # The budget rule at the Trainer's budget (base.epochs), not the trial's: a trial judges
        # the regularisers at the strength the Trainer will train them with.
        hp = apply_tuned(dataclasses.replace(base, head_epochs=0), hps.values).for_budget(steps)
        hp = dataclasses.replace(hp, epochs=epochs)
        return compile_model(build_model(hp, channels), hp, steps)

    tuner = keras_tuner.RandomSearch(
        build,
        hyperparameters=search_space(base),
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=int(config["tuner_trials"]),
        directory=fn_args.working_dir,
        project_name=contract.MODEL_NAME,
        seed=base.seed,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": train_input.batches,
            "validation_data": eval_input.batches,
            "epochs": epochs,
        },
    )
