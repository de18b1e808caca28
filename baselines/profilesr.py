"""``profilesr``: a ProfileSR-GAN-style super-resolution GAN for load profiles (super-resolution baseline).

For a factor ``f``, the low-resolution profile ``low [T / f]`` (block means) is hold-upsampled to ``T`` steps
(each value repeated ``f`` times) and the generator refines it.

Generator (:class:`SRGenerator`, SRGAN layout in 1-D): input channels ``[upsampled low, noise, valid]``, a
kernel-9 convolution with PReLU, ``n_res`` residual blocks (``conv3 -> PReLU -> conv3`` plus skip, no batch
normalisation so that a profile's output never depends on the rest of its batch), a convolution with a long
skip from the head, and a tail ``conv3 -> PReLU -> conv9`` giving a residual added to the upsampled input.
ProfileSR-GAN upsamples inside the network with 1-D pixel shuffle; here the network works at the target
length on the upsampled profile, so one architecture serves every factor.

Discriminator: :class:`baselines.loadpin.PatchDiscriminator` (spectrally normalised stride-2 convolutions,
one score per patch) on ``[profile, upsampled low, valid]``, i.e. conditioned on the low-resolution input.

Loss (generator): ``adv_weight`` x non-saturating logistic adversarial loss (``softplus(-D(fake))``, as SRGAN)
``+ content_weight`` x L1 content loss ``+ feature_weight`` x feature matching (L1 between the
discriminator's hidden activations on the real and the generated profile of the same low-resolution input)
``+ consistency_weight`` x mean-consistency loss (squared error between the block means of the *raw* output
and ``low``). Content, adversarial and feature terms see the mean-corrected output (below), which is what
the model returns. Discriminator: ``softplus(-D(real)) + softplus(D(fake))``. Padding steps never count.

Exact mean correction (:func:`mean_correct`): each block's valid steps are shifted by one constant so their
mean equals the low-resolution value; padding is set to 0, and a block without valid steps stays 0. For a
block that is fully valid this is exactly "the block mean equals ``low``".

Training (shared loop): ``fit`` trains one generator/discriminator pair per factor in ``factors`` (factors
that do not divide ``T`` are skipped; none left is an error), each with its own shared-loop run of
``train_steps`` steps (one discriminator and one generator update per step, Adam with ``betas=(0.5, 0.9)``,
EMA of the generator) and its own checkpoint sub-folder ``x{factor}`` of ``ctx.checkpoint_dir``;
``ctx.budget_steps`` applies to each factor's run. The low-resolution inputs in training are the block means
of the training profiles over their valid steps. ``super_resolve`` uses the query's factor and raises
``ValueError`` for a factor that was not trained.

Profiles:

* ``paper`` - ProfileSR-GAN's weights (adversarial 0.04, content 1, feature matching 0.5) and optimiser
  (Adam, lr 1e-4); sizes chosen here where the public description gives none: 64 channels, 8 residual blocks,
  discriminator width 64, batch 64, 20 000 steps per factor, EMA 0.999, consistency weight 1. The
  polishing stage with its outline (max-pool) loss and the optional weather channels are left out.
* ``quick`` - 32 channels, 3 residual blocks, discriminator width 16, 300 steps per factor at lr 1e-3,
  EMA 0.99 (26 k generator parameters; 225 k in the paper profile). Measured for 700 training profiles at
  ``T = 96``: 130 s for both factors on one thread of a 2-core machine shared with other jobs (load
  average 7), so roughly a minute on two free cores.
* ``test`` - the contract test's size: 8 channels, 1 residual block, discriminator width 8, 100 steps of
  batch 32 per factor (a fit on 140 profiles of 48 steps takes seconds on one thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.loadpin import PatchDiscriminator, check_gan_training, gan_train_config, profile_matrices
from baselines.nn.blocks import build_for_loading, check_positive_int, dtype_from_name, dtype_name, raise_if_nonfinite
from baselines.nn.sampling import draw_in_batches
from bench.api import Model, Params, SuperResolver
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import UnsafeFileError, from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import SuperResolutionQuery
from bench.train import Trainer, TrainConfig, autocast, resolve_device, seed_everything


# -- block means and the exact correction ----------------------------------------------------------------------
def block_means(x: torch.Tensor, valid: torch.Tensor, factor: int) -> torch.Tensor:
    """``[B, T / factor]`` means of each ``factor``-step block over its valid steps (0 for an all-padding block)."""
    b, t = x.shape
    if t % factor:
        raise ValueError(f"factor {factor} does not divide the profile length {t}")
    w = valid.to(x.dtype).reshape(b, t // factor, factor)
    return (x.reshape(b, t // factor, factor) * w).sum(-1) / w.sum(-1).clamp_min(1.0)


def hold_upsample(low: torch.Tensor, factor: int) -> torch.Tensor:
    """Each low-resolution value repeated ``factor`` times: ``[B, L] -> [B, L * factor]``."""
    return low.repeat_interleave(factor, dim=-1)


def mean_correct(x: torch.Tensor, low: torch.Tensor, valid: torch.Tensor, factor: int) -> torch.Tensor:
    """``x`` with each block's valid steps shifted so their mean equals ``low``; padding set to 0.

    Differentiable (used in training) and exact up to floating-point rounding (the final correction of
    ``super_resolve`` runs it in float64).
    """
    shift = low - block_means(x, valid, factor)
    return (x + hold_upsample(shift, factor)) * valid.to(x.dtype)


# -- networks ---------------------------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """``x + conv3(PReLU(conv3(x)))`` at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.PReLU(channels),
                                  nn.Conv1d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRGenerator(nn.Module):
    """``(up [B, T], noise [B, T], valid [B, T]) -> [B, T]`` raw high-resolution profile (before correction)."""

    def __init__(self, base: int = 64, n_res: int = 8) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv1d(3, base, 9, padding=4), nn.PReLU(base))
        self.body = nn.Sequential(*[ResidualBlock(base) for _ in range(n_res)],
                                  nn.Conv1d(base, base, 3, padding=1))
        self.tail = nn.Sequential(nn.Conv1d(base, base, 3, padding=1), nn.PReLU(base),
                                  nn.Conv1d(base, 1, 9, padding=4))

    def forward(self, up: torch.Tensor, noise: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        val = valid.to(up.dtype)
        h = self.head(torch.stack([up, noise * val, val], dim=1))
        h = h + self.body(h)
        return (up + self.tail(h).squeeze(1)) * val


def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the mean absolute difference of discriminator activations (real ones detached)."""
    return sum(torch.mean(torch.abs(f.float() - r.detach().float())) for r, f in zip(real, fake)) / len(real)


# -- the model ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProfileSRParams(Params):
    """Hyper-parameters of :class:`ProfileSR` (defaults: the ``quick`` profile of the module docstring).

    Attributes:
        factors: the super-resolution factors to train (sorted, duplicates dropped).
        base, n_res: generator width and residual blocks.
        disc_base: channels of the discriminator's first layer.
        adv_weight, content_weight, feature_weight, consistency_weight: loss weights.
        train_steps, batch_size, lr, betas, ema_decay, grad_clip, amp, checkpoint_every: the shared loop's
            settings, per factor (:func:`baselines.loadpin.gan_train_config`).
        sample_batch: profiles per forward pass when super-resolving.
    """

    factors: tuple[int, ...] = (2, 4)
    base: int = 32
    n_res: int = 3
    disc_base: int = 16
    adv_weight: float = 0.04
    content_weight: float = 1.0
    feature_weight: float = 0.5
    consistency_weight: float = 1.0
    train_steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    ema_decay: float | None = 0.99
    grad_clip: float | None = None
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 500
    sample_batch: int = 1024

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        if not factors or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 2 for f in factors):
            raise ValueError(f"factors must be a non-empty list of integers >= 2, got {factors!r}")
        # one canonical order, so that equal settings compare (and cache) equal
        object.__setattr__(self, "factors", tuple(sorted({int(f) for f in factors})))
        for name in ("base", "n_res", "disc_base"):
            check_positive_int(name, getattr(self, name))
        for name in ("adv_weight", "content_weight", "feature_weight", "consistency_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        check_gan_training(self)


@register_model("profilesr")
class ProfileSR(Model, SuperResolver):
    """ProfileSR-GAN-style super-resolution GAN (residual conv generator, conditional patch discriminator)."""

    Params = ProfileSRParams
    profiles = {
        "test": {"base": 8, "n_res": 1, "disc_base": 8, "train_steps": 100, "batch_size": 32},
        "paper": {"base": 64, "n_res": 8, "disc_base": 64, "train_steps": 20_000, "lr": 1e-4, "ema_decay": 0.999,
                  "checkpoint_every": 2000},
    }

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._generators: dict[int, nn.Module] = {}
        self._amp_dtype: torch.dtype | None = None
        self.length_: int | None = None

    @property
    def train_config(self) -> TrainConfig:
        """The shared loop's settings of each factor's run (:func:`baselines.loadpin.gan_train_config`)."""
        return gan_train_config(self.params)

    def get_state(self) -> dict:
        """The sampling generator of every trained factor (under ``"x<factor>"``), the training length and
        the autocast dtype of the fit (discriminators and training reports are not kept)."""
        return {"generators": {f"x{factor}": to_safe(net, f"ProfileSR.generators[{factor}]")
                               for factor, net in self._generators.items()},
                "length_": self.length_, "amp_dtype": dtype_name(self._amp_dtype)}

    def set_state(self, state: dict) -> None:
        """Build one generator per saved factor for the saved parameters, then load its weights."""
        self.length_ = None if state.get("length_") is None else int(state["length_"])
        self._amp_dtype = dtype_from_name(state.get("amp_dtype"))
        self._generators = {}
        for name, weights in state.get("generators", {}).items():
            if not (isinstance(name, str) and name.startswith("x") and name[1:].isdigit()):
                raise UnsafeFileError(f"profilesr: unexpected generator entry {name!r} (expected 'x<factor>')")
            generator = build_for_loading(lambda: SRGenerator(self.base, self.n_res))
            self._generators[int(name[1:])] = from_safe(weights, generator).eval().requires_grad_(False)

    # -- training ---------------------------------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        """Freshly initialised ``{"generator", "disc"}`` (one pair per factor)."""
        return {"generator": SRGenerator(self.base, self.n_res), "disc": PatchDiscriminator(3, self.disc_base)}

    def _step_function(self, factor: int):
        """The ``Trainer.fit`` step for ``factor``: one discriminator and one generator update."""

        def step(batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
            x, valid = batch[:, 0], batch[:, 1] > 0.5
            val_f = valid.float()
            low = block_means(x, valid, factor)
            up = hold_upsample(low, factor) * val_f
            generator, disc = trainer.model("generator"), trainer.model("disc")
            noise = trainer.randn(*x.shape)

            def judge(profile: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
                return disc(torch.stack([profile, up, val_f], dim=1))

            with torch.no_grad(), trainer.autocast():
                fake = mean_correct(generator(up, noise, valid).float(), low, valid, factor)
            with trainer.autocast():
                real_scores = judge(x)[0].float()
                d_loss = F.softplus(-real_scores).mean() + F.softplus(judge(fake)[0].float()).mean()
            trainer.update(d_loss, "disc")

            disc_module = trainer.networks["disc"]
            disc_module.requires_grad_(False)  # the generator update needs no discriminator gradients
            try:
                with trainer.autocast():
                    raw = generator(up, noise, valid).float()
                    fake = mean_correct(raw, low, valid, factor)
                    fake_scores, fake_features = judge(fake)
                    adv = F.softplus(-fake_scores.float()).mean()
                    feat = feature_matching(judge(x)[1], fake_features) if self.feature_weight else adv * 0.0
            finally:
                disc_module.requires_grad_(True)
            content = (torch.abs(fake - x) * val_f).sum() / val_f.sum().clamp_min(1.0)
            consistency = torch.mean((block_means(raw, valid, factor) - low) ** 2)
            g_loss = (self.adv_weight * adv + self.content_weight * content + self.feature_weight * feat
                      + self.consistency_weight * consistency)
            raise_if_nonfinite(f"profilesr(x{factor})", it, {"disc": d_loss, "generator": g_loss})
            trainer.update(g_loss, "gen")
            return {"disc": d_loss.detach(), "adv": adv.detach(), "content": content.detach(),
                    "consistency": consistency.detach()}

        return step

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train one generator per factor in ``factors`` that divides ``T`` on ``train`` (mask = valid steps).

        Raises:
            ValueError: unusable training set, or no configured factor divides ``T``.
            ModelFitError: a loss or the generator weights became non-finite.
        """
        self._generators = {}
        values, valid = profile_matrices(train, "profilesr")
        length = values.shape[1]
        usable = [f for f in self.factors if length % f == 0]
        if not usable:
            raise ValueError(f"profilesr: none of the factors {list(self.factors)} divides the length {length}")
        data = np.stack([values, valid.astype(np.float32)], axis=1)  # [N, 2, T]
        self.train_results_ = {}
        for factor in usable:
            run_ctx = ctx if ctx.checkpoint_dir is None else replace(
                ctx, checkpoint_dir=Path(ctx.checkpoint_dir) / f"x{factor}")
            seed_everything(ctx.int_seed(Stream.MODEL_INIT, factor))  # a different initialisation per factor
            trainer = Trainer(self.build_networks(), {"gen": ["generator"], "disc": ["disc"]}, self.train_config,
                              run_ctx, ema=("generator",) if self.ema_decay is not None else ())
            self.train_results_[factor] = trainer.fit(data, self._step_function(factor),
                                                      stop_after=ctx.budget_steps)
            generator = trainer.sampling_network("generator")
            if not all(torch.isfinite(p).all() for p in generator.parameters()):
                raise ModelFitError(f"profilesr: the x{factor} generator weights are non-finite after training")
            self._generators[factor] = generator.eval()
            self._amp_dtype = trainer.amp_dtype
        self.length_ = length

    @property
    def trained_factors(self) -> tuple[int, ...]:
        """The factors ``super_resolve`` accepts (empty before ``fit``)."""
        return tuple(sorted(self._generators))

    # -- super-resolution -------------------------------------------------------------------------------------
    def super_resolve(self, query: SuperResolutionQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[n_samples, N, T]`` float32 high-resolution samples whose valid block means equal ``query.low``.

        Raises:
            RuntimeError: not fitted.
            ValueError: ``n_samples`` not a positive integer, an untrained factor, another length than trained
                on, or non-finite low-resolution values.
        """
        if not self._generators:
            raise RuntimeError("profilesr: call fit() before super_resolve()")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"profilesr: n_samples must be a positive integer, got {n_samples!r}")
        factor = int(query.factor)
        if factor not in self._generators:
            raise ValueError(f"profilesr: not trained for factor {factor}; trained factors: "
                             f"{list(self.trained_factors)}")
        n, t = query.valid.shape
        if t != self.length_:
            raise ValueError(f"profilesr: trained on profiles of {self.length_} steps, the query has {t}")
        valid = np.asarray(query.valid, dtype=bool)
        block_valid = valid.reshape(n, t // factor, factor).any(-1)
        low = np.where(block_valid, np.asarray(query.low, dtype=np.float64), 0.0)
        if not np.isfinite(low).all():
            raise ValueError("profilesr: query.low holds non-finite values on blocks with valid steps")
        up = (np.repeat(low, factor, axis=1) * valid).astype(np.float32)
        device = resolve_device(ctx.device)
        generator = self._generators[factor].to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None
        rng = ctx.torch_generator(Stream.MODEL_SUPER_RESOLVE)
        rows = np.tile(np.arange(n), int(n_samples))

        def draw(start: int, size: int) -> torch.Tensor:
            idx = rows[start:start + size]
            noise = torch.randn(size, t, generator=rng).to(device)
            with autocast(device, amp_dtype):
                return generator(torch.as_tensor(up[idx], device=device), noise,
                                 torch.as_tensor(valid[idx], device=device))

        raw = draw_in_batches(len(rows), self.sample_batch, draw)
        # the exact correction in float64, so block means reproduce ``low`` to float32 rounding
        corrected = mean_correct(torch.as_tensor(raw, dtype=torch.float64), torch.as_tensor(low[rows]),
                                 torch.as_tensor(valid[rows]), factor)
        return corrected.numpy().astype(np.float32).reshape(int(n_samples), n, t)


__all__ = ["ProfileSR", "ProfileSRParams", "SRGenerator", "ResidualBlock", "block_means", "hold_upsample",
           "mean_correct", "feature_matching"]
