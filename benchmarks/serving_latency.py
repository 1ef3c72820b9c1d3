"""Serving latency: the gRPC endpoint against calling the SavedModel in process, in one run.

    PYTHONPATH=$PWD python benchmarks/serving_latency.py [--model-base-path <push dir>/eurosat]

For batch sizes 1, 16 and 64 it sends `predict_images` requests of JPEG patches one after the
other and prints the request latency p50/p99 and images/s of both paths, and their ratios (what
the network hop, serialisation and the server cost on top of the model). Without
--model-base-path it exports the tests' tiny untrained model (same architecture, same
signatures) into a temporary push directory. The server is `python -m serving.server` in a
subprocess (a tensorflow_model_server address can be given with --server instead).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Sequence  # noqa: E402

import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tensorflow as tf  # noqa: E402

from components import synthetic  # noqa: E402
from serving import server as serving_server  # noqa: E402
from serving import signatures  # noqa: E402
from serving.client import ServingClient  # noqa: E402

BATCH_SIZES = (1, 16, 64)


def measure(
    call: Callable[[Sequence[bytes]], object], images: List[bytes], batch: int, requests: int
) -> Dict[str, float]:
    """Latency percentiles (ms) and images/s of `requests` sequential calls with `batch` images."""
    payload = [images[i % len(images)] for i in range(batch)]
    for _ in range(3):  # warm-up: tracing, connection set-up
        call(payload)
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        call(payload)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "images_per_s": batch * requests / elapsed,
    }


def start_server(model_base_path: str, model_name: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model-base-path", model_base_path,
         "--model-name", model_name, "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = process.stdout.readline()
    match = re.search(r":(\d+)$", line.strip())
    if not match:
        process.kill()
        raise RuntimeError(f"serving.server did not start: {line!r}")
    return process, f"localhost:{match.group(1)}"


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", help="push directory holding <version>/ (default: export a tiny model)")
    parser.add_argument("--model-name", default="eurosat")
    parser.add_argument("--server", help="an already running endpoint (host:port) instead of serving.server")
    parser.add_argument("--images-per-size", type=int, default=640, help="images sent per batch size and path")
    args = parser.parse_args(argv)

    base = args.model_base_path
    if base is None:
        from tests.serving_fixtures import export_model

        print("exporting the tiny untrained model (no --model-base-path given)...", flush=True)
        base = export_model(tempfile.mkdtemp(prefix="serving-bench-")).model_base_path
    versions = serving_server.complete_versions(base)
    if not versions:
        sys.exit(f"no complete model version under {base}")
    version_dir = versions[max(versions)]

    images = [jpeg for jpeg, _, _ in synthetic.synthetic_examples(64, seed=7)]
    in_process = tf.saved_model.load(version_dir).signatures[signatures.PREDICT_IMAGES]

    process = None
    address = args.server
    if address is None:
        process, address = start_server(base, args.model_name)
    try:
        with ServingClient(address, args.model_name, timeout=120) as client:
            rows = []
            for batch in BATCH_SIZES:
                requests = max(10, args.images_per_size // batch)
                local = measure(lambda b: in_process(images=tf.constant(b)), images, batch, requests)
                remote = measure(lambda b: client.predict_images(b, batch_size=len(b)), images, batch, requests)
                rows.append((batch, requests, local, remote))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)

    print(f"\nmodel {version_dir}; server {address}; {os.cpu_count()} CPUs")
    header = f"{'batch':>5} {'reqs':>5} | {'path':<10} {'p50 ms':>8} {'p99 ms':>8} {'img/s':>8}"
    print(header)
    print("-" * len(header))
    for batch, requests, local, remote in rows:
        for name, r in (("in-process", local), ("gRPC", remote)):
            print(f"{batch:>5} {requests:>5} | {name:<10} "
                  f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['images_per_s']:8.1f}")
        print(
            f"{'':>11} | gRPC/in-process: p50 x{remote['p50_ms'] / local['p50_ms']:.2f}, "
            f"p99 x{remote['p99_ms'] / local['p99_ms']:.2f}, "
            f"throughput x{remote['images_per_s'] / local['images_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
