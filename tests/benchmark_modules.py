"""Load a benchmarks/ script as a module, the way `python benchmarks/NAME.py` sees its siblings.

benchmarks/ is a folder of scripts, not a package: a script imports a sibling (`import real_data`)
because its own folder is first on sys.path when it runs. Tests load it with that folder on the path.
"""
import importlib.util
import os
import sys
from types import ModuleType

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


def load_benchmark(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, BENCHMARKS)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(BENCHMARKS)
    return module
