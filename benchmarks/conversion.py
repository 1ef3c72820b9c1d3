#!/usr/bin/env python
"""Conversion throughput: image folder -> validated TFRecords (components.convert, Beam
DirectRunner) against plain reading of the same files, in the same run.

    python benchmarks/conversion.py            # 27,000 images, EuroSAT's size
    python benchmarks/conversion.py --n 2000   # a quick run

The ratio says what validation, normalization, duplicate detection and Beam cost on top of
reading the bytes; the images/s figures say how long a real EuroSAT conversion takes here.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from components import convert  # noqa: E402
from components.synthetic import synthetic_examples  # noqa: E402


def write_folder(root: str, n: int) -> str:
    class_root = os.path.join(root, "EuroSAT_RGB", "2750")
    for jpeg, _, source in synthetic_examples(n, seed=1):
        path = os.path.join(class_root, source)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(jpeg)
    return root


def plain_read(root: str) -> tuple[int, float]:
    """Baseline: list the class folders and read (and PIL-decode) every file, nothing else."""
    from PIL import Image

    start, count = time.perf_counter(), 0
    files, _ = convert.list_source(convert.find_class_root(root))
    for f in files:
        with open(f.path, "rb") as fh:
            Image.open(io.BytesIO(fh.read())).load()
        count += 1
    return count, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=27000, help="images in the synthetic set")
    p.add_argument("--beam-mode", default="in_memory", choices=["in_memory", "multi_processing"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(os.path.join(tmp, "src"), args.n)
        n_read, t_read = plain_read(root)
        beam_args = [f"--direct_running_mode={args.beam_mode}"]
        if args.beam_mode == "multi_processing":
            beam_args.append("--direct_num_workers=0")
        start = time.perf_counter()
        summary = convert.convert_folder(root, os.path.join(tmp, "out"), beam_args=beam_args)
        t_conv = time.perf_counter() - start
    result = {
        "images": args.n,
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
