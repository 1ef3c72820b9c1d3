"""The suite's own machinery: under `-n 2 --dist loadgroup` a heavy session fixture is built once.

The grouping failing is silent (every worker builds every end-to-end run and the suite just takes
longer), so it is checked on a throwaway suite that uses this conftest's collection hook.
"""
import os
import subprocess
import sys
import textwrap

import pytest

CONFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py")


def test_a_heavy_fixtures_group_runs_on_one_worker_and_builds_it_once(tmp_path):
    pytest.importorskip("xdist")
    log = tmp_path / "builds.log"
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import importlib.util, os, pytest
        spec = importlib.util.spec_from_file_location("project_conftest", {CONFTEST!r})
        project = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(project)
        pytest_collection_modifyitems = project.pytest_collection_modifyitems

        @pytest.fixture(scope="session")
        def tiny_rgb_run():  # one of HEAVY_FIXTURE_GROUPS' names, built cheaply
            with open({str(log)!r}, "a") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    """))
    (tmp_path / "test_heavy.py").write_text("".join(f"def test_reads_{i}(tiny_rgb_run): pass\n" for i in range(6)))
    (tmp_path / "test_light.py").write_text("import pytest\n@pytest.mark.parametrize('i', range(12))\n"
                                            "def test_light(i): pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           "--dist", "loadgroup", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "18 passed" in done.stdout
    assert log.read_text().splitlines() == [log.read_text().split()[0]], "built on more than one worker"
