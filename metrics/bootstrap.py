"""Repeated-subsample ("bootstrap") mean ± std of a two-sample metric, as the EnergyDiff paper reports."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap(fn: Callable[[np.ndarray, np.ndarray], float], gen: np.ndarray, real: np.ndarray,
              n_repeats: int = 10, frac: float = 0.5, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``fn(gen_subset, real_subset)`` over ``n_repeats`` subsamples.

    Each repeat draws ``floor(frac * len(gen))`` rows of ``gen`` and ``floor(frac * len(real))`` rows of
    ``real`` *without* replacement (as the EnergyDiff code does; despite the name this is subsampling, not
    Efron's bootstrap, so the spread reflects subsets of half the data). Draws come from
    ``np.random.default_rng(seed)``, generated rows first, then real rows, repeat by repeat, so one seed gives
    one result. The std is the population std over the repeats (``ddof=0``, numpy's default).

    Raises ``ValueError`` for ``frac`` outside (0, 1], ``n_repeats < 1`` or a subset that would be empty.
    """
    if not 0.0 < float(frac) <= 1.0:
        raise ValueError(f"frac must lie in (0, 1], got {frac}")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats}")
    gen = np.asarray(gen)
    real = np.asarray(real)
    if gen.ndim < 1 or real.ndim < 1:
        raise ValueError("gen and real must have a leading sample axis")
    k_gen, k_real = int(frac * len(gen)), int(frac * len(real))
    if k_gen < 1 or k_real < 1:
        raise ValueError(f"frac={frac} leaves an empty subset of gen ({len(gen)} rows) or real ({len(real)} rows)")
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_repeats))
    for r in range(len(values)):
        gen_rows = rng.choice(len(gen), size=k_gen, replace=False)
        real_rows = rng.choice(len(real), size=k_real, replace=False)
        values[r] = float(fn(gen[gen_rows], real[real_rows]))
    return float(values.mean()), float(values.std())
