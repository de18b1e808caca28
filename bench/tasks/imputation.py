"""Missing-data imputation of load profiles, scored as in the SmartMeterFM paper (CRPS of the ensemble).

Protocol: the shared split and scaling (:func:`bench.tasks.common.split_and_scale`), the model fitted on the
training profiles, then up to ``max_queries`` evaluation profiles with steps hidden by a seeded pattern
(:mod:`bench.tasks.masking`, drawn from the seed's imputation-mask stream; one setting per pattern x missing
fraction, e.g. ``"random-30%"``). The model returns ``n_samples`` imputations per profile; scores use the
hidden (valid) steps only, in kW:

* ``CRPS``: fair ensemble CRPS (lower is better);
* ``RMSE``, ``MAE``, ``MAPE``: errors of the ensemble median (lower is better);
* ``Cov90``: coverage of the central 90% ensemble interval (closer to 0.9 is better; its registered goal is
  ``ignore``, so tables do not rank it) and ``CovErr90`` = ``|Cov90 - 0.9|`` (lower is better, the ranked form).

Each value is the mean ± std over ``n_bootstrap`` paired subsamples (a ``bootstrap_frac`` share of the
profiles drawn without replacement, the same profiles on both sides), as the generation task reports.
For the "same time last week" reference, daily queries carry ``history``: the same series' profile seven days
earlier, looked up in the full profile set (NaN where that day is absent or unobserved).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import seeds
from bench.api import Model, Outcome, Task
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.seeds import Stream
from bench.tasks import register_task
from bench.tasks.common import (SPLIT_DEFAULTS, bootstrap_row, ensemble_queries, failed_rows, fitting_set,
                                run_ensemble_settings)
from bench.tasks.masking import PATTERNS, observed_mask
from bench.tasks.queries import ImputationQuery

METRIC_NAMES = ("CRPS", "RMSE", "MAE", "MAPE", "CovErr90", "Cov90")
"""The task's metrics (all in :data:`metrics.registry.METRICS`), in table order."""
DEFAULTS = {
    "patterns": ["random", "block"],
    "fractions_missing": [0.1, 0.3, 0.5],
    "n_samples": 10,
    "max_queries": 200,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    **SPLIT_DEFAULTS,
}
PAPER_LAYOUT = {"caption": "Imputation with the missing settings as column groups (the layout of the unified-model "
                           "paper's Table II, for its Fig. 5 grid of missing ratios)",
                "metrics": ["RMSE", "MAE", "MAPE"], "settings": None}
"""Second rendering of the task's table (see :func:`bench.report.render.paper_layout`)."""


@dataclass
class TaskData:
    """Scaled training profiles, the queried evaluation profiles and one observed mask per setting."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str
    settings: list[str]
    observed: np.ndarray  # [n_settings, N, T] bool
    history: np.ndarray | None  # [N, T] scaled, NaN where unknown; None for monthly profiles
    n_samples: int  # ensemble size asked of the model
    pretrain: ProfileSet | None = None  # the "pretrain" protocol's pre-training profiles

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"

    def query(self, index: int) -> ImputationQuery:
        """The :class:`ImputationQuery` of setting ``index`` (hidden steps hold NaN)."""
        observed = self.observed[index]
        values = np.where(observed, self.real.values, np.nan).astype(np.float32)
        return ImputationQuery(values=values, observed=observed, valid=self.real.mask.copy(),
                               meta=self.real.meta.copy(), resolution=self.real.resolution,
                               history=None if self.history is None else self.history.copy())


def setting_specs(cfg: dict) -> list[tuple[str, str, float]]:
    """``(setting name, pattern, fraction missing)`` for every pattern x fraction of ``cfg``."""
    specs = []
    for pattern in cfg["patterns"]:
        if pattern not in PATTERNS:
            raise ValueError(f"unknown missing pattern {pattern!r}; known: {', '.join(PATTERNS)}")
        for fraction in cfg["fractions_missing"]:
            if not 0.0 < float(fraction) < 1.0:
                raise ValueError(f"fractions_missing must lie strictly between 0 and 1, got {fraction}")
            specs.append((f"{pattern}-{round(100 * float(fraction))}%", pattern, float(fraction)))
    return specs


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair the task scores (``resolution`` is accepted for a uniform signature)."""
    return [(name, metric) for name, _, _ in setting_specs(cfg) for metric in METRIC_NAMES]


def week_before(profiles: ProfileSet, real: ProfileSet, scaler: MinMaxScaler) -> np.ndarray:
    """``[N, T]`` float32: for each profile of ``real`` the scaled profile of the same series starting seven
    days earlier in ``profiles`` (unscaled, the full set), NaN where that profile is absent or unobserved."""
    if profiles.length != real.length:
        raise ValueError(f"profile lengths differ: {profiles.length} vs {real.length}")
    index = {(str(s), pd.Timestamp(t)): i
             for i, (s, t) in enumerate(zip(profiles.meta["series_id"], profiles.meta["start"]))}
    scaled = np.where(profiles.mask, scaler.transform(profiles.values), np.nan).astype(np.float32)
    out = np.full(real.values.shape, np.nan, dtype=np.float32)
    week = pd.Timedelta(days=7)
    for row, (series, start) in enumerate(zip(real.meta["series_id"], real.meta["start"])):
        source = index.get((str(series), pd.Timestamp(start) - week))
        if source is not None:
            out[row] = scaled[source]
    return out


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale, cap the evaluation profiles to ``max_queries`` (seeded) and draw the hidden steps of
    every setting from the valid steps (sub-stream ``[pattern index, 1000 x fraction]`` of the mask stream)."""
    specs = setting_specs(cfg)
    split, real = ensemble_queries(profiles, cfg, seed)
    observed = np.stack([
        observed_mask(real.mask, pattern, fraction,
                      seeds.rng(seed, Stream.IMPUTATION_MASKS, PATTERNS.index(pattern), round(1000 * fraction)))
        for _, pattern, fraction in specs]) if specs else np.zeros((0, *real.values.shape), dtype=bool)
    history = week_before(profiles, real, split.scaler) if profiles.period == "day" else None
    return TaskData(train=split.train, real=real, scaler=split.scaler, split_rule=split.split_rule,
                    settings=[name for name, _, _ in specs], observed=observed, history=history,
                    n_samples=int(cfg["n_samples"]), pretrain=split.pretrain)


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` on :func:`~bench.tasks.common.fitting_set` and impute every setting's query.

    ``samples`` is ``[n_settings, S, N, T]`` float32 (padding set to 0); no ``extra``. A :class:`ModelFitError`
    or non-finite imputations on valid steps give a ``failed`` outcome with the reason.
    """
    return run_ensemble_settings(model, fitting_set(model, data), data.real, data.settings, data.n_samples, ctx,
                                 lambda index: model.impute(data.query(index), data.n_samples, ctx), "imputed")


def _metric(name: str, truth: np.ndarray, ens: np.ndarray, median: np.ndarray, scored: np.ndarray):
    """``rows -> value`` of the registered metric ``name`` on the profiles ``rows`` (all arrays in kW): ensemble
    metrics score the ensemble, point metrics its median."""
    from metrics import METRICS

    if name not in METRIC_NAMES:
        raise ValueError(f"unknown imputation metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    spec = METRICS[name]
    pred = {"ensemble": lambda r: ens[:, r], "point": lambda r: median[r]}[spec.needs]
    return lambda r: spec.fn(truth[r], pred(r), mask=scored[r])


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Per setting and metric, the paired-bootstrap mean ± std on the hidden steps, in kW (reads ``status``,
    ``note`` and ``samples``)."""
    pairs = [(s, m) for s in data.settings for m in METRIC_NAMES]
    if outcome.status != "ok":
        return failed_rows(pairs, outcome.status, outcome.note)
    truth = data.scaler.inverse(data.real.values).astype(np.float64)
    rows = []
    for index, setting in enumerate(data.settings):
        ens = data.scaler.inverse(outcome.samples[index]).astype(np.float64)
        median = np.median(ens, axis=0)
        scored = data.real.mask & ~data.observed[index]
        keep = scored.any(axis=1)  # profiles with fewer than two valid steps hide nothing
        args = (truth[keep], ens[:, keep], median[keep], scored[keep])
        # MAPE alone can be undefined on real data (every true load ~0): a failed row, not an error
        rows += [bootstrap_row(setting, metric, _metric(metric, *args), int(keep.sum()), cfg, seed,
                               may_be_undefined=metric == "MAPE") for metric in METRIC_NAMES]
    return rows


TASK = register_task(Task(name="imputation", capability="impute", defaults=DEFAULTS, prepare=prepare, run=run,
                          score=score, expected_rows=expected_rows, paper_layout=PAPER_LAYOUT, source=__file__))
