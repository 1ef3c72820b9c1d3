"""The command line as a person meets it: no TensorFlow start-up noise, one line per error."""
import os
import subprocess
import sys

import pytest

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


# Refused in run_local after TensorFlow is imported (components.model), before any component runs:
# a TF Hub backbone takes RGB only. (synthetic:N that is too small is refused before TensorFlow loads.)
HUB = "https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet1k_b0/feature_vector/2"
AFTER_TENSORFLOW = ("pipeline_runner.py", "--data", "synthetic/all:20", "--backbone", HUB,
                    "--output-dir", "/tmp/eurosat-cli-test")


@pytest.fixture(scope="module")
def after_tensorflow():
    """AFTER_TENSORFLOW run once, quiet (a process importing TensorFlow: ~20 s), for both tests below."""
    return _run(*AFTER_TENSORFLOW)


def test_an_error_after_tensorflow_is_imported_is_the_only_line(after_tensorflow):
    done = after_tensorflow
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: --backbone {HUB!r} is a TF Hub image model, which takes RGB only; this data has 13 bands. "
        "Use a Keras EfficientNetV2 backbone (e.g. --backbone EfficientNetV2B0), whose first convolution is "
        "adapted to 13 bands."]


def test_a_too_small_synthetic_set_is_refused_before_anything_runs():
    done = _run("pipeline_runner.py", "--data", "synthetic:5", "--output-dir", "/tmp/eurosat-cli-test")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: synthetic:5 is too small: ask for at least 10 examples (one per class), e.g. synthetic:500."]


def test_verbose_shows_what_is_hidden(after_tensorflow):
    quiet = after_tensorflow
    loud = _run(*AFTER_TENSORFLOW, env={"EUROSAT_VERBOSE": "1"})
    assert loud.returncode == quiet.returncode == 2
    assert len(loud.stderr.splitlines()) > len(quiet.stderr.splitlines())
