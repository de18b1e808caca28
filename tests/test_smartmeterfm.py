"""SmartMeterFM and the flow-matching utilities: closed forms, operators, guided sampling, masking, learning,
registration and save / load."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.flow import (AveragePool, Compose, EndpointGuidance, Mean, ObservedMask, Peak, euler_sample,
                            guided_sample, heun_sample, logit_normal_times, masked_mse, ot_path, ot_velocity,
                            smooth_max_weights)
from baselines.smartmeterfm import SmartMeterFM, aligned_positions, drop_labels
from bench.api import ParamError
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import get_model
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery
from metrics import crps_ensemble

TINY = {"fold": 4, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "lr": 3e-3, "warmup_steps": 20,
        "ema_decay": 0.98, "sample_steps": 16, "checkpoint_every": 0, "train_steps": 400}


def tiny(**overrides) -> SmartMeterFM:
    return SmartMeterFM(**{**TINY, **overrides})


def make_meta(n: int, month=None, weekday=None, days=1, category="all") -> pd.DataFrame:
    return pd.DataFrame({"series_id": np.arange(n), "start": 0,
                         "month": np.ones(n, int) if month is None else month,
                         "weekday": np.zeros(n, int) if weekday is None else weekday,
                         "days": days, "category": category})


def toy_days(n: int, rng: np.random.Generator, length: int = 24):
    """Sine-shaped days with random amplitude and phase; the month shifts the level (strongly)."""
    t = np.arange(length) / length
    amp = rng.uniform(0.3, 0.6, (n, 1))
    shift = rng.uniform(-0.25, 0.25, (n, 1))
    month = rng.integers(1, 13, n)
    level = 0.35 * (month[:, None] - 6.5) / 5.5
    x = amp * np.sin(2 * np.pi * (t - shift)) + level + 0.02 * rng.standard_normal((n, length))
    return x.astype(np.float32), month


@pytest.fixture(scope="module")
def toy_model():
    rng = np.random.default_rng(0)
    x, month = toy_days(800, rng)
    ps = ProfileSet(values=x, mask=np.ones(x.shape, bool), meta=make_meta(len(x), month=month), resolution=60,
                    period="day", name="toy")
    model = tiny()
    # one intra-op thread: on a shared two-core machine, two spinning threads make tiny steps far slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.fit(ps, RunContext(seed=0))
    finally:
        torch.set_num_threads(threads)
    return model


# -- flow basics ----------------------------------------------------------------------------------------------
def test_ot_path_and_velocity_closed_form():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(5, 12, generator=g), torch.randn(5, 12, generator=g)
    torch.testing.assert_close(ot_path(x0, x1, 0.0), x0)
    torch.testing.assert_close(ot_path(x0, x1, 1.0), x1)
    t = torch.rand(5, generator=g)
    torch.testing.assert_close(ot_path(x0, x1, t), x0 + t[:, None] * (x1 - x0))
    h = 1e-3  # the path's time derivative is the target
    fd = (ot_path(x0, x1, t + h) - ot_path(x0, x1, t - h)) / (2 * h)
    torch.testing.assert_close(fd, ot_velocity(x0, x1), atol=1e-3, rtol=0)
    times = logit_normal_times(torch.randn(200_000, generator=g), 0.0, 1.0)
    assert 0 < float(times.min()) and float(times.max()) < 1
    assert abs(float(times.median()) - 0.5) < 0.01  # sigmoid of a median-0 normal


def test_euler_and_heun_on_a_linear_field():
    a = -1.3
    x0 = torch.linspace(-2, 2, 7, dtype=torch.float64).reshape(1, 7)
    exact = x0 * math.exp(a)
    errors = {}
    for name, fn in (("euler", euler_sample), ("heun", heun_sample)):
        errors[name] = [float((fn(lambda x, t: a * x, x0, n) - exact).abs().max()) for n in (10, 20)]
    assert errors["heun"][1] < errors["euler"][1] / 20
    assert 1.7 < errors["euler"][0] / errors["euler"][1] < 2.3  # first order
    assert 3.5 < errors["heun"][0] / errors["heun"][1] < 4.5  # second order
    # a time-dependent field: dx/dt = 2t integrates exactly by Heun (trapezoid on a linear integrand)
    out = heun_sample(lambda x, t: 2 * t[:, None].expand_as(x), torch.zeros(2, 3, dtype=torch.float64), 5)
    torch.testing.assert_close(out, torch.ones(2, 3, dtype=torch.float64))


def test_masked_mse_ignores_masked_entries():
    pred, target = torch.randn(3, 8), torch.randn(3, 8)
    mask = torch.rand(3, 8) > 0.4
    expected = ((pred - target) ** 2)[mask].mean()
    target_nan = target.masked_fill(~mask, float("nan"))
    torch.testing.assert_close(masked_mse(pred, target_nan, mask), expected)
    with pytest.raises(ValueError):
        masked_mse(pred, target, torch.zeros(3, 8, dtype=torch.bool))


# -- measurement operators ------------------------------------------------------------------------------------
def month_valid(b: int, days_per_row, spd: int = 4) -> torch.Tensor:
    lengths = torch.as_tensor(days_per_row) * spd
    return torch.arange(31 * spd)[None, :] < lengths[:, None]


def test_each_operator_projects_onto_its_measurement_and_is_idempotent():
    g = torch.Generator().manual_seed(1)
    b, spd = 4, 4
    valid = month_valid(b, [31, 28, 30, 29], spd)
    length = valid.shape[1]
    x = torch.randn(b, length, generator=g, dtype=torch.float64)
    truth = torch.where(valid, torch.randn(b, length, generator=g, dtype=torch.float64), torch.zeros(()))
    observed = (torch.rand(b, length, generator=g) < 0.3) & valid
    low = AveragePool(torch.zeros(b, length // 2), 2, valid).apply(truth)
    ops = {
        "mask": ObservedMask(truth.masked_fill(~observed, float("nan")), observed, valid),
        "pool": AveragePool(torch.nan_to_num(low), 2, valid),
        "mean": Mean(torch.tensor([0.3, float("nan"), -0.2, 1.0]), valid),
        "peak": Peak(torch.tensor([0.5, 4.0, float("nan"), 2.0]), valid),
    }
    for name, op in ops.items():
        p = op.project(x)
        assert (p[~valid] == 0).all(), name
        torch.testing.assert_close(op.project(p), p, atol=1e-12, rtol=0, msg=name)
    p = ops["mask"].project(x)
    assert torch.equal(p[observed], truth[observed])
    assert torch.equal(p[valid & ~observed], x[valid & ~observed])  # unobserved steps untouched
    p = ops["pool"].project(x)
    torch.testing.assert_close(ops["pool"].apply(p)[:, : 28 * spd // 2], low[:, : 28 * spd // 2])
    p = ops["mean"].project(x)
    m = ops["mean"].apply(p)
    torch.testing.assert_close(m[[0, 2, 3]], torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64))
    torch.testing.assert_close(p[1], torch.where(valid[1], x[1], torch.zeros(())))  # NaN = free
    p = ops["peak"].project(x)
    torch.testing.assert_close(ops["peak"].apply(p)[[0, 1, 3]], torch.tensor([0.5, 4.0, 2.0], dtype=torch.float64))
    # raising to 4.0 changes a single step, the maximum one
    assert int((p[1] != torch.where(valid[1], x[1], torch.zeros(()))).sum()) == 1
    torch.testing.assert_close(p[2], torch.where(valid[2], x[2], torch.zeros(())))
    # compose: both constraints; the last projected holds exactly, the other closely after alternation
    both = Compose([Mean(torch.full((b,), 0.1), valid), Peak(torch.full((b,), 1.0), valid)], iterations=30)
    p = both.project(x)
    mean, peak = both.apply(p)
    torch.testing.assert_close(peak, torch.ones(b, dtype=torch.float64))
    assert float((mean - 0.1).abs().max()) < 1e-3


def _field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth nonlinear velocity field standing in for a network."""
    return torch.sin(x) - 0.5 * x + t[:, None]


@pytest.mark.parametrize("resample", [0, 2])
def test_guided_sampler_meets_the_measurement_exactly(resample):
    g = torch.Generator().manual_seed(2)
    b, length = 6, 48
    truth = torch.randn(b, length, generator=g)
    observed = torch.rand(b, length, generator=g) < 0.4
    noise = torch.randn(b, length, generator=torch.Generator().manual_seed(3))
    op = ObservedMask(truth.masked_fill(~observed, float("nan")), observed)
    out = guided_sample(_field, noise, op, 20, resample_steps=resample, resample_after=0.5,
                        generator=torch.Generator().manual_seed(4))
    assert torch.isfinite(out).all()
    assert torch.equal(out[observed], truth[observed])
    assert not torch.equal(out[~observed], truth[~observed])
    low = truth.reshape(b, -1, 4).mean(-1)
    out = guided_sample(_field, noise, AveragePool(low, 4), 20, resample_steps=resample,
                        generator=torch.Generator().manual_seed(4))
    assert float((out.reshape(b, -1, 4).mean(-1) - low).abs().max()) < 1e-5
    # without an operator the step rule reduces to Euler
    torch.testing.assert_close(guided_sample(_field, noise, None, 20), euler_sample(_field, noise, 20))


# -- network: positions, masking, labels ----------------------------------------------------------------------
def test_aligned_positions_line_up_across_resolutions_and_weekdays():
    weekday = torch.tensor([0, 3])
    half_hour = aligned_positions(6, 8, 30, weekday)  # 48 steps, tokens every 4 h
    hourly = aligned_positions(6, 4, 60, weekday)
    torch.testing.assert_close(half_hour, hourly)
    torch.testing.assert_close(half_hour[1, 0], torch.tensor(3 * 1440.0))
    dropped = aligned_positions(6, 4, 60, weekday, known=torch.tensor([True, False]))
    torch.testing.assert_close(dropped[1], torch.arange(6.0) * 240)


class StubTrainer:
    """The part of ``bench.train.Trainer`` a training step uses, with seeded noise and captured losses."""

    def __init__(self, net: torch.nn.Module, seed: int) -> None:
        self.net = net
        self.generator = torch.Generator().manual_seed(seed)
        self.losses: list[torch.Tensor] = []

    def autocast(self):
        return torch.autocast("cpu", enabled=False)

    def model(self, name: str) -> torch.nn.Module:
        return self.net

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def update(self, loss: torch.Tensor) -> None:
        self.net.zero_grad()
        loss.backward()
        self.losses.append(loss.detach())


def _monthly_model(spd: int = 4):
    model = tiny(fold=2)
    model.length_, model.resolution_, model.categories_ = 31 * spd, 1440 // spd, ("Std", "ToU")
    torch.manual_seed(0)
    net = model.build_network(model.length_, model.resolution_)
    # non-zero output head so that gradients reach the whole network
    for p in net.parameters():
        if (p == 0).all():
            torch.nn.init.normal_(p, std=0.05)
    return model, net


def test_padding_never_leaks_into_the_loss_gradients_or_outputs():
    spd = 4
    model, net = _monthly_model(spd)
    days = np.array([31, 28, 30, 29])
    valid = model.valid_from_days(days)
    rng = np.random.default_rng(0)
    x = np.where(valid, rng.standard_normal(valid.shape), 0.0).astype(np.float32)
    labels = model.encode_labels(make_meta(4, month=[1, 2, 4, 2], weekday=[0, 3, 5, 6], days=days,
                                           category=["Std", "ToU", "other", "Std"]), 4)
    assert labels[2, 3] == 2 and labels[1, 2] == DAYS_INDEX[28]  # unknown category -> null
    results = []
    for pad in (0.0, 1e6):
        values = np.where(valid, x, pad).astype(np.float32)
        batch = torch.as_tensor(np.concatenate([values, valid, labels], axis=1).astype(np.float32))
        stub = StubTrainer(net, seed=5)
        model.training_step(batch, 1, stub)
        results.append((stub.losses[0], [p.grad.clone() for p in net.parameters()]))
    assert torch.isfinite(results[0][0])
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    for g0, g1 in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g0, g1, rtol=0, atol=0)
    # outputs are 0 on padding and valid outputs do not depend on padding inputs
    t, lab, val = torch.full((4,), 0.3), torch.as_tensor(labels), torch.as_tensor(valid)
    with torch.no_grad():
        out0 = net(torch.as_tensor(x), t, lab, val)
        out1 = net(torch.as_tensor(np.where(valid, x, 5.0).astype(np.float32)), t, lab, val)
    assert (out0[~val] == 0).all()
    torch.testing.assert_close(out0, out1, rtol=0, atol=0)


DAYS_INDEX = {1: 0, 28: 1, 29: 2, 30: 3, 31: 4}


def test_label_dropout_rate():
    vocab = (12, 7, 5, 3)
    labels = torch.zeros(50_000, 4, dtype=torch.long)
    u = torch.rand(50_000, 4, generator=torch.Generator().manual_seed(0))
    dropped = drop_labels(labels, vocab, 0.1, u)
    null = torch.tensor(vocab)
    rate = (dropped == null).float().mean(0)
    assert float((rate - 0.1).abs().max()) < 0.01
    assert ((dropped == 0) | (dropped == null)).all()
    assert torch.equal(drop_labels(labels, vocab, 0.0, u), labels)


# -- learning on a toy --------------------------------------------------------------------------------------------
def _linear_fill(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    out = values.copy()
    idx = np.arange(values.shape[1])
    for i in range(len(values)):
        out[i] = np.interp(idx, idx[observed[i]], values[i, observed[i]])
    return out


def test_imputation_beats_linear_interpolation(toy_model):
    rng = np.random.default_rng(10)
    x, month = toy_days(60, rng)
    observed = np.ones_like(x, bool)
    starts = rng.integers(2, 24 - 10, len(x))
    for i, s in enumerate(starts):
        observed[i, s:s + 8] = False  # an 8-hour gap
    query = ImputationQuery(values=np.where(observed, x, np.nan).astype(np.float32), observed=observed,
                            valid=np.ones_like(observed), meta=make_meta(len(x), month=month), resolution=60)
    samples = toy_model.impute(query, 8, RunContext(seed=1))
    assert samples.shape == (8, 60, 24)
    assert np.array_equal(samples[:, observed], np.broadcast_to(x[observed], samples[:, observed].shape))
    crps_model = crps_ensemble(x, samples, mask=~observed)
    linear = _linear_fill(np.where(observed, x, 0.0), observed)
    crps_linear = crps_ensemble(x, np.stack([linear, linear]), mask=~observed)
    print(f"imputation CRPS: model {crps_model:.4f}, linear interpolation {crps_linear:.4f}")
    assert crps_model < 0.7 * crps_linear, (crps_model, crps_linear)


def test_conditional_samples_follow_the_month(toy_model):
    months = [1, 6, 12]
    cond = make_meta(3 * 100, month=np.repeat(months, 100))
    samples = toy_model.sample(len(cond), cond, RunContext(seed=2))
    means = [samples[cond["month"].to_numpy() == m].mean() for m in months]
    print(f"generated means per month {months}: {np.round(means, 3)}")
    assert means[0] < means[1] < means[2], means
    expected = [0.35 * (m - 6.5) / 5.5 for m in months]
    assert np.abs(np.array(means) - expected).max() < 0.1, (means, expected)
    unconditional = toy_model.sample(50, None, RunContext(seed=4))
    assert unconditional.shape == (50, 24) and np.isfinite(unconditional).all()


def _with(model: SmartMeterFM, **changes) -> SmartMeterFM:
    """The same fitted model with other sampling parameters."""
    other = copy.copy(model)
    other.params = dataclasses.replace(model.params, **changes)
    for name, value in changes.items():
        setattr(other, name, value)
    return other


def test_constrained_generation_is_guided_towards_the_targets_not_projected(toy_model):
    targets = np.linspace(0.2, 0.8, 40), np.linspace(-0.3, 0.1, 40)
    cond = make_meta(40, month=np.full(40, 6))
    constrained = cond.assign(target_peak=targets[0], target_mean=targets[1])

    def rmse(samples: np.ndarray) -> tuple[float, float]:
        return tuple(float(np.sqrt(((stat - target) ** 2).mean()))
                     for stat, target in zip((samples.max(1), samples.mean(1)), targets))

    free = rmse(toy_model.sample(40, cond, RunContext(seed=3)))
    guided = rmse(toy_model.sample(40, constrained, RunContext(seed=3)))
    stronger = rmse(_with(toy_model, guidance_iterations=3).sample(40, constrained, RunContext(seed=3)))
    projected = rmse(_with(toy_model, constraint_mode="projection").sample(40, constrained, RunContext(seed=3)))
    print(f"peak / mean RMSE: unguided {free}, guided {guided}, 3 iterations {stronger}, projected {projected}")
    # guidance moves the samples most of the way, more iterations further, and never exactly (not projected)
    for f, g, s in zip(free, guided, stronger):
        assert g < 0.4 * f and s < 0.5 * g and s > 1e-5, (f, g, s)
    # the projection reference meets both targets by construction
    assert max(projected) < 1e-5, projected


def test_guidance_steps_are_damped_gauss_newton_steps():
    x = torch.tensor([[0.0, 1.0, 0.5, 0.2], [0.3, 0.3, 0.3, 0.3]])
    valid = torch.tensor([[True, True, True, False], [True] * 4])
    mean = Mean(torch.tensor([1.0, float("nan")]), valid)
    # the mean is linear: a full step meets it, half a step halves the residual; a NaN target leaves x alone
    full = EndpointGuidance([mean], strength=1.0).refine(x)
    half = EndpointGuidance([mean], strength=0.5).refine(x)
    assert float(full[0, :3].mean()) == pytest.approx(1.0) and float(half[0, :3].mean()) == pytest.approx(0.75)
    assert full[0, 3] == 0 and torch.equal(full[1], x[1])
    # the peak moves the steps by their smooth-maximum weight: a small tau moves the largest step almost alone
    peak = EndpointGuidance([Peak(torch.tensor([2.0, 0.5]), valid)], strength=1.0, tau=1e-3).refine(x)
    torch.testing.assert_close(peak[0], torch.tensor([0.0, 2.0, 0.5, 0.0]))
    weights = smooth_max_weights(x, valid, 0.5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))
    torch.testing.assert_close(weights[0, :3], torch.softmax(x[0, :3] / 0.5, 0))
    with pytest.raises(ValueError, match="strength"):
        EndpointGuidance([mean], strength=0.0)


# -- monthly profiles: impute and super-resolve ---------------------------------------------------------------
def test_monthly_impute_and_super_resolve_respect_the_valid_mask():
    spd = 4
    rng = np.random.default_rng(3)
    n = 24
    days = rng.choice([28, 30, 31], n)
    model = tiny(fold=2, train_steps=10)
    valid = np.arange(31 * spd)[None, :] < (days * spd)[:, None]
    x = np.where(valid, np.tile(np.sin(np.arange(31 * spd) * 2 * np.pi / spd), (n, 1)) * 0.5, 0.0).astype(np.float32)
    meta = make_meta(n, month=rng.integers(1, 13, n), weekday=rng.integers(0, 7, n), days=days, category="Std")
    model.fit(ProfileSet(values=x, mask=valid, meta=meta, resolution=1440 // spd, period="month"), RunContext())
    observed = valid & (rng.random(valid.shape) < 0.5)
    query = ImputationQuery(values=np.where(observed, x, np.nan).astype(np.float32), observed=observed,
                            valid=valid, meta=meta, resolution=360)
    out = model.impute(query, 3, RunContext())
    assert out.shape == (3, n, 31 * spd)
    assert (out[:, ~valid] == 0).all() and np.isfinite(out).all()
    assert np.array_equal(out[:, observed], np.broadcast_to(x[observed], out[:, observed].shape))
    low = x.reshape(n, -1, 2).mean(-1)
    sr = model.super_resolve(SuperResolutionQuery(low=low, factor=2, valid=valid, meta=meta, resolution=360),
                             2, RunContext())
    assert (sr[:, ~valid] == 0).all()
    block_valid = valid.reshape(n, -1, 2).all(-1)
    np.testing.assert_allclose(sr.reshape(2, n, -1, 2).mean(-1)[:, block_valid],
                               np.broadcast_to(low[block_valid], (2, int(block_valid.sum()))), atol=1e-5)
    gen = _with(model, constraint_mode="projection").sample(n, meta.assign(target_mean=0.1), RunContext())
    assert (gen[~valid] == 0).all()
    np.testing.assert_allclose(np.where(valid, gen, 0).sum(1) / valid.sum(1), 0.1, atol=1e-5)


# -- registration and save / load -------------------------------------------------------------------------------
def test_registered_with_every_capability_and_its_profiles():
    spec = get_model("smartmeterfm")
    assert spec.cls is SmartMeterFM
    assert spec.capabilities == frozenset({"generate", "conditional", "constrained", "impute", "super_resolve"})
    quick, paper = spec.config("quick"), spec.config("paper")
    assert (quick["train_steps"], quick["sample_steps"], quick["fold"]) == (1500, 32, "auto")
    network = (paper["fold"], paper["d_model"], paper["n_layers"], paper["n_heads"], paper["d_ff"])
    assert network == (8, 256, 12, 4, 1024)
    assert (paper["weight_decay"], paper["label_dropout"], paper["compile"]) == (0.05, 0.1, "reduce-overhead")
    with pytest.raises(ParamError, match="sampler"):
        SmartMeterFM(sampler="rk4")
    with pytest.raises(ParamError, match="resample_steps must be >= 0"):
        SmartMeterFM(resample_steps=-1)


def test_save_and_load_give_the_same_outputs_for_every_task(tmp_path):
    """A monthly model (padding, categories, weekday labels) round-trips: unconditional samples (valid masks
    drawn from the saved training masks), constrained samples, imputations and super-resolutions."""
    spd, n = 4, 12
    rng = np.random.default_rng(8)
    days = rng.choice([28, 30, 31], n)
    valid = np.arange(31 * spd)[None, :] < (days * spd)[:, None]
    x = np.where(valid, rng.uniform(-0.5, 0.5, valid.shape), 0.0).astype(np.float32)
    meta = make_meta(n, month=rng.integers(1, 13, n), weekday=rng.integers(0, 7, n), days=days,
                     category=rng.choice(["Std", "ToU"], n))
    model = tiny(fold=2, train_steps=5, sample_steps=3, guidance_scale=1.5)
    model.fit(ProfileSet(values=x, mask=valid, meta=meta, resolution=360, period="month"), RunContext(seed=1))
    loaded = SmartMeterFM.load(model.save(tmp_path / "smartmeterfm.pt"))
    assert loaded.categories_ == ("Std", "ToU") and loaded.period_ == "month" and loaded.resolution_ == 360
    ctx = RunContext(seed=5)
    observed = valid & (rng.random(valid.shape) < 0.5)
    impute = ImputationQuery(values=np.where(observed, x, np.nan).astype(np.float32), observed=observed,
                             valid=valid, meta=meta, resolution=360)
    sr = SuperResolutionQuery(low=x.reshape(n, -1, 2).mean(-1), factor=2, valid=valid, meta=meta, resolution=360)
    for call in (lambda m: m.sample(n, None, ctx), lambda m: m.sample(n, meta.assign(target_peak=0.4), ctx),
                 lambda m: m.impute(impute, 2, ctx), lambda m: m.super_resolve(sr, 2, ctx)):
        np.testing.assert_array_equal(call(loaded), call(model))
