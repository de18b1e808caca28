"""Variational information bottleneck on a sequence of tokens (Alemi et al. 2017; the unified model's eqs. 20-25).

Each token ``h [..., d_model]`` is mapped to a diagonal Gaussian posterior ``p(z | x) = N(mu, diag(sigma^2))``:
``mu = W_mu h + b_mu`` and ``sigma = Softplus(W_s h + b_s) + min_sigma`` (the floor keeps ``log sigma`` finite).
Training draws ``z = mu + sigma * eps`` with ``eps ~ N(0, 1)`` (the reparametrisation, so gradients reach both
heads); evaluation returns ``mu`` unless a sample is asked for (e.g. to build an ensemble).

The prior is ``m(z) = N(0, I)`` and :func:`kl_standard_normal` is eq. 25,
``KL = sum_j 0.5 * (-1 + mu_j^2 + sigma_j^2 - 2 log sigma_j)``, summed over every dimension of the
representation (all tokens and channels of a profile) and averaged over the batch. The pre-training loss
(eq. 26) weighs the same sum *without* the factor 1/2: :func:`eq26_penalty` is that term,
``sum_j (-1 + mu_j^2 + sigma_j^2 - 2 log sigma_j) = 2 KL``, so that ``beta * eq26_penalty`` is eq. 26's
bottleneck term with Table I's ``beta`` as printed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.nn.blocks import check_positive_int


def kl_standard_normal(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(sigma^2)) || N(0, I))`` summed over all but the first (batch) dimension, batch mean.

    Raises:
        ValueError: ``mu`` and ``sigma`` differ in shape, or are 0-dimensional.
    """
    if mu.shape != sigma.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} must have the same shape")
    if mu.dim() == 0:
        raise ValueError("mu and sigma need a batch dimension")
    mu, sigma = mu.float(), sigma.float()
    per_dim = 0.5 * (-1.0 + mu.pow(2) + sigma.pow(2) - 2.0 * torch.log(sigma))
    return per_dim.reshape(per_dim.shape[0], -1).sum(dim=1).mean()


def eq26_penalty(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Eq. 26's bottleneck term per profile, ``sum_j (-1 + mu_j^2 + sigma_j^2 - 2 log sigma_j)`` (eq. 25
    without its factor 1/2, i.e. ``2 KL``), summed over all but the batch dimension, batch mean.

    Raises:
        ValueError: as :func:`kl_standard_normal`.
    """
    return 2.0 * kl_standard_normal(mu, sigma)


class VariationalBottleneck(nn.Module):
    """Gaussian posterior per token with mean and standard-deviation heads; see the module docstring."""

    def __init__(self, d_model: int, d_latent: int | None = None, min_sigma: float = 1e-3) -> None:
        """
        Args:
            d_model: width of the incoming tokens.
            d_latent: width of ``z`` (default ``d_model``).
            min_sigma: floor of the posterior standard deviation.

        Raises:
            ValueError: non-positive sizes or ``min_sigma``.
        """
        super().__init__()
        check_positive_int("d_model", d_model)
        d_latent = check_positive_int("d_latent", d_latent if d_latent is not None else d_model)
        if not min_sigma > 0:
            raise ValueError(f"min_sigma must be positive, got {min_sigma!r}")
        self.min_sigma = float(min_sigma)
        self.mean = nn.Linear(d_model, d_latent)
        self.scale = nn.Linear(d_model, d_latent)

    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, sigma)`` of the posterior for tokens ``h [..., d_model]`` (float32)."""
        mu = self.mean(h).float()
        sigma = F.softplus(self.scale(h).float()) + self.min_sigma
        return mu, sigma

    def forward(self, h: torch.Tensor, sample: bool | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z, mu, sigma)``. ``sample=None`` samples in training mode and returns ``mu`` in evaluation mode.

        ``generator`` (a CPU generator) makes the draw reproducible on any device; without it the global torch
        RNG of ``h``'s device is used.
        """
        mu, sigma = self.posterior(h)
        if sample is None:
            sample = self.training
        if not sample:
            return mu, mu, sigma
        if generator is None:
            eps = torch.randn_like(mu)
        else:
            eps = torch.randn(mu.shape, generator=generator, device=generator.device).to(mu.device)
        return mu + sigma * eps, mu, sigma


__all__ = ["VariationalBottleneck", "kl_standard_normal", "eq26_penalty"]
