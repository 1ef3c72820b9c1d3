"""Serving latency and throughput: gRPC against the SavedModel in process, and many concurrent
single-image clients with server-side batching off and on, all in one run.

    PYTHONPATH=$PWD python benchmarks/serving_latency.py [--model-base-path <push dir>/eurosat]

1. One client, batch sizes 1, 16 and 64: `predict_images` requests of JPEG patches one after the
   other; request latency p50/p99 and images/s of both paths, and their ratios (what the network
   hop, serialisation and the server cost on top of the model).
2. 8 and 32 concurrent clients (threads, one channel each) sending one image per request, against
   `serving.server` without batching and with `--enable_batching
   --batching_parameters_file serving/batching_parameters.txt --tensorflow_intra_op_parallelism 1`
   (as docker-compose.yml and kubernetes.yaml run TF Serving); images/s, latency p50/p99, and the
   ratio of images/s to the one-client batch-64 throughput of step 1 (the goal: >= 0.6 with 32
   clients and batching on), plus the batch-1 p50 of one client on the idle batching server.

Without --model-base-path it exports the tests' tiny untrained model (same architecture, same
signatures) into a temporary push directory. The servers are `python -m serving.server`
subprocesses (a tensorflow_model_server address can be given with --server instead: then only
step 1 and the concurrent rows against it run).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tensorflow as tf

from schema.example_data import synthetic
from serving import models as serving_models
from serving import signatures
from serving.grpc_client import ServingClient

BATCH_SIZES = (1, 16, 64)
CONCURRENT_CLIENTS = (8, 32)
BATCHING_PARAMETERS = os.path.join(REPO, "serving", "batching_parameters.txt")


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


def start_server(model_base_path: str, model_name: str, batching: bool = False) -> tuple[subprocess.Popen, str]:
    # batching as the production files run it (docker-compose.yml, kubernetes.yaml): the
    # parameters file plus one TensorFlow thread per op, one batch per core
    extra = ["--enable_batching", "--batching_parameters_file", BATCHING_PARAMETERS,
             "--tensorflow_intra_op_parallelism", "1"] if batching else []
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--model-base-path", model_base_path,
         "--model-name", model_name, "--port", "0", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = process.stdout.readline()
    match = re.search(r":(\d+)$", line.strip())
    if not match:
        process.kill()
        raise RuntimeError(f"serving.server did not start: {line!r}")
    process.address = f"localhost:{match.group(1)}"
    return process, process.address


def concurrent(address: str, model_name: str, images: List[bytes], clients: int, total: int) -> Dict[str, float]:
    """`clients` threads, each with its own channel, sending one image per request, `total` in all."""
    per_client = max(1, total // clients)
    latencies: List[float] = []
    errors: List[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        with ServingClient(address, model_name, timeout=120) as c:
            for i in range(2):  # connection set-up
                c.predict_images([images[(k + i) % len(images)]])
            barrier.wait()
            own = []
            for i in range(per_client):
                t = time.perf_counter()
                try:
                    c.predict_images([images[(k + i) % len(images)]])
                except Exception as err:  # counted
                    errors.append(repr(err))
                own.append(time.perf_counter() - t)
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "images_per_s": clients * per_client / elapsed,
        "errors": len(errors),
    }


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", help="push directory holding <version>/ (default: export a tiny model)")
    parser.add_argument("--model-name", default="eurosat")
    parser.add_argument("--server", help="an already running endpoint (host:port) instead of serving.server")
    parser.add_argument("--images-per-size", type=int, default=640, help="images sent per batch size and path")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the concurrent and idle measurements")
    args = parser.parse_args(argv)

    base = args.model_base_path
    if base is None:
        from tests.serving_fixtures import export_model

        print("exporting the tiny untrained model (no --model-base-path given)...", flush=True)
        base = export_model(tempfile.mkdtemp(prefix="serving-bench-")).model_base_path
    versions = serving_models.complete_versions(base)
    if not versions:
        sys.exit(f"no complete model version under {base}")
    version_dir = versions[max(versions)]

    images = [jpeg for jpeg, _, _ in synthetic.synthetic_examples(64, seed=7)]
    in_process = tf.saved_model.load(version_dir).signatures[signatures.PREDICT_IMAGES]

    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)", flush=True)
    processes = []
    address, batched_address = args.server, None
    if address is None:
        processes.append(start_server(base, args.model_name)[0])
        address = _address_of(processes[-1])
        processes.append(start_server(base, args.model_name, batching=True)[0])
        batched_address = _address_of(processes[-1])
    servers = {"off" if args.server is None else "server's own": address}
    if batched_address:
        servers["on"] = batched_address
    try:
        with ServingClient(address, args.model_name, timeout=120) as client:
            rows = []
            for batch in BATCH_SIZES:
                requests = max(10, args.images_per_size // batch)
                local = measure(lambda b: in_process(images=tf.constant(b)), images, batch, requests)
                remote = measure(lambda b: client.predict_images(b, batch_size=len(b)), images, batch, requests)
                rows.append((batch, requests, local, remote))
                print(f"  batch {batch}: gRPC {remote['images_per_s']:.1f} img/s", flush=True)
        # Rounds: each measures one client's batch 64 (the baseline), every concurrent case and the
        # idle batch-1 latency on both servers, one after the other, so load drift hits all alike.
        cells: Dict[tuple, List[Dict[str, float]]] = {}
        for round_ in range(args.rounds):
            with ServingClient(address, args.model_name, timeout=120) as client:
                base64_ = measure(lambda b: client.predict_images(b, batch_size=len(b)), images, 64, 10)
            for state, where in servers.items():
                with ServingClient(where, args.model_name, timeout=120) as client:
                    idle = measure(lambda b: client.predict_images(b, batch_size=1), images, 1, 40)
                cells.setdefault(("idle", state), []).append(idle)
                for clients in CONCURRENT_CLIENTS:
                    result = concurrent(where, args.model_name, images, clients, args.images_per_size)
                    result["ratio"] = result["images_per_s"] / base64_["images_per_s"]
                    cells.setdefault((clients, state), []).append(result)
            cells.setdefault(("base", "off"), []).append(base64_)
            print(f"  round {round_ + 1}/{args.rounds}: load average {load_average()}", flush=True)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)

    print(f"\nmodel {version_dir}; server {address}; {os.cpu_count()} CPUs; load average after: {load_average()}")
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
    med = lambda key, state, field: float(np.median([r[field] for r in cells[(key, state)]]))  # noqa: E731
    if "on" in servers:
        print(f"batch 1, one client, idle server (median of {args.rounds} rounds): "
              f"p50 {med('idle', 'off', 'p50_ms'):.1f} ms "
              f"without batching, {med('idle', 'on', 'p50_ms'):.1f} ms with batching "
              f"(batch_timeout_micros adds up to 2 ms)")
    single_64 = med("base", "off", "images_per_s")
    print(f"\nconcurrent clients, one image per request; medians of {args.rounds} rounds; ratio: img/s over the "
          f"same round's one-client batch-64 gRPC img/s (median {single_64:.1f})")
    header = f"{'batching':>12} {'clients':>7} | {'p50 ms':>8} {'p99 ms':>8} {'img/s':>8} {'ratio':>6} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for clients in CONCURRENT_CLIENTS:
        for state in servers:
            errors = sum(int(r["errors"]) for r in cells[(clients, state)])
            print(f"{state:>12} {clients:>7} | "
                  f"{med(clients, state, 'p50_ms'):8.1f} {med(clients, state, 'p99_ms'):8.1f} "
                  f"{med(clients, state, 'images_per_s'):8.1f} {med(clients, state, 'ratio'):6.2f} {errors:>6}")


def _address_of(process: subprocess.Popen) -> str:
    return process.address


if __name__ == "__main__":
    main()
