"""The model contract check, shared by the contract test over every registered model and by the tests of
third-party models (the README's example through an entry point).

:func:`check_model` runs one model, built with its ``test`` profile, through every task it claims on a tiny
synthetic dataset with the real task code, and checks: the task accepts its outputs (shapes, finiteness),
the same seed gives the same outputs, a save / load round trip gives the same predictions, and, unless the model
declares ``learns = False``, it beats a trivial baseline that knows only the training set's mean and spread.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from bench.api import (ConditionalGenerator, Detector, Forecaster, Generator, Imputer, Model, Outcome,
                       SuperResolver, capabilities_of)
from bench.context import RunContext
from bench.data.profileset import ProfileSet, steps_per_day
from bench.registry import ModelSpec
from bench.seeds import Stream
from bench.tasks import get_task

RESOLUTION = 30
TASK_OF = {"generate": "generation", "conditional": "conditional", "constrained": "conditional",
           "impute": "imputation", "super_resolve": "super_resolution", "forecast": "forecasting",
           "detect": "anomaly"}
# each task's cheapest config that still exercises its code; the split is the suites' pooled rule
_SPLIT = {"split": "pooled", "fractions": [0.5, 0.25, 0.25], "max_train": None, "max_eval": None}
TASK_CONFIGS = {
    "generation": {**_SPLIT, "n_bootstrap": 2, "bootstrap_frac": 0.5, "n_generate": 96},
    "conditional": {**_SPLIT, "group_by": ["month"], "min_group": 8, "n_permutations": 20, "n_bootstrap": 2},
    "imputation": {**_SPLIT, "patterns": ["random"], "fractions_missing": [0.3], "n_samples": 4, "max_queries": 24,
                   "n_bootstrap": 2},
    "super_resolution": {**_SPLIT, "factors": [2], "n_samples": 4, "max_queries": 24, "n_bootstrap": 2},
    "forecasting": {**_SPLIT, "settings": ["day-ahead"], "history_days": 7, "n_samples": 4, "max_queries": 24,
                    "max_train_windows": 96, "n_bootstrap": 2},
    "anomaly": {**_SPLIT, "attacks": ["scaling"], "history_days": 0, "max_queries": 64, "max_calibration": 48,
                "max_train_examples": 96, "n_bootstrap": 2},
}
# (metric, goal) each task is judged on against the trivial baseline
PRIMARY = {"generation": ("MMD", "lower"), "conditional": ("MMD", "lower"), "imputation": ("CRPS", "lower"),
           "super_resolution": ("CRPS", "lower"), "forecasting": ("MAE", "lower"), "anomaly": ("AUROC", "higher")}


def tiny_profiles(n_households: int = 10, n_days: int = 28, seed: int = 0) -> ProfileSet:
    """Daily profiles (30 min) with a household level, a morning and an evening peak, a weekend shift, two
    tariff categories and two calendar months: easy to learn, impossible to fake with a mean and a spread."""
    rng = np.random.default_rng(seed)
    spd = steps_per_day(RESOLUTION)
    hours = (np.arange(spd) + 0.5) * RESOLUTION / 60
    shape = 0.15 + 0.5 * np.exp(-0.5 * ((hours - 7.5) / 1.0) ** 2) + 0.9 * np.exp(-0.5 * ((hours - 19) / 1.5) ** 2)
    starts = pd.date_range("2013-01-18", periods=n_days, freq="D")
    values, meta = [], []
    for h in range(n_households):
        level = 0.6 + 0.8 * h / max(n_households - 1, 1)
        category = "Std" if h % 2 == 0 else "ToU"
        for start in starts:
            weekend = start.weekday() >= 5
            day = level * np.roll(shape, 2 if weekend else 0) * (1.2 if category == "ToU" else 1.0)
            values.append(day + 0.04 * rng.standard_normal(spd))
            meta.append({"series_id": f"H{h:02d}", "start": start, "month": start.month,
                         "weekday": start.weekday(), "days": 1, "category": category})
    values = np.clip(np.asarray(values, dtype=np.float32), 0.0, None)
    return ProfileSet(values=values, mask=np.ones_like(values, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=RESOLUTION, period="day", name="contract-toy")


@functools.lru_cache(maxsize=None)
def prepared(task_name: str):
    """The tiny dataset prepared once per task (shared by every model, as in a suite)."""
    task = get_task(task_name)
    cfg = {**task.defaults, **TASK_CONFIGS[task_name]}
    return task, cfg, task.prepare(tiny_profiles(), cfg, 0)


class GlobalMeanBaseline(Model, Generator, ConditionalGenerator, Imputer, SuperResolver, Forecaster, Detector):
    """The trivial baseline: knows the training values' mean and standard deviation, nothing else."""

    learns = False

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        observed = train.values[train.mask]
        self.mean_, self.std_, self.length_ = float(observed.mean()), float(observed.std()), train.length

    def sample(self, n, cond, ctx):
        return ctx.rng(Stream.MODEL_SAMPLE).normal(self.mean_, self.std_, (n, self.length_)).astype(np.float32)

    def impute(self, query, n_samples, ctx):
        noise = ctx.rng(Stream.MODEL_IMPUTE).normal(self.mean_, self.std_, (n_samples, *query.values.shape))
        return np.where(query.observed[None], query.values[None], noise).astype(np.float32)

    def super_resolve(self, query, n_samples, ctx):
        shape = (n_samples, len(query), query.length)
        return ctx.rng(Stream.MODEL_SUPER_RESOLVE).normal(self.mean_, self.std_, shape).astype(np.float32)

    def forecast(self, query, n_samples, ctx):
        shape = (n_samples, len(query.history), query.horizon)
        return ctx.rng(Stream.MODEL_FORECAST).normal(self.mean_, self.std_, shape).astype(np.float32)

    def anomaly_score(self, query, ctx):
        return ctx.rng(Stream.MODEL_SAMPLE).random(len(query.values))


def _predict(capability: str, model: Model, data, ctx: RunContext) -> np.ndarray:
    """One direct call of the capability's method on the task's first query."""
    if capability == "generate":
        return np.asarray(model.sample(16, None, ctx))
    if capability in ("conditional", "constrained"):
        cond = data.conditions().iloc[:16].reset_index(drop=True)
        return np.asarray(model.sample(len(cond), cond, ctx))
    if capability == "impute":
        return np.asarray(model.impute(data.query(0), 3, ctx))
    if capability == "super_resolve":
        return np.asarray(model.super_resolve(data.query(0), 3, ctx))
    if capability == "forecast":
        return np.asarray(model.forecast(data.queries[0], 3, ctx))
    return np.asarray(model.anomaly_score(data.query(0), ctx))


def _outputs(outcome: Outcome) -> list[np.ndarray]:
    arrays = [outcome.samples] if outcome.samples is not None else []
    arrays += [np.asarray(v) for _, v in sorted(outcome.extra.items())
               if isinstance(v, np.ndarray) or (isinstance(v, list) and v and isinstance(v[0], np.ndarray))]
    return arrays


def _primary(rows: list[dict], metric: str) -> float:
    values = [r["value"] for r in rows if r["metric"] == metric and r["status"] == "ok"]
    assert values, f"no ok {metric} row in {rows}"
    return float(np.mean(values))


def check_model(spec: ModelSpec, tmp_path: Path) -> None:
    """Every check of the contract for the registered model ``spec`` (see the module docstring)."""
    assert capabilities_of(spec.cls) == spec.capabilities
    for capability in sorted(spec.capabilities - ({"conditional"} if "constrained" in spec.capabilities else set())):
        task, cfg, data = prepared(TASK_OF[capability])
        ctx = RunContext(seed=0, profile="test", checkpoint_dir=None)
        model = spec.build("test")
        outcome = task.run(model, data, ctx)
        assert outcome.status == "ok", f"{spec.name} on {task.name}: {outcome.note}"
        rows = task.score(outcome, data, cfg, 0)
        # "n/a" rows are a task's statement that a metric does not apply (CRPS of a point forecast)
        assert any(r["status"] == "ok" for r in rows), rows
        assert all(r["status"] == "n/a" or (r["status"] == "ok" and np.isfinite(r["value"])) for r in rows), rows

        again = task.run(spec.build("test"), data, RunContext(seed=0, profile="test"))
        for first, second in zip(_outputs(outcome), _outputs(again), strict=True):
            np.testing.assert_array_equal(first, second, err_msg=f"{spec.name} on {task.name}: not deterministic")

        predicted = _predict(capability, model, data, RunContext(seed=3, profile="test"))
        assert np.isfinite(predicted).all(), f"{spec.name}: non-finite {capability} output"
        path = model.save(tmp_path / f"{spec.name}-{capability}.pt")
        loaded = type(model).load(path)
        np.testing.assert_array_equal(_predict(capability, loaded, data, RunContext(seed=3, profile="test")),
                                      predicted, err_msg=f"{spec.name}: save/load changed its {capability} output")

        if spec.cls.learns:
            metric, goal = PRIMARY[task.name]
            trivial = task.score(task.run(GlobalMeanBaseline(), data, RunContext(seed=0)), data, cfg, 0)
            ours, theirs = _primary(rows, metric), _primary(trivial, metric)
            better = ours < theirs if goal == "lower" else ours > theirs
            assert better, f"{spec.name} on {task.name}: {metric} {ours:.4g} does not beat the trivial {theirs:.4g}"

