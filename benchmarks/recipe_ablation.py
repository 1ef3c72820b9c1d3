#!/usr/bin/env python
"""Why the recipe wins or loses: one change at a time, on a pipeline run's own split, in-process.

Full pipeline runs cost minutes each; this harness trains with the project's own functions
(components.trainer.train on the Transform's on-disk format through components.dataset.input_fn,
the Trainer's path) on the train/eval/test split of an earlier pipeline run (its ExampleGen
output), with the same epoch budget and batch size, for several seeds, and prints per-epoch
validation curves and the test accuracy / macro F1 (mean and min-max over the seeds) of:

- the plain Keras loop of benchmarks/real_data.py (the reference), and
- the project's recipe with each VARIANTS entry: one setting changed from the default.

    python benchmarks/real_data.py --sets textures --seeds 42 --output-dir /tmp/tex   # a run (its split)
    python benchmarks/recipe_ablation.py --run /tmp/tex/textures --seeds 42 43 44
    python benchmarks/recipe_ablation.py --run DIR --variants default augment=none --augment full

Variants are `name` (a VARIANTS key) or `field=value` (any HParams field, as the config takes it).
`--gradient-norms` also prints, per run, the global norm of each step's gradients before clipping
(per-epoch medians, the share above 1, the largest): what `gradient_clip_norm` clips.
The tables this printed are in the README ("Why the recipe lost on the texture set", "One change at a time").
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import contextlib
import json
import logging
import math
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import real_data

from components.hparams import HParams
from schema import features
from schema.errors import ConfigError, user_errors_to_exit

# One change at a time from the default recipe (the budget rule's "auto" values are the default).
VARIANTS = {
    "default": {},
    "augment=none": {"augment": "none"},
    "augment=flips": {"augment": "flips"},
    "colour_jitter=0": {"colour_jitter": 0.0},
    "label_smoothing=0": {"label_smoothing": 0.0},
    "weight_decay=0": {"weight_decay": 0.0},
    "warmup_epochs=0": {"warmup_epochs": 0.0},
    "lr_schedule=constant": {"lr_schedule": "constant"},
    # From scratch the default peak is learning_rate x scratch_lr_factor (3e-3); 1: the 1e-3 before.
    "scratch_lr_factor=1": {"scratch_lr_factor": 1.0},
    "budget_scaling=false": {"budget_scaling": False},
    "dropout=0": {"dropout": 0.0},
    "stochastic_depth=0": {"stochastic_depth": 0.0},
    # Keras applications build EfficientNetV2's BatchNorms at 0.9; 0.99 is Keras' layer default.
    "batch_norm_momentum=0.99": {"batch_norm_momentum": 0.99},
    "early_stopping_start=1": {"early_stopping_start": 1.0},
    "early_stopping_ties=earlier": {"early_stopping_ties": "earlier"},
    "gradient_clip_norm=null": {"gradient_clip_norm": None},
}


def parse_variant(text: str, base: dict | None = None) -> dict:
    """A variant's HParams overrides: a VARIANTS name, or FIELD=VALUE[,FIELD=VALUE...] (values as JSON or text).

    With `base`, the overrides are also checked against HParams (an unknown field or a bad value is a one-line
    ConfigError), so a typo stops the benchmark before anything trains.
    """
    if text in VARIANTS:
        overrides = VARIANTS[text]
    else:
        overrides = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise ConfigError(f"variant {text!r}: expected one of {', '.join(VARIANTS)} "
                                  "or FIELD=VALUE[,FIELD=VALUE]")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
    if base is not None:
        HParams.from_dict({**base, **overrides})
    return overrides


def splits_of(examples_uri: str) -> dict:
    out = {}
    for split in ("train", "eval", "test"):
        x, labels = real_data.read_split(examples_uri, split)
        out[split] = (x.astype(np.float32), np.eye(features.NUM_CLASSES, dtype=np.float32)[labels], labels)
    return out


@contextlib.contextmanager
def recorded_gradient_norms(path: str):
    """While open, every optimiser step writes its gradients' global norm (before clipping) to `path`, one a line.

    A hook on tf_keras' optimiser clipping step (a private method: this is a diagnostic, not the Trainer's path).
    """
    import tensorflow as tf
    from tf_keras.src.optimizers import optimizer as keras_optimizer

    original = keras_optimizer._BaseOptimizer._clip_gradients

    def recording(self, grads):
        tf.print(tf.linalg.global_norm([g for g in grads if g is not None]), output_stream=f"file://{path}")
        return original(self, grads)

    keras_optimizer._BaseOptimizer._clip_gradients = recording
    try:
        yield
    finally:
        keras_optimizer._BaseOptimizer._clip_gradients = original


def norm_summary(norms: np.ndarray, epochs: int) -> dict:
    return {"per_epoch_median": [round(float(np.median(e)), 2) for e in np.array_split(norms, epochs)],
            "share_above_1": round(float(np.mean(norms > 1.0)), 3), "largest": round(float(norms.max()), 1)}


def project_side(splits, tmp: str, overrides: dict, base: dict, seed: int, gradient_norms: bool = False) -> dict:
    import tensorflow as tf

    from components.dataset import input_fn, local_data_accessor, write_transformed
    from components.trainer import train

    hp = HParams.from_dict({**base, **overrides, "seed": seed})
    x, y, _ = splits["train"]
    files, tft_output = write_transformed(x, y, os.path.join(tmp, f"train-{seed}"))
    eval_ds = tf.data.Dataset.from_tensor_slices(splits["eval"][:2]).batch(hp.batch_size)
    tf.keras.utils.set_random_seed(hp.seed)
    start = time.perf_counter()
    train_input = input_fn(files, local_data_accessor(), tft_output, hp.batch_size, training=True, seed=hp.seed)
    norms_path = os.path.join(tmp, f"gradient-norms-{seed}-{time.monotonic_ns()}.txt")
    with recorded_gradient_norms(norms_path) if gradient_norms else contextlib.nullcontext():
        model, history = train(hp, train_input.batches, eval_ds, math.ceil(train_input.examples / hp.batch_size))
    seconds = time.perf_counter() - start
    predicted = model.predict(splits["test"][0], batch_size=256, verbose=0).argmax(1)
    epochs_run = len(history.get("val_accuracy", []))
    result = {**real_data.sklearn_scores(splits["test"][2], predicted), "seconds": round(seconds, 1),
              "val_accuracy": [round(v, 3) for v in history.get("val_accuracy", [])], "epochs_run": epochs_run}
    if gradient_norms:
        result["gradient_norms"] = norm_summary(np.loadtxt(norms_path, ndmin=1), max(1, epochs_run))
    return result


def summary(runs: list) -> str:
    acc = [r["accuracy"] for r in runs]
    f1 = [r["macro_f1"] for r in runs]
    return (f"{np.mean(acc):.3f} ({min(acc):.3f}-{max(acc):.3f})  "
            f"{np.mean(f1):.3f} ({min(f1):.3f}-{max(f1):.3f})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", help="a pipeline run's output folder (its ExampleGen split is used)")
    where.add_argument("--examples", help="or an ExampleGen output artifact's folder (Split-train/ ...)")
    p.add_argument("--pipeline-name", default=real_data.PIPELINE)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--augment", default="full", help="the default recipe's augmentation for this data")
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--no-plain", action="store_true", help="skip the plain Keras loop")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--gradient-norms", action="store_true",
                   help="also record each step's global gradient norm before clipping (per-epoch medians)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base = {"weights": "none", "epochs": args.epochs, "batch_size": args.batch_size, "augment": args.augment}
    variants = {name: parse_variant(name, base) for name in args.variants}

    examples_uri = args.examples
    if args.run:
        from pipeline.results import latest_results

        examples_uri = latest_results(os.path.join(args.run, "metadata", f"{args.pipeline_name}.sqlite"),
                                      args.pipeline_name).examples_uri
    splits = splits_of(examples_uri)
    print(f"split {len(splits['train'][0])} train / {len(splits['eval'][0])} eval / {len(splits['test'][0])} test; "
          f"{args.epochs} epochs, batch {args.batch_size}, seeds {args.seeds}", flush=True)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_plain:
            report["plain"] = [real_data.plain_keras_loop(examples_uri, args.epochs, args.batch_size, seed,
                                                          curves=True) for seed in args.seeds]
            print(f"{'plain Keras loop':<28}{summary(report['plain'])}", flush=True)
            for r in report["plain"]:
                print(f"{'':<28}val {r['val_accuracy']}", flush=True)
        for name, overrides in variants.items():
            report[name] = [project_side(splits, tmp, overrides, base, seed, args.gradient_norms)
                            for seed in args.seeds]
            print(f"{name:<28}{summary(report[name])}", flush=True)
            for r in report[name]:
                print(f"{'':<28}val {r['val_accuracy']} ({r['seconds']} s)", flush=True)
                if "gradient_norms" in r:
                    print(f"{'':<28}gradient norms {r['gradient_norms']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(user_errors_to_exit(main))
