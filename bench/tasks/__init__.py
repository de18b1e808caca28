"""Benchmark tasks: each module registers one :class:`bench.api.Task` with :func:`register_task`.

A task's ``prepare(profiles, cfg, seed)`` splits and scales the data once for every model, ``run(model, data,
ctx)`` returns a :class:`bench.api.Outcome` and ``score(outcome, data, cfg, seed)`` tidy rows (``metric, value,
std, status, note`` and, for a task scored under several settings, ``setting``)."""

from __future__ import annotations

from bench.api import Task
from bench.registry import Registry

TASKS: Registry[Task] = Registry("task", (
    "bench.tasks.generation",
    "bench.tasks.conditional",
    "bench.tasks.imputation",
    "bench.tasks.super_resolution",
    "bench.tasks.anomaly",
    "bench.tasks.forecasting",
))


def register_task(task: Task) -> Task:
    """Add ``task`` to the registry under ``task.name``; returns it (``TASK = register_task(Task(...))``)."""
    return TASKS.register(task.name, task)


def get_task(name: str) -> Task:
    """The task registered as ``name``; a one-line error lists the known tasks otherwise."""
    return TASKS.get(name)


def expected_rows(name: str, cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """The ``(setting, metric)`` pairs task ``name`` scores under ``cfg`` at ``resolution`` (minutes; some
    settings, such as super-resolution factors, depend on it)."""
    return list(get_task(name).expected_rows(cfg, resolution=resolution))


def list_tasks() -> list[Task]:
    """Every registered task, sorted by name."""
    return [TASKS.get(n) for n in TASKS.names()]
