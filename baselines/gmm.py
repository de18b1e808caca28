"""Gaussian mixture baselines: ``gmm`` (the EnergyDiff baseline) and ``gmm-pca`` (GMM in a PCA subspace).

``gmm`` fits scikit-learn's ``GaussianMixture`` directly on the ``T``-dimensional daily profiles exactly as
the EnergyDiff public code does (``GaussianMixture(n_components=10, covariance_type="full", max_iter=1000)``
with scikit-learn's defaults for everything else: ``tol=1e-3``, ``reg_covar=1e-6``, one k-means
initialisation), seeded from the run. ``reg_covar`` is added to every covariance diagonal: in the [-1, 1]
scaled space it is a standard deviation of 1e-3, i.e. 0.05 % of the data range, and keeps a component
positive definite when its points span fewer than ``T`` directions.

Like the paper's code, the model keeps whatever EM returns; a fit that is merely poor is not a failure.
What makes a fit suspect is measured and reported beside the scores through :meth:`GMM.diagnostics`:

* ``em_iterations`` and ``em_converged`` (1 or 0): EM iterations used and whether the lower bound's change
  fell below ``tol`` within ``max_iter`` (scikit-learn only warns when it did not);
* ``singular_mass`` and ``singular_components``: a component whose responsibility mass ``n_k = weight_k * N``
  is at most ``d`` (the modelled dimension) has a singular sample covariance, so its density in the missing
  directions is set by ``reg_covar`` alone and its points get enormous likelihoods; the share of the training
  mass in such components and their number;
* ``em_stalled`` (1 or 0): EM stopped within 2 iterations while some component is singular, i.e. it froze
  at its k-means initialisation (measured: UCI at 15 minutes, 720 days x 96 steps, stalls at 2 iterations
  with 53-67 % of the mass in singular components; 2000 x 1440 does the same; healthy fits run tens of
  iterations);
* ``log_likelihood_bound``: scikit-learn's ``lower_bound_``, the mean training log-likelihood at EM's last
  E-step (in the modelled space, so comparable only between fits of the same ``d``); ``dim``: ``d``.

A fit raises :class:`ModelFitError`, so that the table shows a failure, only where the computation itself
fails: scikit-learn raises (e.g. a collapsed component with ``reg_covar=0``), the parameters are not finite,
or a component covariance has no Cholesky factor; and on unusable input (fewer profiles than components,
all profiles identical). ``gmm`` never switches to the PCA variant by itself; ``gmm-pca`` is a separate row.

``gmm-pca`` (the same class with ``n_pca=50``) fits PCA on train, the mixture on the ``k = min(n_pca, T, N)``
leading scores (the diagnostics above then count in ``k`` dimensions), and maps samples back; at
``T <= n_pca`` nothing is discarded and the model equals ``gmm`` in a rotated basis. With
``pca_residual=True`` (default) the variance PCA discards is added back as isotropic Gaussian noise confined
to the discarded subspace, with the per-direction variance equal to the mean discarded eigenvalue (the
probabilistic-PCA noise estimate), so the samples keep the total variance (covariance trace) of train; with
``False`` the samples lie in the PCA subspace (smoother, with too little variance).

Anomaly detection (capability ``detect``): a profile's anomaly score is its negative log-likelihood under the
full-space mixture (see ``full_space_mixture`` below; for ``gmm-pca`` the probabilistic-PCA mixture, whose
isotropic residual makes departures from the principal subspace unlikely), in the scaled space. Steps that
are not valid (month padding) are marginalised out: the density of the valid steps alone, a Gaussian
mixture with the corresponding sub-vectors and sub-blocks.

Imputation and super-resolution (capabilities ``impute`` and ``super_resolve``) condition the fitted mixture
on a linear observation ``y = A x`` of a profile (:func:`condition_mixture`): the posterior is again a
Gaussian mixture whose weights are proportional to ``w_k N(y; A mu_k, A S_k A^T + R)`` and whose components
follow the Gaussian conditioning formulas, ``mu_k + G_k (y - A mu_k)`` and ``S_k - G_k A S_k`` with the gain
``G_k = S_k A^T (A S_k A^T + R)^{-1}``; ``R = jitter * I`` is a tiny observation noise (variance 1e-9, far
below ``reg_covar``) that keeps ``A S_k A^T + R`` positive definite. Draws use pathwise conditioning
(Matheron's rule): a prior draw ``x`` is moved to ``x + G_k (y - A x - e)``, ``e ~ N(0, R)``, which has exactly
the posterior distribution and needs no factorisation of the (singular) posterior covariance.

* Imputation: ``A`` selects the observed valid steps.
* Super-resolution: ``A`` averages each block of ``factor`` steps (over its valid steps; blocks that lie wholly
  in month padding are dropped).

``gmm-pca`` conditions the implied full-space mixture, mean ``m + V mu_k`` and covariance
``V S_k V^T + sigma^2 I`` (``V`` the PCA loadings, ``sigma^2`` the probabilistic-PCA residual variance, i.e. the
mean discarded eigenvalue, kept at fit time as ``residual_var_``, 0 when nothing is discarded), whatever
``pca_residual`` says: without the isotropic part a subspace model could not reproduce arbitrary
observations. Afterwards the measurement is enforced exactly: observed values are pasted back (imputation),
or every block is shifted by its mean error (super-resolution); padding steps are returned as 0. The cost
per profile is a Cholesky factorisation of an ``m x m`` matrix per component (``m`` observed steps or
blocks), which is quick at ``T <= 96`` and slow at ``T = 1440``.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from baselines.naive import check_sample_request, training_matrix
from bench.api import Detector, Generator, Imputer, Model, Params, SuperResolver
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import DetectionQuery, ImputationQuery, SuperResolutionQuery

# Observation-noise variance added for conditioning: keeps A S A^T + R positive definite and is negligible
# against reg_covar (1e-6) in the [-1, 1] scaled space.
CONDITION_JITTER = 1e-9


@dataclass(frozen=True)
class MixturePosterior:
    """A Gaussian mixture conditioned on ``y = A x + e``, ``e ~ N(0, noise_var I)`` (float64).

    Attributes:
        weights: ``[K]`` posterior component weights (sum to 1).
        means: ``[K, d]`` posterior component means.
        gains: ``[K, d, m]`` gains ``G_k = S_k A^T (A S_k A^T + R)^{-1}``.
        prior_means, prior_covs: the prior mixture's ``[K, d]`` means and ``[K, d, d]`` covariances.
        A, y, noise_var: the observation.
    """

    weights: np.ndarray
    means: np.ndarray
    gains: np.ndarray
    prior_means: np.ndarray
    prior_covs: np.ndarray
    A: np.ndarray
    y: np.ndarray
    noise_var: float

    def covariances(self) -> np.ndarray:
        """``[K, d, d]`` posterior component covariances ``S_k - G_k A S_k``."""
        a_s = np.einsum("md,kde->kme", self.A, self.prior_covs)
        cov = self.prior_covs - self.gains @ a_s
        return 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def sample(self, n: int, rng: np.random.Generator, prior_chols: np.ndarray | None = None) -> np.ndarray:
        """``[n, d]`` draws from the posterior mixture by pathwise conditioning of prior draws.

        ``prior_chols`` (``[K, d, d]`` lower Cholesky factors of the prior covariances) may be passed when
        already known; otherwise they are computed here.
        """
        chols = np.linalg.cholesky(self.prior_covs) if prior_chols is None else prior_chols
        k_count, d = self.means.shape
        comp = rng.choice(k_count, size=n, p=self.weights)
        out = np.empty((n, d))
        for k in np.unique(comp):
            rows = np.flatnonzero(comp == k)
            prior = self.prior_means[k] + rng.standard_normal((len(rows), d)) @ chols[k].T
            noise = np.sqrt(self.noise_var) * rng.standard_normal((len(rows), len(self.y)))
            resid = self.y - prior @ self.A.T - noise
            out[rows] = prior + resid @ self.gains[k].T
        return out


def condition_mixture(weights: np.ndarray, means: np.ndarray, covs: np.ndarray, A: np.ndarray, y: np.ndarray,
                      noise_var: float = 0.0) -> MixturePosterior:
    """Condition the mixture ``sum_k w_k N(mu_k, S_k)`` on the observation ``y = A x + e``, ``e ~ N(0, r I)``.

    Args:
        weights: ``[K]`` component weights; means ``[K, d]``; covs ``[K, d, d]`` (positive definite).
        A: ``[m, d]`` observation matrix (``m = 0``: nothing observed, the posterior is the prior).
        y: ``[m]`` observed values.
        noise_var: ``r >= 0``, observation-noise variance.

    Raises:
        ValueError: inconsistent shapes or a negative ``noise_var``.
        np.linalg.LinAlgError: some ``A S_k A^T + r I`` is not positive definite.
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covs = np.asarray(covs, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    k_count, d = means.shape
    if weights.shape != (k_count,) or covs.shape != (k_count, d, d):
        raise ValueError(f"weights {weights.shape}, means {means.shape} and covs {covs.shape} do not match")
    if A.ndim != 2 or A.shape[1] != d or y.shape != (A.shape[0],):
        raise ValueError(f"A must be [m, {d}] and y [m], got {A.shape} and {y.shape}")
    if noise_var < 0:
        raise ValueError(f"noise_var must be >= 0, got {noise_var}")
    m = A.shape[0]
    if m == 0:
        return MixturePosterior(weights / weights.sum(), means.copy(), np.zeros((k_count, d, 0)), means, covs,
                                A, y, float(noise_var))
    s_at = covs @ A.T  # [K, d, m]
    innov = A @ s_at + noise_var * np.eye(m)  # [K, m, m]
    innov = 0.5 * (innov + np.swapaxes(innov, 1, 2))
    chol = np.linalg.cholesky(innov)
    resid = y - means @ A.T  # [K, m]
    log_w = np.log(weights)
    gains = np.empty((k_count, d, m))
    post_means = np.empty_like(means)
    for k in range(k_count):
        white = solve_triangular(chol[k], resid[k], lower=True)
        log_det = 2.0 * np.log(np.diag(chol[k])).sum()
        log_w[k] += -0.5 * (white @ white + log_det + m * np.log(2.0 * np.pi))
        # G = S A^T (A S A^T + R)^{-1}, i.e. the solve of (A S A^T + R) G^T = A S
        gains[k] = cho_solve((chol[k], True), s_at[k].T).T
        post_means[k] = means[k] + gains[k] @ resid[k]
    post_w = np.exp(log_w - logsumexp(log_w))
    return MixturePosterior(post_w / post_w.sum(), post_means, gains, means, covs, A, y, float(noise_var))


def gaussian_mixture_logpdf(x: np.ndarray, weights: np.ndarray, means: np.ndarray,
                            chols: np.ndarray) -> np.ndarray:
    """``[n]`` log-density of the rows of ``x [n, d]`` under ``sum_k w_k N(mu_k, L_k L_k^T)``.

    ``chols [K, d, d]`` are lower Cholesky factors of the component covariances; the Mahalanobis terms come
    from triangular solves and the mixture from ``logsumexp`` over components.
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    log_comp = np.empty((len(weights), n))
    for k in range(len(weights)):
        white = solve_triangular(chols[k], (x - means[k]).T, lower=True)  # [d, n]
        log_det = 2.0 * np.log(np.diag(chols[k])).sum()
        log_comp[k] = np.log(weights[k]) - 0.5 * ((white ** 2).sum(axis=0) + log_det + d * np.log(2.0 * np.pi))
    return logsumexp(log_comp, axis=0)


def selection_matrix(steps: np.ndarray, length: int) -> np.ndarray:
    """``[m, length]`` matrix picking the steps ``steps`` (integer positions) of a profile."""
    A = np.zeros((len(steps), length))
    A[np.arange(len(steps)), steps] = 1.0
    return A


def block_mean_matrix(valid: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-averaging observation for one profile of ``len(valid)`` steps.

    Returns ``(A, blocks)``: ``A [m, T]`` averages the valid steps of each block of ``factor`` steps that
    holds at least one valid step, and ``blocks`` the indices of those ``m`` blocks.
    """
    length = len(valid)
    n_blocks = length // factor
    member = valid.reshape(n_blocks, factor)
    counts = member.sum(axis=1)
    blocks = np.flatnonzero(counts > 0)
    A = np.zeros((len(blocks), length))
    for row, b in enumerate(blocks):
        A[row, b * factor:(b + 1) * factor] = member[b] / counts[b]
    return A, blocks


@dataclass(frozen=True)
class GMMParams(Params):
    """Hyper-parameters of :class:`GMM`: the EnergyDiff code's ``GaussianMixture`` call (10 full components,
    ``max_iter=1000``, scikit-learn's defaults otherwise) and the optional PCA subspace.

    Attributes:
        n_components: mixture components.
        max_iter: EM iterations at most.
        tol: EM stops when the lower bound changes by less.
        reg_covar: added to every covariance diagonal.
        n_init: EM runs (the best is kept).
        n_pca: upper bound on the PCA dimension (None: no PCA, the ``gmm`` row).
        pca_residual: add the discarded PCA variance back as isotropic noise when sampling.
    """

    n_components: int = 10
    max_iter: int = 1000
    tol: float = 1e-3
    reg_covar: float = 1e-6
    n_init: int = 1
    n_pca: int | None = None
    pca_residual: bool = True

    def __post_init__(self) -> None:
        if self.n_components < 1 or self.max_iter < 1 or self.n_init < 1:
            raise ValueError("n_components, max_iter and n_init must be at least 1")
        if self.reg_covar < 0 or self.tol <= 0:
            raise ValueError("reg_covar must be >= 0 and tol > 0")
        if self.n_pca is not None and self.n_pca < 1:
            raise ValueError(f"n_pca must be a positive integer or None, got {self.n_pca!r}")


@register_model("gmm-pca", n_pca=50)
@register_model("gmm")
class GMM(Model, Generator, Imputer, SuperResolver, Detector):
    """Gaussian mixture with full covariances (optionally in a PCA subspace), fitted by EM."""

    Params = GMMParams
    # three components keep the contract test's ~60 toy profiles from splitting into singular clusters
    profiles = {"test": {"n_components": 3}}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._name = "gmm" if self.n_pca is None else "gmm-pca"
        self._fitted = False
        self._diagnostics: dict[str, float] = {}
        self._full: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.pca_components_: np.ndarray | None = None
        self.pca_mean_: np.ndarray | None = None

    # derived from what is stored: the name (from n_pca), the full-space mixture (a cache, rebuilt on first
    # use) and the Cholesky factors of the covariances (recomputed on load: [K, d, d] is 166 MB at d = 1440)
    _DERIVED = ("_name", "_full", "_chol")

    def get_state(self) -> dict:
        """The fitted mixture (weights, means, covariances), the PCA loadings and mean, the residual
        variances and the diagnostics, as arrays and numbers."""
        skip = {f.name for f in dataclasses.fields(self.params)} | {"params", *self._DERIVED}
        return {k: to_safe(v, f"GMM.{k}") for k, v in vars(self).items() if k not in skip}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state`'s output and refactorise the component covariances."""
        super().set_state(state)
        if self._fitted:
            self._chol = np.linalg.cholesky(self._covs)

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Fit (PCA and) the mixture on ``train.values`` and record the fit's diagnostics.

        A degenerate or unconverged fit is kept (see :meth:`diagnostics`), as in the EnergyDiff code.

        Raises:
            ModelFitError: fewer profiles than components, zero variance, scikit-learn's EM raising,
                non-finite parameters, or a component covariance without a Cholesky factor.
        """
        self._fitted = False
        self._diagnostics = {}
        x = training_matrix(train, self._name)
        n, length = x.shape
        if n < self.n_components:
            raise ModelFitError(f"{n} training profiles for {self.n_components} mixture components")
        if not np.ptp(x, axis=0).any():
            raise ModelFitError("training profiles have zero variance (all identical)")
        seed = ctx.int_seed(Stream.MODEL_FIT, bits=31)

        # the PCA's loadings [k, T] and mean [T] (None without PCA): all that sampling and conditioning need
        self.pca_components_: np.ndarray | None = None
        self.pca_mean_: np.ndarray | None = None
        self._full = None
        self.residual_std_ = 0.0
        self.residual_var_ = 0.0
        z = x
        if self.n_pca is not None:
            # n_pca is an upper bound: at T <= n_pca the rotation keeps every direction (nothing discarded).
            k = min(self.n_pca, length, n)
            pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x)
            z = pca.transform(x)
            # C order, as a saved model loads it: the same memory layout gives the same round-off after save/load
            self.pca_components_ = np.ascontiguousarray(pca.components_)
            self.pca_mean_ = np.ascontiguousarray(pca.mean_)
            if k < length:
                # probabilistic-PCA noise: the mean discarded eigenvalue (used by the conditional models)
                self.residual_var_ = float(max(pca.noise_variance_, 0.0))
            if self.pca_residual and k < length:
                self.residual_std_ = float(np.sqrt(max(pca.noise_variance_, 0.0)))
        self.dim_ = z.shape[1]

        gm = GaussianMixture(n_components=self.n_components, covariance_type="full", tol=self.tol,
                             reg_covar=self.reg_covar, max_iter=self.max_iter, n_init=self.n_init,
                             random_state=seed)
        with warnings.catch_warnings():
            # Non-convergence and k-means cluster collapse are reported by diagnostics(), not printed.
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                gm.fit(z)
            except (ValueError, np.linalg.LinAlgError) as err:
                raise ModelFitError(f"EM failed: {err}") from err
        params = (gm.weights_, gm.means_, gm.covariances_, gm.lower_bound_)
        if not all(np.isfinite(p).all() for p in params):
            raise ModelFitError("EM produced non-finite parameters")
        try:
            self._chol = np.linalg.cholesky(gm.covariances_.astype(np.float64))
        except np.linalg.LinAlgError as err:
            raise ModelFitError("a component covariance is not positive definite") from err
        self.n_iter_ = int(gm.n_iter_)
        self.converged_ = bool(gm.converged_)
        counts = gm.weights_ * n
        singular = counts <= self.dim_
        self.singular_mass_ = float(counts[singular].sum() / n)
        self._diagnostics = {
            "em_iterations": float(self.n_iter_),
            "em_converged": float(self.converged_),
            "em_stalled": float(self.n_iter_ <= 2 and bool(singular.any())),
            "singular_mass": self.singular_mass_,
            "singular_components": float(singular.sum()),
            "log_likelihood_bound": float(gm.lower_bound_),
            "dim": float(self.dim_),
        }
        self._weights = gm.weights_.astype(np.float64) / gm.weights_.sum()
        self._means = gm.means_.astype(np.float64)
        self._covs = gm.covariances_.astype(np.float64)
        self.length_ = length
        self._fitted = True

    def diagnostics(self) -> dict[str, float]:
        """Facts about the last successful fit (see the module docstring); ``{}`` before a fit or after a
        failed one.

        ``em_iterations``, ``em_converged`` (1/0), ``em_stalled`` (1/0: EM stopped within 2 iterations with a
        singular component), ``singular_mass`` (share of training mass in components with at most ``dim``
        points), ``singular_components``, ``log_likelihood_bound`` (mean per profile, in the modelled space)
        and ``dim`` (the modelled dimension: ``T``, or the PCA dimension for ``gmm-pca``).
        """
        return dict(self._diagnostics)

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 draws from the fitted mixture (mapped back from the PCA space if used)."""
        n = check_sample_request(n, cond, self._fitted, self._name)
        rng = ctx.rng(Stream.MODEL_SAMPLE)
        comp = rng.choice(len(self._weights), size=n, p=self._weights)
        noise = rng.standard_normal((n, self.dim_))
        z = np.empty((n, self.dim_))
        # Per component rather than gathering one Cholesky factor per sample ([n, d, d] is GBs at d=1440).
        for k in range(len(self._weights)):
            rows = comp == k
            z[rows] = self._means[k] + noise[rows] @ self._chol[k].T
        if self.pca_components_ is None:
            return z.astype(np.float32)
        x = z @ self.pca_components_ + self.pca_mean_  # PCA.inverse_transform (no whitening)
        if self.residual_std_ > 0.0:
            basis = self.pca_components_.astype(np.float64)
            g = rng.standard_normal((n, basis.shape[1]))
            x = x + self.residual_std_ * (g - (g @ basis.T) @ basis)
        return x.astype(np.float32)

    # -- conditioning on linear observations ------------------------------------------------------------------
    def full_space_mixture(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(weights [K], means [K, T], covs [K, T, T], chols [K, T, T])`` of the mixture over profiles.

        For ``gmm`` these are the fitted parameters; for ``gmm-pca`` the implied full-space mixture
        ``N(m + V mu_k, V S_k V^T + sigma^2 I)`` with the probabilistic-PCA residual variance ``sigma^2``.

        Raises:
            RuntimeError: the model was not fitted.
            ModelFitError: an implied covariance is not positive definite.
        """
        if not self._fitted:
            raise RuntimeError(f"{self._name}: call fit() before conditioning")
        if self._full is None:
            if self.pca_components_ is None:
                self._full = (self._weights, self._means, self._covs, self._chol.astype(np.float64))
            else:
                basis = self.pca_components_.astype(np.float64)  # [q, T]
                means = self.pca_mean_.astype(np.float64) + self._means @ basis
                covs = np.einsum("qt,kqr,rs->kts", basis, self._covs, basis)
                covs = 0.5 * (covs + np.swapaxes(covs, 1, 2)) + self.residual_var_ * np.eye(basis.shape[1])
                try:
                    chols = np.linalg.cholesky(covs)
                except np.linalg.LinAlgError as err:
                    raise ModelFitError(f"{self._name}: an implied full-space covariance is not positive "
                                        "definite") from err
                self._full = (self._weights, means, covs, chols)
        return self._full

    def _conditional_draws(self, A: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        weights, means, covs, chols = self.full_space_mixture()
        try:
            post = condition_mixture(weights, means, covs, A, y, CONDITION_JITTER)
        except np.linalg.LinAlgError as err:
            raise ModelFitError(f"{self._name}: an observed covariance block is not positive definite") from err
        return post.sample(n, rng, chols)

    def _check_query(self, length: int, n_samples: int, kind: str) -> int:
        if not self._fitted:
            raise RuntimeError(f"{self._name}: call fit() before {kind}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"{self._name}: n_samples must be a positive integer, got {n_samples!r}")
        if length != self.length_:
            raise ValueError(f"{self._name}: query profiles have {length} steps, the model was fitted on "
                             f"{self.length_}")
        return int(n_samples)

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 draws of the missing steps from the conditional mixture.

        Conditions on the observed valid steps of each profile; observed values are returned unchanged and
        padding steps (``valid`` False) as 0.
        """
        n_prof, length = query.values.shape
        n_samples = self._check_query(length, n_samples, "impute")
        rng = ctx.rng(Stream.MODEL_IMPUTE)
        out = np.zeros((n_samples, n_prof, length))
        for i in range(n_prof):
            obs = np.flatnonzero(query.observed[i])
            y = query.values[i, obs].astype(np.float64)
            draws = self._conditional_draws(selection_matrix(obs, length), y, n_samples, rng)
            draws[:, obs] = y  # the measurement holds exactly
            draws[:, ~query.valid[i]] = 0.0
            out[:, i] = draws
        return out.astype(np.float32)

    def super_resolve(self, query: SuperResolutionQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 high-resolution draws whose block means reproduce ``query.low``.

        A block's mean is taken over its valid steps; blocks wholly in padding are ignored and padding steps
        are returned as 0. After the conditional draw, every block is shifted by its remaining mean error.
        """
        n_prof, length = len(query), query.length
        n_samples = self._check_query(length, n_samples, "super_resolve")
        factor = int(query.factor)
        rng = ctx.rng(Stream.MODEL_SUPER_RESOLVE)
        out = np.zeros((n_samples, n_prof, length))
        for i in range(n_prof):
            valid = np.asarray(query.valid[i], dtype=bool)
            A, blocks = block_mean_matrix(valid, factor)
            y = np.asarray(query.low[i, blocks], dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError(f"{self._name}: non-finite coarse values in profile {i}")
            draws = self._conditional_draws(A, y, n_samples, rng)
            # shift each block (its valid steps) so that its mean is exactly the coarse value
            error = y - draws @ A.T  # [S, m]
            for row, b in enumerate(blocks):
                span = slice(b * factor, (b + 1) * factor)
                draws[:, span] += error[:, row:row + 1] * valid[span]
            draws[:, ~valid] = 0.0
            out[:, i] = draws
        return out.astype(np.float32)

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float64 negative log-likelihood of each profile's valid steps under the fitted mixture.

        ``-log sum_k w_k N(x_v; mu_k[v], S_k[v, v])`` with ``v`` the profile's valid steps, by Cholesky
        factors and log-sum-exp (no under- or overflow far from every component). Profiles sharing a
        valid-step pattern share their factorisations; a profile with no valid step scores 0.
        """
        if not self._fitted:
            raise RuntimeError(f"{self._name}: call fit() before anomaly_score")
        n_prof, length = query.values.shape
        if length != self.length_:
            raise ValueError(f"{self._name}: query profiles have {length} steps, the model was fitted on "
                             f"{self.length_}")
        weights, means, covs, chols = self.full_space_mixture()
        values = np.asarray(query.values, dtype=np.float64)
        valid = np.asarray(query.valid, dtype=bool)
        out = np.zeros(n_prof)
        patterns, groups = np.unique(valid, axis=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            rows = np.flatnonzero(groups.reshape(-1) == g)
            steps = np.flatnonzero(pattern)
            if len(steps) == 0:
                continue
            if len(steps) == length:
                sub_chols = chols
            else:
                try:
                    sub_chols = np.linalg.cholesky(covs[:, steps[:, None], steps])
                except np.linalg.LinAlgError as err:
                    raise ModelFitError(f"{self._name}: a marginal covariance is not positive definite") from err
            out[rows] = -gaussian_mixture_logpdf(values[np.ix_(rows, steps)], weights, means[:, steps],
                                                 sub_chols)
        return out
