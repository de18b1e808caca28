"""``cgan``: a conditional Wasserstein GAN with gradient penalty, the SmartMeterFM paper's GAN baseline.

Conditions: the labels of :mod:`baselines.conditional_vae` (month, category, weekday by default, each with a
null label for missing or unseen values; :class:`baselines.conditional_vae.ConditionCodec`), embedded by a
:class:`baselines.conditional_vae.LabelEmbedding` (one learned vector per attribute, summed). Generator and
critic each own their embedding, as in the public code, so the two players do not pull on shared weights.

Generator (:class:`ConditionalGeneratorNet`): ``wgan-gp``'s convolutional generator
(:class:`baselines.wgan.Generator`) fed ``[z, c]``, the noise ``z ~ N(0, I_latent_dim)`` concatenated with the
label embedding ``c`` of ``emb_dim`` values; ``tanh`` output in (-1, 1).

Critic (:class:`ProjectionCritic`, a projection discriminator, Miyato and Koyama 2018): ``wgan-gp``'s critic
(:class:`baselines.wgan.Critic`) gives the unconditional score from its last feature map ``h [8b, L]``; the
condition adds ``<e(y), sum_l h[:, l]>``, the inner product of a label embedding ``e(y)`` of ``8b`` values with
the length-summed features. ``e`` starts at zero, so the critic starts as the unconditional one.

Loss (Gulrajani et al. 2017, the public code's ``"wgan"`` paradigm): critic ``E[D(G(z, y), y)] - E[D(x, y)]
+ lambda E[(||grad_x D(x_hat, y)||_2 - 1)^2]`` with interpolates ``x_hat = a x + (1 - a) G(z, y)`` between a
real profile and a fake one generated under the real profile's own labels, ``lambda = gp_weight = 10``
(:func:`baselines.wgan.critic_loss`, :func:`baselines.wgan.gradient_penalty`, on the critic with its labels
bound); generator ``-E[D(G(z, y), y)]``. Monthly profiles are padded to 31 days: fakes are set to 0 on the
real profile's padding (its ``mask``) before the critic sees them, so only valid steps are compared, and
samples are 0 beyond ``days * steps_per_day`` of the requested month. Labels are dropped to null with
probability ``label_dropout`` per attribute, identically for the fake and the real profile it is paired
with, so that an unknown category still generates sensibly.

Training (shared loop, :mod:`bench.train`, ``wgan-gp``'s step structure): one loop step is ``n_critic``
critic updates, each on its own real batch (the loop's batch, then batches drawn with the loop's seeded,
checkpointed generator) with fresh noise, label dropout and interpolation weights, then one generator update
under the last batch's labels; two AdamW optimisers with weight decay 0, the critic frozen during the
generator update; EMA of the generator for sampling. A non-finite loss raises
:class:`bench.errors.ModelFitError` naming the step.

Sampling: ``z`` from the ``MODEL_SAMPLE`` stream (drawn on the CPU), decoded by the EMA generator under the
requested labels; ``cond=None`` takes each row's labels and month length from a training profile drawn
uniformly (``MODEL_SAMPLE_ROWS``). Weights are initialised from ``MODEL_INIT``.

Profiles:

* ``paper`` - the SmartMeterFM code's conditional GAN. Stated there: latent 128, label embedding width equal to
  the latent width (128), channels 64-512 (``base = 64``), two critic updates per generator update
  (``d_steps_per_g = 2``), Adam with lr 2e-4 for both players and betas (0.0, 0.9), penalty weight 10 (its
  ``"wgan"`` paradigm), no gradient clipping, no EMA (samples come from the trained generator). Assumed: the
  code's default paradigm is the hinge loss and its networks are AdaLN-modulated transposed convolutions
  with a minibatch-deviation critic; this baseline is the WGAN-GP with ``wgan-gp``'s networks. The
  repository holds no GAN training config, so its VAE config's batch 64 and 50 000 batches are used: 25 000
  loop steps of two critic updates. Label dropout 0.1 is assumed (the VAE script's embedder dropout).
* ``quick`` - ``wgan-gp``'s quick networks (latent 100, ``base = 16``), embedding 32, ``n_critic = 5``, batch
  64, lr 1e-3 with betas (0.5, 0.9), 300 loop steps (1500 critic updates), EMA 0.99 of the generator.
  Measured on a shared two-core machine (two torch threads) for 696 daily profiles of 96 steps in 24
  month-category groups: about 60 s per fit; 720 samples take 0.1 s.
* ``test`` - ``wgan-gp``'s test run (40 loop steps of batch 16 at lr 2e-3, EMA 0.95) at ``base = 8`` with an
  embedding of 8: about two seconds for the contract test's 140 profiles of 48 steps on one core. So short
  a run learns the overall daily shape (it beats the trivial baseline on every seed tried) but not yet the
  labels; on a toy whose month sets the level and whose category sets the peak height, 200 loop steps of
  batch 32 learn both.

``save`` / ``load`` keep the sampling (EMA) generator, the condition codec (profile layout, training
categories, the training labels and month lengths unconditional draws use) and the sampling dtype; the
critic serves training only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from baselines import wgan
from baselines.conditional_vae import (CONDITION_ATTRIBUTES, ConditionCodec, LabelEmbedding, check_conditioning,
                                       check_sample_size, check_training_set, decode_labelled, pack_training_rows,
                                       standard_normal_latents, unpack_training_rows)
from baselines.nn.blocks import build_for_loading, dtype_from_name, dtype_name
from baselines.smartmeterfm import drop_labels
from bench.api import ConditionalGenerator, Model
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.train import Trainer, resolve_device, seed_everything


class ConditionalGeneratorNet(nn.Module):
    """``(z [B, latent_dim], labels [B, A]) -> x [B, T]``: ``wgan-gp``'s generator on ``[z, embedding(labels)]``."""

    def __init__(self, length: int, vocab: tuple[int, ...], latent_dim: int, emb_dim: int, base: int) -> None:
        super().__init__()
        self.labels = LabelEmbedding(vocab, emb_dim)
        self.body = wgan.Generator(length, latent_dim + emb_dim, base)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, self.labels(labels)], dim=-1))


class ProjectionCritic(nn.Module):
    """``(x [B, T], labels [B, A]) -> score [B]``: ``wgan-gp``'s critic plus a label projection of its features."""

    def __init__(self, length: int, vocab: tuple[int, ...], base: int, spectral_norm: bool = False) -> None:
        super().__init__()
        self.body = wgan.Critic(length, base, spectral_norm)
        # the critic's last feature map has 8 * base channels (baselines.wgan.Critic)
        self.labels = LabelEmbedding(vocab, 8 * base, zero_init=True)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.body.length or labels.shape[0] != x.shape[0]:
            raise ValueError(f"expected x [B, {self.body.length}] and labels [B, A], got {tuple(x.shape)} and "
                             f"{tuple(labels.shape)}")
        features = self.body.net[:-1](x.unsqueeze(1))  # every layer but the final, length-spanning one
        score = self.body.net[-1](features).reshape(x.shape[0])
        return score + (self.labels(labels) * features.sum(dim=-1)).sum(dim=-1)


def bind_labels(critic: ProjectionCritic, labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> critic(x, labels)`` for :func:`baselines.wgan.critic_loss`, which scores real and fake profiles
    stacked (``2B`` rows) and the penalty's interpolates (``B`` rows): ``labels [B, A]`` are repeated to the
    rows given, which is right because every fake is generated under its real partner's labels."""

    def score(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % labels.shape[0]:
            raise ValueError(f"{x.shape[0]} profiles do not repeat {labels.shape[0]} labels")
        return critic(x, labels.repeat(x.shape[0] // labels.shape[0], 1))

    return score


@dataclass(frozen=True)
class CGANParams(wgan.WGANGPParams):
    """``cgan``'s hyper-parameters: ``wgan-gp``'s plus the label embedding width, the label dropout and the
    conditioning attributes."""

    train_steps: int | None = 300
    emb_dim: int = 32
    label_dropout: float = 0.1
    attributes: tuple[str, ...] = CONDITION_ATTRIBUTES

    def __post_init__(self) -> None:
        super().__post_init__()
        check_conditioning(self)


@register_model("cgan")
class ConditionalGAN(wgan.WGANGP, ConditionalGenerator):
    """Conditional WGAN-GP: label embeddings into the generator, a projection critic (SmartMeterFM baseline)."""

    name = "cgan"

    Params = CGANParams
    profiles = {
        "test": {"base": 8, "train_steps": 40, "batch_size": 16, "lr": 2e-3, "ema_decay": 0.95, "emb_dim": 8},
        "paper": {"latent_dim": 128, "emb_dim": 128, "base": 64, "n_critic": 2, "train_steps": 25_000,
                  "batch_size": 64, "lr": 2e-4, "betas": (0.0, 0.9), "ema_decay": None, "checkpoint_every": 2500},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._codec: ConditionCodec | None = None

    # -- training -------------------------------------------------------------------------------------------
    def build_networks(self, length: int) -> dict[str, nn.Module]:
        """Freshly initialised ``{"generator", "critic"}`` for ``length`` steps and the codec's labels."""
        vocab = self._codec.vocab
        return {"generator": ConditionalGeneratorNet(length, vocab, self.latent_dim, self.emb_dim, self.base),
                "critic": ProjectionCritic(length, vocab, self.base, self.spectral_norm)}

    def critic_round(self, rows: torch.Tensor, trainer: Trainer, generator: nn.Module, critic: nn.Module):
        """Unpack packed rows into profiles, valid masks and labels (labels dropped at ``label_dropout``), and
        bind the labels to both networks; generated profiles are zeroed on the real profiles' padding."""
        real, valid, labels = unpack_training_rows(rows, self._codec.length)
        labels = drop_labels(labels, self._codec.vocab, self.label_dropout, trainer.rand(*labels.shape))

        def fake_from(z: torch.Tensor) -> torch.Tensor:
            fake = generator(z, labels).float()
            return torch.where(valid, fake, torch.zeros_like(fake))

        return real, fake_from, bind_labels(critic, labels)

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train generator and critic on ``train`` (values in [-1, 1], ``mask`` = valid steps, meta = labels).

        Raises:
            ValueError: unusable training set.
            ModelFitError: a loss or the generator weights became non-finite.
        """
        self._generator = None
        values, valid = check_training_set(train, self.name)
        self._codec = ConditionCodec.from_training(train, self.attributes)
        packed = pack_training_rows(values, valid, self._codec.train_labels)
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer(self.build_networks(self._codec.length), {"gen": ["generator"], "critic": ["critic"]},
                          self.train_config(len(values)), ctx,
                          ema=("generator",) if self.ema_decay is not None else ())
        self._data = torch.as_tensor(packed)
        try:
            self.train_result_ = trainer.fit(packed, self.training_step, stop_after=ctx.budget_steps)
        finally:
            self._data = None
        generator = trainer.sampling_network("generator")
        if not all(torch.isfinite(p).all() for p in generator.parameters()):
            raise ModelFitError(f"{self.name}: the generator weights are non-finite after training")
        self._generator = generator.eval()
        self._amp_dtype = trainer.amp_dtype
        self.length_ = self._codec.length

    # -- persistence ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The sampling (EMA) generator, the condition codec and the sampling dtype ({} before fit)."""
        if self._generator is None:
            return {}
        return {"codec": to_safe(self._codec.state(), "ConditionalGAN.codec"), "amp_dtype": dtype_name(self._amp_dtype),
                "_generator": to_safe(self._generator, "ConditionalGAN._generator")}

    def set_state(self, state: dict) -> None:
        """Rebuild the generator for the saved codec, then load its weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        self._codec = ConditionCodec.from_state(state.pop("codec"))
        self.length_ = self._codec.length
        nets = build_for_loading(lambda: self.build_networks(self._codec.length))
        self._generator = nets["generator"].eval().requires_grad_(False)
        # wgan-gp's set_state rebuilds from a saved length first; the codec has done that here
        Model.set_state(self, state)

    # -- sampling -------------------------------------------------------------------------------------------
    def sample(self, n: int, cond: pd.DataFrame | None, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32: row ``i`` generated under condition row ``i`` of ``cond`` (``cond=None``: under the
        labels of a training profile drawn uniformly), 0 beyond the month's valid steps."""
        n = check_sample_size(n, self._generator is not None, self.name)
        labels, valid = self._codec.sampling_conditions(n, cond, ctx, self.name)
        device = resolve_device(ctx.device)
        generator = self._generator.to(device)
        return decode_labelled(generator, standard_normal_latents(n, self.latent_dim, ctx), labels, valid,
                               self.sample_batch, device, self._amp_dtype)
