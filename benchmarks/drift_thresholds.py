"""The drift distances TFDV measures between synthetic spans: what the thresholds in the curated
schemas (schema/schema.pbtxt, schema_all.pbtxt: drift_comparator) are chosen from.

A reference span (seed 1, balanced) is compared with spans that should pass (other seeds, the same
distribution) and spans that should not (components of schema.example_data.synthetic.DEMO_SHIFT:
the class mix alone, brighter vegetation alone, both), by TFDV's own comparators (L-infinity on the
label, Jensen-Shannon divergence on the 13 bands and on the per-band patch means, `patch_mean`, which
the ExampleGen adds to every example: on RGB the only pixel feature TFDV can read). Prints one line
per span and feature.

    PYTHONPATH=$PWD python benchmarks/drift_thresholds.py [--examples 400] [--modalities rgb all]
"""
from __future__ import annotations

import argparse
import os
import tempfile

import pipeline  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from schema import modalities
from schema.example_data.synthetic import DEMO_SHIFT, Shift, write_synthetic_span

CASES = {
    "same distribution, seed 2": (2, Shift()),
    "same distribution, seed 3": (3, Shift()),
    "same distribution, seed 4": (4, Shift()),
    "class mix only": (5, Shift(class_weights=DEMO_SHIFT.class_weights)),
    "vegetation x1.3 only": (6, Shift(vegetation_gain=DEMO_SHIFT.vegetation_gain)),
    "vegetation x1.1 only": (7, Shift(vegetation_gain=1.1)),
    "DEMO_SHIFT (both)": (8, DEMO_SHIFT),
}


def statistics_of(folder: str, schema):
    import tensorflow_data_validation as tfdv

    options = tfdv.StatsOptions(schema=schema)
    return tfdv.generate_statistics_from_tfrecord(os.path.join(folder, "*.tfrecord"), stats_options=options)


def main() -> None:
    import tensorflow_data_validation as tfdv

    from components.anomaly_check import compare_statistics

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=400)
    p.add_argument("--modalities", nargs="+", default=["rgb", "all"])
    args = p.parse_args()
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schema")
    with tempfile.TemporaryDirectory() as tmp:
        for modality in args.modalities:
            schema = tfdv.load_schema_text(os.path.join(root, modalities.get(modality).schema_file))
            ref_dir = os.path.join(tmp, modality, "span-1")
            write_synthetic_span(ref_dir, args.examples, seed=1, modality=modality, with_patch_mean=True)
            reference = statistics_of(ref_dir, schema)
            for case, (seed, shift) in CASES.items():
                folder = os.path.join(tmp, modality, f"span-{seed}")
                write_synthetic_span(folder, args.examples, seed=seed, shift=shift, modality=modality,
                                     with_patch_mean=True)
                measured = compare_statistics(statistics_of(folder, schema), reference, schema)
                for m in measured:
                    print(f"{modality:3s} {args.examples} examples | {case:28s} | {m['feature']:10s} {m['type']:26s} "
                          f"{m['value']:.4f} (threshold {m['threshold']})", flush=True)


if __name__ == "__main__":
    main()
