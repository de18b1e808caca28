"""Report figures beyond the basic ones: 2-D embeddings fitted on the real profiles, and marginal calibration."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.stats import ks_2samp
from sklearn.decomposition import PCA

from bench.calibration import marginal_calibration
from bench.report import plots


def _correlated(n: int, t: int = 12, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    """Profiles with a few strong directions of variation, so the leading principal axes are well separated."""
    rng = np.random.default_rng(seed)
    scales = np.array([3.0, 1.5, 0.7] + [0.2] * (t - 3))
    mixing = np.linalg.qr(np.random.default_rng(99).standard_normal((t, t)))[0]  # fixed random rotation
    return shift + (rng.standard_normal((n, t)) * scales) @ mixing.T


def _png_shape(path) -> tuple[int, ...]:
    assert path.is_file() and path.stat().st_size > 1000, path
    return imread(path).shape


def _expected_shape(width_in: float, height_in: float) -> tuple[int, int, int]:
    # _save writes at 100 dpi; Agg writes RGBA
    return round(height_in * 100), round(width_in * 100), 4


# ----------------------------------------------------------------------------------------------------- PCA


def test_pca_coordinates_and_variance_match_sklearn():
    real = _correlated(300)
    coords, _, labels = plots.embed_2d(real, {})
    reference = PCA(n_components=2, svd_solver="full").fit(real)
    expected = reference.transform(real)
    for k in range(2):
        sign = np.sign(coords[:, k] @ expected[:, k])  # principal axes are defined up to sign only
        np.testing.assert_allclose(coords[:, k], sign * expected[:, k], atol=1e-10)
    pca = plots.PcaMap(real)
    np.testing.assert_allclose(pca.explained, reference.explained_variance_ratio_, rtol=1e-10)
    ratios = reference.explained_variance_ratio_
    assert labels == tuple(f"PC{k + 1} ({100 * r:.1f} % var.)" for k, r in enumerate(ratios))


def test_map_is_fitted_on_real_only_and_applied_to_the_models():
    real = _correlated(300, seed=1)
    model = 2.0 * _correlated(150, seed=2, shift=1.5)  # different mean and spread: would move a pooled fit
    real_xy, others, _ = plots.embed_2d(real, {"m": model})
    components = plots.PcaMap(real).components
    np.testing.assert_allclose(others["m"], (model - real.mean(axis=0)) @ components.T, atol=1e-10)
    alone, _, _ = plots.embed_2d(real, {})
    np.testing.assert_array_equal(real_xy, alone)  # adding a model does not move the real points
    pooled = PCA(n_components=2).fit(np.concatenate([real, model])).components_
    assert np.abs(np.abs(np.sum(pooled * components, axis=1)) - 1).max() > 1e-3  # a pooled fit would differ


def test_sign_is_fixed_by_the_largest_loading_on_a_hand_solved_case():
    # rows t * v + s * w on a full grid: the cross term vanishes, so PC1 = v and PC2 = w exactly, with
    # variances in the ratio mean(t^2) : mean(s^2) = 18 : 2/3
    v = np.array([-0.6, 0.8, 0.0])
    w = np.array([0.0, 0.0, 1.0])
    t, s = np.meshgrid(3.0 * np.arange(-2, 3), np.arange(-1.0, 2.0))
    grid = t.reshape(-1, 1) * v + s.reshape(-1, 1) * w + 5.0
    for data in (grid, 10.0 - grid):  # the mirrored cloud has the same axes and must get the same signs
        pca = plots.PcaMap(data)
        np.testing.assert_allclose(pca.components, [v, w], atol=1e-12)
        np.testing.assert_allclose(pca.explained, [18 / (18 + 2 / 3), (2 / 3) / (18 + 2 / 3)], rtol=1e-12)
    coords, _, _ = plots.embed_2d(grid, {})
    mirrored, _, _ = plots.embed_2d(10.0 - grid, {})
    np.testing.assert_allclose(mirrored, -coords, atol=1e-12)
    np.testing.assert_allclose(coords[:, 0], 3.0 * np.tile(np.arange(-2, 3), 3), atol=1e-12)


def test_sign_convention_holds_on_random_data_and_repeats():
    real = _correlated(200, seed=3)
    components = plots.PcaMap(real).components
    largest = components[np.arange(2), np.abs(components).argmax(axis=1)]
    assert (largest > 0).all()
    first, _, _ = plots.embed_2d(real, {}, seed=5)
    again, _, _ = plots.embed_2d(real.copy(), {}, seed=5)
    np.testing.assert_array_equal(first, again)


# ----------------------------------------------------------------------------------------------- sampling


def test_subsample_rows_is_seeded_bounded_and_draws_distinct_rows():
    x = np.arange(5000 * 3, dtype=float).reshape(5000, 3)
    sub = plots.subsample_rows(x, 2000, seed=0)
    assert sub.shape == (2000, 3)
    rows = sub[:, 0] / 3
    assert np.all(np.diff(rows) > 0)  # distinct rows, in their original order
    np.testing.assert_array_equal(sub, x[rows.astype(int)])
    np.testing.assert_array_equal(sub, plots.subsample_rows(x, 2000, seed=0))
    assert not np.array_equal(sub, plots.subsample_rows(x, 2000, seed=1))
    few = x[:10]
    assert plots.subsample_rows(few, 2000) is few  # nothing to cut: the array itself
    with pytest.raises(ValueError, match="max_points"):
        plots.subsample_rows(x, 0)


def test_embed_2d_fits_and_returns_the_subsample():
    real, model = _correlated(3000, seed=4), _correlated(2500, seed=5)
    real_xy, others, _ = plots.embed_2d(real, {"m": model}, max_points=400, seed=7)
    assert real_xy.shape == (400, 2) and others["m"].shape == (400, 2)
    pca = plots.PcaMap(plots.subsample_rows(real, 400, seed=7))
    np.testing.assert_allclose(real_xy, pca.transform(plots.subsample_rows(real, 400, seed=7)), atol=1e-12)
    np.testing.assert_allclose(others["m"], pca.transform(plots.subsample_rows(model, 400, seed=7)), atol=1e-12)
    again, others_again, _ = plots.embed_2d(real, {"m": model}, max_points=400, seed=7)
    np.testing.assert_array_equal(real_xy, again)
    np.testing.assert_array_equal(others["m"], others_again["m"])


def test_embed_2d_rejects_non_finite_rows_naming_the_array_and_bad_inputs():
    real = _correlated(50)
    bad_real = real.copy()
    bad_real[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"real: 1 of 50 profiles hold non-finite"):
        plots.embed_2d(bad_real, {})
    bad_model = real.copy()
    bad_model[[0, 7], 1] = np.inf
    with pytest.raises(ValueError, match=r"model 'm': 2 of 50"):
        plots.embed_2d(real, {"m": bad_model})
    with pytest.raises(ValueError, match="steps"):
        plots.embed_2d(real, {"m": real[:, :5]})
    with pytest.raises(ValueError, match="method"):
        plots.embed_2d(real, {}, method="tsne")


# ------------------------------------------------------------------------------------------------ UMAP


def test_umap_embedding_when_installed():
    pytest.importorskip("umap")
    real, model = _correlated(120, seed=6), _correlated(80, seed=7, shift=0.5)
    real_xy, others, labels = plots.embed_2d(real, {"m": model}, method="umap", seed=0)
    assert real_xy.shape == (120, 2) and others["m"].shape == (80, 2)
    assert np.isfinite(real_xy).all() and np.isfinite(others["m"]).all()
    assert labels == ("UMAP 1", "UMAP 2")
    assert plots.umap_available()


def test_umap_missing_gives_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    assert not plots.umap_available()
    real = _correlated(40)
    with pytest.raises(ImportError, match="pip install umap-learn"):
        plots.embed_2d(real, {"m": real}, method="umap")
    with pytest.raises(ImportError, match="umap-learn"):
        plots.plot_embedding(real, {"m": real}, tmp_path / "u.png", method="umap")


# --------------------------------------------------------------------------------------------------- KS


def test_per_step_ks_equals_scipy_column_by_column():
    rng = np.random.default_rng(8)
    continuous = (rng.standard_normal((57, 6)), rng.standard_normal((83, 6)) * 1.3 + 0.2)
    tied = (rng.integers(0, 5, (40, 6)).astype(float), rng.integers(1, 7, (31, 6)).astype(float))  # ties within
    for a, b in (continuous, tied, (continuous[0], continuous[0][:20])):                            # and across
        expected = [ks_2samp(a[:, t], b[:, t]).statistic for t in range(a.shape[1])]
        np.testing.assert_allclose(plots.per_step_ks(a, b), expected, atol=1e-12)
    assert np.all(plots.per_step_ks(continuous[0], continuous[0]) == 0)


def test_per_step_ks_rejects_bad_inputs():
    a = np.zeros((5, 4))
    with pytest.raises(ValueError, match="steps"):
        plots.per_step_ks(a, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="finite"):
        plots.per_step_ks(a, np.full((5, 4), np.nan))


@pytest.mark.parametrize("n, big_n", [(200, 200), (150, 200), (300, 120)])
def test_calibration_removes_a_shift_in_per_step_ks(n, big_n):
    rng = np.random.default_rng(9)
    real = rng.gamma(2.0, 0.2, (big_n, 8))
    shifted = rng.gamma(2.0, 0.2, (n, 8)) + 1.0  # same shape of marginal, wrong location
    before = plots.per_step_ks(shifted, real)
    assert (before > 0.8).all()
    after = plots.per_step_ks(marginal_calibration(shifted, real), real)
    if n == big_n:
        assert np.all(after == 0)  # each calibrated column is a permutation of the real one
    else:
        # calibrated values are real quantiles at levels k / n: the ECDFs differ by one step at most
        assert after.max() <= 1 / min(n, big_n) + 1e-12


# ------------------------------------------------------------------------------------------------ figures


def test_plot_embedding_writes_pngs_with_failed_and_non_finite_models(tmp_path):
    real = _correlated(200, seed=10)
    partly_bad = _correlated(100, seed=11, shift=0.3)
    partly_bad[:5, 0] = np.nan
    all_bad = np.full((10, real.shape[1]), np.inf)
    generated = {"good": _correlated(150, seed=12), "broken": None, "partly": partly_bad, "nan": all_bad}
    path = plots.plot_embedding(real, generated, tmp_path / "sub" / "pca.png", failures={"broken": "diverged"},
                                max_points=120)
    assert path == tmp_path / "sub" / "pca.png"
    assert _png_shape(path) == _expected_shape(3 * 3.8, 2 * 3.4)  # 4 panels: 3 columns, 2 rows
    alone = plots.plot_embedding(real, {}, tmp_path / "real.png")
    assert _png_shape(alone) == _expected_shape(3.8, 3.4)
    failed_only = plots.plot_embedding(real, {"broken": None}, tmp_path / "failed.png")
    assert _png_shape(failed_only) == _expected_shape(3.8, 3.4)
    with pytest.raises(ValueError, match="reserved"):
        plots.plot_embedding(real, {"real": real}, tmp_path / "x.png")


def test_plot_calibration_writes_a_png_and_checks_shapes(tmp_path):
    rng = np.random.default_rng(13)
    real = rng.gamma(2.0, 0.2, (120, 48))
    before = rng.gamma(2.0, 0.25, (90, 48)) + 0.3
    after = marginal_calibration(before, real)
    path = plots.plot_calibration(real, before, after, tmp_path / "cal" / "c.png", resolution=30, model="toy")
    assert _png_shape(path) == _expected_shape(3 * 4.2, 3.3)
    with pytest.raises(ValueError, match="steps"):
        plots.plot_calibration(real, before[:, :24], after, tmp_path / "y.png")
    with pytest.raises(ValueError, match="finite"):
        plots.plot_calibration(real, np.where(before > 1, np.nan, before), after, tmp_path / "z.png")


def test_plot_ensemble_examples_grid_and_bad_input(tmp_path):
    from matplotlib.image import imread

    rng = np.random.default_rng(0)
    truth = rng.random((10, 24))
    observed = rng.random((10, 24)) > 0.3
    ens = truth[None] + 0.1 * rng.standard_normal((8, 10, 24))
    path = plots.plot_ensemble_examples(truth, {"a": ens, "b": None}, tmp_path / "imp.png", observed=observed,
                                        resolution=60, n_examples=2, failures={"b": "diverged"})
    image = imread(path)
    # 2 models x 2 examples at 4.2 x 2.2 inches per panel, 100 dpi
    assert image.shape[:2] == (440, 840)
    coarse = np.repeat(truth.reshape(10, 12, 2).mean(axis=2), 2, axis=1)  # x2 block means, as given to a model
    assert imread(plots.plot_ensemble_examples(truth, {"a": ens}, tmp_path / "sr.png", coarse=coarse,
                                               n_examples=2)).shape[:2] == (220, 840)
    with pytest.raises(ValueError, match="observed mask has shape"):
        plots.plot_ensemble_examples(truth, {"a": ens}, tmp_path / "x.png", observed=observed[:, :12])
    with pytest.raises(ValueError, match="coarse profiles have shape"):
        plots.plot_ensemble_examples(truth, {"a": ens}, tmp_path / "x.png", coarse=truth[:5])
    with pytest.raises(ValueError, match="ensemble of shape"):
        plots.plot_ensemble_examples(truth, {"a": ens[:, :5]}, tmp_path / "x.png", observed=observed)
    with pytest.raises(ValueError, match="no model"):
        plots.plot_ensemble_examples(truth, {}, tmp_path / "x.png", observed=observed)


def test_plot_ensemble_examples_failed_model_keeps_the_others_y_ticks(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    truth = rng.random((4, 24))
    observed = rng.random((4, 24)) > 0.5
    ens = truth[None] + 0.1 * rng.standard_normal((5, 4, 24))
    saved = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.setdefault("fig", fig) and path)
    plots.plot_ensemble_examples(truth, {"failed first": None, "a": ens, "b": ens}, tmp_path / "x.png",
                                 observed=observed, n_examples=2)
    axes = saved["fig"].axes
    assert [len(ax.get_yticks()) > 0 for ax in axes] == [False, False, True, True, True, True]
