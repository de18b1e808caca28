"""LoadPIN (imputation GAN) and ProfileSR (super-resolution GAN): masks, exactness, determinism and learning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from baselines.loadpin import InpaintGenerator, LoadPIN, draw_missing, observed_stats
from baselines.profilesr import ProfileSR, block_means, mean_correct
from bench.context import RunContext
from bench.registry import get_model
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery
from tests.conftest import sine_days, daily_set

T = 24
TINY_PIN = {"base": 8, "disc_base": 8, "train_steps": 100, "batch_size": 32, "checkpoint_every": 0}
TINY_SR = {"base": 16, "n_res": 2, "disc_base": 8, "train_steps": 100, "batch_size": 32, "checkpoint_every": 0}


pytestmark = pytest.mark.usefixtures("torch_one_thread")






def imputation_query(truth: np.ndarray, observed: np.ndarray, valid: np.ndarray) -> ImputationQuery:
    return ImputationQuery(values=np.where(observed, truth, np.nan).astype(np.float32), observed=observed,
                           valid=valid, meta=daily_set(truth).meta, resolution=60)


def sr_query(truth: np.ndarray, factor: int, valid: np.ndarray | None = None) -> SuperResolutionQuery:
    valid = np.ones(truth.shape, dtype=bool) if valid is None else valid
    low = block_means(torch.as_tensor(truth), torch.as_tensor(valid), factor).numpy()
    return SuperResolutionQuery(low=low, factor=factor, valid=valid, meta=daily_set(truth).meta, resolution=60)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    return sine_days(300, rng), sine_days(100, rng)


@pytest.fixture(scope="module")
def fitted_pin(toy):
    model = LoadPIN(**TINY_PIN)
    model.fit(daily_set(toy[0]), RunContext(seed=0))
    return model


@pytest.fixture(scope="module")
def fitted_sr(toy):
    model = ProfileSR(**TINY_SR, factors=(2, 4, 5))
    model.fit(daily_set(toy[0]), RunContext(seed=0))
    return model


# -- parameters ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("loadpin", LoadPIN), ("profilesr", ProfileSR)])
def test_profiles_build_and_hold_only_what_differs_from_the_defaults(name, cls):
    spec = get_model(name)
    assert spec.cls is cls and spec.capabilities == {"impute" if cls is LoadPIN else "super_resolve"}
    defaults = dataclasses.asdict(cls.Params())
    for profile in ("test", "quick", "paper"):
        values = cls.profiles.get(profile, {})
        assert all(defaults[k] != v for k, v in values.items()), profile
        model = spec.build(profile)
        assert model.train_config.steps == model.train_steps and model.train_config.betas == (0.5, 0.9)
    assert spec.config("paper")["train_steps"] == 20_000 and spec.config("paper")["lr"] == 1e-4


@pytest.mark.parametrize("cls, bad, message", [
    (LoadPIN, {"base": 0}, "base must be a positive integer"),
    (LoadPIN, {"attention_heads": 3}, "divisible by attention_heads"),
    (LoadPIN, {"min_missing": 0.6}, "min_missing <= max_missing"),
    (LoadPIN, {"l1_missing": -1.0}, "l1_missing must be a finite number"),
    (LoadPIN, {"norm_floor": 0.0}, "norm_floor must be positive"),
    (LoadPIN, {"betas": (0.5, 1.0)}, "betas must be two numbers"),
    (LoadPIN, {"amp": "fp16"}, "amp expects"),
    (ProfileSR, {"factors": ()}, "factors must be a non-empty list"),
    (ProfileSR, {"factors": (2, 1)}, "factors must be a non-empty list"),
    (ProfileSR, {"ema_decay": 1.0}, "ema_decay must lie in"),
    (ProfileSR, {"sample_batch": 0}, "sample_batch must be a positive integer"),
    (ProfileSR, {"feature_weight": float("nan")}, "feature_weight must be a finite number"),
])
def test_bad_parameters_are_clear_errors(cls, bad, message):
    with pytest.raises(ValueError, match=message):
        cls(**bad)


def test_profilesr_factors_are_sorted_and_unique():
    assert ProfileSR(factors=(4, 2, 4)).factors == (2, 4) == ProfileSR(factors=[2, 4]).params.factors


# -- masks and normalisation -----------------------------------------------------------------------------------
def test_draw_missing_respects_padding_fraction_and_keeps_an_observed_step():
    valid = torch.ones(4000, 48, dtype=torch.bool)
    valid[::2, 30:] = False  # padded profiles: 30 valid steps
    missing = draw_missing(valid, 0.1, 0.5, torch.Generator().manual_seed(0))
    assert not (missing & ~valid).any()
    assert (valid & ~missing).any(dim=1).all()
    frac = missing.sum(1).float() / valid.sum(1).float()
    assert 0.2 < frac.mean().item() < 0.4  # the drawn fractions average 0.3 (overlapping blocks lower it a bit)
    # both kinds occur: contiguous blocks (a single run of missing steps) and scattered points
    runs = (missing[:, 1:] & ~missing[:, :-1]).sum(1) + missing[:, 0].long()
    assert (runs == 1).float().mean() > 0.15 and (runs > 3).float().mean() > 0.15
    again = draw_missing(valid, 0.1, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(missing, again)
    with pytest.raises(ValueError, match="max_missing"):
        draw_missing(valid, 0.6, 0.5, torch.Generator())


def test_observed_stats_use_only_observed_steps():
    x = torch.tensor([[1.0, 3.0, 100.0, 0.0], [5.0, 5.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0]])
    obs = torch.tensor([[True, True, False, False], [True, True, True, True], [False] * 4])
    mean, std = observed_stats(x, obs, floor=0.05)
    assert torch.allclose(mean.squeeze(1), torch.tensor([2.0, 5.0, 0.0]))
    assert torch.allclose(std.squeeze(1), torch.tensor([1.0, 0.05, 1.0]))


def test_generator_keeps_any_length_and_zero_padding():
    gen = InpaintGenerator(base=4, attention_heads=2)
    for length in (24, 37, 96):
        x = torch.randn(3, length)
        valid = torch.ones(3, length, dtype=torch.bool)
        valid[0, length - 5:] = False
        coarse, refined = gen(x, valid & (torch.rand(3, length) < 0.7), valid, torch.randn(3, length))
        assert coarse.shape == refined.shape == (3, length)
        assert torch.all(refined[0, length - 5:] == 0) and torch.all(coarse[0, length - 5:] == 0)


# -- LoadPIN -----------------------------------------------------------------------------------------------------
def test_loadpin_keeps_observed_values_zero_padding_and_is_seeded(fitted_pin, toy):
    truth = toy[1][:20]
    valid = np.ones_like(truth, dtype=bool)
    valid[:5, 18:] = False  # padded rows: never observed, must come back as 0
    rng = np.random.default_rng(3)
    observed = valid & (rng.random(truth.shape) < 0.6)
    query = imputation_query(np.where(valid, truth, 0.0), observed, valid)
    out = fitted_pin.impute(query, 4, RunContext(seed=7))
    assert out.shape == (4, 20, T) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out[:, observed], np.broadcast_to(truth[observed], (4, observed.sum())))
    assert np.all(out[:, ~valid] == 0.0)
    assert np.array_equal(out, fitted_pin.impute(query, 4, RunContext(seed=7)))
    other = fitted_pin.impute(query, 4, RunContext(seed=8))
    missing = valid & ~observed
    assert not np.array_equal(out[:, missing], other[:, missing])
    assert out[:, missing].std(axis=0).mean() > 0  # the noise channel gives an ensemble, not copies
    with pytest.raises(ValueError, match="steps"):
        fitted_pin.impute(imputation_query(truth[:, :12], observed[:, :12], valid[:, :12]), 1, RunContext())
    with pytest.raises(ValueError, match="n_samples"):
        fitted_pin.impute(query, 0, RunContext())


def test_loadpin_beats_a_constant_mean_fill(fitted_pin, toy):
    truth = toy[1]
    valid = torch.ones(truth.shape, dtype=torch.bool)
    missing = draw_missing(valid, 0.1, 0.5, torch.Generator().manual_seed(11)).numpy()
    observed = ~missing
    out = fitted_pin.impute(imputation_query(truth, observed, valid.numpy()), 5, RunContext(seed=1))
    mean_fill = np.where(observed, truth, (np.where(observed, truth, 0).sum(1) / observed.sum(1))[:, None])
    model_err = rmse(out.mean(axis=0)[missing], truth[missing])
    baseline_err = rmse(mean_fill[missing], truth[missing])
    assert model_err < 0.75 * baseline_err, (model_err, baseline_err)


def test_loadpin_fit_is_deterministic_and_trains_on_padded_profiles():
    rng = np.random.default_rng(5)
    values = sine_days(40, rng, 48)
    mask = np.ones(values.shape, dtype=bool)
    mask[::3, 36:] = False  # short "months": padding never counted
    cfg = {**TINY_PIN, "train_steps": 3, "ema_decay": None}
    outs = []
    for _ in range(2):
        model = LoadPIN(**cfg)
        model.fit(daily_set(values, mask), RunContext(seed=4))
        observed = mask.copy()
        observed[:, 10:20] = False
        outs.append(model.impute(imputation_query(np.where(mask, values, 0), observed, mask), 2, RunContext(seed=0)))
    assert np.array_equal(outs[0], outs[1])
    assert np.all(outs[0][:, ~mask] == 0.0)


# -- ProfileSR ---------------------------------------------------------------------------------------------------
def test_mean_correct_reproduces_block_means_and_zeroes_padding():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 12, generator=gen, dtype=torch.float64)
    low = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    valid = torch.ones(5, 12, dtype=torch.bool)
    valid[0, 7:] = False  # block 2 partly padding, block 3 all padding
    out = mean_correct(x, low, valid, 3)
    means = block_means(out, valid, 3)
    assert torch.allclose(means[1:], low[1:], atol=1e-12)
    assert torch.allclose(means[0, :3], low[0, :3], atol=1e-12) and means[0, 3] == 0
    assert torch.all(out[~valid] == 0)
    # within a block only a constant shift: the deviations from the block mean are untouched
    dev = lambda a: a[1:].reshape(4, 4, 3) - a[1:].reshape(4, 4, 3).mean(-1, keepdim=True)  # noqa: E731
    assert torch.allclose(dev(out), dev(x), atol=1e-12)


def test_profilesr_trains_dividing_factors_and_reproduces_block_means(fitted_sr, toy):
    assert fitted_sr.trained_factors == (2, 4)  # 5 does not divide 24
    truth = toy[1][:10]
    valid = np.ones_like(truth, dtype=bool)
    valid[:3, 16:] = False
    for factor in (2, 4):
        query = sr_query(np.where(valid, truth, 0.0), factor, valid)
        out = fitted_sr.super_resolve(query, 3, RunContext(seed=2))
        assert out.shape == (3, 10, T) and out.dtype == np.float32
        means = out.reshape(3, 10, T // factor, factor).mean(-1)
        np.testing.assert_allclose(means, np.broadcast_to(query.low, means.shape), atol=1e-6)
        assert np.all(out[:, ~valid] == 0.0)
        assert np.array_equal(out, fitted_sr.super_resolve(query, 3, RunContext(seed=2)))
        assert not np.array_equal(out, fitted_sr.super_resolve(query, 3, RunContext(seed=3)))
    with pytest.raises(ValueError, match="factor 3"):
        fitted_sr.super_resolve(sr_query(truth, 3), 1, RunContext())


def test_profilesr_beats_hold_upsampling(fitted_sr, toy):
    truth = toy[1]
    for factor in (2, 4):
        query = sr_query(truth, factor)
        out = fitted_sr.super_resolve(query, 5, RunContext(seed=0))
        hold = np.repeat(query.low, factor, axis=1)
        model_err, hold_err = rmse(out.mean(axis=0), truth), rmse(hold, truth)
        assert model_err < 0.7 * hold_err, (factor, model_err, hold_err)


def test_profilesr_rejects_lengths_without_a_factor_and_bad_factors():
    with pytest.raises(ValueError, match="divides"):
        ProfileSR(**TINY_SR, factors=(5,)).fit(
            daily_set(sine_days(8, np.random.default_rng(0))), RunContext())
    with pytest.raises(ValueError, match="factors"):
        ProfileSR(factors=(1,))


# -- save / load ---------------------------------------------------------------------------------------------------
def test_loadpin_round_trip(fitted_pin, toy, tmp_path):
    truth = toy[1][:8]
    valid = np.ones_like(truth, dtype=bool)
    valid[:2, 20:] = False
    observed = valid & (np.random.default_rng(2).random(truth.shape) < 0.5)
    query = imputation_query(np.where(valid, truth, 0.0), observed, valid)
    loaded = LoadPIN.load(fitted_pin.save(tmp_path / "loadpin.pt"))
    assert loaded.params == fitted_pin.params and loaded.length_ == T
    for seed in (0, 3):
        np.testing.assert_array_equal(loaded.impute(query, 3, RunContext(seed=seed)),
                                      fitted_pin.impute(query, 3, RunContext(seed=seed)))
    # loading builds the network without touching the global torch RNG (its random weights are overwritten)
    before = torch.get_rng_state()
    LoadPIN.load(tmp_path / "loadpin.pt")
    assert torch.equal(before, torch.get_rng_state())
    with pytest.raises(RuntimeError, match="fit"):
        LoadPIN.load(LoadPIN(**TINY_PIN).save(tmp_path / "unfitted.pt")).impute(query, 1, RunContext())
    # the autocast dtype of a GPU fit travels as its name
    state = {**fitted_pin.get_state(), "amp_dtype": "bfloat16"}
    restored = LoadPIN(**TINY_PIN)
    restored.set_state(state)
    assert restored._amp_dtype is torch.bfloat16


def test_profilesr_round_trip(fitted_sr, toy, tmp_path):
    truth = toy[1][:8]
    loaded = ProfileSR.load(fitted_sr.save(tmp_path / "profilesr.pt"))
    assert loaded.params == fitted_sr.params and loaded.trained_factors == (2, 4) and loaded.length_ == T
    for factor in (2, 4):
        query = sr_query(truth, factor)
        np.testing.assert_array_equal(loaded.super_resolve(query, 3, RunContext(seed=1)),
                                      fitted_sr.super_resolve(query, 3, RunContext(seed=1)))
    with pytest.raises(RuntimeError, match="fit"):
        ProfileSR.load(ProfileSR(**TINY_SR).save(tmp_path / "unfitted.pt")).super_resolve(sr_query(truth, 2), 1,
                                                                                          RunContext())
