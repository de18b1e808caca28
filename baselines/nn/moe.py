"""Sparsely gated mixture-of-experts feed-forward layer (noisy top-k gating with balance losses).

The layer replaces the feed-forward sub-layer of a Transformer block (Wang et al., "A Unified Model for Smart
Meter Data Applications", eqs. 6-12, which follow Shazeer et al. 2017, "Outrageously large neural networks").
Tensors are ``[..., d_model]``; every leading position is one token.

Gating (:class:`NoisyTopKGate`), for a token ``x``:

* clean logits ``c = x W_g`` (eq. 7);
* noise scale ``s = Softmax(x W_eps)`` (eq. 9, ``noise="softmax"``, the paper's form) or
  ``s = Softplus(x W_eps)`` (``noise="softplus"``, Shazeer et al.'s form), plus a small floor ``min_noise`` so
  the load estimator below never divides by zero;
* in training the noisy logits are ``n = c + eps * s`` with ``eps ~ N(0, 1)`` (eq. 9); in evaluation ``n = c``;
* ``TopK`` keeps the ``k`` largest noisy logits and sets the others to ``-inf`` (eq. 10), and a softmax over
  them gives the gates ``G(x)`` with exactly ``k`` non-zero entries summing to 1 (eq. 8).

Balance statistics over the tokens ``X`` of a batch:

* importance ``Value(X)_i = sum_x G(x)_i`` (eq. 11);
* load ``Payload(X)_i = sum_x Phi((c_i - kth_excl_i(n)) / s_i)`` (eq. 12) in training, where
  ``kth_excl_i(n)`` is the k-th largest noisy logit among the experts other than ``i`` (the (k+1)-th largest
  overall when ``i`` is in the top k, else the k-th). Given the other experts' noise it is the probability that
  expert ``i`` is selected when its own noise is redrawn, so its expectation is ``P(i selected)``, and it is
  smooth in ``W_g`` and ``W_eps`` (a hard count has no gradient). In evaluation the load is the hard count of
  tokens routed to each expert.
* :func:`balance_loss` = ``w_value * CV^2(Value) + w_load * CV^2(Payload)`` with
  ``CV^2(v) = Var(v) / Mean(v)^2`` (population variance), the two last terms of eq. 26.

Both gate matrices start at zero (as in Shazeer et al.): every expert is equally likely at first and the noise
decides the early routing, so no expert is favoured by its initialisation.

Experts (:class:`MoEFeedForward`) are identical two-layer feed-forward networks ``Linear-GELU-Linear`` with
separate weights. Dispatch is sparse: each expert runs only on the tokens routed to it and its outputs are added
with their gate weights (eq. 6), so a layer costs about ``k / n_experts`` of running every expert.
:class:`DenseFeedForward` is one such network with the same ``(out, stats)`` interface (a single "expert" that
receives every token; its balance loss is 0 since the CV of one value is 0), for the no-MoE ablation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from baselines.nn.blocks import check_positive_int

NOISE_KINDS = ("softmax", "softplus")


@dataclass
class GateOutput:
    """What :class:`NoisyTopKGate` returns for ``tokens`` tokens and ``E`` experts.

    Attributes:
        gates: ``[tokens, E]`` routing weights, ``k`` non-zeros per row summing to 1.
        indices: ``[tokens, k]`` the selected experts of every token (largest noisy logit first).
        importance: ``[E]`` ``Value`` of eq. 11 (sum of the gates over the tokens).
        load: ``[E]`` ``Payload`` of eq. 12 (smooth estimate in training, hard count in evaluation).
    """

    gates: torch.Tensor
    indices: torch.Tensor
    importance: torch.Tensor
    load: torch.Tensor


@dataclass
class RoutingStats:
    """Per-layer inputs of the balance loss plus the routing counts used for expert-utilisation diagnostics.

    ``counts [E]`` is the number of (token, slot) routings each expert received (sums to ``tokens * k``).
    """

    importance: torch.Tensor
    load: torch.Tensor
    counts: torch.Tensor


def cv_squared(v: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Squared coefficient of variation ``Var(v) / Mean(v)^2`` of a 1-D tensor (population variance).

    0 for a single value; ``eps`` in the denominator keeps an all-zero vector finite.
    """
    v = v.float().reshape(-1)
    if v.numel() <= 1:
        return v.new_zeros(())
    return v.var(unbiased=False) / (v.mean() ** 2 + eps)


def balance_loss(importance: torch.Tensor, load: torch.Tensor, w_value: float, w_load: float) -> torch.Tensor:
    """``w_value * CV^2(importance) + w_load * CV^2(load)`` (the balance terms of the paper's eq. 26)."""
    return w_value * cv_squared(importance) + w_load * cv_squared(load)


class NoisyTopKGate(nn.Module):
    """Noisy top-k gating network (eqs. 8-12); see the module docstring."""

    def __init__(self, d_model: int, n_experts: int, k: int, noise: str = "softmax",
                 min_noise: float = 1e-2) -> None:
        """
        Args:
            d_model: token width.
            n_experts: number of experts ``E``.
            k: experts per token, ``1 <= k <= E``.
            noise: ``"softmax"`` (paper, eq. 9) or ``"softplus"`` (Shazeer et al. 2017) noise scale.
            min_noise: floor added to the noise scale.

        Raises:
            ValueError: bad sizes, ``k > n_experts``, an unknown ``noise`` or a negative ``min_noise``.
        """
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("n_experts", n_experts)
        check_positive_int("k", k)
        if k > n_experts:
            raise ValueError(f"k must not exceed n_experts, got k={k}, n_experts={n_experts}")
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
        if not min_noise >= 0:
            raise ValueError(f"min_noise must be >= 0, got {min_noise!r}")
        self.n_experts, self.k, self.noise, self.min_noise = n_experts, k, noise, float(min_noise)
        self.w_gate = nn.Parameter(torch.zeros(d_model, n_experts))
        self.w_noise = nn.Parameter(torch.zeros(d_model, n_experts))

    def noise_scale(self, x: torch.Tensor) -> torch.Tensor:
        """``[tokens, E]`` standard deviation of the gate noise for tokens ``x [tokens, d_model]``."""
        raw = x @ self.w_noise
        scale = torch.softmax(raw, dim=-1) if self.noise == "softmax" else F.softplus(raw)
        return scale + self.min_noise

    def forward(self, x: torch.Tensor) -> GateOutput:
        """Route tokens ``x [tokens, d_model]``; noise only in training mode."""
        if x.dim() != 2:
            raise ValueError(f"the gate expects tokens [tokens, d_model], got shape {tuple(x.shape)}")
        # routing decisions in float32 even under autocast (ties and the normal CDF are touchy in bf16)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            clean = x @ self.w_gate
            if self.training:
                scale = self.noise_scale(x)
                noisy = clean + torch.randn_like(clean) * scale
            else:
                scale, noisy = None, clean
            return self._route(clean, noisy, scale)

    def _route(self, clean: torch.Tensor, noisy: torch.Tensor, scale: torch.Tensor | None) -> GateOutput:
        """Top-k selection, gates and balance statistics from the clean and noisy logits."""
        top_k = min(self.k + 1, self.n_experts)
        top_values, top_indices = noisy.topk(top_k, dim=-1)
        indices = top_indices[:, : self.k]
        kept = torch.full_like(noisy, float("-inf")).scatter(1, indices, top_values[:, : self.k])
        gates = torch.softmax(kept, dim=-1)
        importance = gates.sum(dim=0)
        selected = torch.zeros_like(noisy, dtype=torch.bool).scatter(1, indices, True)
        if scale is None:
            load = selected.float().sum(dim=0)
        else:
            load = self._smooth_load(clean, scale, top_values, selected)
        return GateOutput(gates=gates, indices=indices, importance=importance, load=load)

    def _smooth_load(self, clean: torch.Tensor, scale: torch.Tensor, top_values: torch.Tensor,
                     selected: torch.Tensor) -> torch.Tensor:
        """Eq. 12: ``sum_x P(c_i + eps_i s_i > kth_excl_i(n))`` given the other experts' noise."""
        if self.k == self.n_experts:
            # every expert is always selected: the probability is 1 for each token
            return torch.full_like(clean[0], float(clean.shape[0]))
        threshold_if_in = top_values[:, self.k: self.k + 1]  # (k+1)-th largest: the k-th among the others
        threshold_if_out = top_values[:, self.k - 1: self.k]  # k-th largest
        threshold = torch.where(selected, threshold_if_in, threshold_if_out)
        prob = 0.5 * (1.0 + torch.erf((clean - threshold) / (scale * math.sqrt(2.0))))
        return prob.sum(dim=0)


def expert_ffn(d_model: int, d_hidden: int) -> nn.Sequential:
    """One expert: ``Linear(d_model, d_hidden) - GELU - Linear(d_hidden, d_model)``."""
    return nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))


class MoEFeedForward(nn.Module):
    """Sparse mixture of ``n_experts`` feed-forward experts with noisy top-``k`` gating (eq. 6)."""

    def __init__(self, d_model: int, d_hidden: int, n_experts: int, k: int, noise: str = "softmax",
                 min_noise: float = 1e-2) -> None:
        super().__init__()
        check_positive_int("d_hidden", d_hidden)
        self.gate = NoisyTopKGate(d_model, n_experts, k, noise, min_noise)
        self.experts = nn.ModuleList(expert_ffn(d_model, d_hidden) for _ in range(n_experts))
        self.n_experts, self.k = n_experts, k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RoutingStats]:
        """``x [..., d_model] -> (out [..., d_model] float32, RoutingStats)``; each expert sees only its tokens."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        routing = self.gate(tokens)
        out = torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
        flat_expert = routing.indices.reshape(-1)
        flat_token = torch.arange(tokens.shape[0], device=tokens.device).repeat_interleave(self.k)
        counts = torch.bincount(flat_expert, minlength=self.n_experts)
        order = torch.argsort(flat_expert, stable=True)  # group the (token, slot) pairs by expert
        token_sorted = flat_token[order]
        weight_sorted = routing.gates[token_sorted, flat_expert[order]]
        start = 0
        for e, n_e in enumerate(counts.tolist()):
            if n_e == 0:
                continue
            idx = token_sorted[start:start + n_e]
            y = self.experts[e](tokens.index_select(0, idx)).float()
            out.index_add_(0, idx, y * weight_sorted[start:start + n_e, None])
            start += n_e
        stats = RoutingStats(importance=routing.importance, load=routing.load, counts=counts)
        return out.reshape(*shape[:-1], shape[-1]), stats


class DenseFeedForward(nn.Module):
    """One feed-forward network with the :class:`MoEFeedForward` interface (the no-MoE ablation).

    Its statistics describe a single expert receiving every token, so :func:`balance_loss` of them is 0.
    """

    def __init__(self, d_model: int, d_hidden: int) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("d_hidden", d_hidden)
        self.ffn = expert_ffn(d_model, d_hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RoutingStats]:
        """``x [..., d_model] -> (out float32, RoutingStats with one expert)``."""
        n_tokens = x.numel() // x.shape[-1]
        ones = torch.full((1,), float(n_tokens), device=x.device)
        counts = torch.full((1,), n_tokens, dtype=torch.long, device=x.device)
        return self.ffn(x).float(), RoutingStats(importance=ones, load=ones, counts=counts)


__all__ = ["GateOutput", "RoutingStats", "NoisyTopKGate", "MoEFeedForward", "DenseFeedForward", "cv_squared",
           "balance_loss", "expert_ffn", "NOISE_KINDS"]
