"""``t-copula``: empirical marginals joined by a Student-t copula (the EnergyDiff paper's baseline).

Fit, in float64:

1. Marginals: the ECDF of every time step of train. Sampling inverts it with linear interpolation between
   order statistics, the ``k``-th smallest value sitting at probability ``k / (N + 1)`` (the plotting position
   that matches the pseudo-observations below); probabilities outside ``[1/(N+1), N/(N+1)]`` map to the
   training minimum / maximum, so samples never leave the training range of their step.
2. Correlation: Kendall's tau-b between every pair of time steps, turned into the copula correlation with
   ``rho = sin(pi * tau / 2)``. Tau is rank-invariant, so the pseudo-observations need not be formed for it.
   :func:`kendall_tau_matrix` does all pairs at once as a Gram matrix of pairwise-order signs (exact, ties
   handled as scipy's tau-b); its cost is ``N^2 T^2`` multiply-adds in blocked float32 BLAS calls: 0.2 s for
   720 x 96, 2.6 s for 5000 x 48, 54 s for 2000 x 1440 on two CPU cores (statsmodels' Kendall-tau fit of its
   StudentTCopula took 197 s at d = 1440 on the same kind of machine).
3. The matrix must be positive definite. Tiny negative eigenvalues (above ``-pd_tolerance``, rounding level)
   and eigenvalues below ``1e-8`` times the largest are lifted to that floor and the matrix is rescaled to a
   unit diagonal (nearest-correlation projection by eigenvalue clipping). A clearly negative eigenvalue
   raises :class:`ModelFitError`: the pairwise correlations are not jointly consistent. This is the failure
   the paper reports at 1-minute resolution (measured: 2000 random-walk days of 1440 steps give a smallest
   eigenvalue of -2e-3); it also occurs at coarse resolutions when N is not much larger than T (500 LCL days
   of 48 steps: -0.06; 720 UCI days of 96 steps are fine). Fewer training profiles than modelled steps raises
   too, since a ``d x d`` correlation cannot be estimated from ``N <= d`` profiles.
4. Degrees of freedom ``nu``: maximum likelihood of the t-copula density over pseudo-observations
   ``rank / (N + 1)`` (average ranks for ties), searched on ``log nu`` within ``[nu_min, nu_max]`` (default
   [2, 200]) with a bounded scalar search; the density is ``multivariate_t.logpdf`` minus the sum of the
   univariate ``t.logpdf`` at the ``t`` quantiles of the pseudo-observations. A non-finite likelihood raises
   :class:`ModelFitError`.

Time steps that are constant in train (e.g. PV output at night) carry no dependence: their ECDF inverse
returns the constant for any probability, so they are left out of the copula and reproduced exactly. This
is exact, not an approximation, but it means such data do not fail here where a correlation over all steps
(with undefined tau for constant steps) would.

Sampling: ``z ~ N(0, R)``, ``w ~ chi2(nu) / nu``, ``q = z / sqrt(w)`` (multivariate t), ``u = t_nu.cdf(q)``,
then the ECDF inverse of each step.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar

from baselines.naive import SAMPLE_STREAM, check_sample_request, training_matrix
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.registry import register_model

# Elements of one block of pairwise signs: 16 MB of float32, and fewer than 2**24 terms per matmul sum so
# the float32 accumulation of +-1 values stays exact.
_BLOCK_ELEMENTS = 1 << 22
# Eigenvalues below this fraction of the largest are lifted: scipy's multivariate_t treats eigenvalues under
# ~2e-10 x the largest as zero and would reject the matrix as singular.
_EIG_FLOOR_REL = 1e-8


def kendall_tau_matrix(x: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between all pairs of columns of ``x`` ``[N, T]``, as a ``[T, T]`` float64 matrix.

    Equal to ``scipy.stats.kendalltau(x[:, i], x[:, j])`` (variant ``b``) for every pair. The numerator
    ``sum_{k<l} sign(x_ki - x_li) sign(x_kj - x_lj)`` of all pairs is the Gram matrix of the pairwise
    sign vectors, accumulated over blocks of row pairs; its diagonal is the number of pairs not tied in each
    column, the tau-b normaliser.

    Raises:
        ValueError: ``x`` is not 2-D with at least two rows, holds non-finite values, or has a constant
            column (tau is undefined there).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a 2-D array with at least two rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x holds non-finite values")
    n, d = x.shape
    # Dense ranks are small integers, exact in float32, and their signs of differences equal the data's.
    ranks = stats.rankdata(x, axis=0, method="dense").astype(np.float32)
    block = max(1, math.isqrt(_BLOCK_ELEMENTS // d))
    gram = np.zeros((d, d))
    for a in range(0, n, block):
        b = min(n, a + block)
        signs = np.sign(ranks[a:b, None, :] - ranks[None, a:b, :]).reshape(-1, d)
        # Pairs inside the diagonal block appear in both orders.
        gram += 0.5 * (signs.T @ signs).astype(np.float64)
        for c in range(b, n, block):
            e = min(n, c + block)
            signs = np.sign(ranks[a:b, None, :] - ranks[None, c:e, :]).reshape(-1, d)
            gram += (signs.T @ signs).astype(np.float64)
    untied = np.diag(gram).copy()
    if (untied <= 0).any():
        raise ValueError(f"constant columns {np.flatnonzero(untied <= 0).tolist()}: Kendall's tau is undefined")
    tau = gram / np.sqrt(np.outer(untied, untied))
    np.fill_diagonal(tau, 1.0)
    return np.clip(tau, -1.0, 1.0)


def ecdf_inverse(sorted_values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per-column inverse ECDF: ``u`` ``[n, T]`` in (0, 1) to values, interpolating order statistics.

    ``sorted_values`` ``[N, T]`` holds each column's training values in ascending order; the ``k``-th
    (1-based) sits at probability ``k / (N + 1)`` and probabilities beyond the first / last are clamped.
    """
    n_train = sorted_values.shape[0]
    if n_train < 2:
        raise ValueError("the inverse ECDF needs at least two training values per step")
    pos = np.clip(np.asarray(u, dtype=np.float64) * (n_train + 1) - 1.0, 0.0, n_train - 1.0)
    low = np.minimum(np.floor(pos).astype(np.int64), n_train - 2)
    frac = pos - low
    below = np.take_along_axis(sorted_values, low, axis=0)
    above = np.take_along_axis(sorted_values, low + 1, axis=0)
    return below + frac * (above - below)


def t_copula_loglik(u: np.ndarray, corr: np.ndarray, nu: float) -> float:
    """Log-likelihood of pseudo-observations ``u`` ``[N, d]`` under the t copula ``(corr, nu)``."""
    q = stats.t.ppf(u, nu)
    joint = stats.multivariate_t(loc=np.zeros(len(corr)), shape=corr, df=nu).logpdf(q)
    return float(np.sum(joint) - np.sum(stats.t.logpdf(q, nu)))


@register_model("t-copula")
class TCopula:
    """Per-step empirical marginals with a Student-t copula (Kendall-tau correlation, ML degrees of freedom)."""

    capabilities = frozenset({"generate"})
    configs = {
        "quick": {"nu_min": 2.0, "nu_max": 200.0, "pd_tolerance": 1e-8},
        "paper": {"nu_min": 2.0, "nu_max": 200.0, "pd_tolerance": 1e-8},
    }

    def __init__(self, nu_min: float = 2.0, nu_max: float = 200.0, pd_tolerance: float = 1e-8) -> None:
        if not 0.0 < nu_min < nu_max:
            raise ValueError(f"need 0 < nu_min < nu_max, got {nu_min}, {nu_max}")
        if pd_tolerance < 0:
            raise ValueError("pd_tolerance must be >= 0")
        self.nu_min = float(nu_min)
        self.nu_max = float(nu_max)
        self.pd_tolerance = float(pd_tolerance)
        self._fitted = False

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Estimate marginals, the copula correlation and ``nu`` from ``train.values``.

        Raises:
            ModelFitError: every step constant, fewer profiles than modelled steps, a correlation matrix
                that is not positive definite, or a non-finite likelihood.
        """
        self._fitted = False
        x = training_matrix(train, "t-copula")
        n, length = x.shape
        self.active_ = np.ptp(x, axis=0) > 0
        d = int(self.active_.sum())
        if d == 0:
            raise ModelFitError("every time step is constant in train: there is nothing to model")
        if n <= d:
            raise ModelFitError(f"{n} training profiles for {d} non-constant time steps: the {d}x{d} "
                                "correlation matrix is singular when estimated from N <= T profiles")
        active = x[:, self.active_]
        corr = np.sin(0.5 * np.pi * kendall_tau_matrix(active))
        self.corr_ = self._positive_definite(0.5 * (corr + corr.T))
        try:
            self._chol = np.linalg.cholesky(self.corr_)
        except np.linalg.LinAlgError as err:
            raise ModelFitError("correlation matrix not positive definite (Cholesky failed)") from err
        u = stats.rankdata(active, axis=0) / (n + 1)
        self.nu_, self.loglik_ = self._fit_nu(u, self.corr_)
        self._sorted = np.sort(x, axis=0)
        self._fitted = True

    def _positive_definite(self, corr: np.ndarray) -> np.ndarray:
        eigval, eigvec = np.linalg.eigh(corr)
        if eigval[0] < -self.pd_tolerance:
            raise ModelFitError(
                f"correlation matrix not positive definite (smallest eigenvalue {eigval[0]:.3g}, tolerance "
                f"-{self.pd_tolerance:g}): the pairwise Kendall-tau correlations of {len(corr)} steps are "
                "not jointly consistent")
        floor = _EIG_FLOOR_REL * eigval[-1]
        self.projected_ = bool(eigval[0] < floor)
        if not self.projected_:
            return corr
        lifted = (eigvec * np.maximum(eigval, floor)) @ eigvec.T
        scale = np.sqrt(np.diag(lifted))
        lifted = lifted / np.outer(scale, scale)
        np.fill_diagonal(lifted, 1.0)
        return 0.5 * (lifted + lifted.T)

    def _fit_nu(self, u: np.ndarray, corr: np.ndarray) -> tuple[float, float]:
        def negative_loglik(log_nu: float) -> float:
            value = t_copula_loglik(u, corr, math.exp(log_nu))
            if not math.isfinite(value):
                raise ModelFitError(f"non-finite t-copula likelihood at nu={math.exp(log_nu):.3g}")
            return -value

        # Searching log(nu) spends the evaluations where the likelihood changes fastest (small nu).
        result = minimize_scalar(negative_loglik, bounds=(math.log(self.nu_min), math.log(self.nu_max)),
                                 method="bounded", options={"xatol": 1e-3})
        if not result.success:
            raise ModelFitError(f"degrees-of-freedom search failed: {result.message}")
        return float(math.exp(result.x)), float(-result.fun)

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32: multivariate t draws mapped through the t CDF and each step's inverse ECDF."""
        n = check_sample_request(n, cond, self._fitted, "t-copula")
        rng = ctx.rng(SAMPLE_STREAM)
        d = self._chol.shape[0]
        z = rng.standard_normal((n, d)) @ self._chol.T
        w = rng.chisquare(self.nu_, size=n) / self.nu_
        u = np.full((n, self._sorted.shape[1]), 0.5)
        u[:, self.active_] = stats.t.cdf(z / np.sqrt(w)[:, None], self.nu_)
        return ecdf_inverse(self._sorted, u).astype(np.float32)
