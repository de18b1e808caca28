"""Every task module registers one :class:`bench.api.Task`, and every metric a task reports is a registered metric
with a goal (the tables rank by ``METRICS[name].goal`` alone)."""

from __future__ import annotations

import importlib

import pytest

from bench.api import CAPABILITY_PROTOCOLS, Task
from bench.tasks import TASKS, expected_rows, get_task, list_tasks
from metrics import METRICS

MODULES = {"generation": "generate", "conditional": "conditional", "imputation": "impute",
           "super_resolution": "super_resolve", "anomaly": "detect", "forecasting": "forecast"}


@pytest.mark.parametrize("name", list(MODULES))
def test_each_module_registers_its_task(name):
    module = importlib.import_module(f"bench.tasks.{name}")
    task = get_task(name)
    assert isinstance(task, Task) and module.TASK is task and task.name == name
    assert task.capability == MODULES[name] and task.capability in CAPABILITY_PROTOCOLS
    assert task.defaults is module.DEFAULTS and task.source == module.__file__
    assert (task.prepare, task.run, task.score) == (module.prepare, module.run, module.score)
    if hasattr(module, "expected_rows"):
        assert task.expected_rows is module.expected_rows
    assert task.protocol_notes == getattr(module, "PROTOCOL_NOTES", ())
    assert task.paper_layout == getattr(module, "PAPER_LAYOUT", None)
    # the interface is the Task: no module constants standing in for it, no per-task metric directions
    for old in ("NAME", "CAPABILITY", "METRIC_DIRECTIONS", "UNRANKED_METRICS"):
        assert not hasattr(module, old), (name, old)


def test_registry_lists_every_task_once():
    assert sorted(TASKS.names()) == sorted(MODULES)
    assert [t.name for t in list_tasks()] == sorted(MODULES)
    with pytest.raises(KeyError, match="unknown task 'nope'; known: anomaly"):
        get_task("nope")


@pytest.mark.parametrize("name", list(MODULES))
def test_every_reported_metric_is_registered_with_a_goal(name):
    task = get_task(name)
    pairs = expected_rows(name, task.defaults, resolution=15)
    assert pairs
    for _, metric in pairs:
        assert METRICS[metric].goal in ("lower", "higher", "ignore"), (name, metric)
    layout = task.paper_layout or {"metrics": []}
    assert all(m in METRICS for m in layout["metrics"]), name


def test_unranked_and_task_specific_metrics_are_registered():
    assert METRICS["Cov90"].goal == "ignore" and METRICS["CovErr90"].goal == "lower"
    assert METRICS["MMD_pass"].goal == "higher"
    assert METRICS["PeakRMSE"].goal == METRICS["MeanRMSE"].goal == "lower"
    assert METRICS["MSE"].goal == METRICS["MAPE_scaled"].goal == "lower"
