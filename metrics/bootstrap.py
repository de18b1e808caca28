"""Repeated-subsample ("bootstrap") mean ± std of a two-sample metric, as the EnergyDiff paper reports.

:func:`bootstrap` scores any two-sample metric one subsample at a time. :func:`bootstrap_set_metrics` scores
several set metrics on the same subsamples at once and returns every repeat's value (the tables compare models
repeat by repeat): the metrics with a batched kernel in :mod:`metrics.sets` (MMD, its EnergyDiff variant,
Fréchet, pooled KL / Wasserstein / KS) share what the subsamples have in common and may run on a GPU; any other
metric goes through the same draws one repeat at a time. Both draw the same subsamples from the same seed, so
their values agree to float64 round-off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from metrics import distribution, marginal
from metrics.errors import MetricInputError, check_count, check_values
from metrics.sets import SetPair

BOOTSTRAP_DDOF = 1
"""Delta degrees of freedom of the reported std: the sample std over the repeats, as ``torch.Tensor.std()`` in
the EnergyDiff code."""


def subsample_indices(n_real: int, n_pred: int, *, n_repeats: int = 10, frac: float = 0.5, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The rows each bootstrap repeat keeps: ``(pred_index [R, floor(frac n_pred)], real_index
    [R, floor(frac n_real)])``, drawn without replacement from ``np.random.default_rng(seed)``, generated rows
    first, then real rows, repeat by repeat (so one seed gives one set of subsamples whatever the metric).

    Raises :class:`MetricInputError` for ``frac`` outside (0, 1], ``n_repeats < 2`` (the ``ddof=1`` std of one
    repeat is undefined) or a subset that would be empty.
    """
    try:
        frac = float(frac)
    except (TypeError, ValueError):
        raise MetricInputError(f"frac must be a number in (0, 1], got {frac!r}") from None
    if not 0.0 < frac <= 1.0:
        raise MetricInputError(f"frac must lie in (0, 1], got {frac}")
    n_repeats = check_count(n_repeats, "n_repeats", 2, "the ddof=1 std of one repeat is undefined")
    k_pred, k_real = int(frac * n_pred), int(frac * n_real)
    if k_pred < 1 or k_real < 1:
        raise MetricInputError(f"frac={frac} leaves an empty subset of real ({n_real} rows) or pred "
                               f"({n_pred} rows)")
    rng = np.random.default_rng(seed)
    pred_index, real_index = np.empty((n_repeats, k_pred), np.int64), np.empty((n_repeats, k_real), np.int64)
    for r in range(n_repeats):
        pred_index[r] = rng.choice(n_pred, size=k_pred, replace=False)
        real_index[r] = rng.choice(n_real, size=k_real, replace=False)
    return pred_index, real_index


def summarise(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std (``ddof = BOOTSTRAP_DDOF``) of the repeats' values.

    An infinite value (e.g. a KL with no shared histogram bin) makes the mean infinite and the std NaN (a spread
    of infinite values is undefined); a NaN value, or both +inf and -inf, raise :class:`MetricInputError`.
    """
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values))
    if len(bad):
        raise MetricInputError(f"the metric returned NaN on bootstrap repeat {bad[0]}: no mean ± std can be formed")
    if not np.isfinite(values).all():
        if np.isinf(values).any() and len(set(np.sign(values[np.isinf(values)]))) > 1:
            raise MetricInputError("the metric returned both +inf and -inf: no mean can be formed")
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=BOOTSTRAP_DDOF))


def _checked(real: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real = check_values(np.asarray(real), "real")
    pred = check_values(np.asarray(pred), "pred")
    if pred.ndim < 1 or real.ndim < 1:
        raise MetricInputError("real and pred must have a leading sample axis")
    return real, pred


def bootstrap_values(fn: Callable[..., float], real: np.ndarray, pred: np.ndarray, *, n_repeats: int = 10,
                     frac: float = 0.5, seed: int = 0) -> np.ndarray:
    """``fn(real_subset, pred_subset)`` on each subsample of :func:`subsample_indices`, as a float64 array."""
    real, pred = _checked(real, pred)
    pred_index, real_index = subsample_indices(len(real), len(pred), n_repeats=n_repeats, frac=frac, seed=seed)
    return np.array([float(fn(real[r], pred[p])) for p, r in zip(pred_index, real_index)])


def bootstrap(fn: Callable[..., float], real: np.ndarray, pred: np.ndarray, *, n_repeats: int = 10,
              frac: float = 0.5, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``fn(real_subset, pred_subset)`` over ``n_repeats`` subsamples.

    ``fn`` is a set metric with the one signature ``fn(real, pred, ...)`` (bind its other arguments first).
    Each repeat draws ``floor(frac * len(pred))`` rows of ``pred`` and ``floor(frac * len(real))`` rows of
    ``real`` *without* replacement (as the EnergyDiff code does; despite the name this is subsampling, not
    Efron's bootstrap, so the spread reflects subsets of half the data), by :func:`subsample_indices`. The std
    is the sample std over the repeats, ``ddof=1`` (``sqrt(sum (v - mean)^2 / (R - 1))``), as the papers'
    ``torch.Tensor.std()``; hence at least two repeats. Infinite and NaN values: see :func:`summarise`.

    Raises :class:`MetricInputError` for ``frac`` outside (0, 1], ``n_repeats < 2``, a subset that would be
    empty, ``real`` / ``pred`` holding NaN, infinite or overflowing values, or ``fn`` returning NaN.
    """
    return summarise(bootstrap_values(fn, real, pred, n_repeats=n_repeats, frac=frac, seed=seed))


def _batched(pair: SetPair, fn: Callable, kwargs: dict, pred_index: np.ndarray,
             real_index: np.ndarray, memo: dict) -> np.ndarray | None:
    """Every repeat's value of a metric with a batched kernel in :mod:`metrics.sets`; None for other metrics."""
    if fn is distribution.mmd_rbf and set(kwargs) == {"bandwidth"}:
        return pair.mmd(pred_index, real_index, distribution._check_bandwidth(kwargs["bandwidth"]))
    if fn is distribution.mmd_rbf_paper and not kwargs:
        return pair.mmd_paper(pred_index, real_index)
    if fn is distribution.frechet_distance and not kwargs:
        return pair.frechet(pred_index, real_index)
    pooled = {marginal.kl_pooled: 0, marginal.wasserstein_pooled: 1, marginal.ks_pooled: 2}
    if fn in pooled and not kwargs:
        if "pooled" not in memo:
            memo["pooled"] = pair.pooled_marginals(pred_index, real_index)
        return memo["pooled"][pooled[fn]]
    return None


def bootstrap_set_metrics(metrics: Mapping[str, tuple[Callable[..., float], dict]], real: np.ndarray,
                          pred: np.ndarray, *, n_repeats: int = 10, frac: float = 0.5, seed: int = 0,
                          device: str | None = None) -> dict[str, np.ndarray]:
    """Every repeat's value of several set metrics on the same subsamples (those of :func:`bootstrap`).

    ``metrics`` maps a name to ``(fn, kwargs)``: the metric function (signature ``fn(real, pred, **kwargs)``) and
    its keyword arguments (e.g. ``{"bandwidth": bw}`` for :func:`metrics.distribution.mmd_rbf`). Returns
    ``{name: values [n_repeats]}``; :func:`summarise` turns values into the mean ± std of :func:`bootstrap`,
    which they equal to float64 round-off. MMD, MMD_paper, the Fréchet distance and the pooled KL, Wasserstein
    and KS (with their default options) run batched on ``device`` (see :func:`metrics.sets.resolve_device`);
    the pairwise distances and the sorted values they need are computed once for all repeats.

    Raises :class:`MetricInputError` as :func:`bootstrap` does.
    """
    real, pred = _checked(real, pred)
    pred_index, real_index = subsample_indices(len(real), len(pred), n_repeats=n_repeats, frac=frac, seed=seed)
    pair = None
    # the kernels assume what the single-call metrics check: profiles [rows, steps], two rows per subset
    if real.ndim == 2 and pred.ndim == 2 and min(pred_index.shape[1], real_index.shape[1]) >= 2:
        real64, pred64 = distribution.profile_pair(real, pred)
        pair = SetPair(real64, pred64, device=device)
    memo: dict = {}
    out = {}
    for name, (fn, kwargs) in metrics.items():
        values = None if pair is None else _batched(pair, fn, dict(kwargs), pred_index, real_index, memo)
        if values is None:
            values = np.array([float(fn(real[r], pred[p], **kwargs)) for p, r in zip(pred_index, real_index)])
        out[name] = np.asarray(values, dtype=np.float64)
    return out
