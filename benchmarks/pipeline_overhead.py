"""Where a small run's seconds go: each component's seconds from ML Metadata, the share outside
the Trainer, and the Trainer's own overhead, for the demo's DAG and the end-to-end tests' tiny run.

    PYTHONPATH=$PWD python benchmarks/pipeline_overhead.py [--runs demo tiny] [--modes auto multi_processing]

Each (run, Beam mode) is a fresh `pipeline_runner.py ... --no-cache` subprocess in its own output
folder; `--modes auto multi_processing` compares the default (in-process Beam for small inputs,
pipeline/config.py) with the multi-processing DirectRunner every component used before, on the
same data in the same session. Prints per run: wall seconds and CPU seconds (user + system of
the run and its children: what a shared machine stretches less), each component's seconds and
state, the non-Trainer share, the Trainer's phases (components/trainer_timing.py) and the test
accuracy and macro F1 the run printed (the mode must not change the model).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The runs: the demo, and the e2e tests' tiny RGB run (tests/conftest.py tiny_rgb_run).
RUNS = {
    "demo": ["--demo"],
    "tiny": ["--data", "synthetic:300", "--pipeline-name", "e2e", "--weights", "none", "--epochs", "1",
             "--batch-size", "16", "--min-accuracy", "0", "--min-macro-f1", "0"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(name: str, mode: str, out: str) -> dict:
    from components.trainer_timing import OVERHEAD_FILE
    from pipeline.results import component_seconds, latest_results

    argv = RUNS[name] + ["--output-dir", out, "--no-cache", "--beam-direct-running-mode", mode]
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run([sys.executable, "pipeline_runner.py", *argv], cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if result.returncode:
        raise SystemExit(f"{name} ({mode}) failed:\n{result.stderr[-3000:]}")
    printed = "\n" + result.stdout
    summary = json.loads(printed[printed.index("\n{"): printed.index("\nevaluation:")])
    pipeline = summary["pipeline"]
    components = component_seconds(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline)
    total = sum(c["seconds"] for c in components.values())
    trainer = components.get("Trainer", {}).get("seconds", 0.0)
    overhead = sorted(glob.glob(os.path.join(out, "pipelines", pipeline, "Trainer", "model_run", "*", OVERHEAD_FILE)))
    trainer_phases = json.load(open(overhead[-1])) if overhead else {}
    assert latest_results(os.path.join(out, "metadata", f"{pipeline}.sqlite"), pipeline).pushed is not None
    return {"run": name, "beam mode": mode, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "components_s": {k: v["seconds"] for k, v in components.items()},
            "sum_of_components_s": round(total, 1), "non_trainer_s": round(total - trainer, 1),
            "non_trainer_share": round((total - trainer) / total, 2) if total else None,
            "trainer_phases_s": trainer_phases,
            "test_accuracy": summary.get("test_accuracy"), "test_macro_f1": summary.get("test_macro_f1")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--modes", nargs="+", default=["auto", "multi_processing"],
                        help="--beam-direct-running-mode of each run (auto: the default)")
    parser.add_argument("--work-dir", help="keep the runs' outputs here (default: a temporary folder)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = args.work_dir or tmp
        rows = []
        for name in args.runs:
            for mode in args.modes:
                row = run_once(name, mode, os.path.join(base, f"{name}-{mode}"))
                rows.append(row)
                print(json.dumps(row), flush=True)
        for name in args.runs:
            by_mode = {r["beam mode"]: r for r in rows if r["run"] == name}
            if len(by_mode) > 1:
                first, *others = args.modes
                a = by_mode[first]
                for other in others:
                    b = by_mode[other]
                    print(f"{name}: {other} / {first}: wall {b['wall_s'] / a['wall_s']:.2f}x, "
                          f"CPU {b['cpu_s'] / a['cpu_s']:.2f}x, "
                          f"non-Trainer seconds {b['non_trainer_s'] / max(a['non_trainer_s'], 0.1):.2f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
