"""``vae``: a variational auto-encoder with fully connected encoder and decoder (the EnergyDiff VAE baseline).

Model. A daily profile ``x [T]`` (scaled to [-1, 1]) is encoded by an MLP of ``n_layers`` fully connected
layers with GELU activations (LayerNorm before every hidden layer after the first) into the mean ``mu`` and
log-variance ``logvar`` of a diagonal Gaussian posterior over ``latent_dim`` latents; a decoder MLP of the same
depth maps a latent ``z`` back to ``T`` values (linear output). The paper's setup: 5 layers on each side, width
512, 64 latents, GELU.

Loss (the negative ELBO with a weighted KL, as in the paper's public code)::

    loss = mean_{b,t} (x_hat[b, t] - x[b, t])^2  +  kl_weight * mean_b KL(N(mu_b, diag(exp(logvar_b))) || N(0, I))

with the KL summed over latent dimensions (:func:`kl_to_standard_normal`) and the reparametrised draw
``z = mu + exp(logvar / 2) * eps``. Because the reconstruction error is averaged over time steps while the KL
is summed over latents, ``kl_weight = 0.1`` is a strong prior: it equals a Gaussian likelihood with variance
``0.05 * T`` per step, so the VAE keeps only the dominant modes of variation and its samples are smooth -
which is the behaviour the paper reports for this baseline.

Sampling draws ``z ~ N(0, I)`` and returns the decoder output (the Gaussian likelihood's mean, no observation
noise added, as the paper's code does), from the EMA copy of the decoder (``ema_decay=None`` samples the raw
weights). Noise comes from a CPU generator seeded from the context's ``MODEL_SAMPLE`` stream, so a seed gives the
same samples on every device; the weights are initialised from its ``MODEL_INIT`` stream.

Anomaly detection (capability ``detect``): a profile's score is a deterministic negative-ELBO estimate under
the training loss, ``mean_t (x_hat[t] - x[t])^2 + kl_weight * KL(q(z | x) || N(0, I))`` with ``x_hat`` the
decoding of the posterior mean ``mu`` (no sampling noise), the squared error averaged over the valid steps,
computed with the EMA encoder and decoder. Profiles unlike the training days reconstruct badly or need an
unusual latent code, and score high.

Training runs in the shared loop (:mod:`bench.train`): one AdamW optimiser over encoder and decoder (weight
decay 0, i.e. Adam), EMA of both networks (the encoder's copy serves anomaly scores), gradient clipping, bf16
autocast on CUDA, checkpoint + resume in ``ctx.checkpoint_dir``; ``ctx.budget_steps`` ends a fit early (a
later fit with the same context resumes). A non-finite loss raises :class:`bench.errors.ModelFitError` naming
the step.

Profiles:

* ``paper`` - width 512, 64 latents, 5 layers each side, KL weight 0.1, constant lr 1e-4, Adam (0.9, 0.999),
  500 epochs. The paper gives no batch size; we use the public code's 512. "500 epochs" becomes
  ``ceil(500 * N / min(512, N))`` optimiser steps computed at fit time from the training-set size ``N``
  (batches are drawn with replacement by the shared loop, so an "epoch" is ``N`` profiles' worth of draws,
  not an exact pass). The public code has no gradient clipping; neither has this profile. We keep an EMA
  of the decoder (0.999) for sampling (and of the encoder, for anomaly scores): the paper samples EnergyDiff
  from EMA weights and trains the baselines "similarly".
* ``quick`` - a smaller network for two CPU cores: width 256, 32 latents, 5 layers each side, KL weight 0.1
  (the same loss as ``paper``), 3000 steps of batch 64 at lr 1e-3 with gradient clipping at 1, EMA 0.995.
  Measured on two CPU cores with 700 training profiles and 720 samples (fit + sample): 18-21 s at
  ``T = 24`` and 22-26 s at ``T = 96`` (sampling takes milliseconds).
* ``test`` - width 32, 8 latents, 3 layers each side, KL weight 0.01, 300 steps of batch 32 at lr 3e-3, EMA
  0.98: well under a second for 60 profiles on one core, for the contract test.

With ``kl_weight = 0.1`` the posterior nearly collapses on smooth daily data (on a toy set of sine-shaped days
the samples keep about 30 % of the per-step spread); ``kl_weight = 0.01`` keeps most of it and beats the
``independent-marginals`` reference on MMD. ``quick`` and ``paper`` keep the paper's weight; ``test`` uses
0.01 so that a few hundred steps learn the day's shape.

``save`` / ``load`` keep the sampling (EMA) encoder and decoder and the profile length that rebuilds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from baselines.naive import check_sample_request, training_matrix
from baselines.nn.blocks import (build_for_loading, check_positive_int, dtype_from_name, dtype_name, mlp,
                                 raise_if_nonfinite, resolve_train_steps)
from baselines.nn.sampling import decode_gaussian_latents, draw_in_batches
from bench.api import Detector, Generator, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import DetectionQuery
from bench.train import Trainer, TrainConfig, train_config_from, autocast, resolve_device, seed_everything


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per row, summed over the last dimension.

    Closed form: ``0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=-1)


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, reconstruction, kl)``: per-element mean squared error + ``kl_weight`` * batch-mean KL."""
    recon = torch.mean((x_hat - x) ** 2)
    kl = kl_to_standard_normal(mu, logvar).mean()
    return recon + kl_weight * kl, recon, kl


class Encoder(nn.Module):
    """``x [B, T] -> (mu, logvar)``, each ``[B, latent_dim]``."""

    def __init__(self, length: int, hidden: int, latent_dim: int, n_layers: int) -> None:
        super().__init__()
        self.net = mlp(length, hidden, 2 * latent_dim, n_layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


@dataclass(frozen=True)
class VAEParams(Params):
    """The VAE's hyper-parameters; the defaults are the ``quick`` profile (module docstring). Exactly one of
    ``train_steps`` and ``epochs`` is set."""

    hidden: int = 256
    latent_dim: int = 32
    n_layers: int = 5
    kl_weight: float = 0.1
    train_steps: int | None = 3000
    epochs: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    ema_decay: float | None = 0.995
    grad_clip: float | None = 1.0
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 1000
    sample_batch: int = 4096

    def __post_init__(self) -> None:
        for name in ("hidden", "latent_dim", "batch_size", "sample_batch"):
            check_positive_int(name, getattr(self, name))
        if check_positive_int("n_layers", self.n_layers) < 2:
            raise ValueError(f"n_layers must be at least 2, got {self.n_layers}")
        if (self.train_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of train_steps and epochs")
        if not (np.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"kl_weight must be a finite number >= 0, got {self.kl_weight!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {self.ema_decay!r}")


@register_model("vae")
class VAE(Model, Generator, Detector):
    """Variational auto-encoder with MLP encoder/decoder (EnergyDiff baseline; samples decode z ~ N(0, I))."""

    Params = VAEParams
    profiles = {
        # a narrow 3-layer network: ~60 profiles fit in well under a second on one core
        "test": {"hidden": 32, "latent_dim": 8, "n_layers": 3, "kl_weight": 0.01, "train_steps": 300,
                 "batch_size": 32, "lr": 3e-3, "ema_decay": 0.98},
        "paper": {"hidden": 512, "latent_dim": 64, "train_steps": None, "epochs": 500, "batch_size": 512,
                  "lr": 1e-4, "ema_decay": 0.999, "grad_clip": None, "checkpoint_every": 2000},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._decoder: nn.Module | None = None
        self._encoder: nn.Module | None = None

    # -- training -------------------------------------------------------------------------------------------
    def build_networks(self, length: int) -> dict[str, nn.Module]:
        """Freshly initialised ``{"encoder", "decoder"}`` for profiles of ``length`` steps."""
        return {"encoder": Encoder(length, self.hidden, self.latent_dim, self.n_layers),
                "decoder": mlp(self.latent_dim, self.hidden, length, self.n_layers)}

    def train_config(self, n_train: int) -> TrainConfig:
        """The shared-loop settings for ``n_train`` profiles (epochs become steps here)."""
        steps = resolve_train_steps(self.train_steps, self.epochs, n_train, self.batch_size)
        return train_config_from(self.params, steps=steps, weight_decay=0.0, betas=(0.9, 0.999))

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One negative-ELBO step on ``batch`` (a ``Trainer.fit`` step function)."""
        encoder, decoder = trainer.networks["encoder"], trainer.networks["decoder"]
        with trainer.autocast():
            mu, logvar = encoder(batch)
        mu, logvar = mu.float(), logvar.float()
        z = mu + torch.exp(0.5 * logvar) * trainer.randn(*mu.shape)
        with trainer.autocast():
            x_hat = decoder(z).float()
        loss, recon, kl = vae_loss(batch, x_hat, mu, logvar, self.kl_weight)
        raise_if_nonfinite("vae", it, {"loss": loss, "recon": recon, "kl": kl})
        trainer.update(loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train encoder and decoder on ``train.values`` (``[N, T]`` in [-1, 1]) with the shared loop.

        Raises:
            ValueError: unusable training set.
            ModelFitError: the loss or the decoder weights became non-finite.
        """
        self._decoder = None
        self._encoder = None
        x = training_matrix(train, "vae").astype(np.float32)
        cfg = self.train_config(len(x))
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer(self.build_networks(x.shape[1]), None, cfg, ctx,
                          ema=("encoder", "decoder") if self.ema_decay is not None else ())
        self.train_result_ = trainer.fit(x, self.training_step, stop_after=ctx.budget_steps)
        decoder = trainer.sampling_network("decoder")
        encoder = trainer.sampling_network("encoder")
        for name, net in (("decoder", decoder), ("encoder", encoder)):
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                raise ModelFitError(f"vae: the {name} weights are non-finite after training")
        self._decoder = decoder.eval()
        self._encoder = encoder.eval()
        self._amp_dtype = trainer.amp_dtype
        self.length_ = x.shape[1]

    # -- persistence ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The sampling (EMA) encoder and decoder, the profile length and the sampling dtype ({} before fit)."""
        if self._decoder is None:
            return {}
        return {"length_": int(self.length_), "amp_dtype": dtype_name(self._amp_dtype),
                "_encoder": to_safe(self._encoder, "VAE._encoder"), "_decoder": to_safe(self._decoder, "VAE._decoder")}

    def set_state(self, state: dict) -> None:
        """Rebuild encoder and decoder for the saved profile length, then load their weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        nets = build_for_loading(lambda: self.build_networks(int(state["length_"])))
        self._encoder = nets["encoder"].eval().requires_grad_(False)
        self._decoder = nets["decoder"].eval().requires_grad_(False)
        super().set_state(state)

    # -- sampling -------------------------------------------------------------------------------------------
    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 decoder outputs for ``z ~ N(0, I)`` (the ``MODEL_SAMPLE`` stream of ``ctx``)."""
        n = check_sample_request(n, cond, self._decoder is not None, "vae")
        return decode_gaussian_latents(self._decoder, n, self.latent_dim, self.sample_batch, ctx, self._amp_dtype)

    # -- anomaly scores -------------------------------------------------------------------------------------
    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float64 negative-ELBO estimates (see the module docstring): squared reconstruction error of
        the posterior-mean decoding, averaged over valid steps, plus ``kl_weight`` times the posterior's KL.
        Invalid steps are set to 0 before encoding (the value padding holds in training)."""
        if self._encoder is None or self._decoder is None:
            raise RuntimeError("vae: call fit() before anomaly_score()")
        n_prof, length = query.values.shape
        if length != self.length_:
            raise ValueError(f"vae: query profiles have {length} steps, the model was fitted on {self.length_}")
        device = resolve_device(ctx.device)
        encoder, decoder = self._encoder.to(device), self._decoder.to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None
        valid = np.asarray(query.valid, dtype=bool)
        values = np.where(valid, np.asarray(query.values, dtype=np.float32), 0.0).astype(np.float32)
        if n_prof == 0:
            return np.zeros(0)

        def score(start: int, b: int) -> torch.Tensor:
            x = torch.from_numpy(values[start:start + b]).to(device)
            v = torch.from_numpy(valid[start:start + b]).to(device)
            with autocast(device, amp_dtype):
                mu, logvar = encoder(x)
            mu, logvar = mu.float(), logvar.float()
            with autocast(device, amp_dtype):
                x_hat = decoder(mu).float()
            sq = torch.where(v, (x_hat - x) ** 2, torch.zeros_like(x))
            recon = sq.sum(dim=1) / v.sum(dim=1).clamp(min=1)
            return recon + self.kl_weight * kl_to_standard_normal(mu, logvar)

        # the scores are float32 sums, so the float32 batches convert to float64 exactly
        return draw_in_batches(n_prof, self.sample_batch, score).astype(np.float64)
