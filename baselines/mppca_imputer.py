"""``mppca-imputer``: a mixture of probabilistic PCA models (Tipping & Bishop 1999) fitted by EM on the training
profiles, imputing by draws from each profile's conditional mixture; the unified-model paper's C2 role
(imputation by mixture factor analysis).

Paper. The unified paper names C2 only as "a building load data imputation model with mixture factor analysis
proposed in 2021 by Jeong et al." (its ref. [42], Appl. Energy 304, 117655) and gives none of its settings.
Assumed here: a mixture of probabilistic PCA, i.e. factor analysers whose noise is isotropic per component
(``sigma_k^2 I``, where factor analysis has a diagonal noise), fitted on the training profiles (the pooled daily
profiles of the suites); ``K`` and ``q`` are meterbench's choices (see Profiles), not the reference's.

Model. Component ``k`` (weight ``pi_k``) generates a profile ``x = mu_k + W_k z + e`` with ``z ~ N(0, I_q)`` and
``e ~ N(0, sigma_k^2 I_T)``, i.e. ``x ~ N(mu_k, C_k)`` with ``C_k = W_k W_k^T + sigma_k^2 I``: a full covariance
with ``T q + 1`` parameters instead of ``T (T + 1) / 2``, so that a few hundred profiles fit it at any ``T``.
Everything works in the task's scaled space in float64 and costs ``O(T q^2)`` per profile and component, never
``O(T^3)``: for the observed steps ``O`` of a profile, ``M = sigma^2 I_q + W_O^T W_O`` gives (Woodbury and the
matrix determinant lemma) ``log det C_OO = (|O| - q) log sigma^2 + log det M`` and
``e^T C_OO^{-1} e = |e - W_O m|^2 / sigma^2 + |m|^2`` with ``e = x_O - mu_O`` and ``m = M^{-1} W_O^T e``, the
posterior mean of ``z`` (its covariance is ``sigma^2 M^{-1}``); the second form is a sum of squares, free of the
cancellation of ``e^T e - e^T W_O m``.

Training. EM on the training profiles (:func:`em_step`): the E-step computes every profile's component
responsibilities (log-sum-exp over components) and the posterior of ``z`` given its observed steps; the M-step is
Tipping & Bishop's (their Appendix C: ``mu_k`` the weighted mean, then ``W_k`` and ``sigma_k^2``, computed from
``[N, q]`` latent statistics instead of the ``T x T`` weighted covariance), ``sigma_k^2`` floored at ``min_noise``
(a constrained maximum, so the log-likelihood still never decreases). Unobserved training steps (the padding of
short months; complete days have none) are latent in the same EM, with no filling: the M-step then regresses the
profiles on ``[z, 1]`` (``W_k`` and ``mu_k`` jointly, an exact EM update). EM starts from k-means (scikit-learn,
unobserved steps filled with the step's mean) and the closed-form PPCA of each cluster (:func:`ppca_closed_form`:
``W = U_q (L_q - sigma^2 I)^{1/2}``, ``sigma^2`` the mean discarded eigenvalue of the cluster's covariance), and
stops when the mean log-likelihood per profile gains less than ``tol`` (relative) or after ``max_iter``
iterations. ``q`` is capped at ``T - 1``.
No maintained Python library fits MPPCA (scikit-learn offers ``GaussianMixture`` and single-model ``PCA`` /
``FactorAnalysis``), so the EM is written here with NumPy.

Imputation. For each query profile, the responsibilities of its observed steps' marginal likelihood under every
component's ``N(mu_k, C_k)``; each of the ``S`` draws picks a component from them and draws the missing steps
from that component's conditional Gaussian given the observed steps, in the latent form ``z ~ N(m, sigma^2
M^{-1})``, ``x_M = mu_M + W_M z + sigma e`` (exactly the conditional ``N(mu_M + C_MO C_OO^{-1} e, C_MM - C_MO
C_OO^{-1} C_OM)``). Observed steps are returned exactly, padding as 0; a profile with no observed step is drawn
from the mixture itself.

Profiles. ``quick`` (defaults): ``K = 4`` components of latent dimension ``q = 8``, at most 200 EM iterations,
``tol`` 1e-6; ``test``: ``K = 2``, ``q = 3``, 30 iterations; the paper states no setting, so there is no
``paper`` profile of its own (it equals ``quick``).

Streams. ``MODEL_FIT`` seeds the k-means initialisation; ``MODEL_IMPUTE`` gives the imputation draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from bench.api import Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery

NAME = "mppca-imputer"
LOG_2PI = float(np.log(2.0 * np.pi))


# -- the mixture and its posterior ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PPCAMixture:
    """Parameters of a mixture of probabilistic PCA models (float64).

    Attributes:
        weights: ``[K]`` mixing weights (sum to 1).
        means: ``[K, T]`` component means ``mu_k``.
        loadings: ``[K, T, q]`` factor loadings ``W_k``.
        noise: ``[K]`` isotropic noise variances ``sigma_k^2`` (positive).
    """

    weights: np.ndarray
    means: np.ndarray
    loadings: np.ndarray
    noise: np.ndarray

    def __post_init__(self) -> None:
        k_count, length = np.shape(self.means)
        if np.shape(self.weights) != (k_count,) or np.shape(self.noise) != (k_count,) \
                or np.ndim(self.loadings) != 3 or np.shape(self.loadings)[:2] != (k_count, length):
            raise ValueError(f"weights {np.shape(self.weights)}, means {np.shape(self.means)}, loadings "
                             f"{np.shape(self.loadings)} and noise {np.shape(self.noise)} do not match")
        if not (np.asarray(self.noise) > 0).all():
            raise ValueError("noise variances must be positive")

    @property
    def n_components(self) -> int:
        return int(np.shape(self.means)[0])

    @property
    def length(self) -> int:
        return int(np.shape(self.means)[1])

    @property
    def latent_dim(self) -> int:
        return int(np.shape(self.loadings)[2])

    def covariances(self) -> np.ndarray:
        """``[K, T, T]`` component covariances ``W_k W_k^T + sigma_k^2 I`` (``O(K T^2)`` memory: for checks and
        small ``T``; the model itself never forms them)."""
        eye = np.eye(self.length)
        return np.einsum("ktq,ksq->kts", self.loadings, self.loadings) + self.noise[:, None, None] * eye


@dataclass(frozen=True)
class LatentPosterior:
    """What the observed steps of ``N`` profiles say under each component of a :class:`PPCAMixture`.

    Attributes:
        log_resp: ``[N, K]`` log posterior component probabilities ``log p(k | x_O)``.
        log_likelihood: ``[N]`` ``log p(x_O)`` under the mixture.
        z_mean: ``[K, N, q]`` posterior means ``m = M^{-1} W_O^T (x_O - mu_O)`` of the latent ``z``.
        m_chol: ``[K, P, q, q]`` lower Cholesky factors of ``M = sigma^2 I + W_O^T W_O`` per distinct observed
            pattern (the posterior covariance of ``z`` is ``sigma^2 M^{-1}``).
        m_inv: ``[K, P, q, q]`` the inverses ``M^{-1}``.
        patterns: ``[P, T]`` the distinct observed patterns; ``pattern_of``: ``[N]`` each profile's pattern.
    """

    log_resp: np.ndarray
    log_likelihood: np.ndarray
    z_mean: np.ndarray
    m_chol: np.ndarray
    m_inv: np.ndarray
    patterns: np.ndarray
    pattern_of: np.ndarray


def _checked(mix: PPCAMixture, values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values with unobserved steps 0, observed)`` as float64 / bool ``[N, T]`` after checking shapes."""
    values = np.asarray(values, dtype=np.float64)
    observed = np.asarray(observed, dtype=bool)
    if values.ndim != 2 or observed.shape != values.shape or values.shape[1] != mix.length:
        raise ValueError(f"values and observed must be [N, {mix.length}], got {values.shape} and {observed.shape}")
    values = np.where(observed, values, 0.0)
    if not np.isfinite(values).all():
        raise ValueError("observed values must be finite")
    return values, observed


def observed_patterns(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(patterns [P, T], pattern_of [N])``: the distinct rows of the boolean ``observed [N, T]`` and the index of
    each row's pattern (one pattern without sorting when every step is observed, the usual case of daily
    training profiles; otherwise rows packed to bits before ``np.unique``, eight times fewer bytes to sort)."""
    observed = np.asarray(observed, dtype=bool)
    n, length = observed.shape
    if n and observed.all():
        return np.ones((1, length), dtype=bool), np.zeros(n, dtype=np.int64)
    packed = np.packbits(observed, axis=1)
    _, first, pattern_of = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return observed[first], np.asarray(pattern_of, dtype=np.int64).reshape(-1)


def latent_posterior(mix: PPCAMixture, values: np.ndarray, observed: np.ndarray,
                     patterns: tuple[np.ndarray, np.ndarray] | None = None) -> LatentPosterior:
    """Responsibilities, log-likelihoods and latent posteriors of profiles ``values [N, T]`` observed where
    ``observed [N, T]`` is True (other entries are ignored), in ``O(N K T q)`` plus ``O(P K T q^2)`` for the ``P``
    distinct observed patterns (``patterns``: :func:`observed_patterns` of ``observed`` when already known).

    Raises:
        ValueError: shapes that do not match the mixture, or non-finite observed values.
    """
    x, obs = _checked(mix, values, observed)
    patterns, pattern_of = observed_patterns(obs) if patterns is None else patterns
    n, q = len(x), mix.latent_dim
    n_obs = obs.sum(axis=1)
    eye = np.eye(q)
    log_p = np.empty((n, mix.n_components))
    z_mean = np.empty((mix.n_components, n, q))
    chols = np.empty((mix.n_components, len(patterns), q, q))
    invs = np.empty_like(chols)
    for k in range(mix.n_components):
        w, s2 = mix.loadings[k], float(mix.noise[k])
        # W_O^T W_O per pattern as a batched product (P x q x T by T x q)
        m_mat = s2 * eye + np.swapaxes(patterns[:, :, None] * w[None], 1, 2) @ w
        chols[k] = np.linalg.cholesky(m_mat)
        invs[k] = np.linalg.inv(m_mat)
        invs[k] = 0.5 * (invs[k] + np.swapaxes(invs[k], 1, 2))
        log_det = 2.0 * np.log(np.diagonal(chols[k], axis1=1, axis2=2)).sum(axis=1)  # [P]
        err = np.where(obs, x - mix.means[k], 0.0)
        proj = err @ w  # W_O^T e per profile (err is 0 off O)
        m = proj @ invs[k][0] if len(patterns) == 1 else np.einsum("nqr,nr->nq", invs[k][pattern_of], proj)
        resid = np.where(obs, err - m @ w.T, 0.0)
        # e^T C_OO^{-1} e = |e - W_O m|^2 / sigma^2 + |m|^2 (Woodbury), a sum of squares
        quad = (resid ** 2).sum(axis=1) / s2 + (m ** 2).sum(axis=1)
        with np.errstate(divide="ignore"):  # a component of weight 0: log-probability -inf, responsibility 0
            log_weight = np.log(mix.weights[k])
        log_p[:, k] = log_weight - 0.5 * (n_obs * LOG_2PI + (n_obs - q) * np.log(s2) + log_det[pattern_of]
                                          + quad)
        z_mean[k] = m
    log_lik = logsumexp(log_p, axis=1)
    return LatentPosterior(log_resp=log_p - log_lik[:, None], log_likelihood=log_lik, z_mean=z_mean,
                           m_chol=chols, m_inv=invs, patterns=patterns, pattern_of=pattern_of)


def conditional_means(mix: PPCAMixture, values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(weights [N, K], means [N, K, T])``: each profile's posterior component probabilities given its observed
    steps, and each component's conditional mean of every step (the observed values on observed steps,
    ``mu_k + W_k m`` elsewhere, which equals ``mu_M + C_MO C_OO^{-1} (x_O - mu_O)``)."""
    x, obs = _checked(mix, values, observed)
    post = latent_posterior(mix, x, obs)
    means = mix.means[None] + np.einsum("knq,ktq->nkt", post.z_mean, mix.loadings)
    return np.exp(post.log_resp), np.where(obs[:, None, :], x[:, None, :], means)


# -- fitting ------------------------------------------------------------------------------------------------------
def ppca_closed_form(values: np.ndarray, q: int, weights: np.ndarray | None = None,
                     min_noise: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """The maximum-likelihood PPCA of complete profiles ``values [n, T]`` (Tipping & Bishop 1999, Sec. 3.2):
    ``(mean [T], W [T, q], sigma^2)`` with ``W = U_q (L_q - sigma^2 I)^{1/2}`` and ``sigma^2`` the mean of the
    ``T - q`` discarded eigenvalues of the (optionally ``weights``-weighted, 1/n-normalised) sample covariance,
    floored at ``min_noise``; ``U_q, L_q`` its ``q`` leading eigenvectors and eigenvalues (from an SVD of the
    centred profiles, ``O(n T min(n, T))``).

    Raises:
        ValueError: ``q`` not in ``[1, T - 1]``, no profile, or weights that are negative or sum to 0.
    """
    x = np.asarray(values, dtype=np.float64)
    n, length = x.shape
    if not 1 <= q < length:
        raise ValueError(f"latent dimension must lie in [1, {length - 1}], got {q}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n == 0 or w.shape != (n,) or (w < 0).any() or not w.sum() > 0:
        raise ValueError("ppca_closed_form needs at least one profile and non-negative weights with a positive sum")
    w = w / w.sum()
    mean = w @ x
    scaled = np.sqrt(w)[:, None] * (x - mean)  # scaled^T scaled = the weighted sample covariance
    _, sv, vt = np.linalg.svd(scaled, full_matrices=False)
    eig = np.zeros(length)
    eig[:len(sv)] = sv ** 2
    noise = max(float(eig[q:].sum() / (length - q)), float(min_noise))
    kept = min(q, len(sv))
    loadings = np.zeros((length, q))
    loadings[:, :kept] = vt[:kept].T * np.sqrt(np.maximum(eig[:kept] - noise, 0.0))
    return mean, loadings, noise


def _filled(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Unobserved entries replaced by their step's observed mean (0 for a step nobody observes)."""
    counts = observed.sum(axis=0)
    step_mean = np.where(observed, values, 0.0).sum(axis=0) / np.maximum(counts, 1)
    return np.where(observed, values, step_mean)


def init_mixture(values: np.ndarray, observed: np.ndarray, n_components: int, q: int, seed: int,
                 min_noise: float) -> PPCAMixture:
    """A starting point for EM: k-means clusters (scikit-learn, ``random_state=seed``) of the profiles with
    unobserved steps filled by the step mean, and the closed-form PPCA (:func:`ppca_closed_form`) of each cluster,
    weights the cluster shares.

    Raises:
        ValueError: fewer distinct profiles than components.
    """
    from sklearn.cluster import KMeans

    x = _filled(np.asarray(values, dtype=np.float64), np.asarray(observed, dtype=bool))
    if len(np.unique(x, axis=0)) < n_components:
        raise ValueError(f"{len(np.unique(x, axis=0))} distinct profiles for {n_components} components")
    labels = KMeans(n_clusters=n_components, n_init=3, random_state=seed).fit(x).labels_
    weights, means, loadings, noise = [], [], [], []
    for k in range(n_components):
        members = x[labels == k]
        mean, w, s2 = ppca_closed_form(members, q, min_noise=min_noise)
        weights.append(len(members) / len(x))
        means.append(mean)
        loadings.append(w)
        noise.append(s2)
    return PPCAMixture(np.array(weights), np.array(means), np.array(loadings), np.array(noise))


def _update_complete(x: np.ndarray, r: np.ndarray, n_k: float, w: np.ndarray, s2: float,
                     min_noise: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Tipping & Bishop's (1999, App. C) update of one component from complete profiles ``x [N, T]`` with
    responsibilities ``r``: ``mu`` the weighted mean, then ``W = B A^{-1}`` and ``sigma^2`` from the posterior of
    ``z`` at the new mean (``B = sum r e m^T``, ``A = sum r (sigma^2 M^{-1} + m m^T)``, ``e = x - mu``), i.e.
    ``W = S W (sigma^2 I + M^{-1} W^T S W)^{-1}`` without forming the ``T x T`` covariance ``S``."""
    length, q = w.shape
    mu = (r @ x) / n_k
    err = x - mu
    m_inv = np.linalg.inv(s2 * np.eye(q) + w.T @ w)
    m = err @ w @ m_inv  # [N, q]
    a_mat = s2 * n_k * m_inv + (r[:, None] * m).T @ m
    b_mat = (r[:, None] * err).T @ m  # [T, q]
    w_new = np.linalg.solve(a_mat, b_mat.T).T
    # sum_n r E|e - W z|^2 = sum_n r |e|^2 - tr(W B^T) at the regression solution
    s2_new = ((r[:, None] * err ** 2).sum() - (w_new * b_mat).sum()) / (length * n_k)
    return mu, w_new, max(float(s2_new), float(min_noise))


def _update_with_missing(x: np.ndarray, obs: np.ndarray, r: np.ndarray, n_k: float, mix: PPCAMixture, k: int,
                         post: LatentPosterior, min_noise: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The exact EM update of component ``k`` when some steps are unobserved (they are latent, like ``z``): with
    ``u = [z, 1]`` and ``theta = [W, mu]`` (``[T, q + 1]``), the weighted regression ``theta = B A^{-1}``,
    ``A = sum_n r E[u u^T]``, ``B = sum_n r E[x_n u^T]`` (for an unobserved step ``E[x_d u^T] = theta_d E[u u^T]``
    under the current parameters), then ``sigma^2 = sum_n r E|x_n - theta u|^2 / (T N_k)``."""
    n, length = x.shape
    q = mix.latent_dim
    s2_old = float(mix.noise[k])
    m = post.z_mean[k]  # [N, q]
    patterns, pattern_of = post.patterns, post.pattern_of
    # per-row E[u u^T] = [[s2 M^{-1} + m m^T, m], [m^T, 1]], summed per observed pattern with weights r
    euu = np.zeros((n, q + 1, q + 1))
    euu[:, :q, :q] = s2_old * post.m_inv[k][pattern_of] + m[:, :, None] * m[:, None, :]
    euu[:, :q, q] = euu[:, q, :q] = m
    euu[:, q, q] = 1.0
    per_pattern = np.zeros((len(patterns), q + 1, q + 1))
    np.add.at(per_pattern, pattern_of, r[:, None, None] * euu)
    a_mat = per_pattern.sum(axis=0)
    rx = r[:, None] * np.where(obs, x, 0.0)
    b_mat = rx.T @ np.concatenate([m, np.ones((n, 1))], axis=1)  # observed steps: x_d E[u]^T
    sxx = (rx * x).sum(axis=0)  # sum_n r x_nd^2 over observed steps
    missing = (~patterns).astype(np.float64)  # [P, T]
    theta_old = np.concatenate([mix.loadings[k], mix.means[k][:, None]], axis=1)
    miss_uu = np.einsum("pt,pab->tab", missing, per_pattern)  # [T, q + 1, q + 1]
    b_mat = b_mat + np.einsum("ta,tab->tb", theta_old, miss_uu)
    # E[x_d^2] of an unobserved step: sigma^2 + theta_d E[u u^T] theta_d^T
    mass_missing = missing.T @ np.bincount(pattern_of, r, minlength=len(patterns))
    sxx = sxx + np.einsum("ta,tab,tb->t", theta_old, miss_uu, theta_old) + s2_old * mass_missing
    theta = np.linalg.solve(a_mat, b_mat.T).T  # [T, q + 1]
    # sum_n r E|x - theta u|^2 = sum_d (sxx_d - theta_d B_d^T) at the regression solution
    s2 = (sxx.sum() - (theta * b_mat).sum()) / (length * n_k)
    return theta[:, q], theta[:, :q], max(float(s2), float(min_noise))


def em_step(mix: PPCAMixture, values: np.ndarray, observed: np.ndarray, min_noise: float,
            patterns: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[PPCAMixture, float]:
    """One EM iteration: ``(updated mixture, total log-likelihood of the data under mix)``; the log-likelihood
    never decreases from one iteration to the next.

    E-step: responsibilities ``r_nk`` and the posterior of ``z`` (:func:`latent_posterior`). M-step per component:
    ``pi_k = N_k / N`` (``N_k = sum_n r_nk``); on complete profiles Tipping & Bishop's update
    (:func:`_update_complete`: the weighted mean, then ``W`` and ``sigma^2``), else the exact EM update that also
    treats the unobserved steps as latent (:func:`_update_with_missing`; its mean converges more slowly, hence the
    closed form where it applies); ``sigma_k^2`` floored at ``min_noise`` (a constrained maximum: still no
    decrease). A component with no responsibility mass gets weight 0 and keeps its parameters. ``patterns``:
    :func:`observed_patterns` of ``observed`` when already known.
    """
    x, obs = _checked(mix, values, observed)
    post = latent_posterior(mix, x, obs, patterns)
    resp = np.exp(post.log_resp)
    n = len(x)
    complete = bool(obs.all())
    weights, means = mix.weights.copy(), mix.means.copy()
    loadings, noise = mix.loadings.copy(), mix.noise.copy()
    for k in range(mix.n_components):
        r = resp[:, k]
        n_k = float(r.sum())
        if n_k <= 1e-12 * n:
            weights[k] = 0.0
            continue
        weights[k] = n_k / n
        if complete:
            means[k], loadings[k], noise[k] = _update_complete(x, r, n_k, mix.loadings[k], float(mix.noise[k]),
                                                               min_noise)
        else:
            means[k], loadings[k], noise[k] = _update_with_missing(x, obs, r, n_k, mix, k, post, min_noise)
    return PPCAMixture(weights / weights.sum(), means, loadings, noise), float(post.log_likelihood.sum())


def fit_mppca(values: np.ndarray, observed: np.ndarray, init: PPCAMixture, max_iter: int, tol: float,
              min_noise: float) -> tuple[PPCAMixture, np.ndarray, bool]:
    """EM from ``init``: ``(mixture, history, converged)``. ``history [I + 1]`` holds the mean log-likelihood per
    profile before each of the ``I`` iterations run and after the last; EM stops when an iteration gains less than
    ``tol * |log-likelihood|`` (``converged``) or after ``max_iter`` iterations.

    Raises:
        ModelFitError: non-finite parameters or log-likelihood.
    """
    n = len(values)
    mix, history = init, []
    converged = False
    patterns = observed_patterns(observed)  # the same every iteration
    for _ in range(max_iter):
        new, total = em_step(mix, values, observed, min_noise, patterns)
        history.append(total / n)
        if not np.isfinite(history[-1]) or not all(np.isfinite(a).all() for a in
                                                   (new.weights, new.means, new.loadings, new.noise)):
            raise ModelFitError(f"{NAME}: EM produced non-finite values at iteration {len(history)}")
        mix = new
        if len(history) > 1 and history[-1] - history[-2] < tol * abs(history[-2]):
            converged = True
            break
    final = latent_posterior(mix, values, observed, patterns).log_likelihood.sum() / n
    if not np.isfinite(final):
        raise ModelFitError(f"{NAME}: EM produced a non-finite log-likelihood")
    history.append(float(final))
    if not converged and len(history) > 1 and history[-1] - history[-2] < tol * abs(history[-2]):
        converged = True
    return mix, np.array(history), converged


# -- the model ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MPPCAParams(Params):
    """Hyper-parameters of :class:`MPPCAImputer`.

    Attributes:
        n_components: mixture components ``K``.
        latent_dim: latent dimension ``q`` of every component (capped at ``T - 1``).
        max_iter: EM iterations at most.
        tol: EM stops when the mean log-likelihood gains less than ``tol`` times its size.
        min_noise: floor of every ``sigma_k^2`` (scaled units squared; 1e-6 is a standard deviation of 0.05 % of
            the [-1, 1] range).
    """

    n_components: int = 4
    latent_dim: int = 8
    max_iter: int = 200
    tol: float = 1e-6
    min_noise: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("n_components", "latent_dim", "max_iter"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        if not (np.isfinite(self.min_noise) and self.min_noise > 0):
            raise ValueError(f"min_noise must be a positive number, got {self.min_noise!r}")


@register_model(NAME)
class MPPCAImputer(Model, Imputer):
    """Mixture of probabilistic PCA (EM), imputing by conditional Gaussian draws; the unified paper's C2 role.
    See the module docstring."""

    Params = MPPCAParams
    profiles = {"test": {"n_components": 2, "latent_dim": 3, "max_iter": 30}}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.weights_: np.ndarray | None = None  # [K]
        self.means_: np.ndarray | None = None  # [K, T]
        self.loadings_: np.ndarray | None = None  # [K, T, q]
        self.noise_: np.ndarray | None = None  # [K]
        self.log_likelihood_: np.ndarray | None = None  # EM history, mean per profile
        self.converged_ = False

    @property
    def mixture(self) -> PPCAMixture:
        """The fitted :class:`PPCAMixture`.

        Raises:
            RuntimeError: before ``fit``.
        """
        if self.weights_ is None:
            raise RuntimeError(f"{NAME}: call fit() before impute()")
        return PPCAMixture(self.weights_, self.means_, self.loadings_, self.noise_)

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Fit the mixture by EM on the observed (valid) steps of ``train``'s profiles.

        Raises:
            ValueError: an empty or non-2-D set, non-finite observed values, or profiles of one step.
            ModelFitError: fewer distinct profiles than components, or EM producing non-finite values.
        """
        self.weights_ = self.means_ = self.loadings_ = self.noise_ = self.log_likelihood_ = None
        self.converged_ = False
        values, mask = np.asarray(train.values, dtype=np.float64), np.asarray(train.mask, dtype=bool)
        if values.ndim != 2 or values.shape[0] == 0 or mask.shape != values.shape:
            raise ValueError(f"{NAME}: training set {train.name!r} must hold [N, T] values and mask, got "
                             f"{values.shape} and {mask.shape}")
        if values.shape[1] < 2:
            raise ValueError(f"{NAME}: profiles of {values.shape[1]} step cannot have a latent subspace")
        if not np.isfinite(values[mask]).all():
            raise ValueError(f"{NAME}: training set {train.name!r} holds non-finite observed values")
        keep = mask.any(axis=1)
        values, mask = values[keep], mask[keep]
        q = min(self.latent_dim, values.shape[1] - 1)
        try:
            init = init_mixture(values, mask, self.n_components, q, ctx.int_seed(Stream.MODEL_FIT, bits=31),
                                self.min_noise)
        except ValueError as err:
            raise ModelFitError(f"{NAME}: {err}") from None
        mix, history, converged = fit_mppca(values, mask, init, self.max_iter, self.tol, self.min_noise)
        self.weights_, self.means_, self.loadings_, self.noise_ = mix.weights, mix.means, mix.loadings, mix.noise
        self.log_likelihood_, self.converged_ = history, converged

    def diagnostics(self) -> dict[str, float]:
        """``em_iterations``, ``em_converged`` (1/0), ``log_likelihood`` (mean per training profile, scaled space),
        ``latent_dim``, ``min_weight`` and ``min_noise_var`` of the fitted mixture; ``{}`` before a fit."""
        if self.weights_ is None:
            return {}
        return {"em_iterations": float(len(self.log_likelihood_) - 1), "em_converged": float(self.converged_),
                "log_likelihood": float(self.log_likelihood_[-1]), "latent_dim": float(self.loadings_.shape[2]),
                "min_weight": float(self.weights_.min()), "min_noise_var": float(self.noise_.min())}

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 draws from each profile's conditional mixture (see the module docstring):
        observed steps exactly as given, padding 0.

        Raises:
            RuntimeError: before ``fit``.
            ValueError: ``n_samples`` not a positive integer, or profiles of another length than trained on.
        """
        mix = self.mixture
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"{NAME}: n_samples must be a positive integer, got {n_samples!r}")
        if query.values.shape[1] != mix.length:
            raise ValueError(f"{NAME}: the query has profiles of {query.values.shape[1]} steps, the model was "
                             f"fitted on {mix.length}")
        observed = np.asarray(query.observed, dtype=bool) & np.asarray(query.valid, dtype=bool)
        values = np.where(observed, np.asarray(query.values, dtype=np.float64), 0.0)
        n, length = values.shape
        n_samples = int(n_samples)
        if n == 0:
            return np.zeros((n_samples, 0, length), dtype=np.float32)
        post = latent_posterior(mix, values, observed)
        q = mix.latent_dim
        # every draw up front, in one fixed order, from the imputation stream
        rng = ctx.rng(Stream.MODEL_IMPUTE)
        u = rng.random((n_samples, n))
        eps_z = rng.standard_normal((n_samples, n, q))
        eps_x = rng.standard_normal((n_samples, n, length))
        cdf = np.cumsum(np.exp(post.log_resp), axis=1)
        comp = np.minimum((u[:, :, None] > cdf[None] / cdf[:, -1:][None]).sum(axis=2), mix.n_components - 1)
        out = np.zeros((n_samples, n, length))
        for k in range(mix.n_components):
            chosen = comp == k
            if not chosen.any():
                continue
            sigma = np.sqrt(mix.noise[k])
            # z = m + sigma L^{-T} eps has covariance sigma^2 (L L^T)^{-1} = sigma^2 M^{-1}
            chol_t = np.swapaxes(post.m_chol[k][post.pattern_of], 1, 2)  # [N, q, q]
            z = post.z_mean[k][None] + sigma * np.linalg.solve(chol_t[None], eps_z[..., None])[..., 0]
            draw = mix.means[k] + z @ mix.loadings[k].T + sigma * eps_x
            out = np.where(chosen[:, :, None], draw, out)
        out = np.where(observed[None], values[None], out)
        out = np.where(np.asarray(query.valid, dtype=bool)[None], out, 0.0)
        return out.astype(np.float32)
