"""Quiet runs keep Beam's worker processes off the terminal (issue 20.7): their stderr (TensorFlow's
C++ start-up lines, written before any code of ours runs in them) and the warnings the runner
relays from them go to a log file; --verbose / EUROSAT_VERBOSE=1 leaves them on the terminal."""
import io
import logging
import os
import subprocess
import sys

from pipeline import console

# What a worker process does: C++ code writing to fd 2 as the process starts.
WORKER = "import os; os.write(2, b'I0000 oneDNN custom operations are on\\n')"


def _worker():
    return subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, env=dict(os.environ))


def test_worker_processes_and_relayed_warnings_go_to_the_log(tmp_path, monkeypatch):
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    terminal = io.StringIO()
    handler = logging.StreamHandler(terminal)
    logging.getLogger().addHandler(handler)
    relay = logging.getLogger(console.BEAM_WORKER_RELAY)
    log = tmp_path / "logs" / "beam_workers.log"
    path_before = os.environ.get("PYTHONPATH")
    try:
        with console.quiet_beam_workers(str(log)) as where:
            done = _worker()
            relay.warning("Worker: Discarding unparseable args: ['--pipeline_type_check']")
            relay.error("Worker: the DoFn failed")
    finally:
        logging.getLogger().removeHandler(handler)
    assert where == str(log)
    assert done.returncode == 0 and done.stderr == ""
    text = log.read_text()
    assert "oneDNN custom operations" in text and "Discarding unparseable args" in text
    assert terminal.getvalue() == "Worker: the DoFn failed\n"  # errors still reach the terminal
    assert os.environ.get("PYTHONPATH") == path_before and console.WORKER_LOG_ENV not in os.environ
    assert "oneDNN" in _worker().stderr  # after the run, child processes are as before


def test_verbose_leaves_workers_on_the_terminal(tmp_path, monkeypatch):
    monkeypatch.setenv(console.VERBOSE_ENV, "1")
    with console.quiet_beam_workers(str(tmp_path / "w.log")) as where:
        done = _worker()
    assert where is None and "oneDNN" in done.stderr and not (tmp_path / "w.log").exists()


def test_tensorflow_deprecation_notices_are_dropped_unless_verbose():
    root = logging.getLogger()
    saved = list(root.handlers)
    terminal = io.StringIO()
    root.handlers = [logging.StreamHandler(terminal)]
    try:
        console.configure_logging()
        tf_log = logging.getLogger("tensorflow")
        tf_log.warning("From x.py:127: tf_record_iterator (from tensorflow.python.lib.io.tf_record) is deprecated "
                       "and will be removed in a future version.\nInstructions for updating:\nUse eager execution")
        tf_log.warning("a real warning")
    finally:
        root.handlers = saved
    assert terminal.getvalue() == "a real warning\n"
