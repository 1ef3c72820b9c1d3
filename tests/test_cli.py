"""The command line as a person meets it: no TensorFlow start-up noise, one line per error."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "EUROSAT_VERBOSE"))}
    environ["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**environ, **(env or {})}, timeout=300)


def test_help_prints_no_tensorflow_lines_and_does_not_import_it():
    done = _run("-X", "importtime", "pipeline_runner.py", "--help")
    assert done.returncode == 0 and "--verbose" in done.stdout
    imported = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not any(m.split(".")[0] in ("tensorflow", "tfx", "apache_beam") for m in imported)
    assert not [line for line in done.stderr.splitlines() if not line.startswith("import time:")]


def test_an_error_after_tensorflow_is_imported_is_the_only_line():
    done = _run("pipeline_runner.py", "--data", "synthetic:5", "--output-dir", "/tmp/eurosat-cli-test")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: synthetic:5 is too small: ask for at least 10 examples (one per class), e.g. synthetic:500."]


def test_verbose_shows_what_is_hidden():
    quiet = _run("pipeline_runner.py", "--data", "synthetic:5", "--output-dir", "/tmp/eurosat-cli-test")
    loud = _run("pipeline_runner.py", "--data", "synthetic:5", "--output-dir", "/tmp/eurosat-cli-test",
                env={"EUROSAT_VERBOSE": "1"})
    assert loud.returncode == quiet.returncode == 2
    assert len(loud.stderr.splitlines()) > len(quiet.stderr.splitlines())
