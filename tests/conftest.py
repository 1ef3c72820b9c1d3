"""Shared test set-up: legacy Keras before any TensorFlow import, quiet logs, tiny data."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _threads_per_worker() -> int:
    """The cores each pytest-xdist worker may use: all of them in one process, else an equal share."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


# Under xdist each worker's TensorFlow (and the BLAS/OpenMP pools under numpy and scikit-learn) gets
# its share of the cores, set before anything imports them: with every worker sizing its pools to
# all cores, two workers on 2 cores spent 3x the CPU seconds of one process contending for them.
if "PYTEST_XDIST_WORKER" in os.environ:
    for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, str(_threads_per_worker()))

import pytest

# pytest-xdist (`make test`: `-n auto --dist loadgroup --no-loadscope-reorder`): the session fixtures
# that cost a model's training or a run of the DAG, each named with the worker group of the tests that
# read it, so each is built once, on one worker. In the order the groups are handed out: the longest
# first (their set-up seconds in a two-worker run: digits 149, spans 130, RGB with its re-runs 111,
# 13-band 76, the mapping CNNs ~45, the exported model ~40), so that no worker starts one near the end
# while the other sits idle. A test reading none of them is grouped with its module when it reads a
# module- or class-scoped fixture (built once), else it is a unit of its own that either worker takes.
HEAVY_FIXTURE_GROUPS = {
    "digits_run": "e2e-digits",
    "two_span_run": "e2e-spans",
    "tiny_rgb_run": "e2e-rgb",  # blocked_rgb_run and tiny_rgb_rerun build on it
    "bands_run": "e2e-bands",
    "rgb_model": "map-models",  # tests/test_mapping.py and test_product.py read both CNNs
    "bands_model": "map-models",
    "bands_predictor": "map-models",  # built on bands_model
    "bands_server": "map-models",
    "exported": "exported-model",
}
GROUP_ORDER = list(dict.fromkeys(HEAVY_FIXTURE_GROUPS.values()))


def _shared_scope(item) -> bool:
    """Whether the test reads a fixture that outlives it within its module (module, class, package)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else ()
    return any(d[-1].scope in ("module", "class", "package") for d in defs if d)


def _group_suffix_for_xdist(item, group: str) -> None:
    """Put `@group` on the test's id, as pytest-xdist's loadgroup scheduler reads it.

    xdist (3.8) writes the suffix into `item._nodeid`, which pytest 9.2 no longer reads (node ids are
    structured, `item._id`): the groups were silently ignored and every session fixture was built on
    each worker (pytest-dev/pytest-xdist#1386). Where the structured id exists, write it there;
    tests/test_conftest.py runs two workers and checks that a group's fixture is built once.
    """
    if hasattr(item, "_nodeid") or not hasattr(item, "_id") or item.nodeid.endswith(f"@{group}"):
        return  # older pytest: xdist's own suffix works
    from _pytest.nodeid import NodeId

    item._id = NodeId.parse(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the marks
def pytest_collection_modifyitems(config, items):
    """Each test's xdist_group (see HEAVY_FIXTURE_GROUPS); under xdist, the heavy groups first."""
    loadgroup = bool(config.getvalue("loadgroup")) if "PYTEST_XDIST_WORKER" in os.environ else False
    rank = {}
    for item in items:
        groups = {HEAVY_FIXTURE_GROUPS[f] for f in getattr(item, "fixturenames", ()) if f in HEAVY_FIXTURE_GROUPS}
        if len(groups) > 1:
            raise pytest.UsageError(f"{item.nodeid} reads the heavy fixtures of groups {sorted(groups)}: "
                                    "give them one group in HEAVY_FIXTURE_GROUPS (tests/conftest.py)")
        group = groups.pop() if groups else item.nodeid.split("::")[0] if _shared_scope(item) else None
        rank[id(item)] = GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)
        if group is None:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
        if loadgroup:
            _group_suffix_for_xdist(item, group)
    if loadgroup:  # one process keeps the files' order (module fixtures are torn down between files)
        items.sort(key=lambda item: rank[id(item)])


@pytest.fixture(scope="session")
def synthetic_records(tmp_path_factory):
    """A small synthetic EuroSAT TFRecord folder (100 images)."""
    from schema.example_data.synthetic import write_synthetic_tfrecords

    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_tfrecords(str(folder), 100, seed=3)
    return str(folder)


# The tiny model in TF Serving's layout that the serving and monitoring tests serve (read only;
# tests that push versions copy it into their own folders).
@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    from tests import serving_fixtures

    return serving_fixtures.export_model(str(tmp_path_factory.mktemp("push")))


# The small CNNs the map, product and training-check tests map with (tests/mapping_fixtures.py):
# trained once per session, read only by the tests.
@pytest.fixture(scope="session")
def rgb_model(tmp_path_factory):
    from schema import features
    from tests import mapping_fixtures

    return mapping_fixtures.train_and_export(str(tmp_path_factory.mktemp("rgb_model")), features.RGB)


@pytest.fixture(scope="session")
def bands_model(tmp_path_factory):
    from schema import features
    from tests import mapping_fixtures

    return mapping_fixtures.train_and_export(str(tmp_path_factory.mktemp("bands_model")), features.ALL_BANDS,
                                             count=500, epochs=15)


# bands_model loaded once in this process (each load of the SavedModel is seconds) and served once
# by the dev server (a process that imports TensorFlow and loads it: ~10 s per start), for the map,
# product and training-check tests that map with it in process or through an endpoint.
@pytest.fixture(scope="session")
def bands_predictor(bands_model):
    from pipeline.mapping import predictors

    return predictors.SavedModelPredictor(bands_model)


@pytest.fixture(scope="session")
def bands_server(bands_model):
    """'localhost:PORT' of `python -m serving.server` serving bands_model."""
    from tests import mapping_fixtures

    with mapping_fixtures.dev_server(bands_model) as address:
        yield address


# The end-to-end runs of the DAG (tests/test_e2e.py): one per kind per session, each read by
# several tests. Tiny: the plumbing needs a few hundred examples and one epoch, and at that size
# Beam runs in-process ('auto', pipeline/config.py), as a user's small run does.
E2E_PIPELINE = "e2e"
TINY_FLAGS = ["--weights", "none", "--epochs", "1", "--batch-size", "16", "--min-accuracy", "0", "--min-macro-f1", "0"]


def _run_printing(argv):
    """pipeline_runner.main(argv) == 0; returns what it printed (the summary JSON and the paths)."""
    import contextlib
    import io

    import pipeline_runner

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = pipeline_runner.main(argv)
    assert code == 0, printed.getvalue()[-2000:]
    return printed.getvalue()


@pytest.fixture(scope="session")
def tiny_rgb_run(tmp_path_factory):
    """300 synthetic RGB images through the whole DAG: (output dir, argv)."""
    out = str(tmp_path_factory.mktemp("e2e"))
    argv = ["--data", "synthetic:300", "--output-dir", out, "--pipeline-name", E2E_PIPELINE, *TINY_FLAGS]
    _run_printing(argv)
    return out, argv


@pytest.fixture(scope="session")
def tiny_rgb_rerun(tiny_rgb_run):
    """The same command again: every component's outputs are reused from the cache."""
    out, argv = tiny_rgb_run
    _run_printing(argv)
    return out, argv


@pytest.fixture(scope="session")
def blocked_rgb_run(tiny_rgb_rerun):
    """After the cached re-run: the same data and model, the bar out of reach (only the Evaluator
    and Pusher re-run); (output dir, what it printed, the serving versions before it)."""
    import os

    out, argv = tiny_rgb_rerun
    pushed_before = sorted(os.listdir(os.path.join(out, "serving", "eurosat")))
    printed = _run_printing(argv + ["--min-accuracy", "1.0"])
    return out, printed, pushed_before


@pytest.fixture(scope="session")
def bands_run(tmp_path_factory):
    """200 synthetic 13-band patches through the whole DAG: (output dir, what it printed)."""
    out = str(tmp_path_factory.mktemp("e2e-all"))
    printed = _run_printing(["--data", "synthetic/all:200", "--output-dir", out, "--pipeline-name", E2E_PIPELINE,
                             *TINY_FLAGS])
    return out, printed


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """Real images through the whole DAG: scikit-learn's handwritten digits (120 per class) in
    EuroSAT's class-folder layout, the default recipe from scratch, no augmentation (digits
    have an "up"); (output dir, its pipeline name)."""
    from schema.example_data.digits import write_digits_folder

    root = tmp_path_factory.mktemp("digits")
    folder = str(root / "EuroSAT_digits")
    write_digits_folder(folder, per_class=120)
    out = str(root / "out")
    _run_printing(["--data", folder, "--output-dir", out, "--pipeline-name", "digits", "--weights", "none",
                   "--epochs", "8", "--augment", "none", "--min-accuracy", "0", "--min-macro-f1", "0"])
    return out, "digits"


@pytest.fixture(scope="session")
def two_span_run(tmp_path_factory):
    """New data as spans (components/spans.py): span-1, then a shifted span-2 (the drift gate stops
    it: exit code 2), then span-2 with --allow-drift (warm-started from span-1's blessed model);
    (output dir, the gated run's stderr)."""
    import contextlib
    import io

    import pipeline_runner
    from schema.example_data.synthetic import DEMO_SHIFT, write_synthetic_span

    root = tmp_path_factory.mktemp("spans")
    data, out = str(root / "data"), str(root / "out")
    argv = ["--data", data, "--output-dir", out, "--pipeline-name", E2E_PIPELINE, *TINY_FLAGS]
    write_synthetic_span(os.path.join(data, "span-1"), 150, seed=1)
    _run_printing(argv)
    write_synthetic_span(os.path.join(data, "span-2"), 150, seed=2, shift=DEMO_SHIFT)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert pipeline_runner.main(argv) == 2
    _run_printing(argv + ["--allow-drift"])
    return out, err.getvalue()
