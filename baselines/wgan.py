"""``wgan-gp``: a Wasserstein GAN with gradient penalty and convolutional generator and critic.

Generator (:class:`Generator`, 6 convolutional layers): a linear projection of ``z ~ N(0, I_latent_dim)`` to
``8 * base`` channels at length ``L_0 = ceil(T / 16)``, then five blocks ``[upsample] -> Conv1d(kernel 5) ->
GroupNorm(1) -> LeakyReLU(0.2)`` with ``8b -> 8b -> 4b -> 4b -> 2b -> b`` channels (``b = base``), the first four
preceded by a linear-interpolation upsampling, and a final ``Conv1d(b, 1, kernel 7)`` with ``tanh`` (the data
are scaled to [-1, 1]). Every upsampling targets an exact length, ``ceil(T / 2^(4 - k))`` after the ``k``-th,
so the last one lands on ``T`` itself for any profile length - ``24 -> 2, 3, 6, 12, 24``, ``96 -> 6, ..., 96``,
``1440 -> 90, ..., 1440`` - with no cropping. GroupNorm with one group (a layer norm over channels and time)
uses no batch statistics, so the EMA generator behaves at sampling exactly as during training.

Critic (:class:`Critic`, 5 convolutional layers): four ``Conv1d(kernel 5, stride 2, padding 2) ->
LeakyReLU(0.2)`` layers with ``b -> 2b -> 4b -> 8b`` channels, each halving the length (``ceil(L / 2)``), and a
fifth convolution whose kernel spans the whole remaining length (``ceil(T / 16)``), giving one score per
profile. The critic has no normalisation layers: the gradient penalty constrains per-sample input gradients,
which batch statistics would couple across the batch.

Loss (Gulrajani et al. 2017). Critic: ``E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]`` on
interpolates ``x_hat = a x + (1 - a) G(z)``, ``a ~ U[0, 1]`` per profile (:func:`gradient_penalty`,
:func:`critic_loss`), ``lambda = gp_weight = 10``. Generator: ``-E[D(G(z))]``. The paper's public code defines
a gradient penalty but never adds it to the loss, relying on spectral normalisation of the critic alone; here
the penalty is always applied. We choose the penalty without spectral normalisation by default, as in
Gulrajani et al.: spectral normalisation caps every layer's spectral norm at 1, and since the product of these
caps is a loose bound, the normalised critic's input gradients usually stay well below the unit norm the
penalty asks for - the two constraints pull against each other and the critic loses capacity.
``spectral_norm=True`` wraps every critic convolution (the public code's critic, now with the penalty) for
comparison. The public critic's dropout is left out: it would make the penalised gradients random. The public
code's GAN as it is (Wasserstein loss without the penalty, spectrally normalised critic with dropout, its
residual generator) is the separate model ``gan`` (:mod:`baselines.gan`), which reuses this module's critic,
loss and training step; ``wgan-gp`` has no published counterpart.

Training (shared loop, :mod:`bench.train`): one loop step is one generator update preceded by ``n_critic``
critic updates, each on its own real batch - the loop's batch for the first, then batches of the same size
drawn with ``Trainer.generator`` (seeded and checkpointed, so resume stays exact) - with fresh noise and fresh
interpolation weights for every update (Algorithm 1 of Gulrajani et al.). Two optimisers: ``"critic"`` and
``"gen"``, AdamW with weight decay 0 (i.e. Adam), ``betas=(0.5, 0.9)``. The critic is frozen during the
generator update. Samples come from the EMA copy of the generator (``ema_decay=None`` samples the raw
weights) with noise from a CPU generator seeded from the context's ``MODEL_SAMPLE`` stream (the weights are
initialised from its ``MODEL_INIT`` stream). A non-finite critic or generator loss raises
:class:`bench.errors.ModelFitError` naming the step.

Profiles:

* ``paper`` - latent 100, ``base=64`` (the public code's width), ``n_critic=5``, Adam(lr 1e-4, betas (0.5, 0.9)),
  constant lr, batch 512 (the public code's; the paper gives none), no gradient clipping, EMA 0.999 of the
  generator, 500 epochs. In the public code every real batch is one critic update and the generator steps
  every ``n_critic`` batches, so an epoch is ``N / batch`` critic updates; we keep that: ``500 epochs`` becomes
  ``ceil(500 * N / (min(512, N) * n_critic))`` loop steps (generator updates), computed at fit time.
* ``quick`` - ``base=16``, latent 100, ``n_critic=5``, batch 64, betas (0.5, 0.9), 250 loop steps (1250
  critic updates), EMA 0.99, lr 1e-3: ten times the paper's rate, because a run this short does not get far
  at 1e-4 (on a toy set of sine-shaped days, 200 steps at 2e-4 reached an MMD of 0.04-0.41 against 0.01-0.02
  at 1e-3, two seeds each).
  Measured on two CPU cores for 700 training profiles and 720 samples (fit + sample): 19-23 s at
  ``T = 24`` and 34-36 s at ``T = 96`` (sampling takes 0.1 s).
* ``test`` - the quick networks, 40 loop steps (200 critic updates) of batch 16 at lr 2e-3, EMA 0.95: about
  1.5 s for 60 profiles on one core, for the contract test. On toy days (60 profiles of 24 or 48 steps, five
  seeds each) it beat the mean day on MMD in every run; a 16-dimensional latent, half-width networks or two
  critic updates per step (each with more loop steps in the same time) failed in some.

``save`` / ``load`` keep the sampling (EMA) generator and the profile length that rebuilds it; the critic
serves training only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from baselines.naive import check_sample_request, training_matrix
from baselines.nn.blocks import (build_for_loading, check_positive_int, dtype_from_name, dtype_name,
                                 raise_if_nonfinite, resolve_train_steps)
from baselines.nn.sampling import decode_gaussian_latents
from bench import api
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.train import Trainer, TrainConfig, train_config_from, seed_everything

GEN_UPSAMPLINGS = 4
CRITIC_DOWNSAMPLINGS = 4


def upsampling_lengths(length: int, n_up: int = GEN_UPSAMPLINGS) -> list[int]:
    """``[L_0, L_1, ..., L_n_up]`` with ``L_k = ceil(length / 2^(n_up - k))``: the generator's lengths (last = T)."""
    check_positive_int("length", length)
    return [math.ceil(length / 2 ** (n_up - k)) for k in range(n_up + 1)]


class Generator(nn.Module):
    """``z [B, latent_dim] -> x [B, T]`` in (-1, 1); see the module docstring for the layers."""

    def __init__(self, length: int, latent_dim: int = 100, base: int = 64) -> None:
        super().__init__()
        self.length = length
        self.lengths = upsampling_lengths(length)
        channels = [8 * base, 8 * base, 4 * base, 4 * base, 2 * base, base]
        self.project = nn.Linear(latent_dim, channels[0] * self.lengths[0])
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(c_in, c_out, 5, padding=2), nn.GroupNorm(1, c_out), nn.LeakyReLU(0.2))
            for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.out = nn.Conv1d(base, 1, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], -1, self.lengths[0])
        for k, block in enumerate(self.blocks):
            if k < GEN_UPSAMPLINGS:
                h = F.interpolate(h, size=self.lengths[k + 1], mode="linear", align_corners=False)
            h = block(h)
        return torch.tanh(self.out(h)).squeeze(1)


def critic_lengths(length: int, n_down: int = CRITIC_DOWNSAMPLINGS) -> list[int]:
    """The critic's feature lengths: ``length`` halved (rounding up) ``n_down`` times."""
    out = [check_positive_int("length", length)]
    for _ in range(n_down):
        out.append(math.ceil(out[-1] / 2))
    return out


class Critic(nn.Module):
    """``x [B, T] -> score [B]`` (unbounded); optionally spectrally normalised. See the module docstring.

    ``dropout > 0`` adds ``Dropout(dropout)`` after the activation of the first three convolutions, where the
    EnergyDiff code's critic has it (used by the ``gan`` model; ``wgan-gp`` keeps 0, since dropout would make
    the penalised gradients random).
    """

    def __init__(self, length: int, base: int = 64, spectral_norm: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.length = length
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        channels = [1, base, 2 * base, 4 * base, 8 * base]
        layers: list[nn.Module] = []
        for k, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers += [wrap(nn.Conv1d(c_in, c_out, 5, stride=2, padding=2)), nn.LeakyReLU(0.2)]
            if dropout and k < CRITIC_DOWNSAMPLINGS - 1:
                layers.append(nn.Dropout(dropout))
        # a kernel spanning the remaining length: the same map as a linear layer on the flattened features
        layers.append(wrap(nn.Conv1d(channels[-1], 1, critic_lengths(length)[-1])))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected input [B, {self.length}], got {tuple(x.shape)}")
        return self.net(x.unsqueeze(1)).reshape(x.shape[0])


def _full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when it is in a half-precision (autocast) dtype; float32/float64 stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """``weight * mean_b (||grad_x critic(x_hat_b)||_2 - 1)^2`` at ``x_hat = alpha * real + (1 - alpha) * fake``.

    ``alpha`` holds one interpolation weight per profile (``[B]`` or ``[B, 1]``, drawn from U[0, 1] in
    training). The graph of the gradient is kept (``create_graph``) so the penalty trains the critic. The
    critic must score each profile independently of the rest of the batch (no batch normalisation): the
    per-profile gradients are then those of the summed scores.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    alpha = alpha.reshape(real.shape[0], *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = _full_precision(critic(x_hat))
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    # the small constant keeps the norm differentiable where a gradient vanishes exactly
    norm = torch.sqrt(_full_precision(grad).flatten(1).pow(2).sum(dim=1) + 1e-12)
    return weight * torch.mean((norm - 1.0) ** 2)


def critic_loss(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                alpha: torch.Tensor, gp_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, wasserstein, penalty)``: ``loss = E[D(fake)] - E[D(real)] + penalty``.

    ``wasserstein = E[D(real)] - E[D(fake)]`` is the critic's estimate of the Wasserstein-1 distance (logged);
    ``penalty`` is :func:`gradient_penalty` with weight ``gp_weight`` (exactly 0 when ``gp_weight`` is 0).
    """
    scores = _full_precision(critic(torch.cat([real, fake.detach()])))
    wasserstein = scores[: len(real)].mean() - scores[len(real):].mean()
    if gp_weight:
        penalty = gradient_penalty(critic, real, fake, alpha, gp_weight)
    else:
        penalty = torch.zeros((), dtype=scores.dtype, device=scores.device)
    return penalty - wasserstein, wasserstein, penalty


@dataclass(frozen=True)
class AdversarialParams(api.Params):
    """The settings ``wgan-gp`` and ``gan`` share; the defaults are ``wgan-gp``'s ``quick`` profile. Exactly one
    of ``train_steps`` and ``epochs`` is set."""

    latent_dim: int = 100
    base: int = 16
    n_critic: int = 5
    train_steps: int | None = 250
    epochs: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    ema_decay: float | None = 0.99
    grad_clip: float | None = None
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 500
    sample_batch: int = 2048

    def __post_init__(self) -> None:
        for name in ("latent_dim", "base", "n_critic", "batch_size", "sample_batch"):
            check_positive_int(name, getattr(self, name))
        if (self.train_steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of train_steps and epochs")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if len(tuple(self.betas)) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1) or be None, got {self.ema_decay!r}")


@dataclass(frozen=True)
class WGANGPParams(AdversarialParams):
    """``wgan-gp``'s hyper-parameters: the shared ones plus the penalty weight and the critic's normalisation."""

    gp_weight: float = 10.0
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (np.isfinite(self.gp_weight) and self.gp_weight >= 0):
            raise ValueError(f"gp_weight must be a finite number >= 0, got {self.gp_weight!r}")


@register_model("wgan-gp")
class WGANGP(api.Model, api.Generator):
    """Wasserstein GAN with gradient penalty, conv generator and critic (the paper's GAN, without a penalty, is gan)."""

    name = "wgan-gp"  # the registry name, used in messages (subclasses registered under another name set theirs)

    Params = WGANGPParams
    profiles = {
        # 40 loop steps (200 critic updates) of small batches at twice the quick rate: ~1.5 s for ~60 profiles
        # on one core; a shorter latent (16) or fewer critic updates per step often failed to learn in so few
        "test": {"train_steps": 40, "batch_size": 16, "lr": 2e-3, "ema_decay": 0.95},
        "paper": {"base": 64, "train_steps": None, "epochs": 500, "batch_size": 512, "lr": 1e-4, "ema_decay": 0.999,
                  "checkpoint_every": 1000},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._generator: nn.Module | None = None
        self._data: torch.Tensor | None = None

    # -- training -------------------------------------------------------------------------------------------
    def build_networks(self, length: int) -> dict[str, nn.Module]:
        """Freshly initialised ``{"generator", "critic"}`` for profiles of ``length`` steps."""
        return {"generator": Generator(length, self.latent_dim, self.base),
                "critic": Critic(length, self.base, self.spectral_norm)}

    def train_config(self, n_train: int) -> TrainConfig:
        """The shared-loop settings for ``n_train`` profiles (epochs count critic batches; see the docstring)."""
        steps = resolve_train_steps(self.train_steps, self.epochs, n_train, self.batch_size,
                                    batches_per_step=self.n_critic)
        return train_config_from(self.params, steps=steps, weight_decay=0.0)

    def _real_batch(self, trainer: Trainer, size: int) -> torch.Tensor:
        """A batch of training profiles drawn (with replacement, like the loop's) from the checkpointed RNG."""
        idx = torch.randint(0, len(self._data), (size,), generator=trainer.generator)
        return self._data[idx].to(trainer.device)

    def critic_round(self, rows: torch.Tensor, trainer: Trainer, generator: nn.Module, critic: nn.Module
                     ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor],
                                Callable[[torch.Tensor], torch.Tensor]]:
        """``(real, fake_from_noise, judge)`` of one critic round on the batch ``rows``: the real profiles, the
        generator as a function of the noise and the critic as a function of profiles. A conditional model
        overrides this to unpack labels and bind them to both networks."""
        return rows, lambda z: generator(z).float(), critic

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """``n_critic`` critic updates then one generator update (a ``Trainer.fit`` step function); the
        generator update uses the last round's conditions (:meth:`critic_round`)."""
        generator, critic = trainer.networks["generator"], trainer.networks["critic"]
        size = batch.shape[0]
        critic_losses, distances, penalties = [], [], []
        for k in range(self.n_critic):
            real, fake_from, judge = self.critic_round(batch if k == 0 else self._real_batch(trainer, size), trainer,
                                                       generator, critic)
            z = trainer.randn(size, self.latent_dim)
            alpha = trainer.rand(size)
            with torch.no_grad(), trainer.autocast():
                fake = fake_from(z)
            with trainer.autocast():
                loss, distance, penalty = critic_loss(judge, real, fake, alpha, self.gp_weight)
            trainer.update(loss, "critic")
            critic_losses.append(loss.detach())
            distances.append(distance.detach())
            penalties.append(penalty.detach())

        z = trainer.randn(size, self.latent_dim)
        critic.requires_grad_(False)  # the generator update needs no critic parameter gradients
        try:
            with trainer.autocast():
                gen_loss = -judge(fake_from(z)).float().mean()
        finally:
            critic.requires_grad_(True)
        raise_if_nonfinite(self.name, it, {"critic": torch.stack(critic_losses), "generator": gen_loss})
        trainer.update(gen_loss, "gen")
        return {"critic": critic_losses[-1], "generator": gen_loss.detach(), "wasserstein": distances[-1],
                "penalty": penalties[-1]}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train generator and critic on ``train.values`` (``[N, T]`` in [-1, 1]) with the shared loop.

        Raises:
            ValueError: unusable training set.
            ModelFitError: a loss or the generator weights became non-finite.
        """
        self._generator = None
        x = training_matrix(train, self.name).astype(np.float32)
        cfg = self.train_config(len(x))
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer(self.build_networks(x.shape[1]), {"gen": ["generator"], "critic": ["critic"]}, cfg,
                          ctx, ema=("generator",) if self.ema_decay is not None else ())
        self._data = torch.as_tensor(x)
        try:
            self.train_result_ = trainer.fit(x, self.training_step, stop_after=ctx.budget_steps)
        finally:
            self._data = None
        generator = trainer.sampling_network("generator")
        if not all(torch.isfinite(p).all() for p in generator.parameters()):
            raise ModelFitError(f"{self.name}: the generator weights are non-finite after training")
        self._generator = generator.eval()
        self._amp_dtype = trainer.amp_dtype
        self.length_ = x.shape[1]

    # -- persistence ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The sampling (EMA) generator, the profile length and the sampling dtype ({} before fit); the critic
        is needed for training only and is not kept."""
        if self._generator is None:
            return {}
        return {"length_": int(self.length_), "amp_dtype": dtype_name(self._amp_dtype),
                "_generator": to_safe(self._generator, f"{type(self).__name__}._generator")}

    def set_state(self, state: dict) -> None:
        """Rebuild the generator for the saved profile length, then load its weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        nets = build_for_loading(lambda: self.build_networks(int(state["length_"])))
        self._generator = nets["generator"].eval().requires_grad_(False)
        super().set_state(state)

    # -- sampling -------------------------------------------------------------------------------------------
    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 generator outputs for ``z ~ N(0, I)`` (the ``MODEL_SAMPLE`` stream of ``ctx``)."""
        n = check_sample_request(n, cond, self._generator is not None, self.name)
        return decode_gaussian_latents(self._generator, n, self.latent_dim, self.sample_batch, ctx, self._amp_dtype)
