#!/usr/bin/env python
"""Real images: the whole pipeline against a plain Keras loop, same split, same epoch budget.

Synthetic data proves the plumbing, not the model. This benchmark takes a real labelled image
set that ships with scikit-learn (1,797 handwritten digits, written into EuroSAT's class-folder
layout by components/digits.py) and, in one run:

1. runs the project's pipeline on the folder (conversion, ExampleGen's 60/20/20 split, Transform,
   the Trainer's default recipe with --augment none because digits have an "up", Evaluator,
   Pusher) and reads the Evaluator's metrics.json;
2. checks those numbers against scikit-learn on the pushed model's own predictions for the
   test split (serving_default on the stored tf.Examples);
3. trains a plain Keras loop, the tutorial's way (EfficientNetV2-B0 with a softmax head, Adam at
   1e-3, no augmentation, no early stopping), on the same train split for the same number of
   epochs and batch size, and scores it with scikit-learn on the same test split.

Both start from random weights (no ImageNet download offline). Accuracy and macro F1 are of the
top-1 (argmax) prediction on both sides.

    python benchmarks/real_data.py                    # ~8 min on 2 CPU cores
    python benchmarks/real_data.py --per-class 60 --epochs 4   # a quick smoke run
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pipeline_runner
from components import digits
from pipeline.report import example_split_files, predict_split, run_report_dir
from pipeline.results import latest_results
from schema import features

PIPELINE = "real-data"


def sklearn_scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(labels, predicted)),
            "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}


def read_split(examples_uri: str, split: str):
    """Decoded images in [0, 1] and label ids of one split of ExampleGen's output."""
    import tensorflow as tf

    files = example_split_files(examples_uri, split)
    spec = features.raw_feature_spec()
    images, labels = [], []
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
        batch = tf.io.parse_example(records, spec)
        images.append(features.decode_images(batch[features.IMAGE_KEY]).numpy())
        labels.append(batch[features.LABEL_KEY].numpy())
    return np.concatenate(images), np.concatenate(labels)


def plain_keras_loop(examples_uri: str, epochs: int, batch_size: int, seed: int = 42, curves: bool = False) -> dict:
    """The tutorial's loop on the pipeline's own train split; scored on its test split. `curves`:
    also the per-epoch accuracy on the eval split (watched only: it changes nothing in training)."""
    import tensorflow as tf

    x_train, y_train = read_split(examples_uri, "train")
    x_test, y_test = read_split(examples_uri, "test")
    tf.keras.utils.set_random_seed(seed)
    backbone = tf.keras.applications.EfficientNetV2B0(
        include_top=False, weights=None, input_shape=x_train.shape[1:], pooling="avg")
    inputs = tf.keras.Input(x_train.shape[1:])
    outputs = tf.keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(backbone(inputs * 255.0))
    model = tf.keras.Model(inputs, outputs)
    model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                        validation_data=read_split(examples_uri, "eval") if curves else None)
    seconds = time.perf_counter() - start
    predicted = model.predict(x_test, batch_size=256, verbose=0).argmax(1)
    out = {**sklearn_scores(y_test, predicted), "train_images": len(x_train), "test_images": len(x_test),
           "seconds": round(seconds, 1)}
    if curves:
        out["val_accuracy"] = [round(float(v), 3) for v in history.history["val_accuracy"]]
    return out


def project_pipeline(folder: str, out: str, epochs: int, batch_size: int, augment: str) -> dict:
    """The whole DAG on the folder; Evaluator's numbers and sklearn's on the pushed model."""
    argv = ["--data", folder, "--output-dir", out, "--pipeline-name", PIPELINE, "--weights", "none",
            "--epochs", str(epochs), "--batch-size", str(batch_size), "--augment", augment,
            "--min-accuracy", "0", "--min-macro-f1", "0"]
    start = time.perf_counter()
    if pipeline_runner.main(argv) != 0:
        raise SystemExit("the pipeline run failed; see the log above")
    seconds = time.perf_counter() - start
    results = latest_results(os.path.join(out, "metadata", f"{PIPELINE}.sqlite"), PIPELINE)
    with open(os.path.join(run_report_dir(out, PIPELINE, results.run_id), "metrics.json")) as f:
        metrics = json.load(f)
    labels, probabilities = predict_split(results.pushed_destination, results.examples_uri)
    return {"evaluator": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]},
            "pushed_model_sklearn": sklearn_scores(labels, probabilities.argmax(1)),
            "test_images": int(len(labels)), "seconds": round(seconds, 1),
            "examples_uri": results.examples_uri}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="epoch budget of both sides")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of both sides")
    p.add_argument("--per-class", type=int, default=None, help="at most N digits per class (default: all 1,797)")
    p.add_argument("--augment", default="none", choices=["full", "flips", "none"],
                   help="the pipeline's augmentation (digits have an 'up': none)")
    p.add_argument("--output-dir", help="keep the run here (default: a temporary folder)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or os.path.join(tmp, "run")
        folder = os.path.join(tmp, "EuroSAT_digits")
        n = digits.write_digits_folder(folder, args.per_class)
        print(f"{n} real images (scikit-learn digits) in EuroSAT's class-folder layout", flush=True)
        project = project_pipeline(folder, out, args.epochs, args.batch_size, args.augment)
        plain = plain_keras_loop(project["examples_uri"], args.epochs, args.batch_size)

    evaluator, check = project["evaluator"], project["pushed_model_sklearn"]
    print(f"\nReal images: {n} digits, the pipeline's split ({plain['train_images']} train, "
          f"{plain['test_images']} test), {args.epochs} epochs, batch {args.batch_size}, from scratch; "
          "test accuracy and macro F1 of the argmax prediction")
    print(f"{'side':<46}{'accuracy':>10}{'macro F1':>10}{'seconds':>9}")
    print(f"{'project pipeline (Evaluator, metrics.json)':<46}{evaluator['accuracy']:>10.4f}"
          f"{evaluator['macro_f1']:>10.4f}{project['seconds']:>9.1f}")
    print(f"{'  the pushed model, scored by scikit-learn':<46}{check['accuracy']:>10.4f}{check['macro_f1']:>10.4f}")
    print(f"{'plain Keras loop (Adam, no augmentation)':<46}{plain['accuracy']:>10.4f}"
          f"{plain['macro_f1']:>10.4f}{plain['seconds']:>9.1f}")
    print(f"project - plain: accuracy {evaluator['accuracy'] - plain['accuracy']:+.4f}, "
          f"macro F1 {evaluator['macro_f1'] - plain['macro_f1']:+.4f}")
    agree = all(abs(evaluator[k] - check[k]) < 1e-6 for k in evaluator)
    print(f"Evaluator == scikit-learn on the pushed model's predictions: {agree}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"project": project, "plain": plain, "epochs": args.epochs,
                       "batch_size": args.batch_size, "images": n}, f, indent=2)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
