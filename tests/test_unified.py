"""The pre-trained MoE + VIB unified model: imputation, fine-tuned forecasting and detection, variants,
diagnostics, checkpoint resume, determinism and save / load, on a toy weekly series (weekday and weekend day
shapes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from baselines.unified import UnifiedModel, patch_length
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import get_model
from bench.tasks.queries import (DetectionExamples, DetectionQuery, ForecastExamples, ForecastQuery,
                                 ImputationQuery)

T = 24  # hourly days
N_SERIES, N_TRAIN_SERIES, N_DAYS = 24, 16, 56
# a small network trained briefly at a higher learning rate; the fine-tunes get 150 steps, in which the toy
# detector needs the encoder copy to move further from the pre-trained weights than the default weight allows
TINY = {"n_patches": 6, "d_model": 16, "d_k": 4, "n_experts": 4, "k": 2, "n_layers": 1, "train_steps": 300,
        "batch_size": 32, "lr": 3e-3, "checkpoint_every": 0, "finetune_steps": 150, "finetune_batch": 32,
        "finetune_reg": 0.1, "head_hidden": 64, "diag_profiles": 200}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def weekly_series(rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """Consecutive days of ``N_SERIES`` households from a Monday: a two-peak weekday shape and a broad
    weekend hump, household level and amplitude, +-15 % day-to-day amplitude and noise (scaled units)."""
    t = np.arange(T) / T
    weekday = np.exp(-0.5 * ((t - 0.3) / 0.05) ** 2) + 0.8 * np.exp(-0.5 * ((t - 0.8) / 0.06) ** 2)
    weekend = 0.9 * np.exp(-0.5 * ((t - 0.55) / 0.15) ** 2)
    dates = pd.Timestamp("2013-01-07") + pd.to_timedelta(np.arange(N_DAYS), "D")
    values, metas = [], []
    for s in range(N_SERIES):
        base, amp = rng.uniform(-0.8, -0.5), rng.uniform(0.4, 0.9)
        shape = np.where((dates.dayofweek >= 5)[:, None], weekend, weekday)
        values.append(base + amp * shape * rng.uniform(0.85, 1.15, (N_DAYS, 1))
                      + 0.03 * rng.standard_normal((N_DAYS, T)))
        metas.append(pd.DataFrame({"series_id": f"S{s:02d}", "start": dates, "month": dates.month,
                                   "weekday": dates.dayofweek, "days": 1, "category": "toy"}))
    return np.concatenate(values).astype(np.float32), pd.concat(metas, ignore_index=True)


def profile_set(values: np.ndarray, meta: pd.DataFrame) -> ProfileSet:
    return ProfileSet(values=values, mask=np.ones(values.shape, bool), meta=meta, resolution=60, period="day",
                      name="toy")


def day_ahead_windows(values: np.ndarray, meta: pd.DataFrame) -> tuple[ForecastQuery, np.ndarray]:
    """Every (7 days of history -> next day) window of every series."""
    hist, target, rows = [], [], []
    for sid, group in meta.groupby("series_id", sort=True):
        idx = group.index.to_numpy()
        for d in range(7, len(idx)):
            hist.append(values[idx[d - 7:d]].reshape(-1))
            target.append(values[idx[d]])
            rows.append((sid, meta.loc[idx[d], "start"]))
    query = ForecastQuery(history=np.asarray(hist, np.float32), horizon=T,
                          meta=pd.DataFrame(rows, columns=["series_id", "origin"]), resolution=60)
    return query, np.asarray(target, np.float32)


def scaling_attacks(values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half of the profiles get one segment (4-9 h) of their load (``scaled + 1``) scaled by 1 +- [0.3, 0.6]."""
    x = values.copy()
    labels = rng.random(len(x)) < 0.5
    for i in np.flatnonzero(labels):
        length = int(rng.integers(4, 10))
        a = int(rng.integers(0, T - length + 1))
        lam = rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.6)
        x[i, a:a + length] += lam * (x[i, a:a + length] + 1.0)
    return x, labels


def linear_interpolation(truth: np.ndarray, observed: np.ndarray) -> np.ndarray:
    steps = np.arange(truth.shape[1])
    out = truth.copy()
    for i in range(len(truth)):
        o = observed[i]
        out[i, ~o] = np.interp(steps[~o], steps[o], truth[i, o])
    return out


def block_query(truth: np.ndarray, meta: pd.DataFrame, length: int, rng: np.random.Generator) -> ImputationQuery:
    start = rng.integers(0, T - length + 1, len(truth))
    steps = np.arange(T)
    observed = ~((steps >= start[:, None]) & (steps < start[:, None] + length))
    return ImputationQuery(values=np.where(observed, truth, np.nan).astype(np.float32), observed=observed,
                           valid=np.ones_like(observed), meta=meta, resolution=60)


@pytest.fixture(scope="module")
def toy():
    values, meta = weekly_series(np.random.default_rng(0))
    train_rows = meta["series_id"].isin([f"S{s:02d}" for s in range(N_TRAIN_SERIES)]).to_numpy()
    train_meta = meta[train_rows].reset_index(drop=True)
    test_meta = meta[~train_rows].reset_index(drop=True)
    return {"train": profile_set(values[train_rows], train_meta), "train_values": values[train_rows],
            "train_meta": train_meta, "test_values": values[~train_rows], "test_meta": test_meta}


@pytest.fixture(scope="module")
def fitted(toy):
    model = UnifiedModel(**TINY)
    model.fit(toy["train"], RunContext(seed=0))
    return model


@pytest.fixture(scope="module")
def fitted_plain(toy):
    """No MoE and no VIB (the paper's "None" ablation), briefly trained."""
    model = UnifiedModel(**{**TINY, "train_steps": 60, "finetune_steps": 20, "moe": False, "vib": False})
    model.fit(toy["train"], RunContext(seed=0))
    return model


def quick_model(**overrides) -> UnifiedModel:
    return UnifiedModel(**{**TINY, "train_steps": 30, **overrides})


# -- imputation --------------------------------------------------------------------------------------------------
def test_impute_beats_linear_interpolation_on_hidden_blocks(fitted, toy):
    truth = toy["test_values"]
    query = block_query(truth, toy["test_meta"], 8, np.random.default_rng(1))
    samples = fitted.impute(query, 8, RunContext(seed=0))
    assert samples.shape == (8, len(truth), T) and samples.dtype == np.float32
    assert np.array_equal(samples[:, query.observed], np.broadcast_to(truth[query.observed], (8, query.observed.sum())))
    hidden = ~query.observed
    mae_model = np.abs(np.median(samples, axis=0) - truth)[hidden].mean()
    mae_linear = np.abs(linear_interpolation(truth, query.observed) - truth)[hidden].mean()
    # the block hides part of a peak: interpolation cuts through it, the model restores the day's shape
    assert mae_model < 0.6 * mae_linear, (mae_model, mae_linear)


def test_vib_ensemble_has_spread_and_no_vib_ensemble_has_none(fitted, fitted_plain, toy):
    query = block_query(toy["test_values"][:40], toy["test_meta"].iloc[:40], 6, np.random.default_rng(2))
    hidden = ~query.observed
    with_vib = fitted.impute(query, 5, RunContext(seed=0))
    assert with_vib.std(axis=0)[hidden].mean() > 1e-3
    assert not np.array_equal(with_vib[0], with_vib[1])
    without = fitted_plain.impute(query, 5, RunContext(seed=0))
    assert all(np.array_equal(without[0], without[s]) for s in range(1, 5))


def test_impute_keeps_padding_zero_and_rejects_bad_input(fitted, toy):
    truth = toy["test_values"][:5]
    valid = np.ones(truth.shape, bool)
    valid[:, -4:] = False  # padding (as at the end of a short month)
    observed = valid.copy()
    observed[:, 3:9] = False
    query = ImputationQuery(values=np.where(observed, truth, np.nan).astype(np.float32), observed=observed,
                            valid=valid, meta=toy["test_meta"].iloc[:5], resolution=60)
    out = fitted.impute(query, 2, RunContext(seed=0))
    assert (out[:, :, -4:] == 0).all() and np.isfinite(out).all()
    with pytest.raises(ValueError, match="n_samples"):
        fitted.impute(query, 0, RunContext(seed=0))
    short = ImputationQuery(values=truth[:, :12], observed=np.ones((5, 12), bool), valid=np.ones((5, 12), bool),
                            meta=toy["test_meta"].iloc[:5], resolution=120)
    with pytest.raises(ValueError, match="24 steps"):
        fitted.impute(short, 2, RunContext(seed=0))
    with pytest.raises(RuntimeError, match="fit"):
        quick_model().impute(query, 2, RunContext(seed=0))


# -- forecasting --------------------------------------------------------------------------------------------------
def test_fine_tuned_forecast_beats_seasonal_naive(fitted, toy):
    examples = ForecastExamples(*day_ahead_windows(toy["train_values"], toy["train_meta"]))
    query, target = day_ahead_windows(toy["test_values"], toy["test_meta"])
    fitted.fit_forecast(examples, RunContext(seed=0))
    samples = fitted.forecast(query, 6, RunContext(seed=0))
    assert samples.shape == (6, len(query), T) and np.isfinite(samples).all()
    assert samples.std(axis=0).mean() > 0  # one posterior draw per member
    mae_model = np.abs(np.median(samples, axis=0) - target).mean()
    mae_naive = np.abs(query.history[:, -T:] - target).mean()  # the same steps one day earlier
    # seasonal naive is wrong on Saturdays and Mondays; the calendar and the week's windows tell the model
    assert mae_model < 0.6 * mae_naive, (mae_model, mae_naive)


def test_forecast_checks_history_and_fitted_heads(fitted, fitted_plain, toy):
    query, target = day_ahead_windows(toy["test_values"][: 10 * N_DAYS], toy["test_meta"].iloc[: 10 * N_DAYS])
    bad = ForecastQuery(history=query.history[:, 5:], horizon=T, meta=query.meta, resolution=60)
    with pytest.raises(ValueError, match="multiple"):
        fitted.fit_forecast(ForecastExamples(bad, target), RunContext(seed=0))
    other = ForecastQuery(history=query.history, horizon=3, meta=query.meta, resolution=60)
    with pytest.raises(RuntimeError, match="fit_forecast"):
        fitted_plain.forecast(other, 4, RunContext(seed=0))
    # without the VIB a forecast is a point forecast [N, h]
    fitted_plain.fit_forecast(ForecastExamples(other, target[:, :3]), RunContext(seed=0))
    point = fitted_plain.forecast(other, 4, RunContext(seed=0))
    assert point.shape == (len(query), 3)


def _distance(encoder, reference) -> float:
    return float(sum(((p - r) ** 2).sum() for p, r in zip(encoder.parameters(), reference)))


def test_fine_tunes_start_from_and_stay_near_the_pretrained_weights(toy):
    model = quick_model(finetune_steps=25)
    model.fit(toy["train"], RunContext(seed=0))
    snapshot = [p.detach().clone() for p in model._encoder.parameters()]
    examples = ForecastExamples(*day_ahead_windows(toy["train_values"], toy["train_meta"]))
    distances = {}
    for reg in (0.0, 100.0):
        model.finetune_reg = reg
        model.fit_forecast(examples, RunContext(seed=0))
        distances[reg] = _distance(model._forecasters[(7 * T, T)][0], snapshot)
    assert _distance(model._encoder, snapshot) == 0.0  # theta_s is never modified
    assert 0.0 < distances[100.0] < 0.5 * distances[0.0]  # the L2-SP term pulls the copy back to theta_s
    model.freeze_encoder = True
    model.fit_forecast(examples, RunContext(seed=0))
    assert _distance(model._forecasters[(7 * T, T)][0], snapshot) == 0.0


# -- detection ----------------------------------------------------------------------------------------------------
def test_detector_separates_scaled_segments(fitted, toy):
    rng = np.random.default_rng(3)
    x_train, y_train = scaling_attacks(toy["train_values"], rng)
    x_test, y_test = scaling_attacks(toy["test_values"], rng)
    fitted.fit_detector(DetectionExamples(DetectionQuery(x_train, np.ones_like(x_train, bool), toy["train_meta"], 60),
                                          y_train), RunContext(seed=0))
    query = DetectionQuery(x_test, np.ones_like(x_test, bool), toy["test_meta"], 60)
    scores = fitted.anomaly_score(query, RunContext(seed=0))
    assert scores.shape == (len(x_test),) and np.isfinite(scores).all()
    assert roc_auc_score(y_test, scores) > 0.8
    assert np.array_equal(scores, fitted.anomaly_score(query, RunContext(seed=5)))  # deterministic


def _levelled_days(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Households of very different levels (0.1..1.9 on a 0..2 scale, minus 1): each day is its household's
    shape plus noise, with seven preceding days of the same household as history; half of the days get one
    segment scaled by 1.3..1.6 (relative to the household, not to the population)."""
    hours = np.arange(T)
    level = rng.uniform(0.1, 1.9, n)[:, None]
    shape = 0.5 + 0.4 * np.sin(2 * np.pi * (hours - rng.uniform(0, 24, n)[:, None]) / T)
    noisy = lambda: level * shape * (1 + 0.03 * rng.standard_normal((n, T)))  # noqa: E731
    history = np.concatenate([noisy() for _ in range(7)], axis=1) - 1.0
    day = noisy()
    labels = rng.random(n) < 0.5
    for i in np.flatnonzero(labels):
        a = int(rng.integers(0, T - 6))
        day[i, a:a + 6] *= rng.uniform(1.3, 1.6)
    return (day - 1.0).astype(np.float32), history.astype(np.float32), labels


def test_detector_with_household_history_sees_what_the_population_hides(fitted):
    rng = np.random.default_rng(7)
    meta = lambda n: pd.DataFrame({"series_id": [f"H{i}" for i in range(n)]})  # noqa: E731
    x_train, h_train, y_train = _levelled_days(rng, 600)
    x_test, h_test, y_test = _levelled_days(rng, 300)
    ones = np.ones_like(x_test, bool)
    aurocs = {}
    for with_history in (True, False):
        train_query = DetectionQuery(x_train, np.ones_like(x_train, bool), meta(600), 60,
                                     history=h_train if with_history else None)
        fitted.fit_detector(DetectionExamples(train_query, y_train), RunContext(seed=0))
        query = DetectionQuery(x_test, ones, meta(300), 60, history=h_test if with_history else None)
        aurocs[with_history] = roc_auc_score(y_test, fitted.anomaly_score(query, RunContext(seed=0)))
    assert aurocs[True] > 0.9 and aurocs[True] > aurocs[False] + 0.1, aurocs
    # the detector last fitted without history refuses queries with history (and vice versa)
    with pytest.raises(ValueError, match="history days"):
        fitted.anomaly_score(DetectionQuery(x_test, ones, meta(300), 60, history=h_test), RunContext(seed=0))


def test_anomaly_score_needs_fit_detector(fitted_plain, toy):
    x = toy["test_values"][:4]
    query = DetectionQuery(x, np.ones_like(x, bool), toy["test_meta"].iloc[:4], 60)
    with pytest.raises(RuntimeError, match="fit_detector"):
        fitted_plain.anomaly_score(query, RunContext(seed=0))
    with pytest.raises(ValueError, match="both"):
        fitted_plain.fit_detector(DetectionExamples(query, np.zeros(4, bool)), RunContext(seed=0))


# -- registry, configs, diagnostics --------------------------------------------------------------------------------
def test_registered_variants_pin_the_ablation_flags():
    expected = {"unified": (True, True), "unified-no-moe": (False, True), "unified-no-vib": (True, False),
                "unified-plain": (False, False)}
    for name, (moe, vib) in expected.items():
        spec = get_model(name)
        assert spec.cls is UnifiedModel
        assert spec.capabilities == frozenset({"impute", "forecast", "detect"})
        for profile in ("test", "quick", "paper"):
            assert (spec.config(profile)["moe"], spec.config(profile)["vib"]) == (moe, vib)
        model = spec.build("quick")
        assert (model.moe, model.vib) == (moe, vib)


def test_paper_profile_is_table_one():
    cfg = get_model("unified").config("paper")
    table_one = {"n_patches": 12, "d_model": 16, "d_k": 4, "n_experts": 8, "k": 2, "n_layers": 8, "beta": 0.001,
                 "w_value": 0.1, "w_load": 0.1, "epochs": 100, "batch_size": 16, "lr": 0.001}
    assert {k: cfg[k] for k in table_one} == table_one
    model = UnifiedModel(**cfg)
    assert model.expert_hidden is None and model.expert_width == 64  # 4 d_model (Table I gives no width)
    assert model.train_config(1000).steps == int(np.ceil(100 * 1000 / 16))  # epochs become steps
    assert len(model.build_networks(48)["encoder"].blocks) == 8


def test_diagnostics_report_expert_utilisation(fitted, fitted_plain):
    assert quick_model().diagnostics() == {}
    diag = fitted.diagnostics()
    fractions = np.array([[diag[f"expert_util/L0/E{e}"] for e in range(4)]])
    assert fractions.sum() == pytest.approx(1.0)
    assert diag["expert_util_max"] == pytest.approx(fractions.max())
    assert diag["expert_util_min"] == pytest.approx(fractions.min())
    assert diag["expert_util_cv"] == pytest.approx(fractions.std() / fractions.mean())
    assert diag["expert_util_min"] > 0.05  # the balance losses keep every expert in use
    assert diag["pretrain_mse"] < 0.5 and diag["pretrain_kl"] > 0 and diag["pretrain_balance"] >= 0
    plain = fitted_plain.diagnostics()
    assert not any(k.startswith("expert_util") for k in plain)
    assert plain["pretrain_kl"] == 0.0 and plain["pretrain_balance"] == 0.0


def test_diagnostics_sum_to_one_per_layer_with_several_layers(toy):
    model = quick_model(n_layers=2, n_experts=3, k=1, train_steps=10)
    model.fit(toy["train"], RunContext(seed=0))
    diag = model.diagnostics()
    for layer in range(2):
        assert sum(diag[f"expert_util/L{layer}/E{e}"] for e in range(3)) == pytest.approx(1.0)
    assert "expert_util/L2/E0" not in diag


# -- checkpoint, determinism, validation -------------------------------------------------------------------------
def test_checkpointed_fit_resumes_without_training_and_interrupted_fit_matches(toy, tmp_path):
    query = block_query(toy["test_values"][:30], toy["test_meta"].iloc[:30], 6, np.random.default_rng(4))
    first = quick_model()
    first.fit(toy["train"], RunContext(seed=0, checkpoint_dir=tmp_path / "a"))
    again = quick_model()
    again.fit(toy["train"], RunContext(seed=0, checkpoint_dir=tmp_path / "a"))
    assert again.train_result_.resumed_from == 30 and again.train_result_.history == []
    expected = first.impute(query, 3, RunContext(seed=0))
    assert np.array_equal(again.impute(query, 3, RunContext(seed=0)), expected)
    assert again.diagnostics() == first.diagnostics()
    # an interrupted run resumed from its checkpoint equals the uninterrupted one
    split = quick_model()
    split.fit(toy["train"], RunContext(seed=0, checkpoint_dir=tmp_path / "b", budget_steps=12))
    assert split.train_result_.steps == 12
    split.fit(toy["train"], RunContext(seed=0, checkpoint_dir=tmp_path / "b"))
    assert split.train_result_.resumed_from == 12
    assert np.array_equal(split.impute(query, 3, RunContext(seed=0)), expected)


def test_same_seed_same_results_other_seed_differs(toy):
    query = block_query(toy["test_values"][:30], toy["test_meta"].iloc[:30], 6, np.random.default_rng(5))
    runs = []
    for seed in (0, 0, 1):
        model = quick_model()
        model.fit(toy["train"], RunContext(seed=seed))
        runs.append(model.impute(query, 3, RunContext(seed=seed)))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_bad_arguments_raise_value_errors(toy):
    base = dict(TINY)
    for bad, match in (({"d_k": 5}, "d_k"), ({"k": 5}, "k=5"), ({"mask_max": 1.0}, "mask_max"),
                       ({"epochs": 10}, "exactly one"), ({"beta": -1.0}, "beta"), ({"gate_noise": "x"}, "gate_noise"),
                       ({"n_layers": 0}, "n_layers"), ({"norm_floor": 0.0}, "norm_floor")):
        with pytest.raises(ValueError, match=match):
            UnifiedModel(**{**base, **bad})
    with pytest.raises(ValueError, match="n_patches=5 does not divide"):
        quick_model(n_patches=5).fit(toy["train"], RunContext(seed=0))
    assert patch_length(48, 12) == 4


# -- the pre-training objective against eq. 26 -------------------------------------------------------------------
def test_vib_objective_is_eq_26_by_hand():
    """One profile of T = 4 valid steps, squared errors 1, 0, 4, 0 (sum 5), and a 2-dimensional posterior
    mu = (1, 0), sigma = (1, 2): eq. 26's bottleneck sum is (-1 + 1 + 1 - 0) + (-1 + 0 + 4 - 2 ln 2)."""
    from baselines.unified import vib_objective

    recon = torch.tensor([[1.0, 0.0, 2.0, 0.0]])
    target = torch.zeros(1, 4)
    valid = torch.ones(1, 4, dtype=torch.bool)
    mu, sigma = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[1.0, 2.0]]])
    penalty = 1.0 + (3.0 - 2.0 * np.log(2.0))
    beta = 0.1
    objective, mse, kl = vib_objective(recon, target, valid, mu, sigma, beta)
    eq26 = 5.0 + beta * penalty  # ||x - g(f(.))||^2 + beta * sum_j (-1 + mu^2 + sigma^2 - 2 log sigma)
    assert float(objective) == pytest.approx(eq26 / 4, rel=1e-6)  # eq. 26 divided by the T = 4 valid steps
    assert float(mse) == pytest.approx(5.0 / 4) and float(kl) == pytest.approx(penalty / 2, rel=1e-6)
    # Table I's beta keeps its meaning: beta times the (halved) KL weighs 2 beta / T against the per-step MSE
    assert float(objective - mse) == pytest.approx(2 * beta * float(kl) / 4, rel=1e-6)
    # two profiles, one with half its steps padded: both sums run over the batch, divided by its 6 valid steps
    recon2 = torch.tensor([[1.0, 0.0, 2.0, 0.0], [3.0, 1.0, 9.0, 9.0]])
    valid2 = torch.tensor([[True] * 4, [True, True, False, False]])
    mu2, sigma2 = torch.cat([mu, torch.zeros(1, 1, 2)]), torch.cat([sigma, torch.ones(1, 1, 2)])
    objective2, _, _ = vib_objective(recon2, torch.zeros(2, 4), valid2, mu2, sigma2, beta)
    assert float(objective2) == pytest.approx((5.0 + 10.0 + beta * (penalty + 0.0)) / 6, rel=1e-6)
    # without a bottleneck the objective is the MSE alone
    plain, mse_plain, kl_plain = vib_objective(recon, target, valid, None, None, beta)
    assert float(plain) == float(mse_plain) == pytest.approx(1.25) and float(kl_plain) == 0.0


def test_model_loss_weighs_the_bottleneck_as_eq_26(toy):
    """The model's pre-training loss: total = MSE + beta * 2 KL / T + balance, with Table I's beta as printed."""
    model = quick_model(beta=0.001)
    nets = model.build_networks(T)
    x = torch.as_tensor(toy["train_values"][:16])
    valid = torch.ones_like(x, dtype=torch.bool)
    with torch.no_grad():
        losses, _ = model.pretraining_losses(nets["encoder"], nets["recovery"], x, valid,
                                             torch.Generator().manual_seed(0))
    expected = losses["mse"] + 0.001 * 2.0 * losses["kl"] / T + losses["balance"]
    assert float(losses["kl"]) > 0 and float(losses["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert UnifiedModel.pretrains is True


# -- save / load ---------------------------------------------------------------------------------------------------
def test_save_and_load_keep_the_pretrained_and_every_fine_tuned_network(toy, tmp_path):
    """Imputation, the forecaster of each (history, horizon) and the detector (with household history) give the
    same outputs after a round trip, and a loaded model fine-tunes as the original does (theta_s travels)."""
    model = quick_model(finetune_steps=5)
    model.fit(toy["train"], RunContext(seed=0))
    rows = slice(0, 4 * N_DAYS)  # four households
    examples = ForecastExamples(*day_ahead_windows(toy["train_values"][rows], toy["train_meta"].iloc[rows]))
    short = ForecastQuery(history=examples.query.history[:, -2 * T:], horizon=6, meta=examples.query.meta,
                          resolution=60)
    model.fit_forecast(examples, RunContext(seed=0))
    model.fit_forecast(ForecastExamples(short, examples.target[:, :6]), RunContext(seed=0))
    x, history, labels = _levelled_days(np.random.default_rng(9), 40)
    detect = DetectionQuery(x, np.ones_like(x, bool), pd.DataFrame({"series_id": np.arange(40)}), 60, history=history)
    model.fit_detector(DetectionExamples(detect, labels), RunContext(seed=0))
    loaded = UnifiedModel.load(model.save(tmp_path / "unified.pt"))
    assert sorted(loaded._forecasters) == [(2 * T, 6), (7 * T, T)] and loaded.diagnostics() == model.diagnostics()
    ctx = RunContext(seed=3)
    query = block_query(toy["test_values"][:10], toy["test_meta"].iloc[:10], 6, np.random.default_rng(6))
    np.testing.assert_array_equal(loaded.impute(query, 3, ctx), model.impute(query, 3, ctx))
    for q in (examples.query, short):
        np.testing.assert_array_equal(loaded.forecast(q, 2, ctx), model.forecast(q, 2, ctx))
    np.testing.assert_array_equal(loaded.anomaly_score(detect, ctx), model.anomaly_score(detect, ctx))
    model.fit_forecast(ForecastExamples(short, examples.target[:, :6]), RunContext(seed=1))
    loaded.fit_forecast(ForecastExamples(short, examples.target[:, :6]), RunContext(seed=1))
    np.testing.assert_array_equal(loaded.forecast(short, 2, ctx), model.forecast(short, 2, ctx))
