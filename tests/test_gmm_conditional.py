"""GMM imputation and super-resolution: the conditioning formula against independent references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from baselines.gmm import block_mean_matrix, condition_mixture, selection_matrix
from bench.context import RunContext
from bench.data.profileset import META_COLUMNS, ProfileSet
from bench.errors import ModelFitError
from bench.registry import get_model
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery

T = 24


def random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    b = rng.standard_normal((d, d))
    return b @ b.T / d + 0.1 * np.eye(d)


def meta(n: int) -> pd.DataFrame:
    return pd.DataFrame({c: np.zeros(n, dtype=int) for c in META_COLUMNS})


def sine_days(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sine-shaped days with random amplitude and phase plus small noise, within about [-1, 1]."""
    t = np.arange(T) / T
    amp = rng.uniform(0.3, 0.8, (n, 1))
    shift = rng.uniform(-0.25, 0.25, (n, 1))
    return (amp * np.sin(2 * np.pi * (t - shift)) + 0.02 * rng.standard_normal((n, T))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    train, test = sine_days(500, rng), sine_days(60, rng)
    models = {}
    for name, overrides in (("gmm", None), ("gmm-pca", {"n_pca": 8})):
        model = get_model(name).build("quick", overrides)
        model.fit(ProfileSet(values=train, mask=np.ones(train.shape, bool), meta=meta(len(train)),
                             resolution=60, period="day", name="toy"), RunContext(seed=0))
        models[name] = model
    return models, test


def test_single_gaussian_matches_schur_complement():
    rng = np.random.default_rng(1)
    d = 6
    mu, cov = rng.standard_normal(d), random_spd(rng, d)
    A = rng.standard_normal((3, d))
    y, r = rng.standard_normal(3), 0.05
    post = condition_mixture(np.ones(1), mu[None], cov[None], A, y, noise_var=r)
    # joint Gaussian of (x, y) and the Schur complement of its y-block
    joint = np.block([[cov, cov @ A.T], [A @ cov, A @ cov @ A.T + r * np.eye(3)]])
    s_xy, s_yy = joint[:d, d:], joint[d:, d:]
    mean_ref = mu + s_xy @ np.linalg.inv(s_yy) @ (y - A @ mu)
    cov_ref = cov - s_xy @ np.linalg.inv(s_yy) @ s_xy.T
    np.testing.assert_allclose(post.weights, [1.0])
    np.testing.assert_allclose(post.means[0], mean_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(post.covariances()[0], cov_ref, rtol=1e-9, atol=1e-12)
    # selection without noise: the textbook partitioned formula on the unobserved coordinates
    obs, mis = np.array([0, 3]), np.array([1, 2, 4, 5])
    post = condition_mixture(np.ones(1), mu[None], cov[None], selection_matrix(obs, d), y[:2])
    reg = cov[np.ix_(mis, obs)] @ np.linalg.inv(cov[np.ix_(obs, obs)])
    np.testing.assert_allclose(post.means[0, mis], mu[mis] + reg @ (y[:2] - mu[obs]), atol=1e-12)
    np.testing.assert_allclose(post.means[0, obs], y[:2], atol=1e-12)
    np.testing.assert_allclose(post.covariances()[0][np.ix_(mis, mis)],
                               cov[np.ix_(mis, mis)] - reg @ cov[np.ix_(obs, mis)], atol=1e-12)
    # pathwise draws have the posterior moments
    draws = post.sample(40_000, np.random.default_rng(2))
    np.testing.assert_allclose(draws.mean(0), post.means[0], atol=0.03)
    np.testing.assert_allclose(np.cov(draws.T), post.covariances()[0], atol=0.03)


def test_mixture_weights_against_direct_density():
    rng = np.random.default_rng(3)
    d = 5
    w = np.array([0.3, 0.7])
    means = rng.standard_normal((2, d))
    covs = np.stack([random_spd(rng, d), random_spd(rng, d)])
    A, y, r = rng.standard_normal((2, d)), np.array([0.4, -1.0]), 0.01
    post = condition_mixture(w, means, covs, A, y, noise_var=r)
    dens = np.array([w[k] * stats.multivariate_normal(A @ means[k], A @ covs[k] @ A.T + r * np.eye(2)).pdf(y)
                     for k in range(2)])
    np.testing.assert_allclose(post.weights, dens / dens.sum(), rtol=1e-10)
    # nothing observed: the prior comes back
    empty = condition_mixture(w, means, covs, np.zeros((0, d)), np.zeros(0))
    np.testing.assert_allclose(empty.weights, w)
    with pytest.raises(ValueError):
        condition_mixture(w, means, covs, A, y, noise_var=-1.0)


def test_imputation_beats_linear_interpolation(fitted):
    models, test = fitted
    rng = np.random.default_rng(4)
    observed = rng.random(test.shape) < 0.35
    observed[:, [0, -1]] = True  # interpolation needs both ends
    query = ImputationQuery(np.where(observed, test, np.nan).astype(np.float32), observed,
                            np.ones(test.shape, bool), meta(len(test)), 60)
    linear = np.array([np.interp(np.arange(T), np.flatnonzero(o), v[o]) for o, v in zip(observed, test)])
    rmse_lin = np.sqrt(np.mean((linear - test)[~observed] ** 2))
    for name, model in models.items():
        samples = model.impute(query, 30, RunContext(seed=5))
        assert samples.shape == (30, len(test), T) and samples.dtype == np.float32
        np.testing.assert_array_equal(samples[:, observed], np.broadcast_to(test[observed], (30, observed.sum())))
        rmse = np.sqrt(np.mean((np.median(samples, 0) - test)[~observed] ** 2))
        assert rmse < 0.8 * rmse_lin, (name, rmse, rmse_lin)
        again = model.impute(query, 30, RunContext(seed=5))
        np.testing.assert_array_equal(samples, again)


def test_padding_is_zero_and_unobserved(fitted):
    models, test = fitted
    valid = np.ones(test[:4].shape, bool)
    valid[:, -6:] = False  # a "short month" tail
    observed = valid & (np.arange(T) % 3 == 0)
    query = ImputationQuery(np.where(observed, test[:4], np.nan).astype(np.float32), observed, valid, meta(4), 60)
    samples = models["gmm"].impute(query, 5, RunContext())
    assert (samples[:, ~valid] == 0).all() and np.isfinite(samples).all()
    low = test[:4].reshape(4, -1, 3).mean(-1)
    low[:, -2:] = 0.0
    sr = models["gmm-pca"].super_resolve(SuperResolutionQuery(low, 3, valid, meta(4), 60), 5, RunContext())
    assert (sr[:, ~valid] == 0).all()
    np.testing.assert_allclose(sr.reshape(5, 4, -1, 3).mean(-1)[..., :-2], np.broadcast_to(low[:, :-2], (5, 4, 6)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        models["gmm"].impute(ImputationQuery(query.values[:, :12], observed[:, :12], valid[:, :12], meta(4), 60),
                             2, RunContext())


@pytest.mark.parametrize("factor", [2, 4])
def test_super_resolution_reproduces_block_means(fitted, factor):
    models, test = fitted
    low = test.reshape(len(test), -1, factor).mean(-1)
    query = SuperResolutionQuery(low, factor, np.ones(test.shape, bool), meta(len(test)), 60)
    flat = np.repeat(low, factor, axis=1)
    for name, model in models.items():
        samples = model.super_resolve(query, 20, RunContext(seed=1))
        np.testing.assert_allclose(samples.reshape(20, len(test), -1, factor).mean(-1),
                                   np.broadcast_to(low, (20, *low.shape)), atol=2e-6)
        rmse = np.sqrt(np.mean((np.median(samples, 0) - test) ** 2))
        assert rmse < np.sqrt(np.mean((flat - test) ** 2)), name


def test_block_mean_matrix_drops_padding_blocks():
    valid = np.array([1, 1, 1, 0, 0, 0], bool)
    A, blocks = block_mean_matrix(valid, 2)
    np.testing.assert_array_equal(blocks, [0, 1])
    np.testing.assert_allclose(A, [[0.5, 0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]])


def test_unfitted_raises_and_a_degenerate_fit_still_conditions():
    model = get_model("gmm").build("quick")
    query = SuperResolutionQuery(np.zeros((1, 12)), 2, np.ones((1, T), bool), meta(1), 60)
    with pytest.raises(RuntimeError, match="fit"):
        model.super_resolve(query, 3, RunContext())
    # 30 days for 10 full-covariance components in 24 dimensions: every component is singular and only
    # reg_covar keeps it positive definite. The fit is kept (as in the EnergyDiff code) and reported.
    rng = np.random.default_rng(6)
    few, test = sine_days(30, rng), sine_days(4, rng)
    model.fit(ProfileSet(values=few, mask=np.ones(few.shape, bool), meta=meta(30), resolution=60,
                         period="day", name="few"), RunContext())
    diag = model.diagnostics()
    assert diag["singular_mass"] > 0.5 and diag["singular_components"] >= 1
    # conditioning, imputation and scoring still work on the degenerate mixture
    low = test.reshape(4, T // 2, 2).mean(axis=2)
    query = SuperResolutionQuery(low, 2, np.ones((4, T), bool), meta(4), 60)
    draws = model.super_resolve(query, 3, RunContext())
    assert draws.shape == (3, 4, T) and np.isfinite(draws).all()
    np.testing.assert_allclose(draws.reshape(3, 4, T // 2, 2).mean(axis=3), np.broadcast_to(low, (3, 4, T // 2)),
                               atol=1e-5)
    observed = np.ones((4, T), bool)
    observed[:, 5:12] = False
    values = np.where(observed, test, np.nan).astype(np.float32)
    imputed = model.impute(ImputationQuery(values, observed, np.ones((4, T), bool), meta(4), 60), 3, RunContext())
    assert np.isfinite(imputed).all()
    np.testing.assert_array_equal(imputed[:, observed], np.broadcast_to(test[observed], (3, observed.sum())))
    # a computation that fails still fails: without reg_covar the collapsed components have no covariance
    bare = get_model("gmm").build("quick", {"reg_covar": 0.0})
    with pytest.raises(ModelFitError, match="EM failed"):
        bare.fit(ProfileSet(values=few, mask=np.ones(few.shape, bool), meta=meta(30), resolution=60,
                            period="day", name="few"), RunContext())
    with pytest.raises(RuntimeError, match="fit"):
        bare.super_resolve(query, 3, RunContext())