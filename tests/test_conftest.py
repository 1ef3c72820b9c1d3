"""The suite's own machinery under `make test` (pytest-xdist, `--dist loadgroup`): a heavy session
fixture is built once, on one worker, the heavy groups are handed out first, and a test that shares
nothing is free to run on either worker.

The grouping failing is silent (every worker builds every end-to-end run and the suite just takes
longer), so it is checked on a throwaway suite that uses this conftest's collection hook.
"""
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


def makefile_xdist_flags() -> list:
    """The xdist flags of the Makefile's test target (the command CI runs)."""
    with open(os.path.join(os.path.dirname(TESTS), "Makefile")) as f:
        line = next(line for line in f if "-m pytest" in line and "--dist" in line)
    flags = shlex.split(line.split("-m pytest", 1)[1])
    return [flag for flag in flags if flag.startswith("--dist") or flag == "loadgroup"
            or flag.endswith("loadscope-reorder")]


def test_a_heavy_fixtures_group_runs_on_one_worker_first_and_builds_it_once(tmp_path):
    pytest.importorskip("xdist")
    log, order = tmp_path / "builds.log", tmp_path / "order.log"
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import importlib.util, os, pytest
        spec = importlib.util.spec_from_file_location("project_conftest", {os.path.join(TESTS, "conftest.py")!r})
        project = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(project)
        pytest_collection_modifyitems = project.pytest_collection_modifyitems

        def pytest_collection_finish(session):
            with open({str(order)!r}, "a") as f:
                f.write(" ".join(item.nodeid for item in session.items) + "\\n")

        @pytest.fixture(scope="session")
        def digits_run():  # one of HEAVY_FIXTURE_GROUPS' names, built cheaply
            with open({str(log)!r}, "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

        @pytest.fixture(scope="module")
        def shared():
            return 1
    """))
    (tmp_path / "test_a_light.py").write_text("import pytest\n@pytest.mark.parametrize('i', range(12))\n"
                                              "def test_light(i): pass\n"
                                              "def test_module_fixture(shared): pass\n")
    (tmp_path / "test_b_heavy.py").write_text("".join(f"def test_reads_{i}(digits_run): pass\n" for i in range(6)))
    flags = makefile_xdist_flags()
    assert "loadgroup" in flags or "--dist=loadgroup" in flags, flags
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", *flags,
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "19 passed" in done.stdout
    builds = log.read_text().split()
    assert len(builds) == 1, f"the heavy fixture was built on {builds}"
    collected = order.read_text().splitlines()[0].split()
    assert all(nodeid.endswith("@e2e-digits") for nodeid in collected[:6]), collected  # handed out first
    assert "test_a_light.py::test_light[0]" in collected  # a unit of its own: no group
    assert "test_a_light.py::test_module_fixture@test_a_light.py" in collected
