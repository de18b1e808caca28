"""Unconditional generation of daily profiles, scored as in the EnergyDiff paper.

Protocol: the suite's split rule (by household, or days pooled and split within each month as the EnergyDiff
paper does), scale to [-1, 1] on train, fit the model on train, draw ``n_generate`` profiles (the paper: 4000;
None = as many as the evaluation set, validation + test, holds), and compare generated with real profiles in the
scaled space with MMD, Gaussian Fréchet distance and pooled marginal KL / Wasserstein / KS, each as
mean ± std over bootstrap repeats (half of each side drawn without replacement, from the seed's
generation-bootstrap stream).

Privacy (``privacy = true``, the default): the distance of each generated profile to its closest training
profile against the same distance for the real held-out profiles (:mod:`metrics.privacy`), as ``DCR_ratio``
(median generated / median held-out; 1 = as far from the training set as unseen data, 0 = copies) and
``Memorised`` (share of generated profiles closer than the 5 % quantile of the held-out distances), each
mean ± std over the same kind of subsamples. Neither is ranked (their goal is ``ignore``): a model that copies
is flagged instead, in the row's note, when a one-sided binomial test rejects "memorises no more often than
unseen data would" at ``memorisation_alpha``.

Downstream utility (``tstr = true``, the default): train on synthetic, test on real (:mod:`metrics.utility`): a
fixed ridge forecaster of the last quarter of the day from the rest, fitted on the generated profiles and on the
real training profiles, scored on the real evaluation profiles; ``TSTR`` = the ratio of their MAEs (about 1 =
as useful as real data; lower is better), mean ± std over subsamples of the evaluation profiles.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

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
    "privacy": True,
    "tstr": True,
    "memorisation_quantile": 0.05,
    "memorisation_alpha": 0.01,
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
    _holdout_dcr: np.ndarray | None = field(default=None, init=False, repr=False)
    _real_forecast_errors: np.ndarray | None = field(default=None, init=False, repr=False)

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"

    def holdout_dcr(self) -> np.ndarray:
        """Distances of the real held-out profiles to their closest training profile (computed once)."""
        from metrics.privacy import distance_to_closest_record

        if self._holdout_dcr is None:
            self._holdout_dcr = distance_to_closest_record(self.real.values, self.train.values)
        return self._holdout_dcr


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


def _metric_call(spec, bandwidth: float) -> tuple:
    """``(fn, kwargs)`` of a registered metric, with the task's fixed bandwidth where it takes one."""
    if "bandwidth" in inspect.signature(spec.fn).parameters:
        return spec.fn, {"bandwidth": bandwidth}
    return spec.fn, {}


def summary_row(metric: str, values: np.ndarray, note: str = "") -> dict:
    """The tidy row of a bootstrapped metric: mean, ``ddof=1`` std and every repeat's value (the tables compare
    models repeat by repeat: within a cell group, repeat r of every model scores the same real profiles)."""
    from metrics.bootstrap import summarise

    mean, std = summarise(values)
    return {"metric": metric, "value": mean, "std": std, "status": "ok", "note": note,
            "repeats": [float(v) for v in values]}


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Bootstrapped mean ± std of each configured metric (registered set metrics,
    :data:`metrics.registry.METRICS`), all on the same subsamples (:func:`metrics.bootstrap.bootstrap_set_metrics`,
    on the device of the enclosing :func:`metrics.sets.metric_device` block); a failed outcome gives failed rows.
    Only ``status``, ``note`` and ``samples`` are read, so an outcome rebuilt from cached samples scores the
    same."""
    from metrics import METRICS
    from metrics.bootstrap import bootstrap_set_metrics

    specs = [METRICS[name] for name in cfg["metrics"]]
    wrong = [s.name for s in specs if s.needs != "samples"]
    if wrong:
        raise ValueError(f"generation metrics compare sets of profiles; {', '.join(wrong)} score other outputs")
    boot_seed = seeds.int_seed(seed, Stream.GENERATION_BOOTSTRAP)
    if outcome.status != "ok":
        rows = [{"metric": spec.name, "value": np.nan, "std": np.nan, "status": outcome.status,
                 "note": outcome.note} for spec in specs]
    else:
        values = bootstrap_set_metrics({spec.name: _metric_call(spec, data.bandwidth) for spec in specs},
                                       data.real.values, outcome.samples, n_repeats=cfg["n_bootstrap"],
                                       frac=cfg["bootstrap_frac"], seed=boot_seed)
        rows = [summary_row(name, v) for name, v in values.items()]
    if cfg.get("privacy", True):
        rows += privacy_rows(outcome, data, cfg, boot_seed)
    if cfg.get("tstr", True):
        rows.append(tstr_row(outcome, data, cfg, boot_seed))
    return rows


def tstr_row(outcome: Outcome, data: TaskData, cfg: dict, boot_seed: int) -> dict:
    """The ``TSTR`` row: the fixed forecaster trained on generated vs real training profiles, tested on the
    real evaluation profiles; mean ± std of the MAE ratio over subsamples of the test profiles."""
    from metrics.bootstrap import bootstrap_values
    from metrics.utility import forecast_errors, tstr_ratio_from_errors

    if outcome.status != "ok":
        return {"metric": "TSTR", "value": np.nan, "std": np.nan, "status": outcome.status, "note": outcome.note}
    if data._real_forecast_errors is None:
        data._real_forecast_errors = forecast_errors(data.train.values, data.real.values)
    pairs = np.stack([forecast_errors(outcome.samples, data.real.values), data._real_forecast_errors], axis=1)
    # paired: the same test profiles score both forecasters in every subsample
    values = bootstrap_values(lambda real, _: tstr_ratio_from_errors(real[:, 0], real[:, 1]), pairs, pairs,
                              n_repeats=cfg["n_bootstrap"], frac=cfg["bootstrap_frac"], seed=boot_seed)
    return summary_row("TSTR", values)


PRIVACY_METRICS = ("DCR_ratio", "Memorised")


def privacy_rows(outcome: Outcome, data: TaskData, cfg: dict, boot_seed: int) -> list[dict]:
    """``DCR_ratio`` and ``Memorised`` rows (module docstring); the note of ``Memorised`` says "memorising"
    when the binomial test rejects at ``memorisation_alpha``."""
    from metrics.bootstrap import bootstrap_values
    from metrics.privacy import (dcr_ratio_from_distances, distance_to_closest_record, memorisation_p_value,
                                 memorisation_rate_from_distances)

    if outcome.status != "ok":
        return [{"metric": m, "value": np.nan, "std": np.nan, "status": outcome.status, "note": outcome.note}
                for m in PRIVACY_METRICS]
    quantile, alpha = float(cfg["memorisation_quantile"]), float(cfg["memorisation_alpha"])
    held_out = data.holdout_dcr()[:, None]
    generated = distance_to_closest_record(outcome.samples, data.train.values)[:, None]
    fns = {"DCR_ratio": lambda r, g: dcr_ratio_from_distances(r[:, 0], g[:, 0]),
           "Memorised": lambda r, g: memorisation_rate_from_distances(r[:, 0], g[:, 0], quantile)}
    p_value = memorisation_p_value(held_out[:, 0], generated[:, 0], quantile)
    verdict = "memorising" if p_value < alpha else "not memorising"
    rows = []
    for name, fn in fns.items():
        values = bootstrap_values(fn, held_out, generated, n_repeats=cfg["n_bootstrap"],
                                  frac=cfg["bootstrap_frac"], seed=boot_seed)
        note = f"{verdict} (binomial p = {p_value:.2g} against {quantile:g})" if name == "Memorised" else ""
        rows.append(summary_row(name, values, note))
    return rows


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """The configured metrics, then the privacy rows and the TSTR row where they are on."""
    privacy = PRIVACY_METRICS if cfg.get("privacy", True) else ()
    tstr = ("TSTR",) if cfg.get("tstr", True) else ()
    return [("", m) for m in (*cfg.get("metrics", []), *privacy, *tstr)]


TASK = register_task(Task(name="generation", capability="generate", defaults=DEFAULTS, prepare=prepare, run=run,
                          score=score, expected_rows=expected_rows, source=__file__))
