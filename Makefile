# The three commands a newcomer needs (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast
setup:            ## virtual environment + pinned TFX stack (+ glibc fix on Debian 12)
	VENV=$(VENV) bash scripts/setup.sh
demo:             ## the whole pipeline on a small synthetic set (a few minutes on 2 cores)
	$(PY) pipeline_runner.py --demo
test:             ## the test suite CI runs
	$(PY) -m pytest -q
test-fast:        ## unit tests only (no end-to-end pipeline runs)
	$(PY) -m pytest -q -m "not e2e"
