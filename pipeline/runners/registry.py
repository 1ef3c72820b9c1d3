"""The orchestrator registry.

Each runner module (local.py, kubeflow.py, vertex.py) registers one Runner under its name; the command line's
--runner choices, its help and the dispatch are lookups here.

A new orchestrator is one more module that calls register() (imported by the package); nothing
else names it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional

from pipeline.config import PipelineConfig
from schema.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Launch:
    """What the command line asks of a runner beyond the config.

    Where a compiled spec goes, a dry run (compile, do not submit), and whether the console shows every log line.
    """

    output: Optional[str] = None
    dry_run: bool = False
    verbose: bool = False


@dataclasses.dataclass(frozen=True)
class Runner:
    """An orchestrator.

    `infra_gate`: what --infra-gate auto means on it. `on_cloud`: its components run in the component image, far
    from this machine's files. `launch(config, launch) -> exit code` runs or compiles the pipeline of a config
    already checked (check_config, once). `problems`: the settings this runner alone needs (the shared checks are in
    checks.py).
    """

    name: str
    help: str
    infra_gate: str
    on_cloud: bool
    launch: Callable[[PipelineConfig, Launch], int]
    problems: Callable[[PipelineConfig], List[str]] = lambda config: []  # what this runner alone needs


_RUNNERS: Dict[str, Runner] = {}


def register(runner: Runner) -> Runner:
    """Add `runner` to the registry; ValueError when its name is taken."""
    if runner.name in _RUNNERS:
        raise ValueError(f"runner {runner.name!r} is registered twice")
    _RUNNERS[runner.name] = runner
    return runner


def names() -> List[str]:
    """The registered runners' names, in the order they were registered (local first)."""
    return list(_RUNNERS)


def get(name: str) -> Runner:
    """The runner registered as `name`; ConfigError naming the registered ones otherwise."""
    try:
        return _RUNNERS[name]
    except KeyError:
        raise ConfigError(f"unknown runner {name!r}; give one of {', '.join(_RUNNERS)}") from None


def describe() -> str:
    """--runner's help: each runner's name and what it does."""
    return "; ".join(f"{r.name}: {r.help}" for r in _RUNNERS.values())
