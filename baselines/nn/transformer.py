"""Generic Transformer pieces for profile models: folding, sinusoidal embeddings, FiLM and pre-LN blocks.

Tensors follow the ``[batch, tokens, channels]`` layout throughout.

* :func:`fold` / :func:`unfold` move ``r`` consecutive time steps into the channel dimension and back
  (EnergyDiff's folding: a ``T``-step series becomes ``T / r`` tokens of ``r`` values).
* :func:`sinusoidal_embedding` is the Transformer positional encoding of arbitrary real positions (diffusion
  steps, minutes of the day, flow times).
* :class:`SinusoidalMLP` embeds a scalar position with a small MLP on top of the sinusoidal encoding.
* :class:`FiLM` turns a condition vector into a scale and shift, ``x <- (1 + scale) * x + shift``.
* :class:`TokenConv1d` is a circular 1-D convolution over tokens (the large-kernel input layer).
* :class:`MultiHeadSelfAttention` and :class:`TransformerBlock`: a pre-LayerNorm block whose two sub-layers
  are modulated by a condition (adaLN: FiLM after each LayerNorm), optionally with zero-initialised residual
  gates (adaLN-Zero), optionally with a key padding mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def fold(x: torch.Tensor, r: int) -> torch.Tensor:
    """Fold ``r`` consecutive steps into channels: ``[B, T]`` or ``[B, T, C]`` -> ``[B, T / r, r * C]``.

    Token ``k`` holds steps ``k * r ... k * r + r - 1`` in time order (each with its ``C`` channels).

    Raises:
        ValueError: ``r`` is not a positive integer or ``T`` is not divisible by ``r``.
    """
    if x.dim() == 2:
        x = x.unsqueeze(-1)
    if x.dim() != 3:
        raise ValueError(f"fold expects [B, T] or [B, T, C], got shape {tuple(x.shape)}")
    check_fold(x.shape[1], r)
    b, t, c = x.shape
    return x.reshape(b, t // r, r * c)


def unfold(z: torch.Tensor, r: int) -> torch.Tensor:
    """Inverse of :func:`fold`: ``[B, L, r * C]`` -> ``[B, L * r, C]`` (``.squeeze(-1)`` for univariate data).

    Raises:
        ValueError: ``z`` is not 3-D or its channel count is not a multiple of ``r``.
    """
    if z.dim() != 3:
        raise ValueError(f"unfold expects [B, L, r * C], got shape {tuple(z.shape)}")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1 or z.shape[-1] % r:
        raise ValueError(f"cannot unfold {z.shape[-1]} channels with folding factor {r!r}")
    b, length, rc = z.shape
    return z.reshape(b, length * r, rc // r)


def check_fold(length: int, r: int) -> int:
    """``length // r`` (the number of tokens) after checking that ``r`` folds ``length`` evenly.

    Raises:
        ValueError: ``r`` is not a positive integer or does not divide ``length``.
    """
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"folding factor must be a positive integer, got {r!r}")
    if length % r:
        divisors = [d for d in range(1, min(length, 64) + 1) if length % d == 0]
        raise ValueError(f"a series of T={length} steps cannot be folded by r={r}: T must be divisible by r "
                         f"(divisors of {length} up to 64: {divisors})")
    return length // r


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal encoding of real ``positions`` (any shape) -> ``[..., dim]``, values in [-1, 1].

    The first half holds ``sin(pos * w_i)``, the second ``cos(pos * w_i)`` with frequencies
    ``w_i = max_period ** (-i / (dim / 2))`` (the Transformer encoding with sines and cosines grouped
    instead of interleaved, which a following linear layer cannot tell apart). An odd ``dim`` gets a zero
    last column.
    """
    if dim < 1:
        raise ValueError(f"embedding dimension must be positive, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device)
                      / max(half, 1))
    args = positions.to(torch.float32).unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class SinusoidalMLP(nn.Module):
    """Embedding of a scalar position: sinusoidal encoding -> Linear -> SiLU -> Linear."""

    def __init__(self, dim: int, hidden: int | None = None, out_dim: int | None = None,
                 max_period: float = 10000.0) -> None:
        super().__init__()
        hidden = hidden or dim
        self.dim = dim
        self.max_period = max_period
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, out_dim or hidden))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """``positions [...]`` -> ``[..., out_dim]``."""
        return self.net(sinusoidal_embedding(positions, self.dim, self.max_period))


def modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``(1 + scale) * x + shift`` with ``scale`` and ``shift`` broadcasting against ``x``, in one fused
    multiply-add over ``x`` (``addcmul``) instead of a multiply and an add."""
    return torch.addcmul(shift, x, 1 + scale)


def dropout_or_identity(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or ``nn.Identity()`` for ``p == 0`` (neither holds parameters, so the choice leaves
    state dicts unchanged; the identity skips a module call per use in every training step)."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class FiLM(nn.Module):
    """Feature-wise affine modulation from a condition: ``x <- (1 + scale(c)) * x + shift(c)``.

    ``scale`` and ``shift`` come from one linear layer on ``SiLU(c)``. With ``zero_init`` that layer starts
    at zero, so the modulation starts as the identity (the EnergyDiff paper's choice for stable training).
    """

    def __init__(self, cond_dim: int, features: int, zero_init: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * features)
        if zero_init:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Modulate ``x [..., F]`` by ``cond [..., C]`` whose leading dims broadcast against ``x``'s.

        E.g. ``x [B, L, F]`` with ``cond [B, 1, C]`` (one per sequence) or ``[L, C]`` (one per position).
        """
        scale, shift = self.proj(F.silu(cond)).chunk(2, dim=-1)
        return modulate(x, scale, shift)


class TokenConv1d(nn.Module):
    """Circular 1-D convolution over tokens, ``[B, L, C_in] -> [B, L, C_out]``.

    Circular padding treats the token sequence as periodic (a day wraps from midnight to midnight). The
    kernel is shrunk to the largest odd size not exceeding ``tokens`` so that no token enters one output twice
    through the wrap-around (a requested 7 becomes 3 for a 3-token sequence); ``kernel_size`` holds the
    size used.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, tokens: int) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if tokens < 1:
            raise ValueError(f"tokens must be positive, got {tokens}")
        largest = tokens if tokens % 2 else tokens - 1
        self.kernel_size = min(kernel_size, largest)
        self.conv = nn.Conv1d(in_channels, out_channels, self.kernel_size, padding=self.kernel_size // 2,
                              padding_mode="circular")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention on ``[B, L, d]`` using PyTorch's fused scaled-dot-product kernel."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``key_mask [B, L]`` (True = a real token) keeps padding tokens out of every attention row."""
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :].to(torch.bool)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, length, d))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm Transformer block, optionally conditioned by adaLN.

    Without a condition (``cond_dim=None``): ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``. With one, each
    LayerNorm output is modulated, ``(1 + scale) * LN(x) + shift``, by a zero-initialised projection of
    ``SiLU(cond)`` (the diffusion-step FiLM). ``gated=True`` also scales each residual branch by a
    zero-initialised gate (adaLN-Zero), which makes the whole block the identity at initialisation.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0,
                 cond_dim: int | None = None, gated: bool = False) -> None:
        super().__init__()
        if gated and cond_dim is None:
            raise ValueError("a gated (adaLN-Zero) block needs a condition (cond_dim)")
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), dropout_or_identity(dropout),
                                 nn.Linear(d_ff, d_model))
        self.drop = dropout_or_identity(dropout)
        self.gated = gated
        self.modulation = None
        if cond_dim is not None:
            self.modulation = nn.Linear(cond_dim, (6 if gated else 4) * d_model)
            nn.init.zeros_(self.modulation.weight)
            nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, L, d]``; ``cond [B, C]`` (one per sequence) or ``[B, L, C]`` (per token)."""
        if (cond is None) != (self.modulation is None):
            raise ValueError("pass cond exactly when the block was built with cond_dim")
        h1 = self.norm1(x)
        gate1 = gate2 = None
        if self.modulation is not None:
            mods = self.modulation(F.silu(cond))
            if mods.dim() == 2:
                mods = mods.unsqueeze(1)
            parts = mods.chunk(6 if self.gated else 4, dim=-1)
            scale1, shift1, scale2, shift2 = parts[:4]
            if self.gated:
                gate1, gate2 = parts[4:]
            h1 = modulate(h1, scale1, shift1)
        a = self.drop(self.attn(h1, key_mask))
        x = x + (a if gate1 is None else gate1 * a)
        h2 = self.norm2(x)
        if self.modulation is not None:
            h2 = modulate(h2, scale2, shift2)
        f = self.drop(self.ffn(h2))
        return x + (f if gate2 is None else gate2 * f)
