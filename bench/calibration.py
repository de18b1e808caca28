"""Marginal calibration (EnergyDiff, Sec. III-B): give generated profiles the training set's per-step marginals.

For every time step ``t`` independently, a generated value ``x`` is mapped to
``g_t(x) = F_t^{-1}(F'_t(x))``: ``F'_t`` is the ECDF of the generated column (its quantile level) and
``F_t^{-1}`` the inverse ECDF of the reference (training) column, ``F_t^{-1}(q) = min{y : F_t(y) >= q}``.

Why this map: in one dimension the monotone rearrangement ``F^{-1} o F'`` is the optimal-transport map between
the two distributions for the squared (indeed any convex) cost, so among all maps that give the column the
reference marginal it moves the generated values the least. Being non-decreasing, it keeps each step's rank
order: if ``x_i < x_j`` at step ``t`` then ``g_t(x_i) <= g_t(x_j)``. The dependence between time steps (the
copula of the generated profiles) is therefore kept while the marginals become the reference ECDFs.

Ties among generated values are broken by row index (a stable sort), i.e. the ``k``-th smallest value
(counting from 1) gets quantile level ``k / n``. For a column without ties this is exactly ``F'_t``; for tied
values (e.g. many samples clipped at the same bound) it splits the tie over consecutive reference quantiles,
which is still an optimal transport plan, where a literal ``F'_t`` would send the whole tie to the tie's top
quantile and distort the calibrated marginal. The result is deterministic, every output value is one of the
reference values at that step, and with ``n == N`` each calibrated column is a permutation of the reference
column.
"""

from __future__ import annotations

import numpy as np


def _check(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array [profiles, time steps], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite numbers only")
    return arr


def quantile_levels(samples: np.ndarray) -> np.ndarray:
    """Per column, the ECDF level ``k / n`` of each value (``k`` = its 1-based rank, ties broken by row).

    Returns an ``[n, T]`` int array of ranks ``k`` (the levels are ``k / n``), kept integral so that the
    mapping onto the reference quantiles is exact.
    """
    x = _check("samples", samples)
    n = x.shape[0]
    order = np.argsort(x, axis=0, kind="stable")
    ranks = np.empty(x.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, np.arange(1, n + 1, dtype=np.int64)[:, None], axis=0)
    return ranks


def marginal_calibration(samples: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map each column of ``samples [n, T]`` onto the ECDF of the same column of ``reference [N, T]``.

    Value ``(i, t)`` with generated level ``q = k / n`` becomes the reference quantile
    ``F_t^{-1}(q) = sorted(reference[:, t])[ceil(q * N) - 1]`` (see the module docstring for ties and the
    optimal-transport interpretation). ``n`` and ``N`` may differ.

    Returns:
        ``[n, T]`` array in the reference's floating dtype (float64 for integer references).

    Raises:
        ValueError: either input is not a non-empty 2-D finite array, or the numbers of time steps differ.
    """
    x = _check("samples", samples)
    ref = _check("reference", reference)
    if x.shape[1] != ref.shape[1]:
        raise ValueError(f"samples have {x.shape[1]} time steps but the reference has {ref.shape[1]}")
    n, big_n = x.shape[0], ref.shape[0]
    ranks = quantile_levels(x)
    # ceil(k * N / n) - 1 in integers: no floating-point level can land one quantile off
    index = (ranks * big_n + n - 1) // n - 1
    sorted_ref = np.sort(ref, axis=0)
    if not np.issubdtype(sorted_ref.dtype, np.floating):
        sorted_ref = sorted_ref.astype(np.float64)
    return np.take_along_axis(sorted_ref, index, axis=0)
