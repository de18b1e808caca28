"""Noisy top-k mixture-of-experts layer and variational bottleneck: routing, dispatch, balance losses, KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from baselines.nn.moe import DenseFeedForward, MoEFeedForward, NoisyTopKGate, balance_loss, cv_squared
from baselines.nn.vib import VariationalBottleneck, eq26_penalty, kl_standard_normal


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def random_gate(d_model: int = 8, n_experts: int = 6, k: int = 2, noise: str = "softmax", seed: int = 0,
                gate_scale: float = 1.0, noise_scale: float = 1.0) -> NoisyTopKGate:
    """A gate with random (not the zero-initialised) weights so routing depends on the token."""
    torch.manual_seed(seed)
    gate = NoisyTopKGate(d_model, n_experts, k, noise=noise)
    with torch.no_grad():
        gate.w_gate.normal_(0.0, gate_scale)
        gate.w_noise.normal_(0.0, noise_scale)
    return gate


@pytest.mark.parametrize("noise", ["softmax", "softplus"])
@pytest.mark.parametrize("training", [True, False])
def test_gate_selects_exactly_k_and_sums_to_one(noise, training):
    gate = random_gate(noise=noise, k=3).train(training)
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(1))
    out = gate(x)
    nonzero = out.gates > 0
    assert (nonzero.sum(dim=1) == 3).all()
    torch.testing.assert_close(out.gates.sum(dim=1), torch.ones(500))
    # the reported indices are exactly the non-zero gates
    from_indices = torch.zeros_like(nonzero).scatter(1, out.indices, True)
    assert torch.equal(from_indices, nonzero)
    torch.testing.assert_close(out.importance, out.gates.sum(dim=0))


def test_eval_gate_is_deterministic_top_k_of_clean_logits():
    gate = random_gate().eval()
    x = torch.randn(50, 8)
    a, b = gate(x), gate(x)
    assert torch.equal(a.gates, b.gates)
    clean = x @ gate.w_gate
    expected = torch.softmax(torch.where(clean >= clean.topk(2, dim=1).values[:, -1:], clean,
                                         torch.tensor(float("-inf"))), dim=1)
    torch.testing.assert_close(a.gates, expected)
    # evaluation load = hard count of tokens per expert
    torch.testing.assert_close(a.load, (a.gates > 0).float().sum(dim=0))


@pytest.mark.parametrize("training", [True, False])
def test_sparse_dispatch_equals_dense_reference(training):
    torch.manual_seed(0)
    layer = MoEFeedForward(8, 16, n_experts=5, k=2).train(training)
    with torch.no_grad():
        layer.gate.w_gate.normal_()
        layer.gate.w_noise.normal_()
    x = torch.randn(3, 40, 8)
    torch.manual_seed(7)  # same gate noise for the layer and the reference gate call below
    out, stats = layer(x)
    torch.manual_seed(7)
    tokens = x.reshape(-1, 8)
    gates = layer.gate(tokens).gates
    dense = sum(gates[:, i:i + 1] * layer.experts[i](tokens) for i in range(5))
    torch.testing.assert_close(out, dense.reshape(3, 40, 8), atol=1e-5, rtol=1e-5)
    assert int(stats.counts.sum()) == 120 * 2
    torch.testing.assert_close(stats.counts.float(), (gates > 0).float().sum(dim=0))


def test_sparse_dispatch_gradients_match_dense_reference():
    torch.manual_seed(0)
    layer = MoEFeedForward(6, 12, n_experts=4, k=2).eval()
    with torch.no_grad():
        layer.gate.w_gate.normal_()
    x = torch.randn(30, 6, requires_grad=True)
    out, _ = layer(x)
    (g_sparse,) = torch.autograd.grad(out.pow(2).sum(), x)
    gates = layer.gate(x).gates
    dense = sum(gates[:, i:i + 1] * layer.experts[i](x) for i in range(4))
    (g_dense,) = torch.autograd.grad(dense.pow(2).sum(), x)
    torch.testing.assert_close(g_sparse, g_dense, atol=1e-5, rtol=1e-4)


def test_cv_squared_matches_numpy_and_balance_loss():
    rng = np.random.default_rng(0)
    v = rng.uniform(0.1, 3.0, 7)
    assert float(cv_squared(torch.tensor(v))) == pytest.approx(np.var(v) / np.mean(v) ** 2, rel=1e-5)
    assert float(cv_squared(torch.tensor([2.5]))) == 0.0
    balanced = torch.full((6,), 4.0)
    assert float(balance_loss(balanced, balanced, 0.1, 0.1)) == pytest.approx(0.0, abs=1e-9)
    skewed = torch.tensor([10.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    expected = 0.1 * np.var(skewed.numpy()) / np.mean(skewed.numpy()) ** 2 + 0.3 * 0.0
    assert float(balance_loss(skewed, balanced, 0.1, 0.3)) == pytest.approx(expected, rel=1e-5)
    assert float(balance_loss(balanced, skewed, 0.1, 0.3)) > 0


@pytest.mark.parametrize("noise", ["softmax", "softplus"])
def test_smooth_load_matches_monte_carlo_selection_probability(noise):
    # one fixed token; its weights give intermediate selection probabilities for every expert
    gate = random_gate(d_model=4, n_experts=5, k=2, noise=noise, seed=3, gate_scale=0.15, noise_scale=0.5).train()
    x0 = torch.randn(1, 4, generator=torch.Generator().manual_seed(5))
    n = 40_000
    torch.manual_seed(0)
    load = gate(x0.expand(n, 4)).load.detach() / n  # mean of the estimator over n noise draws
    torch.manual_seed(1)  # independent draws for the empirical frequency
    frequency = (gate(x0.expand(n, 4)).gates > 0).float().mean(dim=0)
    assert 0.05 < float(frequency.min()) and float(frequency.max()) < 0.95  # a non-trivial case
    torch.testing.assert_close(load, frequency, atol=0.015, rtol=0.0)
    assert float(load.detach().sum()) == pytest.approx(2.0, abs=0.03)  # k experts per token on average


def test_load_with_every_expert_selected_is_the_token_count():
    gate = random_gate(n_experts=3, k=3).train()
    out = gate(torch.randn(17, 8))
    torch.testing.assert_close(out.load, torch.full((3,), 17.0))
    assert (out.gates > 0).all()


def test_dense_feed_forward_has_zero_balance_loss():
    layer = DenseFeedForward(8, 16)
    out, stats = layer(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 8)
    assert float(balance_loss(stats.importance, stats.load, 0.1, 0.1)) == 0.0
    assert stats.counts.tolist() == [10]


def test_gate_and_moe_reject_bad_arguments():
    with pytest.raises(ValueError, match="k must not exceed"):
        NoisyTopKGate(8, 2, 3)
    with pytest.raises(ValueError, match="noise"):
        NoisyTopKGate(8, 4, 2, noise="gumbel")
    with pytest.raises(ValueError, match="n_experts"):
        MoEFeedForward(8, 16, 0, 1)
    with pytest.raises(ValueError, match="tokens"):
        NoisyTopKGate(8, 4, 2)(torch.randn(2, 3, 8))


def test_kl_matches_closed_form_and_torch_distributions():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(5, 3, 4))
    sigma = rng.uniform(0.2, 2.0, size=(5, 3, 4))
    expected = np.mean(np.sum(0.5 * (-1 + mu**2 + sigma**2 - 2 * np.log(sigma)), axis=(1, 2)))
    got = kl_standard_normal(torch.tensor(mu), torch.tensor(sigma))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    reference = kl_divergence(Normal(torch.tensor(mu), torch.tensor(sigma)), Normal(0.0, 1.0)).sum(dim=(1, 2)).mean()
    assert float(got) == pytest.approx(float(reference), rel=1e-5)
    assert float(kl_standard_normal(torch.zeros(2, 3), torch.ones(2, 3))) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        kl_standard_normal(torch.zeros(2, 3), torch.ones(2, 4))


def test_eq26_penalty_is_eq_25_without_its_half():
    # one profile, mu = (1, 0), sigma = (1, 2): (-1 + 1 + 1 - 0) + (-1 + 0 + 4 - 2 ln 2), no factor 1/2
    mu, sigma = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 2.0]])
    assert float(eq26_penalty(mu, sigma)) == pytest.approx(1.0 + 3.0 - 2.0 * np.log(2.0), rel=1e-6)
    # batch mean of the per-profile sums, twice the KL
    rng = np.random.default_rng(1)
    mu, sigma = torch.tensor(rng.normal(size=(3, 2, 5))), torch.tensor(rng.uniform(0.3, 2.0, size=(3, 2, 5)))
    assert float(eq26_penalty(mu, sigma)) == pytest.approx(2.0 * float(kl_standard_normal(mu, sigma)), rel=1e-9)


def test_bottleneck_samples_in_training_and_returns_mean_in_eval():
    torch.manual_seed(0)
    vib = VariationalBottleneck(6, min_sigma=1e-3)
    h = torch.randn(1, 6).expand(20_000, 6)
    vib.eval()
    z, mu, sigma = vib(h)
    assert torch.equal(z, mu)
    assert (sigma >= 1e-3).all()
    vib.train()
    z1, mu1, sigma1 = vib(h, generator=torch.Generator().manual_seed(3))
    z2, _, _ = vib(h, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z1, z2)  # a seeded generator reproduces the draw
    torch.testing.assert_close(z1.mean(dim=0), mu1[0], atol=0.05, rtol=0.0)
    torch.testing.assert_close(z1.std(dim=0), sigma1[0], atol=0.05, rtol=0.05)
    z3, _, _ = vib.eval()(h[:3], sample=True)
    assert not torch.equal(z3, vib(h[:3])[0])  # sampling on request in evaluation mode
