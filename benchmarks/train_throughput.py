#!/usr/bin/env python
"""Trainer benchmark: input-pipeline throughput and recipe accuracy, each against a baseline.

In one run, on the same machine and the same synthetic EuroSAT data:
1. training images/s of the Trainer's input pipeline (transformed TFRecords -> tf.data, as
   run_fn reads them) + model, against a plain Keras loop over the same tensors in memory,
   for EfficientNetV2-B0 at 64x64 in float32 and bfloat16 (the ratio should be ~1: the input
   pipeline must never be the bottleneck); epochs of the two sides are interleaved, and the
   ratio is the median of per-round ratios, so load changes on a shared machine cancel out;
2. test accuracy and macro F1 after a fixed epoch budget for the default recipe against the
   tutorial's plain recipe (Adam at a constant rate, no augmentation, one phase).

Offline, both recipes start from random weights (no ImageNet download here); on a machine with
internet pass --weights imagenet to compare fine-tuning.

    python benchmarks/train_throughput.py                # ~10 min on 2 CPU cores
    python benchmarks/train_throughput.py --quick        # smaller, for a smoke test
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import logging
import math
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.dataset import input_fn, local_data_accessor, write_transformed
from components.hparams import TUTORIAL_RECIPE, HParams
from components.model import compile_model
from components.trainer import build_model_with_precision, train
from components.transform import preprocessing_fn
from schema import features
from schema.example_data import synthetic


def make_data(n: int, seed: int = 0):
    """Transformed synthetic data, split 60/20/20: {split: (images, one-hot labels)}."""
    rows = list(synthetic.synthetic_examples(n, seed=seed))
    out = preprocessing_fn({
        features.IMAGE_KEY: tf.constant([r[0] for r in rows]),
        features.LABEL_KEY: tf.constant([r[1] for r in rows], tf.int64),
    })
    x = out[features.TRANSFORMED_IMAGE_KEY].numpy()
    y = out[features.TRANSFORMED_ONEHOT_KEY].numpy()
    order = np.random.default_rng(seed).permutation(n)
    cut1, cut2 = int(0.6 * n), int(0.8 * n)
    return {name: (x[idx], y[idx]) for name, idx in
            (("train", order[:cut1]), ("eval", order[cut1:cut2]), ("test", order[cut2:]))}


class _Timer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.last = time.perf_counter() - self.t


def epoch_seconds(model, data, batch_size: int) -> float:
    """Wall time of one training epoch (callbacks bracket the batches only)."""
    timer = _Timer()
    if isinstance(data, tuple):
        model.fit(data[0], data[1], batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer], shuffle=True)
    else:
        model.fit(data, epochs=1, verbose=0, callbacks=[timer])
    return timer.last


def trainer_input(files, tft_output, batch_size: int, seed: int = 0):
    """The training batches as run_fn gets them (dataset.input_fn on a TFX DataAccessor)."""
    return input_fn(files, local_data_accessor(), tft_output, batch_size, training=True, seed=seed).batches


def pipeline_only(files, tft_output, batch_size: int, epochs: int = 3) -> float:
    """Images/s the Trainer's input pipeline delivers with no model attached (after its first
    epoch; its cache is filled when it is built): how far it is from ever being the bottleneck.
    """
    ds = trainer_input(files, tft_output, batch_size)
    rates = []
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        n = sum(int(batch[0].shape[0]) for batch in ds)
        if epoch:
            rates.append(n / (time.perf_counter() - start))
    return float(np.median(rates))


def throughput(splits, files, tft_output, precision: str, rounds: int, batch_size: int) -> dict:
    """Images/s of the Trainer's input pipeline + model and of the in-memory loop, interleaved.

    Both models are built and warmed up (one untimed epoch each: tracing, the input pipeline's
    cache) first; then each round times one epoch of each side, in alternating order. On a shared
    machine the load drifts; timing the sides in separate blocks let that drift bias the ratio
    (0.84 to 1.17 for the same code). The headline is the median of the per-round ratios (each
    compares two epochs run back to back, under nearly the same load); the ratio of the two
    medians, the ratio of the best epochs (interference only ever slows an epoch down) and each
    side's spread are printed too.
    """
    x, y = splits["train"]
    hp = HParams(weights="none", batch_size=batch_size, precision=precision)
    steps = math.ceil(len(x) / batch_size)
    sides = {}
    for name, data in (("input_pipeline", trainer_input(files, tft_output, batch_size)), ("in_memory", (x, y))):
        model = build_model_with_precision(hp, features.RGB_CHANNELS, precision)
        compile_model(model, hp, steps)
        epoch_seconds(model, data, batch_size)  # warm-up
        sides[name] = (model, data)
    rates = {name: [] for name in sides}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            rates[name].append(len(x) / epoch_seconds(*sides[name], batch_size))
    paired = [a / b for a, b in zip(rates["input_pipeline"], rates["in_memory"])]
    result = {name: float(np.median(r)) for name, r in rates.items()}
    result.update({
        "ratio": float(np.median(paired)),
        "ratio_of_medians": result["input_pipeline"] / result["in_memory"],
        "ratio_of_best": max(rates["input_pipeline"]) / max(rates["in_memory"]),
        "paired_ratios": [round(p, 3) for p in paired],
        "spread": {name: [round(min(r), 1), round(max(r), 1)] for name, r in rates.items()},
    })
    return result


def evaluate(model, x, y) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    pred = model.predict(x, batch_size=128, verbose=0).argmax(1)
    true = y.argmax(1)
    return {"accuracy": float(accuracy_score(true, pred)), "macro_f1": float(f1_score(true, pred, average="macro"))}


RECIPES = {"default": {}, "tutorial": TUTORIAL_RECIPE}


def recipes(splits, files, tft_output, epochs: int, batch_size: int, weights: str, seeds=(42,),
            names=tuple(RECIPES)) -> dict:
    """{recipe: [one result per seed]}: the model's seed (initialisation, shuffling, augmentation)
    changes, the synthetic data and its split do not.
    """
    x_eval, y_eval = splits["eval"]
    eval_ds = tf.data.Dataset.from_tensor_slices((x_eval, y_eval)).batch(batch_size)
    steps = math.ceil(len(splits["train"][0]) / batch_size)
    base = dict(weights=weights, epochs=epochs, batch_size=batch_size)
    out = {}
    for name in names:
        out[name] = []
        for seed in seeds:
            hp = HParams(**base, **RECIPES[name], seed=seed)
            tf.keras.utils.set_random_seed(hp.seed)
            start = time.perf_counter()
            model, _ = train(hp, trainer_input(files, tft_output, batch_size, hp.seed), eval_ds, steps)
            out[name].append({**evaluate(model, *splits["test"]), "seed": seed,
                              "train_s": round(time.perf_counter() - start, 1)})
            logging.info("%s recipe, seed %d: %s", name, seed, out[name][-1])
    return out


def print_throughput(report: dict, rounds: int) -> None:
    print("\nTraining throughput, EfficientNetV2-B0 at 64x64, images/s (median of "
          f"{rounds} interleaved epochs; min-max); ratio = Trainer input pipeline / in-memory loop")
    print(f"{'precision':<16}{'input pipeline':>24}{'in memory':>24}{'ratio':>8}{'of medians':>12}{'of best':>9}")
    for precision, r in report["throughput"].items():
        pipe = f"{r['input_pipeline']:.1f} ({r['spread']['input_pipeline'][0]}-{r['spread']['input_pipeline'][1]})"
        mem = f"{r['in_memory']:.1f} ({r['spread']['in_memory'][0]}-{r['spread']['in_memory'][1]})"
        print(f"{precision:<16}{pipe:>24}{mem:>24}{r['ratio']:>8.3f}{r['ratio_of_medians']:>12.3f}"
              f"{r['ratio_of_best']:>9.3f}")
        print(f"{'':<16}per-round ratios: {r['paired_ratios']}")
    fastest = max(r["input_pipeline"] for r in report["throughput"].values())
    print(f"input pipeline alone (no model): {report['pipeline_only']:.0f} images/s, "
          f"{report['pipeline_only'] / fastest:.0f}x what training consumes")
    fp32 = report["throughput"]["float32"]["input_pipeline"]
    for precision, r in report["throughput"].items():
        if precision != "float32":
            print(f"{precision} speed-up over float32: {r['input_pipeline'] / fp32:.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000, help="synthetic images in all (60%% train)")
    p.add_argument("--timing-epochs", type=int, default=7,
                   help="timed rounds per precision (one epoch of each side per round, interleaved)")
    p.add_argument("--epochs", type=int, default=8, help="epoch budget of the recipe comparison")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", default="none", help="'none' offline; 'imagenet' or a file to compare fine-tuning")
    p.add_argument("--quick", action="store_true", help="400 images, 1 timed epoch, 2-epoch budget")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-throughput", action="store_true", help="only the recipe comparison")
    p.add_argument("--seeds", type=int, nargs="+", default=[42],
                   help="model seeds of the recipe comparison (mean and min-max over them)")
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES),
                   help="which recipes to compare (default both)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.timing_epochs, args.epochs = 400, 2, 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("components").setLevel(logging.WARNING)

    devices = [d.device_type for d in tf.config.list_physical_devices()]
    logging.info("devices: %s; making %d synthetic images", devices, args.images)
    splits = make_data(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        files, tft_output = write_transformed(*splits["train"], os.path.join(tmp, "train"))
        report = {"devices": devices, "images": args.images, "batch_size": args.batch_size, "throughput": {}}
        if not args.skip_throughput:
            report["pipeline_only"] = pipeline_only(files, tft_output, args.batch_size)
        for precision in () if args.skip_throughput else (
                ("float32", "mixed_bfloat16") + (("mixed_float16",) if "GPU" in devices else ())):
            logging.info("throughput, %s ...", precision)
            report["throughput"][precision] = throughput(
                splits, files, tft_output, precision, args.timing_epochs, args.batch_size
            )
        if not args.skip_accuracy:
            logging.info("recipes, %d epochs each ...", args.epochs)
            report["recipes"] = recipes(splits, files, tft_output, args.epochs, args.batch_size, args.weights,
                                        args.seeds, args.recipes)

    if report["throughput"]:
        print_throughput(report, args.timing_epochs)
    if "recipes" in report:
        print(f"\nRecipes after {args.epochs} epochs, weights={args.weights} (test split), seeds {args.seeds}: "
              "mean (min-max)")
        print(f"{'recipe':<12}{'accuracy':>22}{'macro F1':>22}{'train s':>9}  per seed (accuracy)")
        for name, runs in report["recipes"].items():
            acc, f1 = [r["accuracy"] for r in runs], [r["macro_f1"] for r in runs]
            print(f"{name:<12}{np.mean(acc):>8.4f} ({min(acc):.4f}-{max(acc):.4f}){np.mean(f1):>8.4f} "
                  f"({min(f1):.4f}-{max(f1):.4f}){np.mean([r['train_s'] for r in runs]):>9.1f}  "
                  f"{[round(a, 4) for a in acc]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
