"""Benchmark tasks. Each task module exposes ``NAME``, ``CAPABILITY``, ``DEFAULTS`` and the three functions
``prepare(profiles, cfg, seed) -> TaskData``, ``run(model, data, ctx) -> outputs`` and
``score(outputs, data, cfg, seed) -> list[dict]`` (tidy metric rows: ``metric, value, std, status, note`` and,
for a task scored under several settings, ``setting``). A task with settings also defines
``expected_rows(cfg) -> [(setting, metric)]`` so that models lacking its capability get ``n/a`` rows for each."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

TASK_MODULES = {
    "generation": "bench.tasks.generation",
    "conditional": "bench.tasks.conditional",
    "imputation": "bench.tasks.imputation",
    "super_resolution": "bench.tasks.super_resolution",
    "anomaly": "bench.tasks.anomaly",
    "forecasting": "bench.tasks.forecasting",
}


def get_task(name: str) -> ModuleType:
    """The task module registered as ``name``."""
    if name not in TASK_MODULES:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASK_MODULES))}")
    return import_module(TASK_MODULES[name])


def expected_rows(name: str, cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """The ``(setting, metric)`` pairs task ``name`` scores under ``cfg`` at ``resolution`` (minutes; some
    settings, such as super-resolution factors, depend on it), one empty setting by default."""
    task = get_task(name)
    if hasattr(task, "expected_rows"):
        return list(task.expected_rows(cfg, resolution=resolution))
    return [("", m) for m in cfg.get("metrics", [])]


def list_tasks() -> list[ModuleType]:
    return [get_task(n) for n in sorted(TASK_MODULES)]
