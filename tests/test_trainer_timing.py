"""The Trainer's overhead report: phases timed, each epoch's training and validation apart."""
import json
import os
import time

import numpy as np
import tensorflow as tf

from components import trainer_timing


def test_report_times_phases_and_each_epochs_training_and_validation(tmp_path):
    report = trainer_timing.start()
    with trainer_timing.phase("model build"):
        time.sleep(0.05)
        model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(64, 4)), np.arange(64) % 2
    model.fit(x, y, validation_data=(x, y), epochs=3, batch_size=16, verbose=0,
              callbacks=[trainer_timing.EpochTimes()])
    summary = report.finish(str(tmp_path))
    assert summary["model build"] >= 0.05
    assert summary["epochs"] == 3 and len(report.epochs) == 3
    assert all(e["train"] > 0 and e["validation"] > 0 for e in report.epochs)
    assert summary["training steps"] == round(sum(e["train"] for e in report.epochs), 2)
    assert summary["first epoch's extra (tracing)"] >= 0 and summary["total"] >= summary["model build"]
    with open(os.path.join(tmp_path, trainer_timing.OVERHEAD_FILE)) as f:
        assert json.load(f) == summary
    # Finished: a later phase is not added to it.
    before = dict(report.phases)
    with trainer_timing.phase("model build"):
        time.sleep(0.01)
    assert report.phases == before and trainer_timing._current is None


def test_an_epoch_without_validation_is_all_training():
    report = trainer_timing.start()
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.zeros((8, 4)), np.zeros(8), epochs=1, verbose=0, callbacks=[trainer_timing.EpochTimes()])
    assert len(report.epochs) == 1 and report.epochs[0]["train"] > 0 and "validation" not in report.epochs[0]
    assert "first epoch's extra (tracing)" not in report.summary()  # one epoch: nothing to compare with
