#!/usr/bin/env python
"""Real images: the whole pipeline against a plain Keras loop, same split, same epoch budget, 3 seeds.

Synthetic data proves the plumbing, not the model. This benchmark takes two real labelled image
sets that ship with installed packages, each written into EuroSAT's class-folder layout:

- textures: 940 64x64 patches of ten real photographs (scikit-image's and scikit-learn's bundled
  pictures, schema/example_data/textures.py), one photograph per class, no "up" like overhead imagery: the
  pipeline trains with its default recipe (--augment full);
- digits: scikit-learn's 1,797 handwritten digits (schema/example_data/digits.py), which have an "up":
  the pipeline trains with --augment none.

For each set and each seed (default 42, 43, 44) it, in one run:

1. runs the project's pipeline on the folder (conversion, ExampleGen's 60/20/20 split, Transform,
   the Trainer, Evaluator, Pusher) and reads the Evaluator's metrics.json (later seeds reuse the
   cached split and Transform: only the Trainer's seed changes);
2. checks those numbers against scikit-learn on the pushed model's own predictions for the
   test split (serving_default on the stored tf.Examples);
3. trains a plain Keras loop, the tutorial's way (EfficientNetV2-B0 with a softmax head, Adam at
   1e-3, no augmentation, no early stopping), with the same seed on the same train split for the
   same number of epochs and batch size, and scores it with scikit-learn on the same test split.

It prints, per set, each side's mean ± spread (half the min-max range over the seeds) and whether
the project's mean is above the plain loop's by more than the spread: the larger of the two sides'
sample standard deviations (ddof 1) and half-ranges; with 3 seeds the sample std is between 1 and
1.15 times the half-range, so it is the one that decides; the exit status is 0 when it
is on both sets (and the Evaluator agrees with scikit-learn). A 200-image test split moves a few
points between seeds: decide on the means. Both sides start from random weights (no ImageNet
download offline). Accuracy and macro F1 are of the top-1 (argmax) prediction on both sides.

    python benchmarks/real_data.py                      # both sets, 3 seeds (6 pipeline runs, 6 plain loops)
    python benchmarks/real_data.py --sets textures --seeds 42 --epochs 4   # a quick smoke run
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
from pipeline.report import example_split_files, predict_split, run_report_dir
from pipeline.results import latest_results
from schema import features
from schema.example_data import digits, textures

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
    also the per-epoch accuracy on the eval split (watched only: it changes nothing in training).
    """
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


def project_pipeline(folder: str, out: str, epochs: int, batch_size: int, augment: str, seed: int = 42,
                     pipeline: str = PIPELINE) -> dict:
    """The whole DAG on the folder; Evaluator's numbers and sklearn's on the pushed model. Runs of
    other seeds into the same `out` reuse the cached conversion, split, statistics and Transform
    (only the Trainer's seed changes), and --max-drop 1 pushes every seed's model.
    """
    config = os.path.join(out + "-configs", f"seed{seed}.yaml")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, "w") as f:
        json.dump({"hparams": {"seed": seed}}, f)  # JSON is YAML
    argv = ["--config", config, "--data", folder, "--output-dir", out, "--pipeline-name", pipeline,
            "--weights", "none", "--epochs", str(epochs), "--batch-size", str(batch_size), "--augment", augment,
            "--min-accuracy", "0", "--min-macro-f1", "0", "--max-drop", "1"]
    start = time.perf_counter()
    if pipeline_runner.main(argv) != 0:
        raise SystemExit("the pipeline run failed; see the log above")
    seconds = time.perf_counter() - start
    results = latest_results(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline)
    with open(os.path.join(run_report_dir(out, pipeline, results.run_id), "metrics.json")) as f:
        metrics = json.load(f)
    labels, probabilities = predict_split(results.pushed_destination, results.examples_uri)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "pushed_model_sklearn": sklearn_scores(labels, probabilities.argmax(1)),
            "test_images": int(len(labels)), "seconds": round(seconds, 1),
            "examples_uri": results.examples_uri}


# name -> (writer of the folder, the pipeline's --augment for it, what it is)
SETS = {
    "textures": (lambda root, n: textures.write_textures_folder(root, n or textures.DEFAULT_PER_CLASS), "full",
                 "texture patches of 10 photographs (schema/example_data/textures.py), no 'up'"),
    "digits": (digits.write_digits_folder, "none", "scikit-learn's handwritten digits, which have an 'up'"),
}


def mean_spread(values) -> str:
    """The mean ± half the range (min-max over the seeds)."""
    return f"{np.mean(values):.4f} ± {(max(values) - min(values)) / 2:.4f}"


def margin_and_spread(project, plain) -> tuple[float, float, float]:
    """(project mean - plain mean, the spread, the larger half-range) of one metric over the seeds.

    The spread is the largest of both sides' sample standard deviations (ddof 1) and half-ranges
    (half of max - min): the project wins a metric when the margin is above it.
    """
    margin = float(np.mean(project) - np.mean(plain))
    half_range = max(max(project) - min(project), max(plain) - min(plain)) / 2
    spread = max([half_range, *(float(np.std(side, ddof=1)) for side in (project, plain) if len(side) > 1)])
    return margin, float(spread), float(half_range)


def compare(name: str, runs: dict, args) -> bool:
    """Print one set's table; whether the project's mean beats the plain loop's by more than the
    spread (the largest of both sides' sample stds and half-ranges) on accuracy and on macro F1.
    """
    project, plain = runs["project"], runs["plain"]
    print(f"\n{name}: {runs['description']}; {runs['images']} images, the pipeline's split "
          f"({plain[0]['train_images']} train, {plain[0]['test_images']} test), {args.epochs} epochs, batch "
          f"{args.batch_size}, from scratch, seeds {args.seeds}; the pipeline with --augment {runs['augment']}")
    print(f"{'side':<44}{'accuracy (mean ± spread)':>26}{'macro F1 (mean ± spread)':>26}  per seed (accuracy)")
    wins = True
    for label, side in (("project pipeline (Evaluator)", project), ("plain Keras loop (Adam, no augmentation)", plain)):
        acc, f1 = [r["accuracy"] for r in side], [r["macro_f1"] for r in side]
        print(f"{label:<44}{mean_spread(acc):>26}{mean_spread(f1):>26}  {[round(a, 4) for a in acc]}")
    for metric in ("accuracy", "macro_f1"):
        margin, spread, half_range = margin_and_spread([r[metric] for r in project], [r[metric] for r in plain])
        wins &= margin > spread
        print(f"project - plain, {metric}: {margin:+.4f} (spread {spread:.4f}: the larger of the sides' sample "
              f"stds and half-ranges; the larger half-range alone {half_range:.4f}): "
              f"{'above by more than the spread' if margin > spread else 'NOT above by more than the spread'}")
    agree = all(abs(r[k] - r["pushed_model_sklearn"][k]) < 1e-6 for r in project for k in ("accuracy", "macro_f1"))
    print(f"Evaluator == scikit-learn on the pushed models' predictions: {agree}")
    return wins and agree


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS), help="which real sets (default both)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="seeds of both sides (default 3)")
    p.add_argument("--epochs", type=int, default=10, help="epoch budget of both sides")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of both sides")
    p.add_argument("--per-class", type=int, default=None,
                   help="at most N images per class (default: all 1,797 digits, 94 texture patches)")
    p.add_argument("--output-dir", help="keep the runs here, one folder per set (default: a temporary folder)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)

    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            write, augment, description = SETS[name]
            out = os.path.join(args.output_dir or tmp, name)
            folder = os.path.join(tmp, f"EuroSAT_{name}")
            n = write(folder, args.per_class)
            print(f"{n} real images ({description}) in EuroSAT's class-folder layout", flush=True)
            runs = {"description": description, "augment": augment, "images": n, "project": [], "plain": []}
            for seed in args.seeds:
                runs["project"].append(project_pipeline(folder, out, args.epochs, args.batch_size, augment, seed))
                runs["plain"].append(plain_keras_loop(runs["project"][-1]["examples_uri"], args.epochs,
                                                      args.batch_size, seed))
                print(f"{name} seed {seed}: project {runs['project'][-1]['accuracy']:.4f}, "
                      f"plain {runs['plain'][-1]['accuracy']:.4f}", flush=True)
            report[name] = runs
    ok = [compare(name, runs, args) for name, runs in report.items()]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"epochs": args.epochs, "batch_size": args.batch_size, "seeds": args.seeds, **report}, f,
                      indent=2)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
