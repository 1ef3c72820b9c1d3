"""Every command line's --help and its flag and input errors come before TensorFlow, TFX and Beam
load (issue 20.6): each case runs in a fresh interpreter, which then reports what it imported.
A test of import side effects, not a timed test (benchmarks/cli_latency.py measures the seconds)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("tensorflow", "tfx", "apache_beam")
MISSING = "/nonexistent/eurosat"

# Runs the command as `python pipeline_runner.py ...` / `python -m module ...` would, then prints
# the exit code and the heavy modules it imported as the last line.
PROBE = """
import json, runpy, sys
target, argv = sys.argv[1], sys.argv[2:]
sys.argv = [target] + argv
code = 0
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
sys.stdout.flush()
sys.stderr.flush()
print(json.dumps({"rc": code, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def probe(target, *argv):
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("EUROSAT_VERBOSE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, target, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    *out, last = done.stdout.splitlines() or [""]
    return json.loads(last), "\n".join(out), done.stderr


RUNNER = "pipeline_runner.py"
HELP = [  # (target, argv, what the usage line names)
    (RUNNER, ["--help"], "usage: pipeline_runner.py "),
    (RUNNER, ["report", "--help"], "usage: pipeline_runner.py report "),
    (RUNNER, ["map", "--help"], "usage: pipeline_runner.py map "),
    ("pipeline.report", ["--help"], "usage: python -m pipeline.report "),
    ("serving.server", ["--help"], "usage: python -m serving.server "),
    ("serving.client", ["--help"], "usage: python -m serving.client "),
]


@pytest.mark.parametrize("target,argv,usage", HELP, ids=[" ".join([t, *a]) for t, a, _ in HELP])
def test_help_names_the_command_and_loads_no_tensorflow(target, argv, usage):
    result, out, err = probe(target, *argv)
    assert result == {"rc": 0, "heavy": []}, err[-2000:]
    assert out.startswith(usage), out[:200]


ERRORS = [  # (target, argv, a piece of the one error line)
    (RUNNER, ["--data", MISSING, "--output-dir", "{tmp}"], f"--data {MISSING!r} does not exist"),
    (RUNNER, ["--data", "synthetic:x", "--output-dir", "{tmp}"], "expected synthetic:N"),
    (RUNNER, ["--epochs", "x"], "invalid int value"),
    (RUNNER, ["--min-accuracy", "2", "--output-dir", "{tmp}"], "min_accuracy"),
    (RUNNER, ["--runner", "kubeflow", "--output", "{tmp}/p.json"], "missing --pipeline-root"),
    (RUNNER, ["report", "--output-dir", "{tmp}"], "no metadata at"),
    (RUNNER, ["report", "--no-such-flag"], "unrecognized arguments"),
    (RUNNER, ["map", "--input", MISSING + ".tif", "--model", "{tmp}", "--output", "{tmp}/m"], "no such file"),
    (RUNNER, ["map", "--input", "{tmp}", "--model", MISSING, "--output", "{tmp}/m"],
     f"--model {MISSING!r} does not exist"),
    (RUNNER, ["map", "--input", "{tmp}", "--output", "{tmp}/m"], "give --model"),
    (RUNNER, ["map", "--input", "{tmp}", "--model", "{tmp}", "--output", "{tmp}/m", "--stride", "7"], "--stride"),
    (RUNNER, ["map", "--input", "{tmp}", "--model", "{tmp}", "--output", "{tmp}/m", "--beam", "--server", "h:1"],
     "drop --server"),
    ("pipeline.report", ["--output-dir", "{tmp}"], "no metadata at"),
    ("serving.server", ["--port", "x"], "invalid int value"),
    ("serving.server", [], "give --model-base-path"),
    ("serving.client", [], "give image files"),
]


@pytest.mark.parametrize("target,argv,message", ERRORS, ids=[" ".join([t, *a]) for t, a, _ in ERRORS])
def test_bad_flag_or_input_is_refused_before_tensorflow_loads(tmp_path, target, argv, message):
    result, out, err = probe(target, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert result == {"rc": 2, "heavy": []}, err[-2000:]
    assert message in err and err.count("error:") == 1, err[-2000:]
    assert "Traceback" not in err
