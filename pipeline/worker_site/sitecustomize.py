"""Run by Python at the start of every process that has this folder on its PYTHONPATH (the `site` module's hook).

Pipeline/console.py's quiet_beam_workers() puts it there for the Beam DirectRunner's worker processes, whose stderr
(TensorFlow's C++ start-up lines, written before any Python code of ours runs in them) then goes to the file named
by EUROSAT_WORKER_LOG instead of the terminal.
"""
import os

_log = os.environ.get("EUROSAT_WORKER_LOG")
if _log:
    _fd = os.open(_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(_fd, 2)
    os.close(_fd)
