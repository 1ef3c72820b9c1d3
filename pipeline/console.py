"""Command lines that talk to people: our progress lines, not TensorFlow's or absl's chatter.

Importing TensorFlow prints C++ log lines before its own log settings apply (absl's "All log
messages before absl::InitializeLog()", oneDNN, "Could not find cuda drivers", CPU features),
whatever TF_CPP_MIN_LOG_LEVEL says. `quiet_tensorflow()` imports it once with the process's
stderr (fd 2) pointed at /dev/null and keeps later C++ logs to fatal ones. `--verbose`, or
EUROSAT_VERBOSE=1 in the environment, shows everything.
"""
from __future__ import annotations

import logging
import os
import sys

VERBOSE_ENV = "EUROSAT_VERBOSE"


def verbose_requested(argv_flag: bool = False) -> bool:
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
    """Our progress at INFO, TFX's per-component lines, and only warnings from the rest
    (everything with --verbose)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    for name in ("components", "pipeline", "pipeline_runner", "serving"):
        logging.getLogger(name).setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.INFO)
    if verbose:
        return
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda r: r.name != "absl" or _ProgressOnly().filter(r))
