"""Super-resolution of load profiles: recover the fine profile from its interval means (SmartMeterFM-style).

Protocol: the shared split and scaling, the model fitted on the training profiles, then up to ``max_queries``
evaluation profiles averaged over blocks of ``factor`` steps (one setting per factor, named e.g.
``"x4 (60->15 min)"``). A factor applies only when the coarse interval (resolution x factor) divides a day
and is at most 60 minutes; other factors are skipped and give no rows (30-min data gets x2 only, 60-min data
none). The model returns ``n_samples`` fine profiles per query; scores use the valid steps, in kW:

* ``CRPS``: fair ensemble CRPS per step (lower is better);
* ``PeakCRPS``: the SmartMeterFM peak-load error, CRPS of the per-profile maxima plus that of the minima
  (:func:`metrics.peak_load_error`, lower is better);
* ``RMSE``: of the ensemble median (lower is better).

Values are paired-bootstrap means ± std as in :mod:`bench.tasks.imputation`.

**Per customer category** (SmartMeterFM reports super-resolution per category): when the evaluation profiles
hold at least two categories (LCL tariff or ACORN group, CER customer type, WPuQ kind) with ``min_category``
profiles or more each, every setting is also scored on each such category alone, as the setting
``"<setting>, category=<name>"`` (with ``by_category = false`` it is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.api import Model, Outcome, Task
from bench.context import RunContext
from bench.data.profileset import MINUTES_PER_DAY, ProfileSet, steps_per_day
from bench.data.scaling import MinMaxScaler
from bench.tasks import register_task
from bench.tasks.common import (SPLIT_DEFAULTS, ensemble_queries, failed_rows, fitting_set, paired_bootstrap_values,
                                paired_row, run_ensemble_settings)
from bench.tasks.queries import SuperResolutionQuery

METRIC_NAMES = ("CRPS", "PeakCRPS", "RMSE")
"""The task's metrics (all in :data:`metrics.registry.METRICS`), in table order."""
MAX_COARSE_MINUTES = 60
DEFAULTS = {
    "factors": [4, 2],
    "n_samples": 10,
    "max_queries": 200,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    "by_category": True,
    "min_category": 10,
    **SPLIT_DEFAULTS,
}
CATEGORY_SEPARATOR = ", category="


def category_groups(meta, cfg: dict) -> list[tuple[str, np.ndarray]]:
    """``(category, row indices)`` of every category with at least ``min_category`` rows, sorted by name;
    empty unless ``by_category`` is set and at least two categories qualify (one category is the pooled
    table already)."""
    if not cfg.get("by_category", False):
        return []
    minimum = int(cfg.get("min_category", 10))
    if minimum < 1:
        raise ValueError(f"min_category must be a positive number of profiles, got {cfg['min_category']!r}")
    categories = meta["category"].astype(str).to_numpy()
    groups = [(name, np.flatnonzero(categories == name)) for name in sorted(set(categories))]
    groups = [(name, rows) for name, rows in groups if len(rows) >= minimum]
    return groups if len(groups) >= 2 else []


def setting_specs(cfg: dict, resolution: int) -> list[tuple[str, int]]:
    """``(setting name, factor)`` for each factor of ``cfg`` that applies at ``resolution`` minutes."""
    steps_per_day(resolution)  # a resolution that does not divide the day is an error
    resolution = int(resolution)
    specs = []
    for factor in cfg["factors"]:
        if int(factor) != factor or factor < 2:
            raise ValueError(f"super-resolution factors must be integers >= 2, got {factor}")
        coarse = resolution * int(factor)
        if MINUTES_PER_DAY % coarse == 0 and coarse <= MAX_COARSE_MINUTES:
            specs.append((f"x{int(factor)} ({coarse}->{resolution} min)", int(factor)))
    return specs


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair the task scores at ``resolution`` (required: the settings depend on
    it)."""
    if resolution is None:
        raise ValueError("the super_resolution settings depend on the data resolution; pass resolution=")
    return [(name, metric) for name, _ in setting_specs(cfg, resolution) for metric in METRIC_NAMES]


def block_means(values: np.ndarray, valid: np.ndarray, factor: int) -> np.ndarray:
    """``[N, T // factor]`` means of ``values`` over consecutive blocks of ``factor`` steps, counting valid
    steps only (0 for a block without any valid step, e.g. month padding)."""
    values = np.asarray(values, dtype=np.float64)
    n, length = values.shape
    if length % factor:
        raise ValueError(f"profile length {length} is not a multiple of the factor {factor}")
    weights = np.asarray(valid, dtype=np.float64).reshape(n, length // factor, factor)
    sums = (values.reshape(n, length // factor, factor) * weights).sum(axis=2)
    counts = weights.sum(axis=2)
    return np.where(counts > 0, sums / np.maximum(counts, 1.0), 0.0).astype(np.float32)


@dataclass
class TaskData:
    """Scaled training profiles, the queried evaluation profiles and their coarse versions per setting."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str
    settings: list[str]
    factors: list[int]
    n_samples: int
    pretrain: ProfileSet | None = None  # the "pretrain" protocol's pre-training profiles

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"

    def query(self, index: int) -> SuperResolutionQuery:
        """The :class:`SuperResolutionQuery` of setting ``index``."""
        factor = self.factors[index]
        return SuperResolutionQuery(low=block_means(self.real.values, self.real.mask, factor), factor=factor,
                                    valid=self.real.mask.copy(), meta=self.real.meta.copy(),
                                    resolution=self.real.resolution)


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale, cap the evaluation profiles to ``max_queries`` (seeded) and record the settings that
    apply at the data's resolution (``data.settings``, the same as :func:`expected_rows` gives)."""
    specs = setting_specs(cfg, profiles.resolution)
    split, real = ensemble_queries(profiles, cfg, seed)
    return TaskData(train=split.train, real=real, scaler=split.scaler, split_rule=split.split_rule,
                    settings=[name for name, _ in specs], factors=[f for _, f in specs],
                    n_samples=int(cfg["n_samples"]), pretrain=split.pretrain)


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` and super-resolve every setting's query; ``samples`` is ``[n_settings, S, N, T]`` (padding
    set to 0); no ``extra``. With no applicable factor the model is not fitted and there is nothing to score
    (an ``ok`` outcome without samples, with a note)."""
    if not data.settings:
        return Outcome(note=f"no super-resolution factor applies at {data.real.resolution} min")
    return run_ensemble_settings(model, fitting_set(model, data), data.real, data.settings, data.n_samples, ctx,
                                 lambda index: model.super_resolve(data.query(index), data.n_samples, ctx),
                                 "super-resolved")


def _metric(spec, truth: np.ndarray, ens: np.ndarray, median: np.ndarray, valid: np.ndarray):
    """``rows -> value`` of the registered metric ``spec`` on the profiles ``rows`` (arrays in kW)."""
    if spec.needs == "ensemble":
        return lambda r: spec.fn(truth[r], ens[:, r], mask=valid[r])
    if spec.needs == "point":
        return lambda r: spec.fn(truth[r], median[r], mask=valid[r])
    raise ValueError(f"super-resolution cannot score {spec.name!r}, a metric of {spec.needs}")


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Per setting and metric, the paired-bootstrap mean ± std over the valid steps, in kW (reads ``status``,
    ``note`` and ``samples``): ensemble metrics score the ensemble, point metrics its median; then the same per
    customer category (:func:`category_groups`)."""
    from metrics import METRICS

    keep = data.real.mask.any(axis=1)
    groups = [("", np.arange(int(keep.sum())))] + [
        (CATEGORY_SEPARATOR + name, rows) for name, rows in category_groups(data.real.meta[keep], cfg)]
    pairs = [(s + suffix, m) for suffix, _ in groups for s in data.settings for m in METRIC_NAMES]
    if outcome.status != "ok":
        return failed_rows(pairs, outcome.status, outcome.note)
    valid = data.real.mask[keep]
    truth = data.scaler.inverse(data.real.values[keep]).astype(np.float64)
    rows = []
    for suffix, members in groups:
        for index, setting in enumerate(data.settings):
            ens = data.scaler.inverse(outcome.samples[index][:, keep][:, members]).astype(np.float64)
            median = np.median(ens, axis=0)
            for metric in METRIC_NAMES:
                fn = _metric(METRICS[metric], truth[members], ens, median, valid[members])
                values = paired_bootstrap_values(fn, len(members), cfg["n_bootstrap"], cfg["bootstrap_frac"], seed)
                rows.append(paired_row(setting + suffix, metric, values, f"{len(members)} profiles" if suffix else ""))
    return rows


TASK = register_task(Task(name="super_resolution", capability="super_resolve", defaults=DEFAULTS, prepare=prepare,
                          run=run, score=score, expected_rows=expected_rows, source=__file__))
