"""Anomaly scores of the detectors and of gmm / vae: closed forms, references and toy separation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA

from baselines.detectors import PCADetector, ZScoreDetector, largest_window_mean, window_steps
from baselines.gmm import GMM
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import get_model
from bench.tasks import anomaly
from bench.tasks.queries import DetectionQuery
from metrics import auroc
from tests.conftest import sine_days, daily_set

CTX = RunContext(seed=0)
TINY_VAE = {"hidden": 32, "latent_dim": 4, "train_steps": 300, "checkpoint_every": 0}




def query(values: np.ndarray, valid: np.ndarray | None = None) -> DetectionQuery:
    values = np.asarray(values, dtype=np.float32)
    valid = np.ones(values.shape, dtype=bool) if valid is None else valid
    return DetectionQuery(values=values, valid=valid, meta=pd.DataFrame({"series_id": range(len(values))}),
                          resolution=60)




def test_registered():
    for name in ("zscore-detector", "pca-detector"):
        spec = get_model(name)
        assert spec.capabilities == frozenset({"detect"})
        assert spec.cls.learns  # both fit statistics of the training profiles
    for profile in ("test", "quick", "paper"):
        assert set(get_model("zscore-detector").config(profile)) == {"std_floor", "window_hours"}
        assert get_model("zscore-detector").config(profile)["window_hours"] == 3.0
    assert get_model("pca-detector").config("quick")["n_components"] == 8
    assert get_model("pca-detector").config("paper")["n_components"] == 16
    for name in ("gmm", "gmm-pca", "vae"):
        assert "detect" in get_model(name).capabilities


def test_zscore_closed_form_floor_and_padding():
    train = np.array([[0.0, 0.5, 1.0], [2.0, 0.5, 1.0]], dtype=np.float32)
    model = ZScoreDetector(std_floor=0.1, window_hours=1.0)  # one-step windows at 60 min: the largest |z|
    model.fit(daily_set(train), CTX)
    np.testing.assert_allclose(model.mean_, [1.0, 0.5, 1.0])
    np.testing.assert_allclose(model.std_, [1.0, 0.1, 0.1])  # constant steps get the floor
    # |3 - 1| / 1 = 2, |0.7 - 0.5| / 0.1 = 2, |1.05 - 1| / 0.1 = 0.5 -> max 2; second row: max 5
    scores = model.anomaly_score(query([[3.0, 0.7, 1.05], [1.0, 0.5, 1.5]]), CTX)
    np.testing.assert_allclose(scores, [2.0, 5.0], rtol=1e-5)
    # two-step windows: means of z (2, 2, 0.5) over (0, 1), (1, 2) -> 2; row 2 (0, 0, 5) -> 2.5
    wide = ZScoreDetector(std_floor=0.1, window_hours=2.0)
    wide.fit(daily_set(train), CTX)
    np.testing.assert_allclose(wide.anomaly_score(query([[3.0, 0.7, 1.05], [1.0, 0.5, 1.5]]), CTX), [2.0, 2.5],
                               rtol=1e-5)
    # opposite signs cancel inside a window: z = (+2, -2, 0) -> window means 0 and -1 -> 1
    np.testing.assert_allclose(wide.anomaly_score(query([[3.0, 0.3, 1.0]]), CTX), [1.0], rtol=1e-5)
    # a huge value on a padding step is ignored, and a window averages over its valid steps only
    valid = np.array([[True, True, False]])
    np.testing.assert_allclose(model.anomaly_score(query([[1.0, 0.5, 99.0]], valid), CTX), [0.0], atol=1e-6)
    np.testing.assert_allclose(wide.anomaly_score(query([[1.0, 0.8, 99.0]], valid), CTX), [3.0], rtol=1e-5)
    # training statistics use valid steps only
    mask = np.array([[True, True, True], [True, True, False], [True, True, False]])
    masked = ZScoreDetector()
    masked.fit(daily_set(np.array([[0, 0, 4], [2, 2, 0], [4, 4, 0]], np.float32), mask), CTX)
    np.testing.assert_allclose(masked.mean_, [2.0, 2.0, 4.0])


def brute_force_windows(z: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    out = []
    for zi, vi in zip(z, valid):
        means = [abs(zi[a:a + width][vi[a:a + width]].mean()) for a in range(len(zi) - width + 1)
                 if vi[a:a + width].any()]
        out.append(max(means, default=0.0))
    return np.array(out)


def test_window_length_and_windowed_score_match_brute_force():
    assert window_steps(3.0, 30) == 6 and window_steps(3.0, 60) == 3 and window_steps(3.0, 15) == 12
    assert window_steps(0.1, 60) == 1 and window_steps(1.25, 60) == 1 and window_steps(1.5, 60) == 2
    rng = np.random.default_rng(5)
    z = rng.standard_normal((40, 24))
    valid = rng.random((40, 24)) > 0.3
    valid[0] = False  # no valid step: 0
    for width in (1, 3, 7, 24):
        np.testing.assert_allclose(largest_window_mean(z, valid, width), brute_force_windows(z, valid, width),
                                   rtol=1e-10, atol=1e-12)
    # a window longer than the profile is the whole profile
    np.testing.assert_allclose(largest_window_mean(z, valid, 100), brute_force_windows(z, valid, 24), rtol=1e-10)


def test_zscore_with_history_uses_the_households_own_days():
    rng = np.random.default_rng(6)
    n, days, length = 5, 4, 24
    history = rng.normal(0.0, 0.2, (n, days, length)).astype(np.float32)
    history[:, :, 0] = 0.3  # a step that never varies: the floor applies
    values = rng.normal(0.0, 0.2, (n, length)).astype(np.float32)
    model = ZScoreDetector(std_floor=0.05, window_hours=3.0)  # no fit needed with history
    q = DetectionQuery(values, np.ones((n, length), bool), pd.DataFrame({"series_id": range(n)}), 60,
                       history=history.reshape(n, days * length))
    mean, std = model.reference(q)
    np.testing.assert_allclose(mean, history.astype(np.float64).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(std, np.maximum(history.astype(np.float64).std(axis=1), 0.05), rtol=1e-12)
    assert (std[:, 0] == 0.05).all()
    z = (values - mean) / std
    np.testing.assert_allclose(model.anomaly_score(q, CTX), brute_force_windows(z, np.ones_like(z, bool), 3),
                               rtol=1e-10)
    # the population statistics are not used with history, and pca ignores history
    model.fit(daily_set(sine_days(30, rng)), CTX)
    np.testing.assert_allclose(model.anomaly_score(q, CTX), brute_force_windows(z, np.ones_like(z, bool), 3),
                               rtol=1e-10)
    pca = PCADetector(n_components=3)
    pca.fit(daily_set(sine_days(30, rng)), CTX)
    plain = DetectionQuery(values, np.ones((n, length), bool), q.meta, 60)
    np.testing.assert_array_equal(pca.anomaly_score(q, CTX), pca.anomaly_score(plain, CTX))


def test_pca_reconstruction_error_matches_sklearn():
    rng = np.random.default_rng(0)
    train = sine_days(200, rng, length=12)
    model = PCADetector(n_components=3)
    model.fit(daily_set(train), CTX)
    test = sine_days(20, rng, length=12)
    test[:5, 3:7] *= 1.6  # attacked
    ref = PCA(n_components=3, svd_solver="full").fit(train.astype(np.float64))
    recon = ref.inverse_transform(ref.transform(test.astype(np.float64)))
    expected = ((test - recon) ** 2).mean(axis=1)
    scores = model.anomaly_score(query(test), CTX)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-12)
    assert scores[:5].min() > np.median(scores[5:])
    # profiles inside the fitted affine subspace reconstruct exactly
    inside = model.mean_ + rng.standard_normal((4, 3)) @ model.components_
    np.testing.assert_allclose(model.anomaly_score(query(inside), CTX), 0.0, atol=1e-10)


def test_detector_errors():
    for model in (ZScoreDetector(), PCADetector()):
        with pytest.raises(RuntimeError, match="fit"):
            model.anomaly_score(query(np.zeros((2, 4))), CTX)
        model.fit(daily_set(sine_days(30, np.random.default_rng(0), length=4)), CTX)
        with pytest.raises(ValueError, match="steps"):
            model.anomaly_score(query(np.zeros((2, 5))), CTX)
    with pytest.raises(ValueError, match="std_floor"):
        ZScoreDetector(std_floor=0.0)
    with pytest.raises(ValueError, match="window_hours"):
        ZScoreDetector(window_hours=-1.0)
    with pytest.raises(ValueError, match="window_hours"):
        ZScoreDetector(window_hours=True)
    with pytest.raises(ValueError, match="n_components"):
        PCADetector(n_components=0)
    with pytest.raises(ValueError, match="n_components"):
        PCADetector(n_components=2.0)
    with pytest.raises(ValueError, match="std_floor"):
        ZScoreDetector(std_floor=float("inf"))


def test_detectors_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    train, test = sine_days(50, rng), sine_days(12, rng)
    test[:4, 5:9] *= 1.8
    valid = np.ones(test.shape, dtype=bool)
    valid[:3, 20:] = False
    for model in (ZScoreDetector(std_floor=0.02, window_hours=2.0), PCADetector(n_components=3)):
        model.fit(daily_set(train), CTX)
        loaded = type(model).load(model.save(tmp_path / f"{type(model).__name__}.pt"))
        assert loaded.params == model.params
        np.testing.assert_array_equal(loaded.anomaly_score(query(test, valid), CTX),
                                      model.anomaly_score(query(test, valid), CTX))
        with pytest.raises(RuntimeError, match="fit"):  # an unfitted model comes back unfitted
            type(model).load(type(model)().save(tmp_path / "unfitted.pt")).anomaly_score(query(test), CTX)


@pytest.mark.parametrize("n_pca", [None, 3])
def test_gmm_score_is_the_negative_mixture_log_likelihood(n_pca):
    rng = np.random.default_rng(1)
    train = sine_days(300, rng, length=8)
    model = GMM(n_components=3, n_pca=n_pca)
    model.fit(daily_set(train), CTX)
    test = sine_days(15, rng, length=8)
    weights, means, covs, _ = model.full_space_mixture()

    def reference(x, steps):
        comp = [np.log(w) + multivariate_normal(m[steps], c[np.ix_(steps, steps)]).logpdf(x[:, steps])
                for w, m, c in zip(weights, means, covs)]
        return -logsumexp(np.stack(comp), axis=0)

    all_steps = np.arange(8)
    np.testing.assert_allclose(model.anomaly_score(query(test), CTX), reference(test, all_steps), rtol=1e-8)
    # padding is marginalised out: the density of the valid steps alone
    valid = np.ones(test.shape, dtype=bool)
    valid[:5, 6:] = False
    scores = model.anomaly_score(query(test, valid), CTX)
    np.testing.assert_allclose(scores[:5], reference(test[:5], np.arange(6)), rtol=1e-8)
    np.testing.assert_allclose(scores[5:], reference(test[5:], all_steps), rtol=1e-8)


def test_vae_score_is_the_posterior_mean_negative_elbo():
    from baselines.vae import VAE, vae_loss

    rng = np.random.default_rng(2)
    model = VAE(**{**TINY_VAE, "train_steps": 30})
    model.fit(daily_set(sine_days(64, rng)), CTX)
    test = sine_days(6, rng)
    scores = model.anomaly_score(query(test), CTX)
    with torch.no_grad():
        for i in range(len(test)):
            x = torch.from_numpy(test[i:i + 1])
            mu, logvar = model._encoder(x)
            loss, _, _ = vae_loss(x, model._decoder(mu), mu, logvar, model.kl_weight)
            assert scores[i] == pytest.approx(float(loss), rel=1e-5)
    # values on padding steps do not matter
    valid = np.ones(test.shape, dtype=bool)
    valid[:, 20:] = False
    moved = test.copy()
    moved[:, 20:] += 5.0
    np.testing.assert_allclose(model.anomaly_score(query(test, valid), CTX),
                               model.anomaly_score(query(moved, valid), CTX))
    with pytest.raises(RuntimeError, match="fit"):
        VAE(**TINY_VAE).anomaly_score(query(test), CTX)


def toy_households(n_series: int = 8, days: int = 40) -> ProfileSet:
    rng = np.random.default_rng(3)
    t = np.arange(24) / 24
    starts = pd.date_range("2013-01-01", periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        for day in starts:
            values.append(0.3 + 0.05 * s + rng.uniform(0.4, 0.6) * np.sin(np.pi * t) ** 2 + 0.03 * rng.random(24))
            meta.append({"series_id": f"S{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std"})
    values = np.array(values, dtype=np.float32)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=60, period="day", name="toy")


@pytest.fixture(scope="module")
def attacked_toy():
    cfg = {**anomaly.DEFAULTS, "scale_min": 0.5, "scale_max": 0.8, "n_bootstrap": 2}
    return anomaly.prepare(toy_households(), cfg, seed=0)


@pytest.mark.parametrize("name, overrides", [("gmm", {"n_components": 2}), ("gmm-pca", {"n_components": 2}),
                                             ("vae", TINY_VAE)])
def test_generative_scores_separate_attacked_from_clean(name, overrides, attacked_toy):
    data = attacked_toy
    model = get_model(name).build("quick", overrides)
    model.fit(data.train, CTX)
    for index, setting in enumerate(data.settings):
        scores = model.anomaly_score(data.query(index), CTX)
        assert scores.shape == (len(data.real),) and np.isfinite(scores).all()
        assert auroc(data.query_labels[index], scores) > 0.7, setting
    clean = model.anomaly_score(DetectionQuery(data.real.values, data.real.mask, data.real.meta, 60), CTX)
    attacked = model.anomaly_score(data.query(0), CTX)
    hit = data.query_labels[0]
    assert np.mean(attacked[hit] > clean[hit]) > 0.8  # an attack raises the score of the same profile
