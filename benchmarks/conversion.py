#!/usr/bin/env python
"""Conversion throughput: image folder -> validated, split TFRecords (the ExampleGen's executor,
components.example_gen, on Beam's DirectRunner) against plain reading of the same files, in the same run.

    python benchmarks/conversion.py            # 27,000 images, EuroSAT's size
    python benchmarks/conversion.py --n 2000   # a quick run
    python benchmarks/conversion.py --modality all --n 2000   # 13-band GeoTIFFs (EuroSAT_MS)

The ratio says what validation, normalization, duplicate detection and Beam cost on top of
reading the bytes; the images/s figures say how long a real EuroSAT conversion takes here.
For 13-band sets plain reading decodes each GeoTIFF with tifffile; 27,000 of them take about
2.9 GB on disk (and as much memory in the DirectRunner's duplicate grouping), so use a modest --n.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import io
import json
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components import sources
from schema import features
from schema.example_data.synthetic import synthetic_band_examples, synthetic_examples
from tests.ingest import run_example_gen


def write_folder(root: str, n: int, modality: str = features.RGB) -> str:
    """A synthetic set in the layout of the RGB (JPEG) or all-bands (13-band GeoTIFF) archive."""
    if modality == features.RGB:
        class_root = os.path.join(root, "EuroSAT_RGB", "2750")
        items = ((jpeg, source) for jpeg, _, source in synthetic_examples(n, seed=1))
    else:
        class_root = os.path.join(root, "EuroSAT_MS")
        items = ((features.encode_bands_tiff(b), source) for b, _, source in synthetic_band_examples(n, seed=1))
    for data, source in items:
        path = os.path.join(class_root, source)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def _decode(data: bytes, modality: str) -> None:
    if modality == features.RGB:
        from PIL import Image

        Image.open(io.BytesIO(data)).load()
    else:
        import tifffile

        tifffile.imread(io.BytesIO(data))


def plain_read(root: str, modality: str = features.RGB) -> tuple[int, float]:
    """Baseline: list the class folders and read (and decode: PIL, or tifffile for 13-band
    GeoTIFFs) every file, nothing else.
    """
    start, count = time.perf_counter(), 0
    files, _ = sources.list_source(sources.open_tree(root))
    for f in files:
        with open(f.path, "rb") as fh:
            _decode(fh.read(), modality)
        count += 1
    return count, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=27000, help="images in the synthetic set")
    p.add_argument("--modality", default=features.RGB, choices=features.MODALITIES,
                   help="rgb: JPEG folder (EuroSAT_RGB); all: 13-band GeoTIFF folder (EuroSAT_MS)")
    p.add_argument("--beam-mode", default="in_memory", choices=["in_memory", "multi_processing"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(os.path.join(tmp, "src"), args.n, args.modality)
        n_read, t_read = plain_read(root, args.modality)
        beam_args = [f"--direct_running_mode={args.beam_mode}"]
        if args.beam_mode == "multi_processing":
            beam_args.append("--direct_num_workers=0")
        start = time.perf_counter()
        # the ExampleGen's executor, as a run converts (tests/ingest.py)
        _, report = run_example_gen(root, os.path.join(tmp, "out"), modality=args.modality, beam_args=beam_args)
        summary = report["summary"]
        t_conv = time.perf_counter() - start
    result = {
        "images": args.n,
        "modality": summary["modality"],
        "cpu_cores": os.cpu_count(),
        "plain_read_images_per_s": round(n_read / t_read, 1),
        "conversion_images_per_s": round(summary["examples"] / t_conv, 1),
        "conversion_s": round(t_conv, 1),
        "conversion_vs_plain_read": round((summary["examples"] / t_conv) / (n_read / t_read), 3),
        "beam_mode": args.beam_mode,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
