"""The batched sampling loop every deep model shares."""

from __future__ import annotations

import typing

from typing import Callable

import numpy as np
import torch

if typing.TYPE_CHECKING:
    from bench.context import RunContext


def draw_in_batches(n: int, batch: int, draw: Callable[[int, int], torch.Tensor | np.ndarray]) -> np.ndarray:
    """``draw(start, size)`` for consecutive batches of at most ``batch`` rows covering ``range(n)``, without
    gradients, concatenated along the first axis as float32 NumPy (on the CPU)."""
    if n < 1 or batch < 1:
        raise ValueError(f"n and batch must be positive, got n={n}, batch={batch}")
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            part = draw(start, min(batch, n - start))
            out.append(part.float().cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part))
    return np.concatenate(out, axis=0).astype(np.float32, copy=False)


def decode_gaussian_latents(net: torch.nn.Module, n: int, latent_dim: int, batch: int, ctx: "RunContext",
                            amp_dtype: torch.dtype | None) -> np.ndarray:
    """``[n, ...]`` float32 outputs of ``net(z)`` for ``z ~ N(0, I)`` of size ``latent_dim``: a VAE decoder's or a
    GAN generator's samples. The latents are drawn on the CPU from the ``MODEL_SAMPLE`` stream of ``ctx`` (the
    same samples on every device); ``amp_dtype`` autocasts on CUDA only."""
    from bench.seeds import Stream
    from bench.train import autocast, resolve_device

    device = resolve_device(ctx.device)
    net = net.to(device)
    amp_dtype = amp_dtype if device.type == "cuda" else None
    generator = ctx.torch_generator(Stream.MODEL_SAMPLE)

    def draw(start: int, size: int) -> torch.Tensor:
        z = torch.randn(size, latent_dim, generator=generator).to(device)
        with autocast(device, amp_dtype):
            return net(z).float()

    return draw_in_batches(n, batch, draw)
