"""The Tuner's tuner_fn runs a real (tiny) KerasTuner search on transformed-format records."""
import os
import types

import numpy as np
import tensorflow as tf

from components import tuner as tuner_lib
from components.dataset import local_data_accessor, write_transformed
from components.hparams import HParams


def test_tuner_fn_searches_and_returns_best_values(tmp_path):
    rng = np.random.default_rng(0)
    y = np.eye(10, dtype=np.float32)[np.arange(20) % 10]
    x = rng.random((20, 64, 64, 3), dtype=np.float32)
    files, tft_output = write_transformed(x, y, str(tmp_path / "train"), shards=1)
    fn_args = types.SimpleNamespace(
        custom_config={"hparams": HParams(weights="none", batch_size=10).to_dict(),
                       "tuner_trials": 1, "tuner_epochs": 1},
        transform_graph_path=os.path.dirname(tft_output.transform_savedmodel_dir),
        train_files=files, eval_files=files, data_accessor=local_data_accessor(),
        working_dir=str(tmp_path / "tuning"))
    result = tuner_lib.tuner_fn(fn_args)
    result.tuner.search(**result.fit_kwargs, verbose=0)
    best = result.tuner.get_best_hyperparameters(1)[0]
    tuned = tuner_lib.apply_tuned(HParams(weights="none"), best.get_config())
    assert 1e-4 <= tuned.learning_rate <= 1e-2 and tuned.dropout in (0.1, 0.2, 0.3)
    assert isinstance(result.fit_kwargs["x"], tf.data.Dataset)
