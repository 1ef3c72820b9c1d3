"""What the Trainer's export and every later load of the model cost, against the export before
it dropped Keras' per-layer traces and the Evaluator config before it named the model type.

    PYTHONPATH=$PWD python benchmarks/export_overhead.py [--modality rgb all] [--repeats 1]

For each modality, the project's untrained model (tests/serving_fixtures.py: EfficientNetV2B0,
the Transform graph of a few synthetic examples) is exported twice, each in a fresh process so
neither warms the other's TensorFlow caches:
- ``now``: serving.export.export_serving_model, as the Trainer runs it;
- ``before``: the same signatures, classify method name and warm-up requests, saved with Keras'
  default ``save_traces=True`` (a traced function per layer, for tf.keras.models.load_model).
Then, in the same process, ``tf.saved_model.load`` of the export (what the server, the report and
the map do) and TFMA's model set-up (default_eval_shared_model + construct_fn, what the Evaluator
does per model) with the eval config as it is and, for ``before``, without its model_type.
Prints CPU seconds (what a shared machine stretches least), wall seconds and the size on disk,
then now/before ratios.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

VARIANTS = ("before", "now")


def _timed(fn):
    cpu, wall = time.process_time(), time.time()
    result = fn()
    return result, {"cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.time() - wall, 2)}


def _disk_mb(path: str) -> float:
    return round(sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 2**20, 1)


def measure_one(variant: str, modality: str, work_dir: str) -> dict:
    """Export, load and TFMA set-up of one variant, in this process."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    from components.evaluation import make_eval_config
    from schema import features
    from serving import signatures, warmup
    from serving.export import export_serving_model
    from tests import serving_fixtures

    tft_output = serving_fixtures.write_transform_output(os.path.join(work_dir, "transform_output"), modality)
    model = serving_fixtures.tiny_model(features.channels(modality))
    export_dir = os.path.join(work_dir, "model")

    def export_before():
        model.save(export_dir, save_format="tf", save_traces=True,
                   signatures=signatures.make_serving_signatures(model, tft_output))
        signatures.set_classify_method_name(export_dir)
        warmup.write_warmup_requests(export_dir, signatures.modality_of(tft_output))

    export = export_before if variant == "before" else lambda: export_serving_model(model, tft_output, export_dir)
    _, export_seconds = _timed(export)
    _, load_seconds = _timed(lambda: tf.saved_model.load(export_dir))
    config = make_eval_config(None, min_accuracy=0.0, min_macro_f1=0.0)
    if variant == "before":
        config.model_specs[0].ClearField("model_type")  # TFMA guesses it (a Keras load) as before

    def evaluator_setup():
        shared = tfma.default_eval_shared_model(eval_saved_model_path=export_dir, eval_config=config)
        shared.model_loader.construct_fn()
        return shared.model_type

    model_type, evaluator_seconds = _timed(evaluator_setup)
    return {"variant": variant, "modality": modality, "export": export_seconds, "load": load_seconds,
            "evaluator_model_setup": evaluator_seconds, "tfma_model_type": model_type,
            "disk_mb": _disk_mb(export_dir)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modality", nargs="+", default=["rgb"], choices=["rgb", "all"])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant (alternating order)")
    parser.add_argument("--_one", nargs=3, metavar=("VARIANT", "MODALITY", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._one:
        print(json.dumps(measure_one(*args._one)))
        return 0
    rows = []
    for modality in args.modality:
        for repeat in range(args.repeats):
            order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                with tempfile.TemporaryDirectory() as work_dir:
                    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--_one", variant, modality,
                                           work_dir], capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                export = row["export"]
                print(f"{modality:4} {variant:6} export {export['cpu_s']:6.1f} CPU s {export['wall_s']:6.1f} "
                      f"wall s | load {row['load']['cpu_s']:5.1f} CPU s {row['load']['wall_s']:5.1f} wall s | "
                      f"Evaluator model set-up {row['evaluator_model_setup']['cpu_s']:5.1f} CPU s "
                      f"({row['tfma_model_type']}) | {row['disk_mb']} MB", flush=True)
        for key in ("export", "load", "evaluator_model_setup"):
            cpu = {v: sum(r[key]["cpu_s"] for r in rows if r["modality"] == modality and r["variant"] == v)
                   for v in VARIANTS}
            print(f"{modality:4} {key}: now/before CPU {cpu['now'] / cpu['before']:.2f}x "
                  f"({cpu['now']:.1f} vs {cpu['before']:.1f} s)")
    load = os.getloadavg()
    print(f"load average during the run (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
