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
3. The matrix must be positive definite. Where it is not - its smallest eigenvalue is below ``floor = 1e-8``
   times its largest, which keeps its Cholesky factor and the likelihood below well conditioned (scipy's
   ``multivariate_t`` would treat eigenvalues under ~2e-10 x the largest as zero) - it is replaced by the nearest
   correlation matrix whose eigenvalues are at least ``floor`` (:func:`nearest_correlation`: Higham's alternating
   projections with Dykstra's correction, N. J. Higham, "Computing the nearest correlation matrix - a problem
   from finance", IMA J. Numer. Anal. 22, 2002), then rescaled to an exactly unit diagonal, which keeps it
   positive definite. Higham's method is chosen because it is the repair the EnergyDiff code points to (its
   copula code carries, commented out, a call to MATLAB's ``nearcorr`` with the ``projection`` method, i.e. this
   algorithm) and because it finds the nearest correlation matrix in the Frobenius norm, where one eigenvalue
   clip followed by a rescale to unit diagonal does not (the rescale moves it away again); its cost is one
   symmetric eigendecomposition per iteration (measured on two shared CPU cores: 400 random-walk days of 1440
   steps, 667 negative eigenvalues, smallest -0.043, converged in 23 iterations, 69 s; 100 x 96 in 11 iterations,
   0.1 s). The published code tries the Spearman-based and the raw tau matrices instead and stops without samples
   when those are indefinite too; the paper prints ``***`` (did not converge) for several t-Copula cells, e.g. at
   1 minute, where such a stop is the likely cause, so those cells here carry numbers the paper does not. The
   matrix is indefinite when the pairwise correlations are not jointly consistent: in every case we measured with
   fewer profiles than modelled steps, and at coarse resolutions when N is not much larger than T (measured: 2000
   random-walk days of 1440 steps give a smallest eigenvalue of -2e-3, 500 LCL days of 48 steps -0.06; 720 UCI
   days of 96 steps need no repair). The repair is reported through :meth:`TCopula.diagnostics`
   (``corr_min_eigenvalue`` before the repair, ``corr_repaired``, the Frobenius distance
   ``corr_repair_frobenius`` and largest entry change ``corr_repair_max_abs`` of the repair, the projection's
   ``corr_repair_iterations`` and ``corr_repair_converged``), so the table shows the numbers and how far the
   model moved from the data.
4. Degrees of freedom ``nu``: maximum likelihood of the t-copula density over pseudo-observations
   ``rank / (N + 1)`` (average ranks for ties), searched on ``log nu`` within ``[nu_min, nu_max]`` (default
   [2, 200]) with a bounded scalar search; the density is the multivariate t log-density (one Cholesky
   factorisation for the whole search) minus the sum of the univariate ``t.logpdf`` at the ``t`` quantiles of
   the pseudo-observations (the EnergyDiff code runs SLSQP from ``nu = 5`` on the same bounds). A non-finite
   likelihood, the only way this step can fail to compute, raises :class:`ModelFitError`; so does a
   correlation matrix without a Cholesky factor.

Time steps that are constant in train (e.g. PV output at night) carry no dependence: their ECDF inverse
returns the constant for any probability, so they are left out of the copula and reproduced exactly. This
is exact, not an approximation, but it means such data do not fail here where a correlation over all steps
(with undefined tau for constant steps) would.

Sampling: ``z ~ N(0, R)``, ``w ~ chi2(nu) / nu``, ``q = z / sqrt(w)`` (multivariate t), ``u = t_nu.cdf(q)``,
then the ECDF inverse of each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.linalg import solve_triangular
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from baselines.naive import check_sample_request, training_matrix
from bench.api import Generator, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.registry import register_model
from bench.seeds import Stream

# Elements of one block of pairwise signs: 16 MB of float32, and fewer than 2**24 terms per matmul sum so
# the float32 accumulation of +-1 values stays exact.
_BLOCK_ELEMENTS = 1 << 22
# A correlation matrix whose eigenvalues fall below this fraction of the largest is repaired (a condition number
# of at most 1e8 keeps the Cholesky solves accurate; scipy's multivariate_t would call eigenvalues under ~2e-10 x
# the largest zero).
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


@dataclass(frozen=True)
class NearestCorrelation:
    """The result of :func:`nearest_correlation`.

    Attributes:
        matrix: the repaired ``[d, d]`` correlation matrix (unit diagonal, smallest eigenvalue > 0).
        iterations: alternating-projection iterations used.
        converged: whether the iterates met the tolerance within ``max_iter``.
    """

    matrix: np.ndarray
    iterations: int
    converged: bool


def _clip_eigenvalues(a: np.ndarray, floor: float) -> np.ndarray:
    """Projection of the symmetric ``a`` onto ``{X : eigenvalues(X) >= floor}`` in the Frobenius norm."""
    eigval, eigvec = np.linalg.eigh(a)
    out = (eigvec * np.maximum(eigval, floor)) @ eigvec.T
    return 0.5 * (out + out.T)


def nearest_correlation(a: np.ndarray, floor: float = 0.0, tol: float = 1e-6,
                        max_iter: int = 200) -> NearestCorrelation:
    """The correlation matrix nearest to the symmetric ``a`` in the Frobenius norm among those whose
    eigenvalues are at least ``floor`` (Higham 2002, alternating projections with Dykstra's correction).

    Iterates ``R = Y - dS``, ``X = P_S(R)`` (eigenvalues clipped at ``floor``), ``dS = X - R``,
    ``Y = P_U(X)`` (unit diagonal) until the relative changes of ``X`` and ``Y`` and the gap ``||Y - X||`` all
    fall below ``tol`` or ``max_iter`` is reached. The returned matrix is the last ``X`` rescaled to a unit
    diagonal, ``D^-1/2 X D^-1/2``: a congruence, so it stays positive definite when ``floor > 0`` (its
    smallest eigenvalue is at least ``floor / max(diag X)``), and at convergence ``diag X`` is 1 to within
    ``tol``. Without convergence the result is still a valid correlation matrix, only not the nearest;
    ``converged`` says which.

    Raises:
        ValueError: ``a`` is not a finite square symmetric matrix, or ``floor < 0``, ``floor >= 1``,
            ``tol <= 0`` or ``max_iter < 1``.
    """
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or not np.isfinite(a).all():
        raise ValueError(f"need a finite square matrix, got shape {a.shape}")
    if not np.allclose(a, a.T, rtol=0.0, atol=1e-12):
        raise ValueError("the matrix is not symmetric")
    if not 0.0 <= floor < 1.0 or not tol > 0 or max_iter < 1:
        raise ValueError(f"need 0 <= floor < 1, tol > 0 and max_iter >= 1, got {floor}, {tol}, {max_iter}")
    y = 0.5 * (a + a.T)
    np.fill_diagonal(y, 1.0)
    correction = np.zeros_like(y)
    x = y
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        x_prev, y_prev = x, y
        r = y - correction
        x = _clip_eigenvalues(r, floor)
        correction = x - r
        y = x.copy()
        np.fill_diagonal(y, 1.0)
        norm_y = np.linalg.norm(y)
        if (np.linalg.norm(x - x_prev) <= tol * np.linalg.norm(x) and np.linalg.norm(y - y_prev) <= tol * norm_y
                and np.linalg.norm(y - x) <= tol * norm_y):
            converged = True
            break
    scale = np.sqrt(np.diag(x))
    out = x / np.outer(scale, scale)
    out = 0.5 * (out + out.T)
    np.fill_diagonal(out, 1.0)
    return NearestCorrelation(out, iterations, converged)


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


def t_copula_loglik(u: np.ndarray, corr: np.ndarray, nu: float, chol: np.ndarray | None = None) -> float:
    """Log-likelihood of pseudo-observations ``u`` ``[N, d]`` under the t copula ``(corr, nu)``.

    The joint term is the multivariate t log-density of ``q = t_nu^{-1}(u)``,
    ``lgamma((nu+d)/2) - lgamma(nu/2) - d/2 log(nu pi) - 1/2 log|R| - (nu+d)/2 log(1 + q^T R^-1 q / nu)``,
    evaluated with the lower Cholesky factor ``chol`` of ``corr`` (computed here when not given, so a search
    over ``nu`` factorises once); the univariate ``t_nu`` log-densities of ``q`` are subtracted.
    """
    if chol is None:
        chol = np.linalg.cholesky(corr)
    q = stats.t.ppf(u, nu)
    d = q.shape[1]
    maha = (solve_triangular(chol, q.T, lower=True) ** 2).sum(axis=0)
    log_det = 2.0 * np.log(np.diag(chol)).sum()
    const = gammaln(0.5 * (nu + d)) - gammaln(0.5 * nu) - 0.5 * d * math.log(nu * math.pi) - 0.5 * log_det
    joint = const - 0.5 * (nu + d) * np.log1p(maha / nu)
    return float(np.sum(joint) - np.sum(stats.t.logpdf(q, nu)))


@dataclass(frozen=True)
class TCopulaParams(Params):
    """Hyper-parameters of :class:`TCopula`.

    Attributes:
        nu_min, nu_max: bounds of the degrees-of-freedom search (the EnergyDiff code's [2, 200]).
        repair_tol: tolerance of the nearest-correlation repair.
        repair_max_iter: its iterations at most.
    """

    nu_min: float = 2.0
    nu_max: float = 200.0
    repair_tol: float = 1e-6
    repair_max_iter: int = 200

    def __post_init__(self) -> None:
        if not 0.0 < self.nu_min < self.nu_max:
            raise ValueError(f"need 0 < nu_min < nu_max, got {self.nu_min}, {self.nu_max}")
        if not self.repair_tol > 0:
            raise ValueError(f"repair_tol must be > 0, got {self.repair_tol!r}")
        if self.repair_max_iter < 1:
            raise ValueError(f"repair_max_iter must be a positive integer, got {self.repair_max_iter!r}")


@register_model("t-copula")
class TCopula(Model, Generator):
    """Per-step empirical marginals with a Student-t copula (Kendall-tau correlation, ML degrees of freedom)."""

    Params = TCopulaParams

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._fitted = False
        self._diagnostics: dict[str, float] = {}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Estimate marginals, the copula correlation (repaired where not positive definite) and ``nu``.

        Raises:
            ModelFitError: every step constant, a correlation matrix without a Cholesky factor, or a
                non-finite likelihood.
        """
        self._fitted = False
        self._diagnostics = {}
        x = training_matrix(train, "t-copula")
        n, length = x.shape
        self.active_ = np.ptp(x, axis=0) > 0
        d = int(self.active_.sum())
        if d == 0:
            raise ModelFitError("every time step is constant in train: there is nothing to model")
        active = x[:, self.active_]
        corr = np.sin(0.5 * np.pi * kendall_tau_matrix(active))
        corr = 0.5 * (corr + corr.T)
        self.corr_ = self._positive_definite(corr)
        try:
            self._chol = np.linalg.cholesky(self.corr_)
        except np.linalg.LinAlgError as err:
            raise ModelFitError("correlation matrix not positive definite after the repair (Cholesky "
                                "failed)") from err
        u = stats.rankdata(active, axis=0) / (n + 1)
        self.nu_, self.loglik_ = self._fit_nu(u, self.corr_, self._chol)
        self._sorted = np.sort(x, axis=0)
        self._diagnostics.update({"copula_dim": float(d), "profiles_per_dim": n / d, "nu": self.nu_,
                                  "loglik_per_profile": self.loglik_ / n})
        self._fitted = True

    def diagnostics(self) -> dict[str, float]:
        """Facts about the last successful fit; ``{}`` before a fit or after a failed one.

        ``corr_min_eigenvalue``: smallest eigenvalue of ``sin(pi tau / 2)`` before any repair;
        ``corr_repaired`` (1/0); ``corr_repair_frobenius`` and ``corr_repair_max_abs``: Frobenius norm and
        largest absolute entry of (repaired - estimated) correlation (0 without repair);
        ``corr_repair_iterations`` and ``corr_repair_converged`` (1/0) of :func:`nearest_correlation`;
        ``copula_dim`` (non-constant steps), ``profiles_per_dim`` (N / d), ``nu`` and ``loglik_per_profile``.
        """
        return dict(self._diagnostics) if self._fitted else {}

    def _positive_definite(self, corr: np.ndarray) -> np.ndarray:
        """``corr`` itself when its eigenvalues clear the floor, else its repair (module docstring, step 3)."""
        eigval = np.linalg.eigvalsh(corr)
        floor = _EIG_FLOOR_REL * eigval[-1]
        self.projected_ = bool(eigval[0] < floor)
        repaired, iterations, converged = corr, 0, True
        if self.projected_:
            result = nearest_correlation(corr, floor, self.repair_tol, self.repair_max_iter)
            repaired, iterations, converged = result.matrix, result.iterations, result.converged
        change = repaired - corr
        self._diagnostics = {
            "corr_min_eigenvalue": float(eigval[0]),
            "corr_repaired": float(self.projected_),
            "corr_repair_frobenius": float(np.linalg.norm(change)),
            "corr_repair_max_abs": float(np.abs(change).max()),
            "corr_repair_iterations": float(iterations),
            "corr_repair_converged": float(converged),
        }
        return repaired

    def _fit_nu(self, u: np.ndarray, corr: np.ndarray, chol: np.ndarray) -> tuple[float, float]:
        def negative_loglik(log_nu: float) -> float:
            value = t_copula_loglik(u, corr, math.exp(log_nu), chol)
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
        rng = ctx.rng(Stream.MODEL_SAMPLE)
        d = self._chol.shape[0]
        z = rng.standard_normal((n, d)) @ self._chol.T
        w = rng.chisquare(self.nu_, size=n) / self.nu_
        u = np.full((n, self._sorted.shape[1]), 0.5)
        u[:, self.active_] = stats.t.cdf(z / np.sqrt(w)[:, None], self.nu_)
        return ecdf_inverse(self._sorted, u).astype(np.float32)
