"""``loadpin``: a LoadPIN-style coarse-to-fine inpainting GAN for missing smart-meter data (imputation baseline).

Input of the generator, per profile (``T`` steps): the profile with its missing steps set to 0, the observed
mask, the valid-step mask (False on month padding) and a channel of standard normal noise, so that different
noise gives different fills and the model can return an ensemble.

Generator (:class:`InpaintGenerator`), two stages:

1. **Coarse** network: a 1-D convolutional encoder-decoder (:class:`EncoderDecoder` with plain convolutions):
   a kernel-5 input convolution with ``b`` channels, two stride-2 stages (``2b``, ``4b`` channels, length
   ``ceil(L / 2)`` each), dilated convolutions at the bottleneck (dilations 2, 4, 8), and two stages of
   linear upsampling to the exact lengths of the encoder with additive skip connections, then a linear
   kernel-3 output convolution: a first fill of every step.
2. **Refinement** network: the same layout built from gated convolutions (:class:`GatedConv1d`,
   ``LeakyReLU(features) * sigmoid(gate)``, which learns where the input is trustworthy), fed with the coarse
   fill pasted into the observed profile (observed steps kept) plus the mask, valid and noise channels; it
   predicts a residual on that composite. With ``attention_heads > 0`` a pre-norm Transformer encoder layer
   runs at the bottleneck (as LoadPIN's refinement has), with the padding masked out of the attention keys.

Per-profile normalisation (``normalize=True``, as LoadPIN): each profile is standardised by the mean and
standard deviation of its *observed* valid steps (the deviation floored at ``norm_floor``; a profile with no
observed step uses 0 and 1) before the network and mapped back after it, so one network serves households of
very different levels. Losses are computed in the task's scaled space.

Discriminator (:class:`PatchDiscriminator`): spectrally normalised stride-2 convolutions on ``[profile,
observed mask, valid mask]`` giving one score per patch (SN-PatchGAN). The fake input is the composite
(observed values kept, refinement output at the missing steps), so only the fill is judged.

Loss: **hinge** adversarial loss (discriminator ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``, generator
``-adv_weight * E[D(fake)]``) plus weighted L1 reconstruction of both stages, ``l1_missing`` on the missing
valid steps and ``l1_observed`` on the observed ones (each a mean over its steps). Padding never counts.

Training (shared loop, :mod:`bench.train`): each step draws a fresh missing pattern per profile
(:func:`draw_missing`: with probability 1/2 independent random points, else 1 to ``max_blocks`` contiguous
blocks; the missing fraction is uniform in ``[min_missing, max_missing]`` of the valid span, only valid steps
are ever missing and at least one valid step stays observed), one discriminator update and one generator
update. Two optimisers, ``"disc"`` and ``"gen"``, AdamW with weight decay 0 (Adam), ``betas=(0.5, 0.9)``. The
fill comes from the EMA generator. A non-finite loss raises :class:`bench.errors.ModelFitError`.

``impute`` returns ``[S, N, T]``: sample ``s`` uses its own noise (a CPU generator seeded from the run's
imputation stream), the observed values are pasted back exactly and padding is 0.

Profiles:

* ``paper`` - LoadPIN's public description (gated convolutions, refinement with a Transformer layer,
  spectrally normalised discriminator, per-sample normalisation) with sizes chosen here where it gives none:
  ``base=64`` (64/128/256 channels), one 4-head attention layer, discriminator width 64, Adam(1e-4, betas
  (0.5, 0.9)), batch 64, 20 000 steps, EMA 0.999, ``adv_weight=0.1``, ``l1_missing=1``, ``l1_observed=0.5``.
  LoadPIN reconstructs with an RMSE loss and adds feature matching; here L1 is used and feature matching is
  left out.
* ``quick`` - ``base=16``, no attention, discriminator width 16, 400 steps of batch 64 at lr 1e-3, EMA 0.99
  (0.22 M generator and 0.03 M discriminator parameters; the paper profile has 4.0 M and 0.53 M). Measured
  for 700 training profiles at ``T = 96``: a 150 s fit on one thread of a 2-core machine shared with other
  jobs (load average 7), so roughly a minute on two free cores.
* ``test`` - the contract test's size: ``base=8``, discriminator width 8, 100 steps of batch 32 (a fit on 140
  profiles of 48 steps takes seconds on one thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from baselines.nn.blocks import build_for_loading, check_positive_int, dtype_from_name, dtype_name, raise_if_nonfinite
from baselines.nn.sampling import draw_in_batches
from bench.api import Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery
from bench.train import Trainer, TrainConfig, train_config_from, autocast, resolve_device, seed_everything

BOTTLENECK_DILATIONS = (2, 4, 8)


# -- building blocks ------------------------------------------------------------------------------------------
class ConvAct1d(nn.Module):
    """``Conv1d`` ('same' length for stride 1, ``ceil(L / 2)`` for stride 2) followed by LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride, dilation * (kernel - 1) // 2, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.2)


class GatedConv1d(nn.Module):
    """Gated convolution: ``LeakyReLU(conv_f(x)) * sigmoid(conv_g(x))`` (one convolution with ``2 c_out`` outputs)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, 2 * c_out, kernel, stride, dilation * (kernel - 1) // 2, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.leaky_relu(features, 0.2) * torch.sigmoid(gate)


class EncoderDecoder(nn.Module):
    """``[B, c_in, T] -> [B, T]``: two stride-2 stages, dilated bottleneck (+ optional attention), two up stages.

    ``gated`` selects :class:`GatedConv1d` instead of :class:`ConvAct1d`. Upsampling interpolates to the exact
    encoder lengths, so any ``T`` works without cropping; the skips add encoder features of the same scale.
    """

    def __init__(self, c_in: int, base: int, gated: bool, attention_heads: int = 0) -> None:
        super().__init__()
        block = GatedConv1d if gated else ConvAct1d
        b = base
        self.inp = block(c_in, b, 5)
        self.down1 = nn.Sequential(block(b, 2 * b, 3, stride=2), block(2 * b, 2 * b, 3))
        self.down2 = nn.Sequential(block(2 * b, 4 * b, 3, stride=2), block(4 * b, 4 * b, 3))
        self.middle = nn.Sequential(*[block(4 * b, 4 * b, 3, dilation=d) for d in BOTTLENECK_DILATIONS])
        self.attention = None
        if attention_heads:
            if (4 * b) % attention_heads:
                raise ValueError(f"4 * base = {4 * b} must be divisible by attention_heads={attention_heads}")
            self.attention = nn.TransformerEncoderLayer(4 * b, attention_heads, 8 * b, dropout=0.0,
                                                        batch_first=True, norm_first=True)
        self.up1 = nn.Sequential(block(4 * b, 2 * b, 3), block(2 * b, 2 * b, 3))
        self.up2 = nn.Sequential(block(2 * b, b, 3), block(b, b, 3))
        self.out = nn.Conv1d(b, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h0 = self.inp(x)
        h1 = self.down1(h0)
        h2 = self.down2(h1)
        h = self.middle(h2)
        if self.attention is not None:
            # a bottleneck position is padding when all the steps it summarises are padding
            keep = F.max_pool1d(valid.float().unsqueeze(1), 4, 4, ceil_mode=True).squeeze(1)[:, : h.shape[-1]] > 0
            h = self.attention(h.transpose(1, 2), src_key_padding_mask=~keep).transpose(1, 2)
        h = self.up1(F.interpolate(h, size=h1.shape[-1], mode="linear", align_corners=False)) + h1
        h = self.up2(F.interpolate(h, size=h0.shape[-1], mode="linear", align_corners=False)) + h0
        return self.out(h).squeeze(1)


class InpaintGenerator(nn.Module):
    """Coarse-to-fine inpainting generator in the normalised space; see the module docstring.

    ``forward(x, observed, valid, noise) -> (coarse, refined)``, all ``[B, T]``; ``x`` may hold anything at
    unobserved steps (it is masked here).
    """

    IN_CHANNELS = 4

    def __init__(self, base: int = 64, attention_heads: int = 0) -> None:
        super().__init__()
        self.coarse = EncoderDecoder(self.IN_CHANNELS, base, gated=False)
        self.refine = EncoderDecoder(self.IN_CHANNELS, base, gated=True, attention_heads=attention_heads)

    def forward(self, x: torch.Tensor, observed: torch.Tensor, valid: torch.Tensor,
                noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        obs, val = observed.to(x.dtype), valid.to(x.dtype)
        x_obs, z = x * obs, noise * val
        coarse = self.coarse(torch.stack([x_obs, obs, val, z], dim=1), valid) * val
        composite = x_obs + (1.0 - obs) * coarse
        refined = (composite + self.refine(torch.stack([composite, obs, val, z], dim=1), valid)) * val
        return coarse, refined


class PatchDiscriminator(nn.Module):
    """``[B, c_in, T] -> (scores [B, L'], features)``: spectrally normalised stride-2 convs (SN-PatchGAN).

    ``n_layers`` kernel-5 stride-2 convolutions with ``b, 2b, 4b, 4b, ...`` channels and LeakyReLU(0.2), then a
    kernel-3 convolution to one score per patch. ``features`` are the activations of every hidden layer (for
    feature matching). No normalisation layers, so each profile is judged on its own.
    """

    def __init__(self, c_in: int, base: int = 64, n_layers: int = 4, spectral_norm: bool = True) -> None:
        super().__init__()
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        channels = [c_in] + [base * min(2 ** k, 4) for k in range(n_layers)]
        self.layers = nn.ModuleList(wrap(nn.Conv1d(c_i, c_o, 5, stride=2, padding=2))
                                    for c_i, c_o in zip(channels[:-1], channels[1:]))
        self.out = wrap(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        h = x
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.out(h).squeeze(1), features


def hinge_losses(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``|pred - target|`` over the steps where ``weight`` is 1 (0 when there are none)."""
    w = weight.to(pred.dtype)
    return (torch.abs(pred - target) * w).sum() / w.sum().clamp_min(1.0)


# -- masks and normalisation ---------------------------------------------------------------------------------
def draw_missing(valid: torch.Tensor, min_missing: float, max_missing: float, generator: torch.Generator,
                 max_blocks: int = 3) -> torch.Tensor:
    """A random missing mask ``[B, T]`` (True = missing), only on valid steps.

    Per profile: a missing fraction ``r ~ U[min_missing, max_missing]``; with probability 1/2 every valid
    step is missing independently with probability ``r``, else ``k ~ U{1..max_blocks}`` contiguous blocks
    of ``round(r * span / k)`` steps (``span`` = up to the last valid step) start at uniform positions (overlaps
    allowed). The first valid step is kept observed when everything else would be missing. Draws happen on
    the CPU with ``generator`` so a seed gives the same masks on every device.
    """
    if not 0.0 <= min_missing <= max_missing < 1.0:
        raise ValueError(f"need 0 <= min_missing <= max_missing < 1, got {min_missing}, {max_missing}")
    valid_cpu = valid.detach().bool().cpu()
    b, t = valid_cpu.shape
    steps = torch.arange(t)
    span = (valid_cpu * (steps + 1)).amax(dim=1).clamp_min(1)  # last valid index + 1
    frac = min_missing + (max_missing - min_missing) * torch.rand(b, generator=generator)
    use_points = torch.rand(b, generator=generator) < 0.5
    points = torch.rand(b, t, generator=generator) < frac[:, None]
    n_blocks = torch.randint(1, max_blocks + 1, (b,), generator=generator)
    length = torch.clamp(torch.round(frac * span / n_blocks), min=1).long()
    starts = torch.floor(torch.rand(b, max_blocks, generator=generator)
                         * (span - length + 1).clamp_min(1)[:, None]).long()
    blocks = torch.zeros(b, t, dtype=torch.bool)
    for j in range(max_blocks):
        inside = (steps >= starts[:, j, None]) & (steps < starts[:, j, None] + length[:, None])
        blocks |= inside & (j < n_blocks)[:, None]
    missing = torch.where(use_points[:, None], points, blocks) & valid_cpu
    none_left = ~(valid_cpu & ~missing).any(dim=1)
    if none_left.any():
        first = valid_cpu.float().argmax(dim=1)
        missing[none_left, first[none_left]] = False
    return missing.to(valid.device)


def observed_stats(x: torch.Tensor, observed: torch.Tensor, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-profile mean and standard deviation (floored at ``floor``) of the observed steps, ``[B, 1]`` each.

    A profile with no observed step gets mean 0 and deviation 1 (no information to normalise with).
    """
    w = observed.to(x.dtype)
    count = w.sum(dim=1, keepdim=True)
    mean = (x * w).sum(dim=1, keepdim=True) / count.clamp_min(1.0)
    var = (((x - mean) * w) ** 2).sum(dim=1, keepdim=True) / count.clamp_min(1.0)
    std = torch.sqrt(var).clamp_min(floor)
    empty = count == 0
    return torch.where(empty, torch.zeros_like(mean), mean), torch.where(empty, torch.ones_like(std), std)


def profile_matrices(train: ProfileSet, model: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values [N, T] float32 with 0 off the mask, valid [N, T] bool)`` of a usable training set.

    Raises:
        ValueError: an empty set, a profile without valid steps, or non-finite valid values.
    """
    values = np.asarray(train.values, dtype=np.float32)
    valid = np.asarray(train.mask, dtype=bool)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{model}: training set {train.name!r} is empty (shape {values.shape})")
    if not valid.any(axis=1).all():
        raise ValueError(f"{model}: training set {train.name!r} has profiles without any valid step")
    if not np.isfinite(values[valid]).all():
        raise ValueError(f"{model}: training set {train.name!r} holds non-finite values")
    return np.where(valid, values, 0.0).astype(np.float32), valid


# -- hyper-parameters shared with profilesr ----------------------------------------------------------------------
def check_gan_training(params: Params) -> None:
    """Value checks of the training fields a GAN baseline's parameters share (``train_steps``, ``batch_size``,
    ``sample_batch``, ``lr``, ``betas``, ``ema_decay``, ``grad_clip``, ``checkpoint_every``).

    Raises:
        ValueError: a value out of range, named in the message.
    """
    for name in ("train_steps", "batch_size", "sample_batch"):
        check_positive_int(name, getattr(params, name))
    if not params.lr > 0:
        raise ValueError(f"lr must be positive, got {params.lr!r}")
    if len(params.betas) != 2 or not all(0.0 <= b < 1.0 for b in params.betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {params.betas!r}")
    if params.ema_decay is not None and not 0.0 <= params.ema_decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {params.ema_decay!r}")
    if params.grad_clip is not None and not params.grad_clip >= 0:
        raise ValueError(f"grad_clip must be >= 0 or None (0 and None: no clipping), got {params.grad_clip!r}")
    if params.checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be >= 0 (0: no checkpoints), got {params.checkpoint_every!r}")


def gan_train_config(params: Params) -> TrainConfig:
    """The shared loop's settings for a GAN baseline's parameters: Adam (weight decay 0) with the given
    ``betas``, the EMA of the generator (decay 0 when ``ema_decay`` is None) and the checkpoint interval."""
    return train_config_from(params, weight_decay=0.0)


# -- the model ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadPINParams(Params):
    """Hyper-parameters of :class:`LoadPIN` (defaults: the ``quick`` profile of the module docstring).

    Attributes:
        base: channels of the first encoder stage (``b, 2b, 4b``).
        attention_heads: heads of the refinement's bottleneck attention layer (0: none).
        disc_base: channels of the discriminator's first layer.
        min_missing, max_missing: range of the missing fraction of the training masks.
        max_blocks: contiguous missing blocks per training mask at most.
        normalize: standardise each profile by its observed steps around the generator.
        norm_floor: lower bound of that standard deviation.
        adv_weight, l1_missing, l1_observed: loss weights.
        train_steps, batch_size, lr, betas, ema_decay, grad_clip, amp, checkpoint_every: the shared loop's
            settings (:func:`gan_train_config`).
        sample_batch: profiles per forward pass when imputing.
    """

    base: int = 16
    attention_heads: int = 0
    disc_base: int = 16
    min_missing: float = 0.1
    max_missing: float = 0.5
    max_blocks: int = 3
    normalize: bool = True
    norm_floor: float = 0.05
    adv_weight: float = 0.1
    l1_missing: float = 1.0
    l1_observed: float = 0.5
    train_steps: int = 400
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    ema_decay: float | None = 0.99
    grad_clip: float | None = None
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 500
    sample_batch: int = 1024

    def __post_init__(self) -> None:
        for name in ("base", "disc_base", "max_blocks"):
            check_positive_int(name, getattr(self, name))
        if self.attention_heads < 0:
            raise ValueError(f"attention_heads must be an integer >= 0, got {self.attention_heads!r}")
        if self.attention_heads and (4 * self.base) % self.attention_heads:
            raise ValueError(f"4 * base = {4 * self.base} must be divisible by "
                             f"attention_heads={self.attention_heads}")
        if not 0.0 <= self.min_missing <= self.max_missing < 1.0:
            raise ValueError(f"need 0 <= min_missing <= max_missing < 1, got {self.min_missing!r}, "
                             f"{self.max_missing!r}")
        for name in ("adv_weight", "l1_missing", "l1_observed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not self.norm_floor > 0:
            raise ValueError(f"norm_floor must be positive, got {self.norm_floor!r}")
        check_gan_training(self)


@register_model("loadpin")
class LoadPIN(Model, Imputer):
    """LoadPIN-style coarse-to-fine inpainting GAN (gated-conv refinement, SN-PatchGAN hinge loss)."""

    Params = LoadPINParams
    profiles = {
        "test": {"base": 8, "disc_base": 8, "train_steps": 100, "batch_size": 32},
        "paper": {"base": 64, "attention_heads": 4, "disc_base": 64, "train_steps": 20_000, "lr": 1e-4,
                  "ema_decay": 0.999, "checkpoint_every": 2000},
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._generator: nn.Module | None = None
        self._amp_dtype: torch.dtype | None = None
        self.length_: int | None = None

    @property
    def train_config(self) -> TrainConfig:
        """The shared loop's settings (:func:`gan_train_config`)."""
        return gan_train_config(self.params)

    def get_state(self) -> dict:
        """The sampling generator's weights, the training length and the autocast dtype of the fit (the
        training report and the discriminator are not kept)."""
        generator = None if self._generator is None else to_safe(self._generator, "LoadPIN.generator")
        return {"generator": generator, "length_": self.length_, "amp_dtype": dtype_name(self._amp_dtype)}

    def set_state(self, state: dict) -> None:
        """Build the generator for the saved parameters, then load its weights."""
        self.length_ = None if state.get("length_") is None else int(state["length_"])
        self._amp_dtype = dtype_from_name(state.get("amp_dtype"))
        self._generator = None
        if state.get("generator") is not None:
            generator = build_for_loading(lambda: InpaintGenerator(self.base, self.attention_heads))
            self._generator = from_safe(state["generator"], generator).eval().requires_grad_(False)

    # -- shared by training and imputation --------------------------------------------------------------------
    def _fill(self, generator: nn.Module, x: torch.Tensor, observed: torch.Tensor, valid: torch.Tensor,
              noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(coarse, refined)`` in the task's scaled space (normalising around the generator if asked)."""
        if self.normalize:
            mean, std = observed_stats(x, observed, self.norm_floor)
            coarse, refined = generator((x - mean) / std, observed, valid, noise)
            val = valid.to(x.dtype)
            return (coarse * std + mean) * val, (refined * std + mean) * val
        return generator(x, observed, valid, noise)

    def build_networks(self) -> dict[str, nn.Module]:
        """Freshly initialised ``{"generator", "disc"}``."""
        return {"generator": InpaintGenerator(self.base, self.attention_heads),
                "disc": PatchDiscriminator(3, self.disc_base)}

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One discriminator and one generator update on fresh random masks (a ``Trainer.fit`` step)."""
        x, valid = batch[:, 0], batch[:, 1] > 0.5
        missing = draw_missing(valid, self.min_missing, self.max_missing, trainer.generator, self.max_blocks)
        observed = valid & ~missing
        generator, disc = trainer.model("generator"), trainer.model("disc")
        obs_f, val_f = observed.float(), valid.float()
        noise = trainer.randn(*x.shape)

        def judge(profile: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            return disc(torch.stack([profile, obs_f, val_f], dim=1))

        with torch.no_grad(), trainer.autocast():
            _, refined = self._fill(generator, x, observed, valid, noise)
        fake = (x * obs_f + refined.float() * (1.0 - obs_f)) * val_f
        with trainer.autocast():
            d_loss = hinge_losses(judge(x)[0].float(), judge(fake)[0].float())
        trainer.update(d_loss, "disc")

        disc_module = trainer.networks["disc"]
        disc_module.requires_grad_(False)  # the generator update needs no discriminator gradients
        try:
            with trainer.autocast():
                coarse, refined = self._fill(generator, x, observed, valid, noise)
                coarse, refined = coarse.float(), refined.float()
                fake = (x * obs_f + refined * (1.0 - obs_f)) * val_f
                adv = -judge(fake)[0].float().mean()
        finally:
            disc_module.requires_grad_(True)
        rec = sum(self.l1_missing * masked_l1(out, x, missing) + self.l1_observed * masked_l1(out, x, observed)
                  for out in (coarse, refined))
        g_loss = self.adv_weight * adv + rec
        raise_if_nonfinite("loadpin", it, {"disc": d_loss, "generator": g_loss})
        trainer.update(g_loss, "gen")
        return {"disc": d_loss.detach(), "adv": adv.detach(), "l1": rec.detach()}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train on ``train`` (its mask marks the valid steps) with randomly drawn missing patterns.

        Raises:
            ValueError: unusable training set.
            ModelFitError: a loss or the generator weights became non-finite.
        """
        self._generator = None
        values, valid = profile_matrices(train, "loadpin")
        data = np.stack([values, valid.astype(np.float32)], axis=1)  # [N, 2, T]: the loop draws rows of both
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer(self.build_networks(), {"gen": ["generator"], "disc": ["disc"]}, self.train_config, ctx,
                          ema=("generator",) if self.ema_decay is not None else ())
        self.train_result_ = trainer.fit(data, self.training_step, stop_after=ctx.budget_steps)
        generator = trainer.sampling_network("generator")
        if not all(torch.isfinite(p).all() for p in generator.parameters()):
            raise ModelFitError("loadpin: the generator weights are non-finite after training")
        self._generator = generator.eval()
        self._amp_dtype = trainer.amp_dtype
        self.length_ = values.shape[1]

    # -- imputation ---------------------------------------------------------------------------------------------
    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[n_samples, N, T]`` float32 fills: observed values kept exactly, padding 0, new noise per sample.

        Raises:
            RuntimeError: not fitted.
            ValueError: ``n_samples`` not a positive integer, or profiles of another length than trained on.
        """
        if self._generator is None:
            raise RuntimeError("loadpin: call fit() before impute()")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"loadpin: n_samples must be a positive integer, got {n_samples!r}")
        n, t = query.values.shape
        if t != self.length_:
            raise ValueError(f"loadpin: trained on profiles of {self.length_} steps, the query has {t}")
        observed, valid = np.asarray(query.observed, bool), np.asarray(query.valid, bool)
        x = np.where(observed, np.nan_to_num(query.values, nan=0.0), 0.0).astype(np.float32)
        device = resolve_device(ctx.device)
        generator = self._generator.to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None
        rng = ctx.torch_generator(Stream.MODEL_IMPUTE)
        # every sample of every profile in one flat batch [S * N, T], cut into chunks of sample_batch
        rows = np.tile(np.arange(n), int(n_samples))

        def draw(start: int, size: int) -> torch.Tensor:
            idx = rows[start:start + size]
            xb = torch.as_tensor(x[idx], device=device)
            ob = torch.as_tensor(observed[idx], device=device)
            vb = torch.as_tensor(valid[idx], device=device)
            noise = torch.randn(size, t, generator=rng).to(device)
            with autocast(device, amp_dtype):
                return self._fill(generator, xb, ob, vb, noise)[1]

        out = draw_in_batches(len(rows), self.sample_batch, draw).reshape(int(n_samples), n, t)
        out = np.where(observed[None], x[None], out)  # exact observed values, whatever the network did there
        return np.where(valid[None], out, 0.0).astype(np.float32)


def n_parameters(module: nn.Module) -> int:
    """The number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = ["LoadPIN", "LoadPINParams", "InpaintGenerator", "EncoderDecoder", "GatedConv1d", "PatchDiscriminator",
           "draw_missing", "observed_stats", "hinge_losses", "masked_l1", "profile_matrices", "n_parameters",
           "check_gan_training", "gan_train_config"]
