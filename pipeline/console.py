"""Command lines that talk to people: our progress lines, not TensorFlow's or absl's chatter.

Importing TensorFlow prints C++ log lines before its own log settings apply (absl's "All log
messages before absl::InitializeLog()", oneDNN, "Could not find cuda drivers", CPU features),
whatever TF_CPP_MIN_LOG_LEVEL says. `quiet_tensorflow()` imports it once with the process's
stderr (fd 2) pointed at /dev/null and keeps later C++ logs to fatal ones. `--verbose`, or
EUROSAT_VERBOSE=1 in the environment, shows everything.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional

VERBOSE_ENV = "EUROSAT_VERBOSE"
WORKER_LOG_ENV = "EUROSAT_WORKER_LOG"  # read by worker_site/sitecustomize.py
WORKER_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker_site")
# The logger through which Beam's runner relays its worker processes' log records.
BEAM_WORKER_RELAY = "apache_beam.runners.portability.local_job_service"


def verbose_requested(argv_flag: bool = False) -> bool:
    """Whether verbose output was asked for, by the flag or by EUROSAT_VERBOSE."""
    return argv_flag or os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false", "no")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its start-up noise (unless `verbose` or EUROSAT_VERBOSE)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow's first import
    if verbose_requested(verbose):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _ProgressOnly(logging.Filter):
    """Let through TFX's per-component progress lines; drop absl's INFO/WARNING chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        msg = record.getMessage()
        return msg.startswith("Component ") or "Using cached" in msg or "is running" in msg


def configure_logging(verbose: bool = False) -> None:
    """Set the log levels: ours at INFO, TFX's per-component lines, warnings from the rest.

    Our progress at INFO, TFX's per-component lines, and only warnings from the rest (everything with --verbose).
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for name in ("components", "pipeline", "pipeline_runner", "serving"):
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.INFO)
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda r: r.name != "absl" or _ProgressOnly().filter(r))
        handler.addFilter(_not_deprecation)


def _not_deprecation(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's deprecation notices (a library's use of an old API, e.g. TFMA's; 4 lines each)."""
    return record.name != "tensorflow" or "Instructions for updating" not in record.getMessage()


@contextlib.contextmanager
def quiet_beam_workers(log_path: str, verbose: bool = False) -> Iterator[Optional[str]]:
    """While the pipeline runs, send the Beam worker processes' output to `log_path`.

    While the pipeline runs: what Beam's DirectRunner worker processes (multi_processing) say goes to `log_path`,
    not the terminal (unless `verbose` or EUROSAT_VERBOSE). That is their stderr, TensorFlow's C++ start-up lines
    from each worker (worker_site/sitecustomize.py, on the workers' PYTHONPATH, points it at the file as they
    start), and the warnings the runner relays from them ('Discarding unparseable args', 'No
    semi_persistent_directory'); relayed errors still reach the terminal. Yields the log's path (None when verbose).
    """
    if verbose_requested(verbose):
        yield None
        return
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    saved = {k: os.environ.get(k) for k in (WORKER_LOG_ENV, "PYTHONPATH")}
    os.environ[WORKER_LOG_ENV] = os.path.abspath(log_path)
    os.environ["PYTHONPATH"] = os.pathsep.join([WORKER_SITE, *filter(None, [saved["PYTHONPATH"]])])
    relay = logging.getLogger(BEAM_WORKER_RELAY)
    to_file = logging.FileHandler(log_path)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    relay.addHandler(to_file)
    below_error = _DropBelowError(BEAM_WORKER_RELAY)
    terminal = list(logging.getLogger().handlers)
    for handler in terminal:
        handler.addFilter(below_error)
    try:
        yield log_path
    finally:
        for handler in terminal:
            handler.removeFilter(below_error)
        relay.removeHandler(to_file)
        to_file.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _DropBelowError(logging.Filter):
    """Drop one logger's records below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != self.name or record.levelno >= logging.ERROR
