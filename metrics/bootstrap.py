"""Repeated-subsample ("bootstrap") mean ± std of a two-sample metric, as the EnergyDiff paper reports."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metrics.errors import MetricInputError, check_count, check_values

BOOTSTRAP_DDOF = 1
"""Delta degrees of freedom of the reported std: the sample std over the repeats, as ``torch.Tensor.std()`` in
the EnergyDiff code."""


def bootstrap(fn: Callable[..., float], real: np.ndarray, pred: np.ndarray, *, n_repeats: int = 10,
              frac: float = 0.5, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``fn(real_subset, pred_subset)`` over ``n_repeats`` subsamples.

    ``fn`` is a set metric with the one signature ``fn(real, pred, ...)`` (bind its other arguments first).
    Each repeat draws ``floor(frac * len(pred))`` rows of ``pred`` and ``floor(frac * len(real))`` rows of
    ``real`` *without* replacement (as the EnergyDiff code does; despite the name this is subsampling, not
    Efron's bootstrap, so the spread reflects subsets of half the data). Draws come from
    ``np.random.default_rng(seed)``, generated rows first, then real rows, repeat by repeat, so one seed gives
    one result. The std is the sample std over the repeats, ``ddof=1`` (``sqrt(sum (v - mean)^2 / (R - 1))``),
    as the papers' ``torch.Tensor.std()``; hence at least two repeats.

    A repeat whose value is infinite (e.g. a KL with no shared histogram bin) makes the mean infinite and the
    std NaN (a spread of infinite values is undefined); a NaN value is refused.

    Raises :class:`MetricInputError` for ``frac`` outside (0, 1], ``n_repeats < 2``, a subset that would be
    empty, ``real`` / ``pred`` holding NaN, infinite or overflowing values, or ``fn`` returning NaN.
    """
    try:
        frac = float(frac)
    except (TypeError, ValueError):
        raise MetricInputError(f"frac must be a number in (0, 1], got {frac!r}") from None
    if not 0.0 < frac <= 1.0:
        raise MetricInputError(f"frac must lie in (0, 1], got {frac}")
    n_repeats = check_count(n_repeats, "n_repeats", 2, "the ddof=1 std of one repeat is undefined")
    real = check_values(np.asarray(real), "real")
    pred = check_values(np.asarray(pred), "pred")
    if pred.ndim < 1 or real.ndim < 1:
        raise MetricInputError("real and pred must have a leading sample axis")
    k_pred, k_real = int(frac * len(pred)), int(frac * len(real))
    if k_pred < 1 or k_real < 1:
        raise MetricInputError(f"frac={frac} leaves an empty subset of real ({len(real)} rows) or pred "
                               f"({len(pred)} rows)")
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_repeats))
    for r in range(len(values)):
        pred_rows = rng.choice(len(pred), size=k_pred, replace=False)
        real_rows = rng.choice(len(real), size=k_real, replace=False)
        values[r] = float(fn(real[real_rows], pred[pred_rows]))
        if np.isnan(values[r]):
            raise MetricInputError(f"the metric returned NaN on bootstrap repeat {r}: no mean ± std can be formed")
    if not np.isfinite(values).all():
        if np.isinf(values).any() and len(set(np.sign(values[np.isinf(values)]))) > 1:
            raise MetricInputError("the metric returned both +inf and -inf: no mean can be formed")
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=BOOTSTRAP_DDOF))
