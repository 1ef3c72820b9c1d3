"""How long every command line takes to show its --help or to refuse a bad input or flag.

    PYTHONPATH=$PWD python benchmarks/cli_latency.py [--repeat 1] [--only report]

Each case is a fresh `python` subprocess run from the repository root (what a user waits for,
interpreter start-up included); prints its wall seconds, its CPU seconds (user + system: what a
loaded machine stretches into the wall time), exit code and the line it wrote (the usage line
of --help, the last line, the error, otherwise). The goal (issue 20.6): every case under
1 s, no TensorFlow, TFX or Beam import before the inputs are checked (tests/test_cli_imports.py
checks the imports; this measures the time).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = "/nonexistent/eurosat"


def cases(tmp: str) -> List[Tuple[str, List[str]]]:
    """(label, argv after `python`) of each command line's --help and a bad input or flag."""
    bad_yaml = os.path.join(tmp, "unknown_key.yaml")
    with open(bad_yaml, "w") as f:
        f.write("no_such_key: 1\n")
    run = ["pipeline_runner.py"]
    return [
        ("run --help", run + ["--help"]),
        ("run --data missing", run + ["--data", MISSING, "--output-dir", tmp]),
        ("run --epochs x", run + ["--epochs", "x"]),
        ("run --config unknown key", run + ["--config", bad_yaml, "--output-dir", tmp]),
        ("run --min-accuracy 2", run + ["--min-accuracy", "2", "--output-dir", tmp]),
        ("compile missing flags", run + ["--runner", "kubeflow", "--output", os.path.join(tmp, "p.json")]),
        ("report --help", run + ["report", "--help"]),
        ("report no run", run + ["report", "--output-dir", tmp]),
        ("map --help", run + ["map", "--help"]),
        ("map --input missing", run + ["map", "--input", MISSING + ".tif", "--model", tmp,
                                       "--output", os.path.join(tmp, "map")]),
        ("map --model missing", run + ["map", "--input", bad_yaml, "--model", MISSING,
                                       "--output", os.path.join(tmp, "map")]),
        ("map --dn-range x", run + ["map", "--input", MISSING, "--model", tmp, "--output", tmp, "--dn-range", "x"]),
        ("-m pipeline.report --help", ["-m", "pipeline.report", "--help"]),
        ("-m pipeline.report no run", ["-m", "pipeline.report", "--output-dir", tmp]),
        ("-m serving.server --help", ["-m", "serving.server", "--help"]),
        ("-m serving.server --port x", ["-m", "serving.server", "--port", "x"]),
        ("-m serving.client --help", ["-m", "serving.client", "--help"]),
        ("-m serving.client no image", ["-m", "serving.client"]),
    ]


def shown_line(result: subprocess.CompletedProcess) -> str:
    """--help: its usage line; an error: its last line (argparse prints the usage first)."""
    lines = [line for line in (result.stderr if result.returncode else result.stdout).splitlines() if line.strip()]
    return (lines[-1] if result.returncode else lines[0] if lines else "")[:110] if lines else ""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=1, help="runs of each case; the fastest is printed")
    p.add_argument("--only", default="", help="only cases whose label contains this")
    args = p.parse_args()
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("EUROSAT_VERBOSE", None)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'command line':30s} {'wall s':>7s} {'cpu s':>6s} rc  line")
        for label, argv in cases(tmp):
            if args.only not in label:
                continue
            best, cpu, result = float("inf"), float("inf"), None
            for _ in range(args.repeat):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                result = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                                        text=True, stdin=subprocess.DEVNULL)
                best = min(best, time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            worst = max(worst, best)
            print(f"{label:30s} {best:7.2f} {cpu:6.2f} {result.returncode:2d}  {shown_line(result)}", flush=True)
    print(f"slowest: {worst:.2f} s wall; load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
