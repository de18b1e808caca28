"""EnergyDiff: folding, time-of-day encoding, network shapes, learning, checkpoint + resume, determinism and
save / load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.energydiff import EnergyDiff, EnergyDiffNet, resolve_fold
from baselines.naive import IndependentMarginals
from baselines.nn.transformer import (FiLM, TokenConv1d, TransformerBlock, fold, modulate, sinusoidal_embedding,
                                      unfold)
from bench.api import ParamError
from bench.context import RunContext
from bench.registry import get_model
from bench.train import Trainer
from bench.tasks.queries import ImputationQuery
from metrics import mmd_rbf, rbf_bandwidth
from tests.conftest import daily_set, sine_days

TINY = {"fold": 4, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "lr": 2e-3, "warmup_steps": 20,
        "ema_decay": 0.99, "sample_steps": 20, "checkpoint_every": 0}

# one torch thread (see conftest): faster on a shared machine, and the learning checks were calibrated on it
pytestmark = pytest.mark.usefixtures("torch_one_thread")






def tiny(**overrides) -> EnergyDiff:
    return EnergyDiff(**{**TINY, **overrides})


# -- building blocks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [1, 2, 4, 8, 24])
def test_fold_then_unfold_is_the_identity(r):
    x = torch.randn(3, 24)
    z = fold(x, r)
    assert z.shape == (3, 24 // r, r)
    torch.testing.assert_close(z[:, -1], x[:, 24 - r:])  # token k holds steps k*r .. k*r + r - 1
    torch.testing.assert_close(unfold(z, r).squeeze(-1), x, rtol=0, atol=0)
    multi = torch.randn(2, 24, 3)
    torch.testing.assert_close(unfold(fold(multi, r), r), multi, rtol=0, atol=0)


def test_bad_folding_factor_raises():
    with pytest.raises(ValueError, match="divisible"):
        fold(torch.zeros(2, 96), 7)
    with pytest.raises(ValueError):
        fold(torch.zeros(2, 96), 0)
    with pytest.raises(ValueError):
        unfold(torch.zeros(2, 5, 6), 4)
    with pytest.raises(ValueError, match="divisible"):
        resolve_fold(5, 48)
    with pytest.raises(ValueError):
        resolve_fold("big", 48)
    model = tiny(fold=5)
    with pytest.raises(ValueError, match="divisible"):
        model.fit(daily_set(np.zeros((10, 24), dtype=np.float32)), RunContext())


def test_auto_fold_rule():
    assert [resolve_fold("auto", t) for t in (24, 48, 96, 1440)] == [4, 4, 4, 60]
    assert resolve_fold(8, 1440) == 8 and resolve_fold(1, 24) == 1


def test_time_of_day_positions_are_aligned_across_resolutions():
    # 15-minute data folded by 4 and hourly data unfolded both put a token at every full hour
    quarter = EnergyDiffNet(96, 15, 4, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    hourly = EnergyDiffNet(24, 60, 1, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    half = EnergyDiffNet(48, 30, 8, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    torch.testing.assert_close(quarter.minutes, hourly.minutes)
    torch.testing.assert_close(quarter.minutes, torch.arange(24.0) * 60)
    torch.testing.assert_close(half.minutes, torch.arange(6.0) * 240)
    # the same clock time has the same sinusoidal code whatever the resolution
    torch.testing.assert_close(sinusoidal_embedding(quarter.minutes[::4], 16),
                               sinusoidal_embedding(half.minutes, 16))


def test_blocks_and_embeddings():
    emb = sinusoidal_embedding(torch.tensor([0.0, 5.0, 1000.0]), 9)
    assert emb.shape == (3, 9) and emb.abs().max() <= 1 and torch.all(emb[:, -1] == 0)
    conv = TokenConv1d(4, 8, kernel_size=7, tokens=3)
    assert conv.kernel_size == 3 and conv(torch.randn(2, 3, 4)).shape == (2, 3, 8)
    with pytest.raises(ValueError):
        TokenConv1d(4, 8, kernel_size=4, tokens=6)
    # zero-initialised conditioning: FiLM and an adaLN-Zero block start as the identity
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(FiLM(6, 8)(x, torch.randn(2, 1, 6)), x)
    gated = TransformerBlock(8, 2, 16, cond_dim=6, gated=True)
    torch.testing.assert_close(gated(x, torch.randn(2, 6)), x)
    plain = TransformerBlock(8, 2, 16)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = plain(x, key_mask=mask)
    x2 = x.clone()
    x2[1, 3:] = 100.0  # padding tokens must not change the real ones
    torch.testing.assert_close(plain(x2, key_mask=mask)[1, :3], out[1, :3])
    with pytest.raises(ValueError):
        plain(x, torch.randn(2, 6))


def test_network_shapes_and_final_skip():
    net = EnergyDiffNet(24, 60, 4, d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0)
    out = net(torch.randn(5, 24), torch.tensor([0.0, 1.0, 10.5, 500.0, 999.0]))
    assert out.shape == (5, 24) and torch.isfinite(out).all()
    assert net.out.in_features == 2 * 16  # projection of [blocks' input, blocks' output]
    with pytest.raises(ValueError):
        net(torch.randn(5, 48), torch.zeros(5))


def test_final_projection_is_the_linear_map_of_the_concatenation():
    torch.manual_seed(0)
    net = EnergyDiffNet(24, 60, 4, d_model=16, n_layers=2, n_heads=2, d_ff=32, dropout=0.0)
    with torch.no_grad():  # move the zero-initialised projections off zero so every path contributes
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x, s = torch.randn(5, 24), torch.tensor([0.0, 1.0, 10.5, 500.0, 999.0])
    emb = net.step_embed(s)
    h0 = net.time_film(net.conv(net.input_film(fold(x, 4), emb.unsqueeze(1))), net.time_embed(net.minutes))
    h = h0
    for block in net.blocks:
        h = block(h, emb)
    expected = unfold(net.out(torch.cat([h0, net.final_norm(h)], dim=-1)), 4).squeeze(-1)
    out = net(x, s)
    torch.testing.assert_close(out, expected)
    # and the gradients reach both halves of the projection
    out.pow(2).sum().backward()
    assert net.out.weight.grad[:, :16].abs().sum() > 0 and net.out.weight.grad[:, 16:].abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision (LayerNorm stays float32) runs too
        low = net(x, s)
    assert low.shape == out.shape and torch.isfinite(low).all()


def test_modulation_and_dropout_free_blocks():
    x, scale, shift = torch.randn(3, 5, 8), torch.randn(3, 1, 8), torch.randn(3, 1, 8)
    torch.testing.assert_close(modulate(x, scale, shift), (1 + scale) * x + shift)
    plain, noisy = TransformerBlock(8, 2, 16, dropout=0.0, cond_dim=6), TransformerBlock(8, 2, 16, 0.5, cond_dim=6)
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.Dropout) for m in noisy.modules()) == 2
    assert plain.state_dict().keys() == noisy.state_dict().keys()  # checkpoints load either way
    y, cond = torch.randn(4, 5, 8), torch.randn(4, 6)
    assert not torch.equal(noisy.train()(y, cond), noisy.eval()(y, cond))  # a dropout block still drops


def test_training_uses_the_fused_optimizer_on_the_cpu():
    model = tiny()
    trainer = Trainer({"net": model.build_network(24, 60)}, None, model.train_config, RunContext(), ema=("net",))
    assert trainer.optimizers["main"].defaults["fused"] is True


# -- the model ------------------------------------------------------------------------------------------------
def test_registered_with_its_profiles():
    spec = get_model("energydiff")
    assert spec.capabilities == frozenset({"generate", "impute"})
    assert spec.config("quick") == spec.config("quick", {}) and spec.config("quick")["train_steps"] == 1800
    paper = spec.config("paper")
    network = (paper["fold"], paper["n_layers"], paper["d_model"], paper["n_heads"], paper["d_ff"])
    assert network == (8, 12, 512, 8, 2048)
    assert (paper["diffusion_steps"], paper["train_steps"], paper["batch_size"]) == (1000, 100_000, 64)
    assert (paper["lr"], paper["ema_decay"], paper["sample_steps"], paper["sampler"]) == (1e-4, 0.9999, 100,
                                                                                          "dpm-solver++")
    model = spec.build("paper")
    net = model.build_network(1440, 1)
    assert net.tokens == 180 and len(net.blocks) == 12
    with pytest.raises(ParamError, match="sampler"):
        spec.build("quick", {"sampler": "euler"})
    with pytest.raises(ParamError, match="divisible"):
        EnergyDiff(d_model=30, n_heads=4)
    test = spec.config("test")
    assert test["n_layers"] < spec.config("quick")["n_layers"] and test["sample_steps"] <= 10


def test_energydiff_beats_independent_marginals_on_mmd():
    rng = np.random.default_rng(0)
    train, held_out = sine_days(300, rng), sine_days(300, rng)
    bandwidth = rbf_bandwidth(held_out)
    ctx = RunContext(seed=0)
    baseline = IndependentMarginals()
    baseline.fit(daily_set(train), ctx)
    mmd_baseline = mmd_rbf(held_out, baseline.sample(300, None, ctx), bandwidth=bandwidth)
    model = tiny(train_steps=300)
    model.fit(daily_set(train), ctx)
    samples = model.sample(300, None, ctx)
    assert samples.shape == (300, 24) and samples.dtype == np.float32
    assert np.abs(samples).max() <= 1.0  # clip of the data prediction
    assert mmd_rbf(held_out, samples, bandwidth=bandwidth) < 0.5 * mmd_baseline


def test_checkpoint_resume_through_the_model_equals_an_uninterrupted_fit(tmp_path):
    train = daily_set(sine_days(64, np.random.default_rng(1)))
    full = tiny(train_steps=40, dropout=0.1)
    full.fit(train, RunContext(seed=3, checkpoint_dir=tmp_path / "full"))
    part = tiny(train_steps=40, dropout=0.1)
    part.fit(train, RunContext(seed=3, checkpoint_dir=tmp_path / "part", budget_steps=15))
    assert part.train_result_.steps == 15
    resumed = tiny(train_steps=40, dropout=0.1)  # a fresh process would rebuild the model like this
    resumed.fit(train, RunContext(seed=3, checkpoint_dir=tmp_path / "part"))
    assert resumed.train_result_.resumed_from == 15 and resumed.train_result_.steps == 40
    for a, b in zip(full._net.state_dict().values(), resumed._net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ctx = RunContext(seed=3)
    np.testing.assert_array_equal(full.sample(8, None, ctx), resumed.sample(8, None, ctx))


@pytest.mark.parametrize("sampler", ["dpm-solver++", "ddim", "ancestral"])
def test_seeded_determinism_for_every_sampler(sampler):
    train = daily_set(sine_days(64, np.random.default_rng(2), length=48), resolution=30)
    runs = []
    for seed in (5, 5, 6):
        model = tiny(train_steps=20, sampler=sampler, sample_steps=8, sample_batch=7)
        model.fit(train, RunContext(seed=seed))
        runs.append(model.sample(10, None, RunContext(seed=seed)))
    assert runs[0].shape == (10, 48) and np.isfinite(runs[0]).all()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_no_folding_and_sample_contract():
    train = daily_set(sine_days(32, np.random.default_rng(3)))
    model = tiny(fold=1, train_steps=5, sample_steps=3)
    with pytest.raises(RuntimeError, match="fit"):
        model.sample(2, None, RunContext())
    model.fit(train, RunContext())
    assert model._net.tokens == 24
    assert model.sample(3, None, RunContext()).shape == (3, 24)
    with pytest.raises(ValueError):
        model.sample(3, {"month": 1}, RunContext())
    with pytest.raises(ValueError):
        model.sample(0, None, RunContext())
    bad = train.with_values(np.full((32, 24), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        model.fit(bad, RunContext())


def test_save_and_load_give_the_same_samples_and_imputations(tmp_path):
    train = daily_set(sine_days(32, np.random.default_rng(4), length=48), resolution=30)
    model = tiny(train_steps=10, sample_steps=4, impute_steps=4, impute_resample=2)
    assert model.get_state() == {}  # nothing fitted, nothing saved
    model.fit(train, RunContext(seed=1))
    loaded = EnergyDiff.load(model.save(tmp_path / "energydiff.pt"))
    assert loaded.params == model.params and loaded.length_ == 48 and loaded.resolution_ == 30
    ctx = RunContext(seed=7)
    np.testing.assert_array_equal(loaded.sample(5, None, ctx), model.sample(5, None, ctx))
    observed = np.random.default_rng(0).random((3, 48)) < 0.5
    values = train.values[:3]
    query = ImputationQuery(np.where(observed, values, np.nan).astype(np.float32), observed,
                            np.ones_like(observed), train.meta.iloc[:3], 30)
    np.testing.assert_array_equal(loaded.impute(query, 2, ctx), model.impute(query, 2, ctx))
    # the loaded sampling network is the fitted (EMA) network, weight for weight
    for a, b in zip(model._net.state_dict().values(), loaded._net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
