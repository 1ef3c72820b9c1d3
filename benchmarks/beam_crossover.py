"""Where Beam's DirectRunner in worker processes starts to beat running in-process, on this machine.

    PYTHONPATH=$PWD python benchmarks/beam_crossover.py [--sizes 500 2000 8000 27000] [--modes ...]

For each size, synthetic RGB TFRecords (cached under --work-dir) go through two Beam pipelines
the way the pipeline's components use Beam, once per running mode, on the same files:
  stats:  TFDV's statistics of the records (what StatisticsGen runs);
  decode: parse each tf.Example and decode its JPEG with TensorFlow, then a global mean (the
          per-element work of Transform and the Evaluator).
Prints each run's wall seconds and the ratio in_memory / multi_processing (above 1: the worker
processes win), and the input's MiB, which pipeline/config.py's IN_PROCESS_BELOW_BYTES compares.
Each run is a fresh subprocess, as each TFX component is, so start-up is counted as it is there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WORKLOADS = ("stats", "decode")


def _run_one(workload: str, folder: str, mode: str, workers: int) -> None:
    """One Beam pipeline over `folder`'s records (runs in the child process)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    args = [f"--direct_running_mode={mode}"]
    if mode == "multi_processing":
        args.append(f"--direct_num_workers={workers}")
    pattern = os.path.join(folder, "*.tfrecord")
    if workload == "stats":
        import tensorflow_data_validation as tfdv

        tfdv.generate_statistics_from_tfrecord(pattern, pipeline_options=PipelineOptions(args))
        return
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = (p | beam.io.ReadFromTFRecord(pattern) | beam.Map(_decoded_mean)
             | beam.CombineGlobally(beam.combiners.MeanCombineFn()))


def _decoded_mean(record: bytes) -> float:
    import tensorflow as tf

    from schema import features

    example = tf.io.parse_single_example(record, {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
    return float(tf.reduce_mean(tf.cast(tf.io.decode_jpeg(example[features.IMAGE_KEY]), tf.float32)))


def _records(work_dir: str, size: int) -> str:
    from schema.example_data.synthetic import write_synthetic_tfrecords

    folder = os.path.join(work_dir, f"synthetic-{size}")
    write_synthetic_tfrecords(folder, size, seed=0, num_shards=max(1, min(8, size // 2000)))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000, 27000])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--workers", type=int, default=0, help="multi_processing workers (0: one per core)")
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "outputs", "bench", "beam_crossover"))
    parser.add_argument("--child", nargs=3, metavar=("WORKLOAD", "FOLDER", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _run_one(*args.child, workers=args.workers)
        return
    from components.data_sources import source_bytes as input_bytes

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = []
    for size in args.sizes:
        folder = _records(args.work_dir, size)
        mib = input_bytes(folder) / 2**20
        for workload in args.workloads:
            seconds = {}
            for mode in ("in_memory", "multi_processing"):
                start = time.perf_counter()
                subprocess.run([sys.executable, __file__, "--workers", str(args.workers),
                                "--child", workload, folder, mode], check=True, cwd=ROOT)
                seconds[mode] = round(time.perf_counter() - start, 1)
            row = {"examples": size, "MiB": round(mib, 1), "workload": workload, **seconds,
                   "in_memory/multi_processing": round(seconds["in_memory"] / seconds["multi_processing"], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for workload in args.workloads:
        print(crossover([r for r in rows if r["workload"] == workload], workload))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def crossover(rows: list, workload: str) -> str:
    """Each mode's seconds as start-up + per-example cost, fitted through the smallest and largest
    size; where the two lines cross, in examples and MiB (this data's bytes per example).
    """
    if len({r["examples"] for r in rows}) < 2:
        return f"{workload}: one size only, no crossover fitted"
    a, b = min(rows, key=lambda r: r["examples"]), max(rows, key=lambda r: r["examples"])
    fits = {}
    for mode in ("in_memory", "multi_processing"):
        slope = (b[mode] - a[mode]) / (b["examples"] - a["examples"])
        fits[mode] = (a[mode] - slope * a["examples"], slope)
    (start_im, per_im), (start_mp, per_mp) = fits["in_memory"], fits["multi_processing"]
    line = (f"{workload}: in_memory {start_im:.1f} s + {per_im * 1000:.2f} ms/example, "
            f"multi_processing {start_mp:.1f} s + {per_mp * 1000:.2f} ms/example")
    if per_im <= per_mp:
        return line + "; the worker processes never catch up here"
    examples = (start_mp - start_im) / (per_im - per_mp)
    return line + f"; they cross at ~{examples:.0f} examples (~{examples * b['MiB'] / b['examples']:.0f} MiB)"


if __name__ == "__main__":
    main()
