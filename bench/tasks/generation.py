"""Unconditional generation of daily profiles, scored as in the EnergyDiff paper.

Protocol: the suite's split rule (by household, or days pooled and split within each month as the EnergyDiff
paper does), scale to [-1, 1] on train, fit the model on train, draw ``n_generate`` profiles (the paper: 4000;
None = as many as the evaluation set, validation + test, holds), and compare generated with real profiles in the
scaled space with MMD, Gaussian Fréchet distance and pooled marginal KL / Wasserstein / KS, each as
mean ± std over bootstrap repeats (half of each side drawn without replacement, from the seed's
generation-bootstrap stream).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass

import numpy as np

from bench import seeds
from bench.api import Model, Outcome, Task
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.errors import DataError, ModelFitError
from bench.seeds import Stream
from bench.tasks import register_task
from bench.tasks.common import SPLIT_DEFAULTS, split_and_scale

DEFAULTS = {
    "metrics": ["MMD", "GFD", "KL", "WD", "KS"],
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    "n_generate": None,  # profiles drawn per cell; None = as many as the evaluation profiles
    **SPLIT_DEFAULTS,  # max_eval keeps MMD and GFD cheap on large datasets
}


@dataclass
class TaskData:
    """Prepared, scaled data shared by every model of one (dataset, resolution, seed) cell group."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    bandwidth: float
    split_rule: str
    n_generate: int

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split, cap and scale ``profiles``; fix the MMD bandwidth from the real evaluation profiles."""
    from metrics import rbf_bandwidth

    if profiles.period != "day":
        raise DataError("the generation task uses daily profiles", path=profiles.name)
    if not profiles.complete:
        raise DataError("the generation task needs complete days (use the default completeness rule)",
                        path=profiles.name)
    split = split_and_scale(profiles, cfg, seed)
    n_generate = cfg.get("n_generate") or len(split.real)
    if int(n_generate) != n_generate or n_generate < 2:
        raise ValueError(f"n_generate must be an integer >= 2 or None, got {n_generate!r}")
    return TaskData(train=split.train, real=split.real, scaler=split.scaler,
                    bandwidth=rbf_bandwidth(split.real.values),
                    split_rule=f"{split.split_rule}; {int(n_generate)} profiles generated per model",
                    n_generate=int(n_generate))


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` on the scaled training profiles and draw ``data.n_generate`` profiles (``samples``
    ``[n_generate, T]`` float32; no ``extra``).

    A :class:`ModelFitError` (or non-finite samples) becomes a ``failed`` outcome with its reason: the table
    reports it instead of hiding it.
    """
    outcome = Outcome()
    try:
        start = time.perf_counter()
        model.fit(data.train, ctx)
        outcome.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        samples = np.asarray(model.sample(data.n_generate, None, ctx), dtype=np.float32)
        outcome.sample_seconds = time.perf_counter() - start
    except ModelFitError as err:
        return outcome.fail(str(err))
    expected = (data.n_generate, data.real.length)
    if samples.shape != expected:
        raise RuntimeError(f"model returned samples of shape {samples.shape}, expected {expected}")
    if not np.isfinite(samples).all():
        return outcome.fail("non-finite values in generated samples")
    outcome.samples = samples
    return outcome


def _metric_fn(spec, bandwidth: float):
    """``(real, pred) -> value`` of a registered metric, with the task's fixed bandwidth where it takes one."""
    if "bandwidth" in inspect.signature(spec.fn).parameters:
        return lambda real, pred: spec.fn(real, pred, bandwidth=bandwidth)
    return spec.fn


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Bootstrapped mean ± std of each configured metric (registered set metrics,
    :data:`metrics.registry.METRICS`); a failed outcome gives failed rows. Only ``status``, ``note`` and
    ``samples`` are read, so an outcome rebuilt from cached samples scores the same."""
    from metrics import METRICS, bootstrap

    specs = [METRICS[name] for name in cfg["metrics"]]
    wrong = [s.name for s in specs if s.needs != "samples"]
    if wrong:
        raise ValueError(f"generation metrics compare sets of profiles; {', '.join(wrong)} score other outputs")
    boot_seed = seeds.int_seed(seed, Stream.GENERATION_BOOTSTRAP)
    rows = []
    for spec in specs:
        if outcome.status != "ok":
            rows.append({"metric": spec.name, "value": np.nan, "std": np.nan, "status": outcome.status,
                         "note": outcome.note})
            continue
        mean, std = bootstrap(_metric_fn(spec, data.bandwidth), data.real.values, outcome.samples,
                              n_repeats=cfg["n_bootstrap"], frac=cfg["bootstrap_frac"], seed=boot_seed)
        rows.append({"metric": spec.name, "value": float(mean), "std": float(std), "status": "ok", "note": ""})
    return rows


TASK = register_task(Task(name="generation", capability="generate", defaults=DEFAULTS, prepare=prepare, run=run,
                          score=score, source=__file__))
