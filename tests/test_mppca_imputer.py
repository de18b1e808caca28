"""The mixture-of-PPCA imputer: EM against closed forms (Tipping & Bishop's PPCA, Gaussian conditioning), its
draws, and that it imputes block gaps of daily shapes better than interpolation and the training mean."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal

import metrics
from baselines.mppca_imputer import (MPPCAImputer, PPCAMixture, conditional_means, em_step, fit_mppca,
                                     init_mixture, latent_posterior, observed_patterns, ppca_closed_form)
from baselines.naive_tasks import LinearInterp
from bench.context import RunContext
from bench.data.scaling import MinMaxScaler
from bench.errors import ModelFitError
from bench.registry import get_model
from bench.tasks.masking import observed_mask
from bench.tasks.queries import ImputationQuery
from tests.conftest import daily_set, sine_days
from tests.model_contract import GlobalMeanBaseline, tiny_profiles

CTX = RunContext(seed=0)
SMALL = {"n_components": 3, "latent_dim": 3, "max_iter": 100}


def low_rank_toy(n: int, length: int = 8, seed: int = 0) -> np.ndarray:
    """``[n, length]`` profiles from three clusters, each a mean plus two factors plus noise (values ~[-1, 1])."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    centres = np.stack([0.5 * np.sin(2 * np.pi * (t + s)) for s in (0.0, 0.3, 0.6)])
    label = rng.integers(0, 3, n)
    factors = rng.normal(0, 0.3, (3, 2, length))
    z = rng.standard_normal((n, 2))
    return centres[label] + np.einsum("nq,nqt->nt", z, factors[label]) + 0.05 * rng.standard_normal((n, length))


def query_of(values: np.ndarray, observed: np.ndarray, valid: np.ndarray | None = None) -> ImputationQuery:
    valid = np.ones(values.shape, dtype=bool) if valid is None else valid
    meta = pd.DataFrame({"series_id": [f"S{i}" for i in range(len(values))]})
    return ImputationQuery(values=np.where(observed, values, np.nan).astype(np.float32), observed=observed,
                           valid=valid, meta=meta, resolution=1440 // values.shape[1])


def hand_mixture(length: int = 6, q: int = 2, seed: int = 1) -> PPCAMixture:
    """Two well-separated components with random loadings."""
    rng = np.random.default_rng(seed)
    return PPCAMixture(weights=np.array([0.3, 0.7]), means=rng.normal(0, 0.5, (2, length)),
                       loadings=rng.normal(0, 0.4, (2, length, q)), noise=np.array([0.02, 0.05]))


# -- EM ------------------------------------------------------------------------------------------------------------
def test_em_log_likelihood_never_decreases_with_and_without_unobserved_steps():
    x = low_rank_toy(300)
    complete = np.ones(x.shape, dtype=bool)
    padded = complete.copy()
    padded[:80, 6:] = False  # a short-month-like padding on two patterns
    padded[80:120, 7:] = False
    for observed in (complete, padded):
        init = init_mixture(x, observed, 3, 2, seed=0, min_noise=1e-6)
        _, history, _ = fit_mppca(x, observed, init, max_iter=80, tol=0.0, min_noise=1e-6)
        assert len(history) == 81
        drops = -np.diff(history) / np.abs(history[:-1])
        assert drops.max() <= 1e-8, drops.max()
        assert history[-1] > history[0] + 1e-3  # EM did move from k-means + per-cluster PPCA
    # the model records the same history
    model = MPPCAImputer(**SMALL)
    model.fit(daily_set(x.astype(np.float32), padded), CTX)
    drops = -np.diff(model.log_likelihood_) / np.abs(model.log_likelihood_[:-1])
    assert drops.max() <= 1e-8 and model.diagnostics()["em_iterations"] >= 2


def test_observed_patterns_group_identical_rows():
    observed = np.random.default_rng(0).random((50, 19)) > 0.5  # 19 steps: packed rows end in a partial byte
    observed[10:20] = observed[0]
    patterns, pattern_of = observed_patterns(observed)
    assert len(patterns) == 40 and len(np.unique(patterns, axis=0)) == 40  # rows 0, 1-9, 20-49
    np.testing.assert_array_equal(patterns[pattern_of], observed)
    patterns, pattern_of = observed_patterns(np.ones((4, 3), dtype=bool))
    np.testing.assert_array_equal(patterns, [[True] * 3])
    np.testing.assert_array_equal(pattern_of, [0] * 4)


def test_em_step_reports_the_log_likelihood_of_its_input():
    x = low_rank_toy(100)
    observed = np.random.default_rng(3).random(x.shape) > 0.2
    mix = init_mixture(x, observed, 2, 2, seed=0, min_noise=1e-6)
    _, total = em_step(mix, x, observed, 1e-6)
    # the same number from dense Gaussians on each profile's observed steps
    expected = 0.0
    covs = mix.covariances()
    for row, obs in zip(x, observed):
        dens = [mix.weights[k] * multivariate_normal(mix.means[k][obs], covs[k][np.ix_(obs, obs)]).pdf(row[obs])
                for k in range(2)]
        expected += np.log(sum(dens))
    assert total == pytest.approx(expected, rel=1e-10)


# -- closed forms -----------------------------------------------------------------------------------------------------
def _eig_ppca(x: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    """Tipping & Bishop's ML covariance from numpy's eigendecomposition of the (1/N) sample covariance."""
    cov = np.cov(x.T, bias=True)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = lam[::-1], vec[:, ::-1]
    noise = lam[q:].mean()
    w = vec[:, :q] * np.sqrt(lam[:q] - noise)
    return w @ w.T + noise * np.eye(len(cov)), float(noise)


def test_ppca_closed_form_matches_the_eigendecomposition():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 7)) @ rng.standard_normal((7, 7)) * 0.3
    for q in (1, 3):
        cov, noise = _eig_ppca(x, q)
        mean, w, s2 = ppca_closed_form(x, q)
        np.testing.assert_allclose(mean, x.mean(axis=0), atol=1e-12)
        assert s2 == pytest.approx(noise, rel=1e-10)
        np.testing.assert_allclose(w @ w.T + s2 * np.eye(7), cov, atol=1e-10)
    # q = T - 1: W W^T + sigma^2 I is the sample covariance itself
    _, w, s2 = ppca_closed_form(x, 6)
    np.testing.assert_allclose(w @ w.T + s2 * np.eye(7), np.cov(x.T, bias=True), atol=1e-10)
    with pytest.raises(ValueError, match="latent dimension"):
        ppca_closed_form(x, 7)


def test_one_component_fit_is_the_ppca_closed_form():
    rng = np.random.default_rng(1)
    length, q = 6, 2
    x = 0.5 + rng.standard_normal((500, q)) @ (rng.standard_normal((q, length)) * [[1.0], [0.6]]) \
        + 0.2 * rng.standard_normal((500, length))
    cov, noise = _eig_ppca(x, q)
    # EM from a random start converges to the closed form (PPCA's likelihood has no other local maximum)
    start = PPCAMixture(np.ones(1), x.mean(axis=0)[None] + 0.3, rng.standard_normal((1, length, q)), np.ones(1))
    mix, history, converged = fit_mppca(x, np.ones(x.shape, dtype=bool), start, 5000, 0.0, 1e-9)
    assert converged and len(history) > 20
    # EM's last steps gain less than float64 resolves: agreement to ~1e-6 relative is what it reaches
    np.testing.assert_allclose(mix.covariances()[0], cov, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mix.means[0], x.mean(axis=0), atol=1e-10)
    assert mix.noise[0] == pytest.approx(noise, rel=1e-5)
    # the model with K = 1 (k-means start = the closed form, a fixed point of EM); q = T - 1 gives the sample
    # covariance
    x32 = x.astype(np.float32).astype(np.float64)  # what a ProfileSet holds
    for latent, expected in ((q, _eig_ppca(x32, q)[0]), (length - 1, np.cov(x32.T, bias=True))):
        model = MPPCAImputer(n_components=1, latent_dim=latent, max_iter=50, min_noise=1e-9)
        model.fit(daily_set(x32), CTX)
        np.testing.assert_allclose(model.mixture.covariances()[0], expected, atol=1e-6)
    # a latent dimension above T - 1 is capped
    model = MPPCAImputer(n_components=1, latent_dim=50, max_iter=5)
    model.fit(daily_set(x32), CTX)
    assert model.loadings_.shape == (1, length, length - 1)


def test_em_with_unobserved_steps_reaches_the_maximum_likelihood():
    """With steps missing at random, EM's fixed point is the maximum of the observed-data likelihood, here found
    independently by a quasi-Newton search over (mu, W, log sigma^2) of one PPCA."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    length, q = 4, 1
    x = 0.3 + rng.standard_normal((300, q)) @ rng.normal(0, 0.8, (q, length)) \
        + 0.3 * rng.standard_normal((300, length))
    observed = rng.random(x.shape) > 0.3
    observed[:, 0] |= ~observed.any(axis=1)

    def mixture(theta: np.ndarray) -> PPCAMixture:
        return PPCAMixture(np.ones(1), theta[None, :length], theta[None, length:2 * length, None],
                           np.exp(theta[None, -1]))

    def neg_log_lik(theta: np.ndarray) -> float:
        return -latent_posterior(mixture(theta), x, observed).log_likelihood.sum()

    start = np.concatenate([np.zeros(length), 0.1 * np.ones(length), [0.0]])
    best = minimize(neg_log_lik, start, method="BFGS", options={"gtol": 1e-8})
    mix, history, _ = fit_mppca(x, observed, mixture(start), 20000, 1e-14, 1e-9)
    assert history[-1] * len(x) == pytest.approx(-best.fun, abs=1e-5)
    np.testing.assert_allclose(mix.covariances()[0], mixture(best.x).covariances()[0], atol=1e-3)
    np.testing.assert_allclose(mix.means[0], best.x[:length], atol=1e-3)


def test_conditional_means_and_weights_match_dense_gaussian_conditioning():
    mix = hand_mixture()
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.6, (5, 6))
    observed = rng.random((5, 6)) > 0.45
    observed[0] = [True, True, False, False, True, False]
    observed[1] = False  # nothing observed: the prior weights and means
    weights, means = conditional_means(mix, x, observed)
    covs = mix.covariances()
    for n in range(5):
        o, m = observed[n], ~observed[n]
        log_w = np.array([np.log(mix.weights[k]) + (multivariate_normal(mix.means[k][o], covs[k][np.ix_(o, o)])
                                                     .logpdf(x[n, o]) if o.any() else 0.0) for k in range(2)])
        np.testing.assert_allclose(weights[n], np.exp(log_w - np.logaddexp.reduce(log_w)), rtol=1e-9)
        for k in range(2):
            expected = mix.means[k].copy()
            if o.any():
                expected[m] += covs[k][np.ix_(m, o)] @ np.linalg.solve(covs[k][np.ix_(o, o)],
                                                                       x[n, o] - mix.means[k][o])
            expected[o] = x[n, o]
            np.testing.assert_allclose(means[n, k], expected, atol=1e-10)
    np.testing.assert_allclose(weights[1], mix.weights)
    post = latent_posterior(mix, x, observed)
    assert post.log_likelihood[1] == pytest.approx(0.0, abs=1e-12)


def test_draws_follow_the_conditional_gaussian():
    """With one component, the draws' mean and covariance on the missing steps are the Gaussian conditional's."""
    full = hand_mixture(length=6, q=2)
    mix = PPCAMixture(np.ones(1), full.means[:1], full.loadings[:1], full.noise[:1])
    model = MPPCAImputer(n_components=1, latent_dim=2)
    model.weights_, model.means_, model.loadings_, model.noise_ = mix.weights, mix.means, mix.loadings, mix.noise
    x = np.array([[0.3, -0.2, 0.0, 0.0, 0.5, 0.0]])
    observed = np.array([[True, True, False, False, True, False]])
    draws = model.impute(query_of(x, observed), 20000, CTX)[:, 0].astype(np.float64)
    cov = mix.covariances()[0]
    o, m = observed[0], ~observed[0]
    gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = mix.means[0][m] + gain @ (x[0, o] - mix.means[0][o])
    cond_cov = cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)]
    np.testing.assert_allclose(draws[:, m].mean(axis=0), mean, atol=4 * np.sqrt(cond_cov.diagonal().max() / 20000))
    np.testing.assert_allclose(np.cov(draws[:, m].T), cond_cov, atol=0.05 * cond_cov.diagonal().max())
    np.testing.assert_array_equal(draws[:, o], np.broadcast_to(x[0, o].astype(np.float32), (20000, 3)))


def test_draws_pick_components_by_their_posterior_weights():
    """The draws' mean is the weighted mean of the components' conditional means (it would be one component's
    mean if draws ignored the weights)."""
    mix = hand_mixture(length=6, q=2)
    model = MPPCAImputer(n_components=2, latent_dim=2)
    model.weights_, model.means_, model.loadings_, model.noise_ = mix.weights, mix.means, mix.loadings, mix.noise
    x = np.array([[0.0] * 6, 0.5 * mix.means[0] + 0.5 * mix.means[1]])
    observed = np.array([[False] * 6, [True, False, False, True, False, False]])
    weights, means = conditional_means(mix, x, observed)
    assert weights.min() > 0.05  # both components matter for both profiles
    draws = model.impute(query_of(x, observed), 20000, CTX).astype(np.float64)
    expected = np.einsum("nk,nkt->nt", weights, means)
    spread = np.sqrt(mix.covariances().diagonal(axis1=1, axis2=2).max() + np.ptp(mix.means, axis=0).max() ** 2)
    np.testing.assert_allclose(draws.mean(axis=0), expected, atol=5 * spread / np.sqrt(20000))


# -- the model -------------------------------------------------------------------------------------------------------
def test_registered_with_profiles():
    spec = get_model("mppca-imputer")
    assert spec.capabilities == frozenset({"impute"}) and spec.cls.learns
    assert spec.config("quick")["n_components"] == 4 and spec.config("quick")["latent_dim"] == 8
    assert spec.config("paper") == spec.config("quick")  # the paper states no setting of its C2 model
    for profile in ("test", "quick", "paper"):
        spec.build(profile)


def _block_problem(seed: int = 0, kind: str = "sine", fraction: float = 0.3):
    """Daily profiles with one block of ``fraction`` hidden: ``"sine"`` days (random amplitude and phase: a rank-2
    family plus noise) or the contract test's households (a level per household, two daily peaks, a weekend
    shift, two tariffs), scaled to [-1, 1] on train."""
    rng = np.random.default_rng(seed)
    if kind == "sine":
        train, real = daily_set(sine_days(300, rng, length=24)), sine_days(60, rng, length=24)
    else:
        profiles = tiny_profiles()
        order = rng.permutation(len(profiles))
        scaler = MinMaxScaler.fit(profiles.subset(order[:200]))
        train, real = scaler.apply(profiles.subset(order[:200])), scaler.apply(profiles.subset(order[200:])).values
    valid = np.ones(real.shape, dtype=bool)
    observed = observed_mask(valid, "block", fraction, np.random.default_rng(seed + 1))
    return train, real, query_of(real, observed)


@pytest.mark.parametrize("kind, fraction", [("sine", 0.3), ("households", 0.5)])
def test_beats_linear_interpolation_and_the_training_mean_on_block_gaps(kind, fraction):
    train, real, query = _block_problem(kind=kind, fraction=fraction)
    hidden = ~query.observed
    model = MPPCAImputer(n_components=2, latent_dim=3, max_iter=100)
    start = time.perf_counter()
    model.fit(train, CTX)
    draws = model.impute(query, 20, CTX)
    seconds = time.perf_counter() - start
    ours = metrics.mae(real, np.median(draws, axis=0), mask=hidden)
    ours_crps = metrics.crps_ensemble(real, draws, mask=hidden)
    interp = LinearInterp()
    interp.fit(train, CTX)
    interp_mae = metrics.mae(real, interp.impute(query, 1, CTX)[0], mask=hidden)
    mean = GlobalMeanBaseline()
    mean.fit(train, CTX)
    mean_draws = mean.impute(query, 20, CTX)
    mean_mae = metrics.mae(real, np.median(mean_draws, axis=0), mask=hidden)
    mean_crps = metrics.crps_ensemble(real, mean_draws, mask=hidden)
    print(f"{kind} block-{fraction:.0%} MAE: mppca {ours:.4f}, linear-interp {interp_mae:.4f}, "
          f"global mean {mean_mae:.4f}; CRPS: mppca {ours_crps:.4f}, global mean {mean_crps:.4f}; "
          f"fit + impute {seconds:.2f} s")
    assert ours < 0.5 * interp_mae, (ours, interp_mae)
    assert ours < 0.3 * mean_mae and ours_crps < 0.3 * mean_crps, (ours, mean_mae, ours_crps, mean_crps)


def test_keeps_observed_steps_and_zeroes_padding():
    rng = np.random.default_rng(4)
    values = sine_days(40, rng, length=24)
    valid = np.ones(values.shape, dtype=bool)
    valid[::3, 20:] = False  # padding on some profiles, in training and in the query
    model = MPPCAImputer(**SMALL)
    model.fit(daily_set(values, valid), CTX)
    observed = valid & (rng.random(values.shape) > 0.5)
    observed[5] = False  # a profile with nothing observed is drawn from the mixture
    out = model.impute(query_of(values, observed, valid), 7, CTX)
    assert out.shape == (7, 40, 24) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, observed], np.broadcast_to(values[observed], (7, observed.sum())))
    assert (out[:, ~valid] == 0).all()
    assert np.ptp(out[:, 5], axis=0).min() > 0  # the draws differ at every step of the unobserved profile


def test_deterministic_given_the_seed_and_round_trips(tmp_path):
    train, _, query = _block_problem(seed=5)
    first, again = MPPCAImputer(**SMALL), MPPCAImputer(**SMALL)
    first.fit(train, CTX)
    again.fit(train, CTX)
    for name in ("weights_", "means_", "loadings_", "noise_", "log_likelihood_"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    out = first.impute(query, 5, CTX)
    np.testing.assert_array_equal(again.impute(query, 5, CTX), out)
    assert not np.array_equal(first.impute(query, 5, RunContext(seed=1)), out)  # draws come from the seed
    loaded = MPPCAImputer.load(first.save(tmp_path / "mppca.pt"))
    assert loaded.params == first.params and loaded.diagnostics() == first.diagnostics()
    np.testing.assert_array_equal(loaded.impute(query, 5, CTX), out)


@pytest.mark.parametrize("bad", [{"n_components": 0}, {"latent_dim": 0}, {"max_iter": 0}, {"tol": -1.0},
                                 {"min_noise": 0.0}])
def test_rejects_bad_parameters(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MPPCAImputer(**bad)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(6)
    values = sine_days(20, rng, length=12)
    query = query_of(values, rng.random(values.shape) > 0.3)
    model = MPPCAImputer(**SMALL)
    with pytest.raises(RuntimeError, match="call fit"):
        model.impute(query, 2, CTX)
    with pytest.raises(ModelFitError, match="distinct profiles for 3 components"):
        model.fit(daily_set(np.repeat(values[:1], 10, axis=0)), CTX)
    bad = values.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(daily_set(bad), CTX)
    model.fit(daily_set(values), CTX)
    for n_samples in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            model.impute(query, n_samples, CTX)
    with pytest.raises(ValueError, match="fitted on 12"):
        model.impute(query_of(sine_days(3, rng, length=24), np.ones((3, 24), dtype=bool)), 2, CTX)
    with pytest.raises(ValueError, match="do not match"):
        PPCAMixture(np.ones(2), np.zeros((2, 4)), np.zeros((2, 5, 1)), np.ones(2))
