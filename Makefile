# The three commands a newcomer needs (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python

UV_VERSION := 0.13.9

.PHONY: setup lock lint demo test test-fast
setup:            ## virtual environment + the TFX stack exactly as requirements.lock pins it (+ glibc fix on Debian 12)
	VENV=$(VENV) bash scripts/setup.sh
lock:             ## re-resolve requirements.lock from pyproject.toml (pins kept unless a requirement changed; uv, with requirements/overrides.txt)
	$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra bench --extra lint \
	    --override requirements/overrides.txt --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_39 --generate-hashes \
	    --custom-compile-command "make lock" -o requirements.lock
lint:             ## ruff (style, imports, likely bugs) + import-linter (layers point down, no cycles) + mypy (pyproject.toml)
	$(VENV)/bin/ruff check .
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports
	PYTHONPATH=$(CURDIR) $(VENV)/bin/python -m mypy
demo:             ## the whole pipeline on a small synthetic set (a few minutes on 2 cores)
	$(PY) pipeline_runner.py --demo
# pytest-xdist: one worker per core, each with its share of the cores' threads; loadgroup keeps the tests
# reading one heavy session fixture (a DAG run, a trained model: tests/conftest.py) on one worker, so each
# fixture is built once, and the heaviest groups are handed out first (hence --no-loadscope-reorder).
# TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto
test:             ## the test suite CI runs (one xdist worker per core; TEST_WORKERS=0: one process)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder
test-fast:        ## unit tests only (no end-to-end pipeline runs)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder -m "not e2e"
