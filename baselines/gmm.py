"""Gaussian mixture baselines: ``gmm`` (the EnergyDiff baseline) and ``gmm-pca`` (GMM in a PCA subspace).

``gmm`` fits scikit-learn's ``GaussianMixture`` with 10 full-covariance components and up to 1000 EM
iterations, as in the EnergyDiff paper, directly on the ``T``-dimensional daily profiles. ``reg_covar``
(default 1e-6, scikit-learn's) is added to every covariance diagonal: in the [-1, 1] scaled space it is a
standard deviation of 1e-3, i.e. 0.05 % of the data range, and keeps a component positive definite when its
points span fewer than ``T`` directions.

Degenerate fits are reported, never hidden. A component whose responsibility mass ``n_k = weight_k * N`` is at
most ``T`` has a singular sample covariance: its density in the missing directions is set by ``reg_covar``
alone and its points get enormous likelihoods. When such components hold much of the data, EM freezes at its
k-means initialisation and stops after two iterations (measured: UCI at 15 minutes, 720 days x 96 steps,
stalls at 2 iterations with 53-67 % of the mass in singular components; 2000 x 1440 does the same; healthy
fits run tens of iterations). The fit raises :class:`ModelFitError`, so the table shows a failure, when

* EM stopped within 2 iterations while any component is singular (stalled at its initialisation), or
* more than ``max_singular_mass`` (default 0.5) of the training mass sits in singular components.

Set ``max_singular_mass=1.0`` and ``allow_stall=True`` to keep such fits, as the paper's tables do at
1-minute resolution. A fit that does not converge within ``max_iter`` raises as well. ``gmm`` never switches
to the PCA variant by itself; ``gmm-pca`` is a separate row.

``gmm-pca`` (the same class with ``n_pca=50``) fits PCA on train, the mixture on the ``k = min(n_pca, T, N)``
leading scores (the singularity checks above then count in ``k`` dimensions), and maps samples back; at
``T <= n_pca`` nothing is discarded and the model equals ``gmm`` in a rotated basis. With
``pca_residual=True`` (default) the variance PCA discards is added back as isotropic Gaussian noise confined
to the discarded subspace, with the per-direction variance equal to the mean discarded eigenvalue (the
probabilistic-PCA noise estimate), so the samples keep the total variance (covariance trace) of train; with
``False`` the samples lie in the PCA subspace (smoother, with too little variance).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from baselines.naive import SAMPLE_STREAM, check_sample_request, training_matrix
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.registry import register_model


@register_model("gmm-pca", n_pca=50)
@register_model("gmm")
class GMM:
    """Gaussian mixture with full covariances (optionally in a PCA subspace), fitted by EM."""

    capabilities = frozenset({"generate"})
    configs = {
        "quick": {"n_components": 10, "max_iter": 1000, "tol": 1e-3, "reg_covar": 1e-6, "n_init": 1,
                  "n_pca": None, "pca_residual": True, "max_singular_mass": 0.5, "allow_stall": False},
        "paper": {"n_components": 10, "max_iter": 1000, "tol": 1e-3, "reg_covar": 1e-6, "n_init": 1,
                  "n_pca": None, "pca_residual": True, "max_singular_mass": 0.5, "allow_stall": False},
    }

    def __init__(self, n_components: int = 10, max_iter: int = 1000, tol: float = 1e-3,
                 reg_covar: float = 1e-6, n_init: int = 1, n_pca: int | None = None,
                 pca_residual: bool = True, max_singular_mass: float = 0.5, allow_stall: bool = False) -> None:
        if n_components < 1 or max_iter < 1 or n_init < 1:
            raise ValueError("n_components, max_iter and n_init must be at least 1")
        if reg_covar < 0 or tol <= 0:
            raise ValueError("reg_covar must be >= 0 and tol > 0")
        if n_pca is not None and n_pca < 1:
            raise ValueError(f"n_pca must be a positive integer or None, got {n_pca!r}")
        if not 0.0 <= max_singular_mass <= 1.0:
            raise ValueError(f"max_singular_mass must lie in [0, 1], got {max_singular_mass!r}")
        self.n_components = int(n_components)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.reg_covar = float(reg_covar)
        self.n_init = int(n_init)
        self.n_pca = None if n_pca is None else int(n_pca)
        self.pca_residual = bool(pca_residual)
        self.max_singular_mass = float(max_singular_mass)
        self.allow_stall = bool(allow_stall)
        self._name = "gmm" if self.n_pca is None else "gmm-pca"
        self._fitted = False

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Fit (PCA and) the mixture on ``train.values``.

        Raises:
            ModelFitError: fewer profiles than components, zero variance, EM not converged, non-finite
                parameters, or a degenerate fit (see the module docstring).
        """
        self._fitted = False
        x = training_matrix(train, self._name)
        n, length = x.shape
        if n < self.n_components:
            raise ModelFitError(f"{n} training profiles for {self.n_components} mixture components")
        if not np.ptp(x, axis=0).any():
            raise ModelFitError("training profiles have zero variance (all identical)")
        seed = int(ctx.rng(0).integers(2**31 - 1))

        self._pca = None
        self.residual_std_ = 0.0
        z = x
        if self.n_pca is not None:
            # n_pca is an upper bound: at T <= n_pca the rotation keeps every direction (nothing discarded).
            k = min(self.n_pca, length, n)
            self._pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x)
            z = self._pca.transform(x)
            if self.pca_residual and k < length:
                self.residual_std_ = float(np.sqrt(max(self._pca.noise_variance_, 0.0)))
        self.dim_ = z.shape[1]

        gm = GaussianMixture(n_components=self.n_components, covariance_type="full", tol=self.tol,
                             reg_covar=self.reg_covar, max_iter=self.max_iter, n_init=self.n_init,
                             random_state=seed)
        with warnings.catch_warnings():
            # Non-convergence and k-means cluster collapse are checked below and raised, not printed.
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                gm.fit(z)
            except (ValueError, np.linalg.LinAlgError) as err:
                raise ModelFitError(f"EM failed: {err}") from err
        self.n_iter_ = int(gm.n_iter_)
        if not gm.converged_:
            raise ModelFitError(f"EM did not converge within max_iter={self.max_iter} iterations")
        params = (gm.weights_, gm.means_, gm.covariances_, gm.lower_bound_)
        if not all(np.isfinite(p).all() for p in params):
            raise ModelFitError("EM produced non-finite parameters")
        counts = gm.weights_ * n
        singular = counts <= self.dim_
        self.singular_mass_ = float(counts[singular].sum() / n)
        detail = (f"{self.singular_mass_:.0%} of the training mass is in components with at most {self.dim_} "
                  f"points for {self.dim_} dimensions, whose covariances only reg_covar keeps positive definite")
        if self.n_iter_ <= 2 and singular.any() and not self.allow_stall:
            raise ModelFitError(f"degenerate fit: EM stalled at its initialisation ({self.n_iter_} "
                                f"iterations); {detail}")
        if self.singular_mass_ > self.max_singular_mass:
            raise ModelFitError(f"degenerate fit: {detail} (limit {self.max_singular_mass:.0%})")
        try:
            self._chol = np.linalg.cholesky(gm.covariances_.astype(np.float64))
        except np.linalg.LinAlgError as err:
            raise ModelFitError("a component covariance is not positive definite") from err
        self._weights = gm.weights_.astype(np.float64) / gm.weights_.sum()
        self._means = gm.means_.astype(np.float64)
        self._fitted = True

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 draws from the fitted mixture (mapped back from the PCA space if used)."""
        n = check_sample_request(n, cond, self._fitted, self._name)
        rng = ctx.rng(SAMPLE_STREAM)
        comp = rng.choice(len(self._weights), size=n, p=self._weights)
        noise = rng.standard_normal((n, self.dim_))
        z = np.empty((n, self.dim_))
        # Per component rather than gathering one Cholesky factor per sample ([n, d, d] is GBs at d=1440).
        for k in range(len(self._weights)):
            rows = comp == k
            z[rows] = self._means[k] + noise[rows] @ self._chol[k].T
        if self._pca is None:
            return z.astype(np.float32)
        x = self._pca.inverse_transform(z)
        if self.residual_std_ > 0.0:
            basis = self._pca.components_.astype(np.float64)
            g = rng.standard_normal((n, basis.shape[1]))
            x = x + self.residual_std_ * (g - (g @ basis.T) @ basis)
        return x.astype(np.float32)
