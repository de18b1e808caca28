"""Classical generative baselines: naive generators, GMM (plain and PCA) and the t-copula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from baselines.gmm import GMM, gaussian_mixture_logpdf
from baselines.naive import IndependentMarginals, ResampleTrain
from baselines.tcopula import TCopula, ecdf_inverse, kendall_tau_matrix, nearest_correlation, t_copula_loglik
from bench.context import RunContext
from bench.data.profileset import META_COLUMNS, ProfileSet
from bench.errors import ModelFitError
from bench.registry import get_model
from bench.tasks.queries import DetectionQuery, ImputationQuery, SuperResolutionQuery
from metrics import ks_pooled, mmd_rbf, rbf_bandwidth
from tests.conftest import daily_set

CLASSES = {"resample-train": ResampleTrain, "independent-marginals": IndependentMarginals,
           "gmm": GMM, "gmm-pca": GMM, "t-copula": TCopula}
MODELS = list(CLASSES)
# gmm-pca is registered with n_pca=50; on T=24 toy days a smaller subspace makes the reduction real.
TOY_OVERRIDES = {"gmm-pca": {"n_pca": 6}}
T_TOY = 24
GMM_DIAGNOSTICS = {"em_iterations", "em_converged", "em_stalled", "singular_mass", "singular_components",
                   "log_likelihood_bound", "dim"}




def toy_days(n: int, rng: np.random.Generator, length: int = T_TOY) -> np.ndarray:
    """Smooth daily curves with random amplitude and phase shift plus small noise (kW-like units)."""
    t = np.arange(length) / length
    amp = rng.uniform(0.5, 1.5, (n, 1))
    shift = rng.uniform(-0.12, 0.12, (n, 1))
    curve = np.sin(2 * np.pi * (t - shift)) + 0.4 * np.sin(4 * np.pi * (t - shift))
    return 2.0 + amp * curve + 0.15 * rng.standard_normal((n, length))


@pytest.fixture(scope="module")
def toy() -> tuple[ProfileSet, np.ndarray]:
    """400 training days and 400 held-out days of the same generator, scaled to [-1, 1] on train."""
    rng = np.random.default_rng(7)
    train, real = toy_days(400, rng), toy_days(400, rng)
    low, high = train.min(), train.max()
    scale = lambda v: (2.0 * (v - low) / (high - low) - 1.0).astype(np.float32)  # noqa: E731
    return daily_set(scale(train)), scale(real)


def build(name: str):
    return get_model(name).build("quick", TOY_OVERRIDES.get(name))


def fit_sample(name: str, train: ProfileSet, n: int, seed: int = 0) -> np.ndarray:
    model = build(name)
    ctx = RunContext(seed=seed)
    model.fit(train, ctx)
    return model.sample(n, None, ctx)


# --- registry and the common contract -------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_registered_with_generate_capability(name):
    spec = get_model(name)
    assert spec.name == name
    assert spec.cls is CLASSES[name]
    # the Gaussian mixtures also impute and super-resolve in closed form (conditional Gaussians)
    expected = {"generate", "impute", "super_resolve", "detect"} if name.startswith("gmm") else {"generate"}
    assert spec.capabilities == frozenset(expected)
    # the memorising references learn nothing the contract test could ask them to beat a baseline with
    assert spec.cls.learns is (name not in ("resample-train", "independent-marginals"))
    for profile in ("test", "quick", "paper"):
        spec.build(profile)


def test_gmm_variant_pins_pca_dimension():
    assert get_model("gmm").config("paper")["n_pca"] is None
    assert get_model("gmm-pca").config("paper")["n_pca"] == 50
    assert get_model("gmm-pca").config("test")["n_pca"] == 50
    assert get_model("gmm").config("paper")["n_components"] == 10
    assert get_model("gmm").config("paper")["max_iter"] == 1000
    assert get_model("t-copula").config("paper")["nu_min"] == 2.0
    assert get_model("t-copula").config("paper")["nu_max"] == 200.0
    # the paper's settings are the defaults (the EnergyDiff code's GaussianMixture call)
    assert get_model("gmm").config("paper") == get_model("gmm").config("quick")
    assert get_model("gmm").build("quick")._name == "gmm" and get_model("gmm-pca").build("quick")._name == "gmm-pca"


@pytest.mark.parametrize("cls, bad, message", [
    (GMM, {"n_components": 0}, "n_components, max_iter and n_init"),
    (GMM, {"tol": 0.0}, "tol > 0"),
    (GMM, {"reg_covar": -1e-6}, "reg_covar must be >= 0"),
    (GMM, {"n_pca": 0}, "n_pca must be a positive integer or None"),
    (GMM, {"n_components": 2.5}, "n_components expects int"),
    (TCopula, {"nu_min": 5.0, "nu_max": 3.0}, "0 < nu_min < nu_max"),
    (TCopula, {"repair_tol": 0.0}, "repair_tol must be > 0"),
    (TCopula, {"repair_max_iter": 0}, "repair_max_iter must be a positive integer"),
    (TCopula, {"repair_max_iter": True}, "repair_max_iter expects int"),
])
def test_bad_parameters_are_clear_errors(cls, bad, message):
    with pytest.raises(ValueError, match=message):
        cls(**bad)


@pytest.mark.parametrize("name", MODELS)
def test_fit_sample_shape_dtype_and_range(name, toy):
    train, _ = toy
    samples = fit_sample(name, train, 37)
    assert samples.shape == (37, T_TOY)
    assert samples.dtype == np.float32
    assert np.isfinite(samples).all()


@pytest.mark.parametrize("name", MODELS)
def test_seeded_determinism(name, toy):
    train, _ = toy
    first = fit_sample(name, train, 50, seed=3)
    again = fit_sample(name, train, 50, seed=3)
    other = fit_sample(name, train, 50, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", MODELS)
def test_sample_arguments_are_checked(name, toy):
    train, _ = toy
    model = build(name)
    with pytest.raises(RuntimeError, match="fit"):
        model.sample(5, None, RunContext())
    model.fit(train, RunContext())
    with pytest.raises(ValueError, match="cond"):
        model.sample(5, {"month": 1}, RunContext())
    with pytest.raises(ValueError, match="positive integer"):
        model.sample(0, None, RunContext())


@pytest.mark.parametrize("name", MODELS)
def test_incomplete_profiles_are_rejected(name, toy):
    train, _ = toy
    mask = train.mask.copy()
    mask[0, 3] = False
    holed = ProfileSet(train.values, mask, train.meta, train.resolution, train.period, name="holed")
    with pytest.raises(ValueError, match="unobserved"):
        build(name).fit(holed, RunContext())


# --- learning something -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gmm", "gmm-pca", "t-copula"])
def test_learns_temporal_structure_beyond_independent_marginals(name, toy):
    train, real = toy
    bandwidth = rbf_bandwidth(real)
    model_mmd = mmd_rbf(real, fit_sample(name, train, len(real)), bandwidth=bandwidth)
    baseline_mmd = mmd_rbf(real, fit_sample("independent-marginals", train, len(real)), bandwidth=bandwidth)
    assert model_mmd < 0.2 * baseline_mmd


def test_independent_marginals_beat_trivial_generators_on_pooled_ks(toy):
    train, real = toy
    marginals = fit_sample("independent-marginals", train, len(real))
    constant = np.full_like(real, float(train.values.mean()))
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    assert ks_pooled(real, marginals) < 0.5 * ks_pooled(real, constant)
    assert ks_pooled(real, marginals) < 0.5 * ks_pooled(real, noise)


def test_resample_train_returns_only_training_rows(toy):
    train, _ = toy
    samples = fit_sample("resample-train", train, 300)
    rows = {r.tobytes() for r in train.values}
    assert all(s.tobytes() in rows for s in samples)
    assert len({s.tobytes() for s in samples}) > 100


def test_independent_marginals_draw_each_step_from_its_column(toy):
    train, _ = toy
    samples = fit_sample("independent-marginals", train, 300)
    for t in range(T_TOY):
        assert np.isin(samples[:, t], train.values[:, t]).all()
    # Steps are mixed across days, so whole sampled rows are (almost surely) not training rows.
    rows = {r.tobytes() for r in train.values}
    assert sum(s.tobytes() in rows for s in samples) == 0


# --- GMM --------------------------------------------------------------------------------------------------


def test_gmm_rejects_constant_training_data():
    flat = daily_set(np.full((100, 12), 0.3, dtype=np.float32))
    with pytest.raises(ModelFitError, match="zero variance"):
        build("gmm").fit(flat, RunContext())


def test_gmm_rejects_fewer_profiles_than_components(toy):
    train, _ = toy
    with pytest.raises(ModelFitError, match="components"):
        build("gmm").fit(train.subset(np.arange(6)), RunContext())


def test_gmm_keeps_a_degenerate_high_dimensional_fit_and_reports_it():
    # 200 random-walk days of 96 steps: ~20 points per component for 96 dimensions. As in the EnergyDiff code
    # the fit is kept; the degeneracy is reported beside the numbers, not turned into a failure.
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal((200, 96)), axis=1)
    walk = (walk / np.abs(walk).max()).astype(np.float32)
    model = build("gmm")
    model.fit(daily_set(walk), RunContext())
    diag = model.diagnostics()
    assert set(diag) == GMM_DIAGNOSTICS
    # every component holds at most 96 points: all the mass is singular and EM froze at its k-means start
    assert diag["singular_mass"] == pytest.approx(1.0)
    assert diag["singular_components"] == 10
    assert diag["em_iterations"] <= 2 and diag["em_stalled"] == 1.0
    assert diag["dim"] == 96
    samples = model.sample(50, None, RunContext())
    assert samples.shape == (50, 96) and np.isfinite(samples).all()
    # The same data fit in an 8-dimensional PCA subspace is well posed, and the diagnostics say so.
    pca = get_model("gmm-pca").build("quick", {"n_pca": 8})
    pca.fit(daily_set(walk), RunContext())
    healthy = pca.diagnostics()
    # at most a stray small cluster of no more than 8 days can be singular (the k-means start decides), not
    # the bulk of the mass; EM runs and converges
    assert healthy["dim"] == 8 and healthy["singular_mass"] < 0.1 and healthy["em_stalled"] == 0.0
    assert healthy["em_iterations"] > 2 and healthy["em_converged"] == 1.0


def test_gmm_diagnostics_of_a_healthy_fit_and_before_fitting(toy):
    train, _ = toy
    model = build("gmm")
    assert model.diagnostics() == {}
    model.fit(train, RunContext())
    diag = model.diagnostics()
    assert diag["em_converged"] == 1.0 and diag["singular_mass"] == 0.0 and diag["singular_components"] == 0
    assert diag["em_stalled"] == 0.0 and diag["dim"] == T_TOY
    # the bound is EM's mean log-likelihood per training profile (of its last E-step, so up to the
    # convergence tolerance 1e-3), checked with our own mixture density of the fitted parameters
    weights, means, _, chols = model.full_space_mixture()
    mean_loglik = gaussian_mixture_logpdf(train.values, weights, means, chols).mean()
    assert diag["log_likelihood_bound"] == pytest.approx(mean_loglik, abs=1e-2)


def test_gmm_reports_non_convergence_without_failing(toy):
    train, _ = toy
    model = get_model("gmm").build("quick", {"max_iter": 1, "tol": 1e-12})
    model.fit(train, RunContext())
    diag = model.diagnostics()
    assert diag["em_converged"] == 0.0 and diag["em_iterations"] == 1
    assert np.isfinite(model.sample(10, None, RunContext())).all()


def test_gmm_fails_only_where_the_computation_fails():
    # Without reg_covar a component of ~3 points in 24 dimensions has no covariance: scikit-learn raises.
    few = toy_days(30, np.random.default_rng(6))
    model = get_model("gmm").build("quick", {"reg_covar": 0.0})
    with pytest.raises(ModelFitError, match="EM failed.*ill-defined"):
        model.fit(daily_set(few), RunContext())
    assert model.diagnostics() == {}
    # the same data with the paper's reg_covar fit (degenerate, reported)
    model = build("gmm")
    model.fit(daily_set(few), RunContext())
    assert model.diagnostics()["singular_mass"] > 0.5


def test_gmm_non_finite_parameters_fail(toy, monkeypatch):
    from sklearn.mixture import GaussianMixture

    original = GaussianMixture.fit

    def poisoned(self, X, y=None):
        original(self, X, y)
        self.means_[0, 0] = np.nan
        return self

    monkeypatch.setattr(GaussianMixture, "fit", poisoned)
    train, _ = toy
    with pytest.raises(ModelFitError, match="non-finite"):
        build("gmm").fit(train, RunContext())


def test_gmm_pca_residual_keeps_total_variance(toy):
    train, _ = toy
    x = train.values.astype(np.float64)
    ctx = RunContext(seed=1)
    with_residual = get_model("gmm-pca").build("quick", {"n_pca": 3})
    with_residual.fit(train, ctx)
    in_subspace = get_model("gmm-pca").build("quick", {"n_pca": 3, "pca_residual": False})
    in_subspace.fit(train, ctx)
    a, b = with_residual.sample(4000, None, ctx), in_subspace.sample(4000, None, ctx)
    total = x.var(axis=0).sum()
    assert a.var(axis=0).sum() == pytest.approx(total, rel=0.1)
    assert b.var(axis=0).sum() < a.var(axis=0).sum()
    # Without the residual every sample lies in the 3-dimensional PCA subspace of train.
    basis = in_subspace.pca_components_
    centred = b - in_subspace.pca_mean_
    off_subspace = centred - (centred @ basis.T) @ basis
    assert np.abs(off_subspace).max() < 1e-4


# --- t-copula ---------------------------------------------------------------------------------------------


def test_kendall_matrix_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((150, 1))
    x = z + rng.standard_normal((150, 6))
    x[:, 2] = np.round(x[:, 2])  # heavy ties exercise the tau-b normaliser
    x[:, 4] = -np.exp(x[:, 4])
    tau = kendall_tau_matrix(x)
    np.testing.assert_allclose(tau, tau.T)
    np.testing.assert_allclose(np.diag(tau), 1.0)
    for i, j in [(0, 1), (0, 2), (2, 3), (1, 4), (2, 5)]:
        assert tau[i, j] == pytest.approx(stats.kendalltau(x[:, i], x[:, j]).statistic, abs=1e-12)


def test_kendall_matrix_rejects_constant_columns():
    x = np.random.default_rng(0).standard_normal((20, 3))
    x[:, 1] = 1.0
    with pytest.raises(ValueError, match="constant"):
        kendall_tau_matrix(x)


def test_ecdf_inverse_interpolates_order_statistics():
    sorted_values = np.array([[0.0], [1.0], [3.0]])  # at probabilities 1/4, 2/4, 3/4
    u = np.array([[0.01], [0.25], [0.375], [0.5], [0.625], [0.99]])
    np.testing.assert_allclose(ecdf_inverse(sorted_values, u).ravel(), [0.0, 0.0, 0.5, 1.0, 2.0, 3.0])


COPULA_DIAGNOSTICS = {"corr_min_eigenvalue", "corr_repaired", "corr_repair_frobenius", "corr_repair_max_abs",
                      "corr_repair_iterations", "corr_repair_converged", "copula_dim", "profiles_per_dim", "nu",
                      "loglik_per_profile"}


def _is_correlation(c: np.ndarray) -> bool:
    return (np.allclose(c, c.T, atol=0) and np.allclose(np.diag(c), 1.0, atol=1e-12)
            and np.linalg.eigvalsh(c)[0] > 0)


def test_nearest_correlation_of_an_indefinite_equicorrelation_is_the_boundary_equicorrelation():
    # Permutations preserve both the Frobenius norm and the set of correlation matrices, and the nearest point
    # is unique, so the nearest correlation to an equicorrelation matrix is an equicorrelation; with
    # eigenvalues 1 + (d - 1) rho and 1 - rho >= floor, the closest admissible rho is (floor - 1) / (d - 1).
    d = 5
    a = np.full((d, d), -0.5)
    np.fill_diagonal(a, 1.0)
    for floor in (0.0, 0.05):
        result = nearest_correlation(a, floor=floor, tol=1e-12, max_iter=5000)
        expected = np.full((d, d), (floor - 1.0) / (d - 1))
        np.fill_diagonal(expected, 1.0)
        assert result.converged
        np.testing.assert_allclose(result.matrix, expected, atol=1e-7)


def test_nearest_correlation_matches_highams_example():
    # Higham (2002), Sec. 4: the nearest correlation matrix to [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    result = nearest_correlation(a, floor=0.0, tol=1e-12, max_iter=5000)
    expected = np.array([[1.0, 0.7607, 0.1573], [0.7607, 1.0, 0.7607], [0.1573, 0.7607, 1.0]])
    np.testing.assert_allclose(result.matrix, expected, atol=1e-4)
    # nearer than one eigenvalue clip followed by a rescale to unit diagonal
    eigval, eigvec = np.linalg.eigh(a)
    clipped = (eigvec * np.maximum(eigval, 0.0)) @ eigvec.T
    clipped /= np.sqrt(np.outer(np.diag(clipped), np.diag(clipped)))
    assert np.linalg.norm(result.matrix - a) < np.linalg.norm(clipped - a) - 1e-3


def test_nearest_correlation_keeps_a_valid_matrix_and_checks_its_input():
    rng = np.random.default_rng(0)
    b = rng.standard_normal((6, 40))
    corr = np.corrcoef(b)
    result = nearest_correlation(corr, floor=1e-8)
    np.testing.assert_allclose(result.matrix, corr, atol=1e-10)
    assert result.converged and result.iterations == 1
    # a capped run still returns a valid (not nearest) correlation matrix and says it did not converge
    a = np.full((8, 8), -0.4)
    np.fill_diagonal(a, 1.0)
    capped = nearest_correlation(a, floor=1e-3, tol=1e-14, max_iter=1)
    assert not capped.converged and _is_correlation(capped.matrix)
    with pytest.raises(ValueError, match="square"):
        nearest_correlation(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        nearest_correlation(np.array([[1.0, 0.2], [0.3, 1.0]]))
    with pytest.raises(ValueError, match="floor"):
        nearest_correlation(np.eye(2), floor=1.0)


def test_t_copula_fits_fewer_profiles_than_steps_with_a_repaired_correlation(toy):
    train, _ = toy
    model = build("t-copula")
    model.fit(train.subset(np.arange(T_TOY - 4)), RunContext())
    diag = model.diagnostics()
    assert set(diag) == COPULA_DIAGNOSTICS
    assert diag["profiles_per_dim"] == pytest.approx((T_TOY - 4) / T_TOY)
    assert diag["corr_repaired"] == 1.0 and diag["corr_min_eigenvalue"] < 0
    assert _is_correlation(model.corr_)
    samples = model.sample(40, None, RunContext())
    assert samples.shape == (40, T_TOY) and np.isfinite(samples).all()


def test_t_copula_repairs_inconsistent_correlations_and_reports_the_repair():
    # 40 heavily tied noise days of 24 steps: sin(pi tau / 2) of the tau-b matrix is clearly indefinite.
    x = np.round(np.random.default_rng(0).standard_normal((40, T_TOY))).astype(np.float32)
    model = build("t-copula")
    model.fit(daily_set(x), RunContext())
    diag = model.diagnostics()
    estimated = np.sin(0.5 * np.pi * kendall_tau_matrix(x.astype(np.float64)))
    assert diag["corr_min_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(estimated)[0], abs=1e-12)
    assert diag["corr_min_eigenvalue"] < -0.1
    assert diag["corr_repaired"] == 1.0 and diag["corr_repair_converged"] == 1.0
    assert diag["corr_repair_iterations"] >= 1
    assert diag["corr_repair_frobenius"] == pytest.approx(np.linalg.norm(model.corr_ - estimated), rel=1e-12)
    assert diag["corr_repair_max_abs"] == pytest.approx(np.abs(model.corr_ - estimated).max(), rel=1e-12)
    assert 0 < diag["corr_repair_max_abs"] <= diag["corr_repair_frobenius"]
    assert _is_correlation(model.corr_)
    assert np.isfinite(model.sample(30, None, RunContext())).all()


def test_t_copula_without_repair_reports_zero_distance(toy):
    train, _ = toy
    model = build("t-copula")
    assert model.diagnostics() == {}
    model.fit(train, RunContext())
    diag = model.diagnostics()
    assert diag["corr_repaired"] == 0.0 and diag["corr_repair_frobenius"] == 0.0
    assert diag["corr_repair_iterations"] == 0 and diag["corr_min_eigenvalue"] > 0
    assert diag["nu"] == model.nu_ and diag["copula_dim"] == T_TOY


def test_t_copula_fails_where_the_computation_fails(toy, monkeypatch):
    import baselines.tcopula as tcopula

    train, _ = toy
    monkeypatch.setattr(tcopula, "t_copula_loglik", lambda *args: float("nan"))
    model = build("t-copula")
    with pytest.raises(ModelFitError, match="non-finite t-copula likelihood"):
        model.fit(train, RunContext())
    assert model.diagnostics() == {}


def test_t_copula_loglik_matches_scipy():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((5, 5))
    corr = b @ b.T + 5 * np.eye(5)
    corr /= np.sqrt(np.outer(np.diag(corr), np.diag(corr)))
    u = rng.uniform(0.01, 0.99, (30, 5))
    for nu in (2.5, 40.0):
        q = stats.t.ppf(u, nu)
        reference = stats.multivariate_t(np.zeros(5), corr, df=nu).logpdf(q).sum() - stats.t.logpdf(q, nu).sum()
        assert t_copula_loglik(u, corr, nu) == pytest.approx(reference, rel=1e-10)


def _copula_data(nu: float | None, n: int, seed: int) -> np.ndarray:
    """Draws with an AR(1) correlation joined by a t (``nu``) or Gaussian (``None``) copula, odd marginals."""
    rng = np.random.default_rng(seed)
    d = 6
    corr = 0.6 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    z = rng.standard_normal((n, d)) @ np.linalg.cholesky(corr).T
    if nu is None:
        u = stats.norm.cdf(z)
    else:
        u = stats.t.cdf(z / np.sqrt(rng.chisquare(nu, n) / nu)[:, None], nu)
    # Monotone, step-specific marginals: the copula is unchanged by them.
    return (np.exp(2 * u) - np.arange(d) * u ** 2).astype(np.float32)


def test_t_copula_recovers_heavy_and_light_tails():
    heavy, light = TCopula(), TCopula()
    heavy.fit(daily_set(_copula_data(4.0, 800, 0)), RunContext())
    light.fit(daily_set(_copula_data(None, 800, 1)), RunContext())
    assert 2.0 <= heavy.nu_ < 15.0
    assert 50.0 < light.nu_ <= 200.0
    # The correlation follows rho = sin(pi tau / 2) of the AR(1) structure.
    assert heavy.corr_[0, 1] == pytest.approx(0.6, abs=0.08)
    assert heavy.corr_[0, 5] == pytest.approx(0.6 ** 5, abs=0.08)


def test_t_copula_samples_stay_in_training_range_and_pin_constant_steps(toy):
    train, _ = toy
    values = train.values.copy()
    values[:, 5] = -1.0  # e.g. no PV output at night
    model = TCopula()
    model.fit(daily_set(values), RunContext())
    samples = model.sample(500, None, RunContext(seed=2))
    assert (samples[:, 5] == -1.0).all()
    assert model.corr_.shape == (T_TOY - 1, T_TOY - 1)
    assert (samples >= values.min(axis=0) - 1e-6).all() and (samples <= values.max(axis=0) + 1e-6).all()


def test_t_copula_rejects_all_constant_training_data():
    with pytest.raises(ModelFitError, match="constant"):
        TCopula().fit(daily_set(np.zeros((50, 8), dtype=np.float32)), RunContext())


# --- save / load --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_the_same_samples(name, toy, tmp_path):
    train, real = toy
    model = build(name)
    model.fit(train.subset(np.arange(120)), RunContext(seed=2))
    loaded = type(model).load(model.save(tmp_path / f"{name}.pt"))
    assert loaded.params == model.params
    assert loaded.diagnostics() == model.diagnostics()
    for seed in (0, 5):
        np.testing.assert_array_equal(loaded.sample(40, None, RunContext(seed=seed)),
                                      model.sample(40, None, RunContext(seed=seed)))
    if not name.startswith("gmm"):
        return
    # the conditional capabilities rebuild their full-space mixture (a cache, not saved) from the stored fit
    values = real[:6]
    observed = np.random.default_rng(1).random(values.shape) < 0.5
    valid = np.ones(values.shape, bool)
    meta = pd.DataFrame({c: np.zeros(6, dtype=int) for c in META_COLUMNS})
    imputation = ImputationQuery(np.where(observed, values, np.nan).astype(np.float32), observed, valid, meta, 60)
    low = values.reshape(6, -1, 4).mean(axis=2)
    ctx = RunContext(seed=3)
    np.testing.assert_array_equal(loaded.impute(imputation, 5, ctx), model.impute(imputation, 5, ctx))
    np.testing.assert_array_equal(loaded.super_resolve(SuperResolutionQuery(low, 4, valid, meta, 60), 5, ctx),
                                  model.super_resolve(SuperResolutionQuery(low, 4, valid, meta, 60), 5, ctx))
    detection = DetectionQuery(values, valid, meta, 60)
    np.testing.assert_array_equal(loaded.anomaly_score(detection, ctx), model.anomaly_score(detection, ctx))


def test_gmm_state_holds_arrays_not_caches_or_scikit_learn_objects(toy):
    train, _ = toy
    model = get_model("gmm-pca").build("quick", {"n_pca": 6})
    model.fit(train, RunContext())
    model.full_space_mixture()  # fills the cache
    state = model.get_state()
    assert {"_full", "_chol", "_name"}.isdisjoint(state)
    assert {"_weights", "_means", "_covs", "pca_components_", "pca_mean_", "residual_var_"} <= set(state)


def test_unfitted_models_round_trip_unfitted(tmp_path):
    for model in (GMM(), TCopula()):
        loaded = type(model).load(model.save(tmp_path / "unfitted.pt"))
        assert loaded.diagnostics() == {}
        with pytest.raises(RuntimeError, match="fit"):
            loaded.sample(3, None, RunContext())
