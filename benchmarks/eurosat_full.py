#!/usr/bin/env python
"""The real EuroSAT with ImageNet weights: the whole pipeline, test accuracy and macro F1 against
the published figures. Needs the internet (or the data and weights already here) and wants a GPU.

Runs the project's pipeline (conversion, ExampleGen's 60/20/20 split, Transform, the Trainer's
default recipe fine-tuning ImageNet weights, Evaluator, Pusher) on EuroSAT RGB, from TFDS
(``tfds:eurosat/rgb``, downloaded once) or from the archive (``EuroSAT.zip`` or its unpacked
folder), and prints the Evaluator's test accuracy and macro F1 next to the TensorFlow tutorial's
96.8 % (EfficientNetV2-XL from TF Hub, 5 epochs) and the published 98-99 % (the EuroSAT paper's
98.57 %; fine-tuned ImageNet CNNs 98-99 %).

    python benchmarks/eurosat_full.py                              # tfds:eurosat/rgb, EfficientNetV2S at 224
    python benchmarks/eurosat_full.py --data /data/EuroSAT.zip --weights ~/efficientnetv2-s_notop.h5
    python benchmarks/eurosat_full.py --backbone EfficientNetV2B0 --image-size 128 --epochs 8

Before anything runs, it checks that what it needs can be had: a local --data path must exist, and
--weights imagenet needs Keras' weights file cached or its download host reachable; otherwise it
stops with one line saying what to pass instead. (TFDS, offline with nothing prepared, fails at
once in the pipeline with its own one-line message.)
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components.hparams import BACKBONES

PIPELINE = "eurosat-full"
TUTORIAL_ACCURACY = 0.968  # TensorFlow's EuroSAT tutorial, EfficientNetV2-XL, 5 epochs
PUBLISHED_ACCURACY = (0.98, 0.99)  # EuroSAT paper 98.57 %; fine-tuned ImageNet CNNs
KERAS_WEIGHTS_HOST = "https://storage.googleapis.com/tensorflow/keras-applications/"


def keras_weights_file(backbone: str) -> str:
    """Where Keras caches a backbone's no-top ImageNet weights (efficientnetv2-s_notop.h5)."""
    suffix = backbone[len("EfficientNetV2"):].lower()
    return os.path.join(os.path.expanduser("~"), ".keras", "models", f"efficientnetv2-{suffix}_notop.h5")


def preflight(args, is_reachable=None) -> None:
    """One-line SystemExit when the data or the weights cannot be had, before any work starts."""
    from components.tfds_source import reachable

    is_reachable = is_reachable or reachable
    if not args.data.startswith("tfds:") and not os.path.exists(args.data):
        raise SystemExit(f"--data {args.data!r} does not exist: pass tfds:eurosat/rgb, EuroSAT.zip "
                         "or its unpacked folder")
    if args.weights == "imagenet" and not os.path.exists(keras_weights_file(args.backbone)) \
            and not is_reachable(KERAS_WEIGHTS_HOST):
        raise SystemExit(f"--weights imagenet: {keras_weights_file(args.backbone)} is not cached and "
                         f"{KERAS_WEIGHTS_HOST} cannot be reached (offline?): pass --weights FILE with the "
                         f"{args.backbone} no-top weights, or run where the internet is")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="tfds:eurosat/rgb", help="tfds:eurosat/rgb, EuroSAT.zip or its folder")
    p.add_argument("--tfds-data-dir", help="TFDS data dir (where eurosat/rgb is or will be prepared)")
    p.add_argument("--backbone", default="EfficientNetV2S", choices=BACKBONES)
    p.add_argument("--weights", default="imagenet", help="imagenet (Keras download) or a local weights file")
    p.add_argument("--image-size", type=int, default=224, help="inputs upscaled to this (pretrained nets want it)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output-dir", default="/tmp/eurosat_full", help="the pipeline's output folder")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.image_size < 32:
        p.error("--epochs and --batch-size must be at least 1, --image-size at least 32")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    preflight(args)
    import pipeline_runner
    from pipeline.report import run_report_dir
    from pipeline.results import latest_results

    run_argv = ["--data", args.data, "--output-dir", args.output_dir, "--pipeline-name", PIPELINE,
                "--backbone", args.backbone, "--weights", args.weights, "--image-size", str(args.image_size),
                "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                "--min-accuracy", "0", "--min-macro-f1", "0"]
    if args.tfds_data_dir:
        run_argv += ["--tfds-data-dir", args.tfds_data_dir]
    start = time.perf_counter()
    if pipeline_runner.main(run_argv) != 0:
        raise SystemExit("the pipeline run failed; see the log above")
    seconds = time.perf_counter() - start
    results = latest_results(os.path.join(args.output_dir, "metadata", f"{PIPELINE}.sqlite"), PIPELINE)
    with open(os.path.join(run_report_dir(args.output_dir, PIPELINE, results.run_id), "metrics.json")) as f:
        metrics = json.load(f)
    print(f"\nEuroSAT RGB ({args.data}), {args.backbone} from {args.weights} at {args.image_size}, "
          f"{args.epochs} epochs, batch {args.batch_size}; {seconds:.0f} s for the whole pipeline")
    print(f"{'':<40}{'accuracy':>10}{'macro F1':>10}")
    print(f"{'this run (Evaluator, test split)':<40}{metrics['accuracy']:>10.4f}{metrics['macro_f1']:>10.4f}")
    print(f"{'TensorFlow tutorial (EfficientNetV2-XL)':<40}{TUTORIAL_ACCURACY:>10.4f}{'-':>10}")
    print(f"{'published (paper 98.57 %, fine-tuned)':<40}{'%.2f-%.2f' % PUBLISHED_ACCURACY:>10}{'-':>10}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": seconds,
                       **{k: v for k, v in vars(args).items() if k != "json"}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
