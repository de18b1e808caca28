"""The ``gan`` baseline (EnergyDiff's GAN as its code trains it): settings, networks, loss, learning, failures,
save / load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import baselines.wgan as wgan_module
from baselines.gan import GAN, ResidualBlock, ResidualGenerator, generator_lengths
from baselines.wgan import Critic
from bench.api import ParamError
from bench.context import RunContext
from bench.errors import ModelFitError
from bench.registry import get_model
from metrics import mmd_rbf, rbf_bandwidth
from tests.conftest import daily_set, sine_days

TINY = {"base": 4, "train_steps": 4, "checkpoint_every": 0}

# one torch thread (see conftest): faster on a shared machine, and the learning checks were calibrated on it
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def build(overrides: dict | None = None) -> GAN:
    """A ``gan`` with the quick settings (the defaults) and ``overrides``."""
    return GAN(**(overrides or {}))


# -- registry and settings ---------------------------------------------------------------------------------------
def test_registered_beside_wgan_gp_with_the_codes_paper_settings():
    spec = get_model("gan")
    assert spec.cls is GAN and spec.capabilities == frozenset({"generate"})
    assert get_model("wgan-gp").cls is not GAN
    paper = spec.config("paper")
    assert (paper["latent_dim"], paper["base"], paper["n_critic"], paper["dropout"]) == (100, 64, 5, 0.3)
    assert (paper["lr"], tuple(paper["betas"]), paper["batch_size"], paper["epochs"]) == (1e-4, (0.5, 0.9), 512, 500)
    assert paper["ema_decay"] is None and paper["grad_clip"] is None
    assert "gp_weight" not in paper and "spectral_norm" not in paper
    assert spec.config("quick")["lr"] == 2e-4 and get_model("wgan-gp").config("quick")["lr"] == 1e-3
    model = spec.build("paper")
    assert model.gp_weight == 0.0 and model.spectral_norm
    # in the code every batch is one critic update and the generator steps every fifth batch
    assert model.train_config(10_000).steps == math.ceil(500 * 10_000 / (512 * 5))


# -- networks ------------------------------------------------------------------------------------------------------
def test_generator_lengths_follow_the_code_and_extend_to_any_length():
    assert generator_lengths(24) == [6, 12, 24]
    assert generator_lengths(48) == [6, 12, 24, 48]
    assert generator_lengths(96) == [6, 12, 24, 48, 96]
    assert generator_lengths(1440) == [90, 180, 360, 720, 1440]
    assert generator_lengths(144) == [9, 18, 36, 72, 144]
    assert generator_lengths(8) == [8]
    assert generator_lengths(25) == [7, 13, 25]
    with pytest.raises(ValueError, match="length"):
        generator_lengths(0)


@pytest.mark.parametrize("length", [24, 48, 96, 1440, 25])
def test_networks_have_the_codes_layers(length):
    gen = ResidualGenerator(length, latent_dim=100, base=2)
    x = gen(torch.randn(3, 100))
    assert x.shape == (3, length) and x.abs().max() < 1
    blocks = [m for m in gen.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 6  # five with the channel schedule 8b -> ... -> b, then b -> b
    # every 3-wide convolution of the residual blocks is spectrally normalised, the 1x1 skips are not
    for block in blocks:
        assert torch.nn.utils.parametrize.is_parametrized(block.conv1)
        assert torch.nn.utils.parametrize.is_parametrized(block.conv2)
    critic = Critic(length, base=2, spectral_norm=True, dropout=0.3)
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 5 and all(torch.nn.utils.parametrize.is_parametrized(c) for c in convs)
    drops = [m for m in critic.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.3 for d in drops)
    assert critic(x).shape == (3,)


def test_residual_block_is_the_sum_of_the_two_paths():
    torch.manual_seed(0)
    block = ResidualBlock(3, 5).eval()
    x = torch.randn(2, 3, 7)
    h = torch.nn.functional.leaky_relu(block.norm1(block.conv1(x)), 0.2)
    expected = torch.nn.functional.leaky_relu(block.norm2(block.conv2(h)) + block.skip(x), 0.2)
    torch.testing.assert_close(block(x), expected)
    assert isinstance(ResidualBlock(4, 4).skip, torch.nn.Identity)


# -- loss: Wasserstein without a penalty, dropout active ---------------------------------------------------------
def test_training_uses_the_wasserstein_loss_without_a_penalty_and_with_dropout(monkeypatch):
    penalties, calls = [], []
    real_loss = wgan_module.critic_loss

    def spy_loss(critic, real, fake, alpha, gp_weight):
        calls.append((gp_weight, critic.training))
        return real_loss(critic, real, fake, alpha, gp_weight)

    monkeypatch.setattr(wgan_module, "critic_loss", spy_loss)
    monkeypatch.setattr(wgan_module, "gradient_penalty", lambda *a, **k: penalties.append(1))
    model = build({**TINY, "train_steps": 3, "n_critic": 4})
    model.fit(daily_set(sine_days(32, np.random.default_rng(0))), RunContext(seed=0))
    assert calls == [(0.0, True)] * 12 and penalties == []
    assert all(h["penalty"] == 0.0 for h in model.train_result_.history)


def test_critic_loss_without_penalty_is_the_negative_wasserstein_estimate():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(24, generator=gen)
    real, fake = torch.randn(8, 24, generator=gen), torch.randn(8, 24, generator=gen)
    loss, distance, penalty = wgan_module.critic_loss(lambda x: x @ w, real, fake, torch.rand(8), 0.0)
    assert loss.item() == pytest.approx((fake @ w).mean().item() - (real @ w).mean().item(), abs=1e-5)
    assert distance.item() == pytest.approx(-loss.item()) and penalty.item() == 0.0


# -- learning ----------------------------------------------------------------------------------------------------
def test_gan_learns_the_shape_of_a_day():
    rng = np.random.default_rng(123)
    train, held_out = sine_days(400, rng), sine_days(400, rng)
    bandwidth = rbf_bandwidth(held_out)
    model = build({"train_steps": 250, "checkpoint_every": 0})
    ctx = RunContext(seed=0)
    model.fit(daily_set(train), ctx)
    gan = mmd_rbf(held_out, model.sample(400, None, ctx), bandwidth=bandwidth)
    # trivial references: every sample the mean training day, and independent per-step Gaussians with the
    # training mean and standard deviation (no dependence between steps)
    mean_day = mmd_rbf(held_out, np.repeat(train.mean(0, keepdims=True), 400, axis=0), bandwidth=bandwidth)
    noise = train.mean(0) + train.std(0) * np.random.default_rng(1).standard_normal((400, train.shape[1]))
    independent = mmd_rbf(held_out, noise.astype(np.float32), bandwidth=bandwidth)
    assert gan < 0.5 * min(mean_day, independent)


# -- determinism, resume, failures -------------------------------------------------------------------------------
def test_same_seed_same_samples_and_exact_resume(tmp_path):
    x = daily_set(sine_days(48, np.random.default_rng(0)))
    overrides = {**TINY, "train_steps": 6}
    full = build(overrides)
    full.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "full"))
    again = build(overrides)
    again.fit(x, RunContext(seed=3))
    other = build(overrides)
    other.fit(x, RunContext(seed=4))
    part = build(overrides)
    part.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "part", budget_steps=2))
    resumed = build(overrides)
    resumed.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "part"))
    assert resumed.train_result_.resumed_from == 2
    ctx = RunContext(seed=3)
    first = full.sample(20, None, ctx)
    assert first.shape == (20, 24) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again.sample(20, None, ctx))
    np.testing.assert_array_equal(first, resumed.sample(20, None, ctx))
    assert not np.array_equal(first, other.sample(20, None, ctx))


def test_nonfinite_loss_fails_the_fit_naming_the_model(monkeypatch):
    def nan_loss(critic, real, fake, alpha, gp_weight):
        nan = critic(real).float().mean() * float("nan")
        return nan, nan, nan

    monkeypatch.setattr(wgan_module, "critic_loss", nan_loss)
    with pytest.raises(ModelFitError, match=r"gan: training diverged at step 0"):
        build(TINY).fit(daily_set(sine_days(16, np.random.default_rng(0))), RunContext())


def test_bad_arguments_raise():
    model = build(TINY)
    with pytest.raises(RuntimeError, match="gan: call fit"):
        model.sample(3, None, RunContext())
    for bad in (-0.1, 1.0, True):
        with pytest.raises(ValueError, match="dropout"):
            GAN(dropout=bad)
    with pytest.raises(ValueError, match="dropout"):
        Critic(24, dropout=1.5)
    with pytest.raises(ParamError, match="no parameter gp_weight"):
        GAN(gp_weight=10.0)
    with pytest.raises(ValueError, match="betas"):
        GAN(betas=(0.5, 1.5))
    with pytest.raises(ValueError, match="exactly one"):
        GAN(train_steps=None, epochs=None)


def test_save_and_load_give_the_same_samples(tmp_path):
    # the residual generator's spectral normalisation keeps power-iteration vectors as buffers: they travel too
    model = build({**TINY, "train_steps": 3})
    model.fit(daily_set(sine_days(24, np.random.default_rng(6), length=48)), RunContext(seed=1))
    loaded = GAN.load(model.save(tmp_path / "gan.pt"))
    assert type(loaded) is GAN and loaded.params == model.params
    ctx = RunContext(seed=4)
    np.testing.assert_array_equal(loaded.sample(7, None, ctx), model.sample(7, None, ctx))
