"""VAE and WGAN-GP baselines: loss pieces, network shapes, learning, determinism, resume, divergence and
save / load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import baselines.vae as vae_module
import baselines.wgan as wgan_module
from baselines.naive import IndependentMarginals
from baselines.nn.blocks import mlp, raise_if_nonfinite, resolve_train_steps
from baselines.vae import VAE, kl_to_standard_normal, vae_loss
from baselines.wgan import (
    WGANGP,
    Critic,
    Generator,
    critic_lengths,
    critic_loss,
    gradient_penalty,
    upsampling_lengths,
)
from bench.context import RunContext
from bench.errors import ModelFitError
from bench.registry import get_model
from bench.tasks.queries import DetectionQuery
from metrics import mmd_rbf, rbf_bandwidth
from tests.conftest import daily_set, sine_days

TINY_VAE = {"hidden": 32, "latent_dim": 4, "train_steps": 20, "checkpoint_every": 0}
TINY_GAN = {"base": 4, "train_steps": 4, "checkpoint_every": 0}

# one torch thread (see conftest): faster on a shared machine, and the learning checks were calibrated on it
pytestmark = pytest.mark.usefixtures("torch_one_thread")






MODELS = {"vae": VAE, "wgan-gp": WGANGP}


def build(name: str, overrides: dict):
    """The model ``name`` with the quick settings (the defaults) and ``overrides``."""
    return MODELS[name](**overrides)


# -- gradient penalty -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha_shape", [(16,), (16, 1)])
def test_gradient_penalty_of_a_linear_critic_has_its_closed_form(alpha_shape):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(24, generator=gen, dtype=torch.float64)
    real = torch.randn(16, 24, generator=gen, dtype=torch.float64)
    fake = torch.randn(16, 24, generator=gen, dtype=torch.float64)
    alpha = torch.rand(*alpha_shape, generator=gen, dtype=torch.float64)
    for lam in (10.0, 2.5):
        gp = gradient_penalty(lambda x: x @ w, real, fake, alpha, weight=lam)
        expected = lam * (w.norm().item() - 1.0) ** 2
        assert gp.item() == pytest.approx(expected, rel=1e-9)
    # a unit-norm linear critic is exactly 1-Lipschitz: no penalty
    unit = w / w.norm()
    assert gradient_penalty(lambda x: x @ unit, real, fake, alpha).item() == pytest.approx(0.0, abs=1e-9)


def test_gradient_penalty_is_evaluated_on_the_interpolates_and_trains_the_critic():
    # f(x) = 0.5 * ||x||^2 has gradient x, so the penalty is (||x_hat|| - 1)^2 at the interpolate only
    real, fake = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 4.0]])
    alpha = torch.tensor([0.25])
    x_hat = 0.25 * real + 0.75 * fake
    gp = gradient_penalty(lambda x: 0.5 * (x ** 2).sum(1), real, fake, alpha, weight=1.0)
    assert gp.item() == pytest.approx((x_hat.norm().item() - 1.0) ** 2, rel=1e-6)
    critic = torch.nn.Linear(2, 1)
    gp = gradient_penalty(lambda x: critic(x).squeeze(-1), real, fake, alpha)
    gp.backward()  # create_graph: the penalty has gradients with respect to the critic's weights
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_critic_loss_includes_the_penalty():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(24, generator=gen)
    real, fake = torch.randn(8, 24, generator=gen), torch.randn(8, 24, generator=gen)
    alpha = torch.rand(8, generator=gen)
    critic = lambda x: x @ w  # noqa: E731
    loss0, dist0, pen0 = critic_loss(critic, real, fake, alpha, 0.0)
    loss10, dist10, pen10 = critic_loss(critic, real, fake, alpha, 10.0)
    assert pen0.item() == 0.0
    assert dist0.item() == pytest.approx((real @ w).mean().item() - (fake @ w).mean().item(), abs=1e-5)
    assert loss0.item() == pytest.approx(-dist0.item(), abs=1e-6)
    assert pen10.item() == pytest.approx(10.0 * (w.norm().item() - 1.0) ** 2, rel=1e-5)
    assert loss10.item() - loss0.item() == pytest.approx(pen10.item(), rel=1e-5)


def test_training_applies_the_penalty_at_every_critic_update(monkeypatch):
    calls = []
    real_gp = wgan_module.gradient_penalty

    def spy(critic, real, fake, alpha, weight=10.0):
        calls.append(weight)
        return real_gp(critic, real, fake, alpha, weight)

    monkeypatch.setattr(wgan_module, "gradient_penalty", spy)
    x = sine_days(32, np.random.default_rng(0))
    model = build("wgan-gp", {**TINY_GAN, "train_steps": 3, "n_critic": 4})
    model.fit(daily_set(x), RunContext(seed=0))
    assert calls == [10.0] * 12
    assert all(h["penalty"] > 0 for h in model.train_result_.history)


# -- VAE loss ---------------------------------------------------------------------------------------------------
def test_vae_kl_term_matches_the_closed_form():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 0.3]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)], [-1.0, 2.0]], dtype=torch.float64)
    kl = kl_to_standard_normal(mu, logvar)
    var = logvar.exp()
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2 - 1) / 2, summed over dimensions
    expected = (-0.5 * logvar + 0.5 * (var + mu ** 2 - 1.0)).sum(1)
    torch.testing.assert_close(kl, expected)
    assert kl[0].item() == 0.0
    assert kl[1].item() == pytest.approx(0.5 + (-math.log(2.0) + 0.5 * (4.0 + 4.0 - 1.0)))
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                                  torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, reference)
    with pytest.raises(ValueError, match="same shape"):
        kl_to_standard_normal(mu, logvar[:, :1])


def test_vae_loss_is_mean_squared_error_plus_weighted_kl():
    gen = torch.Generator().manual_seed(0)
    x, x_hat = torch.randn(5, 24, generator=gen), torch.randn(5, 24, generator=gen)
    mu, logvar = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    loss, recon, kl = vae_loss(x, x_hat, mu, logvar, kl_weight=0.1)
    assert recon.item() == pytest.approx(((x - x_hat) ** 2).mean().item(), rel=1e-6)
    assert kl.item() == pytest.approx(kl_to_standard_normal(mu, logvar).mean().item(), rel=1e-6)
    assert loss.item() == pytest.approx(recon.item() + 0.1 * kl.item(), rel=1e-6)


# -- networks and training lengths -----------------------------------------------------------------------------
@pytest.mark.parametrize("length", [24, 48, 96, 1440])
def test_networks_handle_every_profile_length(length):
    lengths = upsampling_lengths(length)
    assert lengths[-1] == length and len(lengths) == 5
    assert all(b in (2 * a - 1, 2 * a) for a, b in zip(lengths, lengths[1:]))
    gen, critic = Generator(length, latent_dim=100, base=2), Critic(length, base=2)
    x = gen(torch.randn(3, 100))
    assert x.shape == (3, length) and x.abs().max() < 1
    assert critic(x).shape == (3,)
    assert sum(isinstance(m, torch.nn.Conv1d) for m in gen.modules()) == 6
    assert sum(isinstance(m, torch.nn.Conv1d) for m in critic.modules()) == 5
    assert critic_lengths(length)[-1] == math.ceil(length / 16)
    assert upsampling_lengths(24) == [2, 3, 6, 12, 24] and upsampling_lengths(1440)[0] == 90
    with pytest.raises(ValueError, match="expected input"):
        critic(torch.zeros(2, length + 1))


def test_critic_dropout_follows_the_first_three_activations():
    # the EnergyDiff code's critic (used by the gan model): conv, LeakyReLU, Dropout for the first three layers
    layers = list(Critic(24, base=2, spectral_norm=True, dropout=0.3).net)
    # a spectrally normalised convolution is a parametrised subclass of Conv1d
    kinds = ["Conv1d" if isinstance(m, torch.nn.Conv1d) else type(m).__name__ for m in layers]
    assert kinds == ["Conv1d", "LeakyReLU", "Dropout"] * 3 + ["Conv1d", "LeakyReLU", "Conv1d"]
    assert not any(isinstance(m, torch.nn.Dropout) for m in Critic(24, base=2).modules())  # wgan-gp: none
    critic = Critic(24, base=2, dropout=0.5).eval()
    x = torch.randn(4, 24)
    torch.testing.assert_close(critic(x), critic(x))  # inactive at evaluation
    with pytest.raises(ValueError, match="dropout"):
        Critic(24, dropout=1.0)


def test_vae_networks_have_five_linear_layers_each_side():
    nets = VAE(hidden=16, latent_dim=4).build_networks(96)
    for net in nets.values():
        assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 5
        assert any(isinstance(m, torch.nn.GELU) for m in net.modules())
    mu, logvar = nets["encoder"](torch.zeros(2, 96))
    assert mu.shape == logvar.shape == (2, 4)
    assert nets["decoder"](mu).shape == (2, 96)
    with pytest.raises(ValueError):
        mlp(4, 8, 2, n_layers=1)


def test_paper_profiles_match_the_paper_and_count_epochs():
    assert get_model("vae").cls is VAE and get_model("wgan-gp").cls is WGANGP
    assert get_model("vae").capabilities == frozenset({"generate", "detect"})
    assert get_model("wgan-gp").capabilities == frozenset({"generate"})
    vae, gan = get_model("vae").config("paper"), get_model("wgan-gp").config("paper")
    assert (vae["hidden"], vae["latent_dim"], vae["n_layers"], vae["kl_weight"], vae["lr"]) == (512, 64, 5, 0.1, 1e-4)
    assert (gan["latent_dim"], gan["n_critic"], gan["gp_weight"], gan["lr"]) == (100, 5, 10.0, 1e-4)
    assert tuple(gan["betas"]) == (0.5, 0.9) and vae["epochs"] == gan["epochs"] == 500
    assert get_model("vae").build("paper").train_config(10_000).steps == math.ceil(500 * 10_000 / 512)
    cfg = get_model("wgan-gp").build("paper").train_config(10_000)
    assert cfg.steps == math.ceil(500 * 10_000 / (512 * 5)) and cfg.betas == (0.5, 0.9)
    assert resolve_train_steps(None, 2, n_train=100, batch_size=512) == 2  # batch capped at N
    assert resolve_train_steps(7, None, n_train=100, batch_size=64) == 7
    for bad in ((None, None), (5, 3)):
        with pytest.raises(ValueError, match="exactly one"):
            resolve_train_steps(*bad, n_train=100, batch_size=64)
    with pytest.raises(ValueError):
        resolve_train_steps(None, 0, n_train=100, batch_size=64)


# -- learning ----------------------------------------------------------------------------------------------------
def _toy_split():
    rng = np.random.default_rng(123)
    train, held_out = sine_days(400, rng), sine_days(400, rng)
    return daily_set(train), held_out, rbf_bandwidth(held_out)


def _mmd_of(model, train, held_out, bandwidth, seed=0):
    ctx = RunContext(seed=seed)
    model.fit(train, ctx)
    return mmd_rbf(held_out, model.sample(400, None, ctx), bandwidth=bandwidth)


def test_wgan_learns_the_shape_of_a_day():
    train, held_out, bw = _toy_split()
    baseline = _mmd_of(IndependentMarginals(), train, held_out, bw)
    # 150 steps learnt the shape on each of four seeds tried, 100 steps on two of them
    gan = _mmd_of(build("wgan-gp", {"train_steps": 150, "checkpoint_every": 0}), train, held_out, bw)
    assert gan < 0.7 * baseline


def test_vae_learns_the_shape_of_a_day():
    # with the paper's KL weight (0.1) the posterior nearly collapses and the samples sit close to the mean
    # day; a weaker prior shows that the encoder/decoder learn the dependence between steps
    train, held_out, bw = _toy_split()
    baseline = _mmd_of(IndependentMarginals(), train, held_out, bw)
    mean_day = np.repeat(train.values.mean(0, keepdims=True), 400, axis=0)
    model = build("vae", {"hidden": 64, "latent_dim": 8, "kl_weight": 0.01, "train_steps": 300})
    assert _mmd_of(model, train, held_out, bw) < 0.5 * baseline
    paper_weight = build("vae", {"hidden": 64, "latent_dim": 8, "kl_weight": 0.1, "train_steps": 300})
    assert _mmd_of(paper_weight, train, held_out, bw) < mmd_rbf(held_out, mean_day, bandwidth=bw)


# -- determinism, shapes, resume ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,overrides", [("vae", TINY_VAE), ("wgan-gp", TINY_GAN)])
def test_same_seed_same_samples(name, overrides):
    x = daily_set(sine_days(64, np.random.default_rng(0)))
    runs = []
    for seed in (0, 0, 1):
        model = build(name, overrides)
        ctx = RunContext(seed=seed)
        model.fit(x, ctx)
        runs.append(model.sample(50, None, ctx))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("name,overrides", [("vae", TINY_VAE), ("wgan-gp", TINY_GAN)])
@pytest.mark.parametrize("length", [24, 96])
def test_sample_shapes(name, overrides, length):
    model = build(name, {**overrides, "train_steps": 2})
    model.fit(daily_set(sine_days(40, np.random.default_rng(0), length)), RunContext(seed=0))
    out = model.sample(7, None, RunContext(seed=0))
    assert out.shape == (7, length) and out.dtype == np.float32 and np.isfinite(out).all()
    many = model.sample(9, None, RunContext(seed=0))
    assert many.shape == (9, length)


def test_wgan_with_spectral_norm_trains():
    model = build("wgan-gp", {**TINY_GAN, "spectral_norm": True})
    model.fit(daily_set(sine_days(32, np.random.default_rng(0))), RunContext(seed=0))
    assert np.isfinite(model.sample(5, None, RunContext())).all()


@pytest.mark.parametrize("name,overrides", [("vae", TINY_VAE), ("wgan-gp", {**TINY_GAN, "train_steps": 8})])
def test_interrupted_fit_resumes_exactly(tmp_path, name, overrides):
    x = daily_set(sine_days(48, np.random.default_rng(0)))
    full = build(name, overrides)
    full.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "full"))
    part = build(name, overrides)
    part.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "part", budget_steps=3))
    assert part.train_result_.steps == 3
    resumed = build(name, overrides)
    resumed.fit(x, RunContext(seed=3, checkpoint_dir=tmp_path / "part"))
    assert resumed.train_result_.resumed_from == 3
    ctx = RunContext(seed=3)
    np.testing.assert_array_equal(full.sample(20, None, ctx), resumed.sample(20, None, ctx))


# -- failures ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,overrides", [("vae", TINY_VAE), ("wgan-gp", TINY_GAN)])
def test_divergence_raises_model_fit_error(name, overrides):
    model = build(name, {**overrides, "lr": 1e6, "train_steps": 30})
    with pytest.raises(ModelFitError, match=rf"{name}: training diverged at step \d+"):
        model.fit(daily_set(sine_days(32, np.random.default_rng(0))), RunContext(seed=0))


def test_nan_loss_raises_model_fit_error(monkeypatch):
    def nan_loss(critic, real, fake, alpha, gp_weight):
        scores = critic(real).float()
        nan = scores.mean() * float("nan")
        return nan, nan, nan

    monkeypatch.setattr(wgan_module, "critic_loss", nan_loss)
    with pytest.raises(ModelFitError, match="step 0.*critic=.*nan"):
        build("wgan-gp", TINY_GAN).fit(daily_set(sine_days(16, np.random.default_rng(0))), RunContext())
    monkeypatch.setattr(vae_module, "vae_loss", lambda *a, **k: (torch.tensor(float("inf")),) * 3)
    with pytest.raises(ModelFitError, match="vae: training diverged at step 0"):
        build("vae", TINY_VAE).fit(daily_set(sine_days(16, np.random.default_rng(0))), RunContext())
    with pytest.raises(ModelFitError, match="x=inf"):
        raise_if_nonfinite("m", 5, {"x": torch.tensor(float("inf"))})


def test_bad_arguments_raise():
    for name, overrides in (("vae", TINY_VAE), ("wgan-gp", TINY_GAN)):
        model = build(name, overrides)
        with pytest.raises(RuntimeError, match="fit"):
            model.sample(3, None, RunContext())
        model.fit(daily_set(sine_days(16, np.random.default_rng(0))), RunContext())
        with pytest.raises(ValueError, match="cond"):
            model.sample(3, {"month": 1}, RunContext())
        with pytest.raises(ValueError):
            model.sample(0, None, RunContext())
    with pytest.raises(ValueError, match="exactly one"):
        VAE(train_steps=None, epochs=None)
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(latent_dim=0)
    with pytest.raises(ValueError, match="gp_weight"):
        WGANGP(gp_weight=-1.0)
    with pytest.raises(ValueError, match="betas"):
        WGANGP(betas=(0.5, 1.5))
    with pytest.raises(ValueError, match="unobserved"):
        x = daily_set(sine_days(16, np.random.default_rng(0)))
        x.mask[0, 0] = False
        build("vae", TINY_VAE).fit(x, RunContext())


# -- save / load ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,overrides", [("vae", TINY_VAE), ("wgan-gp", TINY_GAN)])
def test_save_and_load_give_the_same_outputs(tmp_path, name, overrides):
    x = daily_set(sine_days(32, np.random.default_rng(5), length=48), resolution=30)
    model = build(name, overrides)
    model.fit(x, RunContext(seed=2))
    loaded = MODELS[name].load(model.save(tmp_path / "model.pt"))
    assert loaded.params == model.params and loaded.length_ == 48
    ctx = RunContext(seed=9)
    np.testing.assert_array_equal(loaded.sample(6, None, ctx), model.sample(6, None, ctx))
    if name == "vae":  # anomaly scores come from the (EMA) encoder too
        query = DetectionQuery(x.values[:5], np.ones((5, 48), bool), x.meta.iloc[:5], 30)
        np.testing.assert_array_equal(loaded.anomaly_score(query, ctx), model.anomaly_score(query, ctx))
    with pytest.raises(RuntimeError, match="fit"):
        MODELS[name].load(build(name, overrides).save(tmp_path / "unfitted.pt")).sample(2, None, ctx)
