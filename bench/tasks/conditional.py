"""Conditional generation: one profile per real evaluation profile under that profile's own conditions.

Protocol: the shared split and scaling, the model fitted on the training profiles, then ``sample(N, cond)``
with ``cond`` the evaluation profiles' ``month, weekday, days, category``. Two settings:

* ``"conditional"``: the generated and real profiles are grouped by condition (``group_by``, default month;
  groups smaller than ``min_group`` are left out) and compared per group in the scaled space with the
  unbiased MMD and its seeded permutation test (one permutation stream per group, from the seed's
  condition-group stream), as the SmartMeterFM paper does. Rows: ``MMD`` (mean over groups, lower is better),
  ``MMD_p`` (mean p-value, higher = harder to tell apart) and ``MMD_pass`` (fraction of groups with
  ``p > alpha``, :func:`metrics.mmd_pass`, higher is better); ``std`` is the spread over groups. And
  ``TSTR_class`` (train on synthetic, test on real, :func:`metrics.utility.tstr_class_ratio`): a fixed classifier
  of the month trained on the generated profiles against the same trained on the real training profiles, tested
  on the real evaluation profiles, ratio of error rates (lower is better, about 1 = as useful as real data).
* ``"constrained"`` (models with the ``constrained`` capability only; ``n/a`` rows otherwise): a second draw
  with ``target_peak`` / ``target_mean`` set to each real profile's peak and mean over its valid steps.
  Rows: ``PeakRMSE`` and ``MeanRMSE`` (:func:`metrics.peak_rmse`, :func:`metrics.mean_rmse`), RMSE in kW of the
  achieved against the target peak and mean (lower is better), paired-bootstrap mean ± std.

The outcome's ``samples`` hold ``[1, N, T]`` (conditional draw) or ``[2, N, T]`` (conditional and constrained
draws); ``extra["constrained"]`` says whether the model has the ``constrained`` capability (so that a failed
outcome fails the constrained rows of such a model and leaves them n/a for the others).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import seeds
from bench.api import Model, Outcome, Task, capabilities_of
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.errors import DataError, ModelFitError
from bench.seeds import Stream
from bench.tasks import register_task
from bench.tasks.common import SPLIT_DEFAULTS, failed_rows, paired_bootstrap_values, paired_row, split_and_scale

COND_COLUMNS = ("month", "weekday", "days", "category")
SETTING_METRICS = {
    "conditional": ("MMD", "MMD_p", "MMD_pass", "TSTR_class"),
    "constrained": ("PeakRMSE", "MeanRMSE"),
}
DEFAULTS = {
    "group_by": ["month"],
    "min_group": 10,
    "n_permutations": 1000,
    "alpha": 0.05,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    **SPLIT_DEFAULTS,
}


@dataclass
class TaskData:
    """Scaled training and evaluation profiles, the MMD bandwidth and the condition groups."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str
    bandwidth: float
    groups: list[tuple[str, np.ndarray]]  # (label, row indices of real) of every group >= min_group

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"

    def conditions(self, constrained: bool = False) -> pd.DataFrame:
        """The ``cond`` frame of the evaluation profiles; with ``constrained`` also their peak and mean over
        the valid steps (scaled space) as ``target_peak`` / ``target_mean``."""
        cond = self.real.meta[list(COND_COLUMNS)].reset_index(drop=True).copy()
        if constrained:
            peak, mean = valid_peak_mean(self.real.values, self.real.mask)
            cond["target_peak"], cond["target_mean"] = peak, mean
        return cond


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair (``resolution`` is accepted for a uniform signature)."""
    return [(setting, metric) for setting, names in SETTING_METRICS.items() for metric in names]


def valid_peak_mean(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-profile maximum and mean over the valid steps (float64 ``[N]`` each; NaN without a valid step)."""
    values = np.asarray(values, dtype=np.float64)
    count = valid.sum(axis=1)
    peak = np.where(valid, values, -np.inf).max(axis=1)
    mean = np.where(valid, values, 0.0).sum(axis=1) / np.maximum(count, 1)
    return np.where(count > 0, peak, np.nan), np.where(count > 0, mean, np.nan)


def condition_groups(meta: pd.DataFrame, group_by: list[str], min_group: int) -> list[tuple[str, np.ndarray]]:
    """``(label, rows)`` of every group of ``meta`` by ``group_by`` with at least ``min_group`` rows, sorted
    by key; labels read like ``"month=3"``."""
    missing = [c for c in group_by if c not in meta.columns]
    if missing or not group_by:
        raise ValueError(f"group_by must name meta columns, got {group_by} (missing {missing})")
    if int(min_group) < 2:
        raise ValueError(f"min_group must be >= 2 (the MMD needs two profiles per side), got {min_group}")
    groups = []
    for key, frame in meta.reset_index(drop=True).groupby(list(group_by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        if len(frame) >= int(min_group):
            label = ", ".join(f"{c}={k}" for c, k in zip(group_by, key))
            groups.append((label, frame.index.to_numpy()))
    return groups


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale; fix the MMD bandwidth from all real evaluation profiles and form the groups."""
    from metrics import rbf_bandwidth

    missing = [c for c in COND_COLUMNS if c not in profiles.meta.columns]
    if missing:
        raise DataError(f"the conditional task needs meta columns {missing}", path=profiles.name)
    split = split_and_scale(profiles, cfg, seed)
    groups = condition_groups(split.real.meta, list(cfg["group_by"]), cfg["min_group"])
    return TaskData(train=split.train, real=split.real, scaler=split.scaler, split_rule=split.split_rule,
                    bandwidth=rbf_bandwidth(split.real.values), groups=groups)


def _draw(model, data: TaskData, ctx: RunContext, constrained: bool) -> np.ndarray:
    cond = data.conditions(constrained)
    samples = np.asarray(model.sample(len(cond), cond, ctx), dtype=np.float32)
    expected = (len(data.real), data.real.length)
    if samples.shape != expected:
        raise RuntimeError(f"model returned samples of shape {samples.shape}, expected {expected}")
    return samples


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` and draw one profile per evaluation profile under its conditions (and, for a model with
    the ``constrained`` capability, a second draw under the peak / mean targets). Steps outside the real
    profiles' valid mask are set to 0 so they never count."""
    constrained = "constrained" in capabilities_of(type(model))
    # ``constrained`` lets a failed outcome still give n/a (not failed) constrained rows for other models
    outcome = Outcome(extra={"constrained": constrained})
    try:
        start = time.perf_counter()
        model.fit(data.train, ctx)
        outcome.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        draws = [_draw(model, data, ctx, False)] + ([_draw(model, data, ctx, True)] if constrained else [])
        outcome.sample_seconds = time.perf_counter() - start
    except ModelFitError as err:
        return outcome.fail(str(err))
    samples = np.stack(draws)
    if not np.isfinite(samples[:, data.real.mask]).all():
        return outcome.fail("non-finite values in generated samples")
    outcome.samples = np.where(data.real.mask, samples, 0.0).astype(np.float32)
    return outcome


def _conditional_rows(gen: np.ndarray, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    from metrics import mmd_permutation_test

    names = SETTING_METRICS["conditional"][:3]
    if not data.groups:
        return failed_rows([("conditional", m) for m in names], "failed",
                           f"no {'/'.join(cfg['group_by'])} group with >= {cfg['min_group']} evaluation profiles")
    alpha = float(cfg["alpha"])
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {cfg['alpha']!r}")
    stats, p_values = [], []
    for g, (_, rows) in enumerate(data.groups):
        # every group gets its own permutation stream, fixed by the seed and the group's position
        stat, p = mmd_permutation_test(data.real.values[rows], gen[rows], bandwidth=data.bandwidth,
                                       n_permutations=int(cfg["n_permutations"]),
                                       seed=seeds.int_seed(seed, Stream.CONDITION_GROUPS, g))
        stats.append(stat)
        p_values.append(p)
    stats, p_values = np.array(stats), np.array(p_values)
    # MMD_pass per group, as metrics.mmd_pass computes it from the same test (run once here, not twice)
    passed = (p_values > alpha).astype(float)
    note = f"{len(stats)} groups by {'/'.join(cfg['group_by'])}"
    return [{"setting": "conditional", "metric": m, "value": float(v.mean()), "std": float(v.std()),
             "status": "ok", "note": note} for m, v in zip(names, (stats, p_values, passed))]


def _tstr_class_row(gen: np.ndarray, data: TaskData, cfg: dict, seed: int) -> dict:
    """``TSTR_class``: the fixed month classifier trained on the generated profiles (labelled with the months they
    were generated under) against the same trained on the real training profiles, both tested on the real
    evaluation profiles; the ratio of error rates, paired-bootstrap mean ± std over the evaluation profiles."""
    from metrics.errors import MetricInputError
    from metrics.utility import classification_errors, tstr_ratio_from_errors

    label = "month"
    test, test_labels = data.real.values.astype(np.float64), data.real.meta[label].to_numpy()
    try:
        synthetic = classification_errors(gen, test_labels, test, test_labels)
        real = classification_errors(data.train.values, data.train.meta[label].to_numpy(), test, test_labels)
    except MetricInputError as err:
        return failed_rows([("conditional", "TSTR_class")], "failed", str(err))[0]
    values = paired_bootstrap_values(lambda r: tstr_ratio_from_errors(synthetic[r], real[r]), len(test),
                                     cfg["n_bootstrap"], cfg["bootstrap_frac"], seed)
    return paired_row("conditional", "TSTR_class", values, "classifier of the month")


def _constrained_rows(gen: np.ndarray | None, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    from metrics import METRICS

    names = SETTING_METRICS["constrained"]
    if gen is None:
        return failed_rows([("constrained", m) for m in names], "n/a", "model lacks the constrained capability")
    valid = data.real.mask
    keep = valid.any(axis=1)
    # scored in kW: the profiles are mapped back through the scaler before their peaks and means are taken
    real_kw = data.scaler.inverse(data.real.values[keep].astype(np.float64))
    gen_kw = data.scaler.inverse(gen[keep].astype(np.float64))
    mask = valid[keep]
    rows = []
    for metric in names:
        fn = METRICS[metric].fn
        rows.append(paired_row("constrained", metric, paired_bootstrap_values(
            lambda r: fn(real_kw[r], gen_kw[r], mask=mask[r]), len(real_kw), cfg["n_bootstrap"],
            cfg["bootstrap_frac"], seed)))
    return rows


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Rows of both settings; a failed outcome gives failed rows for every (setting, metric) of a model with the
    constrained capability (``extra["constrained"]``; without that entry both settings fail) and n/a
    constrained rows for the others."""
    if outcome.status != "ok":
        rows = failed_rows([("conditional", m) for m in SETTING_METRICS["conditional"]], outcome.status,
                           outcome.note)
        if outcome.extra.get("constrained", True):
            return rows + failed_rows([("constrained", m) for m in SETTING_METRICS["constrained"]],
                                      outcome.status, outcome.note)
        return rows + _constrained_rows(None, data, cfg, seed)
    samples = outcome.samples
    return (_conditional_rows(samples[0], data, cfg, seed) + [_tstr_class_row(samples[0], data, cfg, seed)]
            + _constrained_rows(samples[1] if len(samples) > 1 else None, data, cfg, seed))


TASK = register_task(Task(name="conditional", capability="conditional", defaults=DEFAULTS, prepare=prepare,
                          run=run, score=score, expected_rows=expected_rows, source=__file__))
