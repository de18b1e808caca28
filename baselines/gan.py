"""``gan``: the EnergyDiff paper's GAN baseline as its public code trains it (no gradient penalty).

The EnergyDiff code's GAN is a Wasserstein GAN whose critic is kept Lipschitz by spectral normalisation alone:
it defines a gradient penalty but never adds it to the loss. This model reproduces that, beside ``wgan-gp``
(:mod:`baselines.wgan`, the same family with the penalty applied, which has no published counterpart). It
reuses ``wgan-gp``'s critic, loss and training step; only the generator and the settings are its own.

Loss (the code's): critic ``E[D(G(z))] - E[D(x)]``, generator ``-E[D(G(z))]``, no penalty
(:func:`baselines.wgan.critic_loss` with ``gp_weight = 0``).

Critic (:class:`baselines.wgan.Critic` with ``spectral_norm=True, dropout=0.3``): four spectrally normalised
``Conv1d(kernel 5, stride 2, padding 2) -> LeakyReLU(0.2)`` layers with ``b -> 2b -> 4b -> 8b`` channels, the
first three followed by ``Dropout(0.3)``, and a spectrally normalised map of the flattened features to one
score (the code's ``Linear``; here a convolution spanning the remaining length, the same map). Dropout is
active in every critic evaluation during training, the generator update included, as in the code.

Generator (:class:`ResidualGenerator`, the code's): a linear projection of ``z ~ N(0, I_100)`` to ``8b``
channels at length ``L_0``, five residual blocks (:class:`ResidualBlock`) with ``8b -> 8b -> 4b -> 4b -> 2b ->
b`` channels, each of the first ``n_up`` followed by a linear-interpolation upsampling by two, a sixth
residual block ``b -> b``, and ``Conv1d(b, 1, kernel 7)`` with ``tanh``. The code starts at length 6 and
doubles while shorter than ``T`` (``T = 24: 6, 12, 24``; ``48: 6, ..., 48``; ``96: 6, ..., 96``) and starts at
90 for ``T = 1440``; :func:`generator_lengths` gives exactly these and extends the rule to any ``T``: at most
four doublings, as many as fit from a start of at least 6 (``L_0 = T / 2^n_up``, rounded up, with exact
intermediate lengths).

Training (shared loop, :mod:`bench.train`, as ``wgan-gp``): one loop step is ``n_critic = 5`` critic updates,
each on its own real batch with fresh noise, then one generator update; in the code every batch is one critic
update and the generator steps every fifth batch, the same schedule. Adam (AdamW with weight decay 0) with
``betas=(0.5, 0.9)`` for both networks, constant learning rate.

Profiles:

* ``paper`` - the code's settings: latent 100, ``base=64``, ``n_critic=5``, dropout 0.3, lr 1e-4, batch 512,
  500 epochs (``ceil(500 * N / (min(512, N) * 5))`` loop steps), no EMA (the code samples the trained
  generator), no gradient clipping, mixed precision where available (the code trains in 16-bit mixed
  precision on GPUs).
* ``quick`` - ``base=16``, batch 64, 250 loop steps (1250 critic updates), lr 2e-4, EMA 0.99 of the
  generator (sampling a short run's average is steadier than its last iterate). On toy days (400 sine-shaped
  days of 24 steps, MMD of 400 samples against 400 held-out days; independent per-step marginals score
  0.084, the mean day 0.22), 250 steps reached 0.012-0.027 on five seeds at 2e-4, 0.022 and 0.059 on two
  seeds at the code's 1e-4, and were unstable at ``wgan-gp``'s quick 1e-3 (0.035 and 0.069) and at 5e-4
  (0.022 and 0.19): without the penalty the critic tolerates a smaller step. Measured fit + 720 samples
  on a shared two-core machine: about 20 s for 400 profiles of 24 steps on one thread, 42 s for 700
  profiles of 96 steps on two.
* ``test`` - ``base=8``, 40 loop steps (200 critic updates) of batch 16 at lr 2e-3, EMA 0.95, no critic
  dropout: about 2 s for the contract test's 140 profiles of 48 steps on one core. On that data it beat the
  trivial baseline's MMD at each of seven seeds (0.14-0.31 against 0.45); with the dropout of 0.3 it failed at
  seed 0, at full width at every seed. So short a run is at the edge of what this unpenalised GAN learns.

The residual generator's spectral normalisation keeps its power-iteration vectors as buffers, which ``save``
/ ``load`` keep with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from baselines.nn.blocks import check_positive_int
from baselines.wgan import WGANGP, AdversarialParams, Critic, upsampling_lengths
from bench.registry import register_model

START_LENGTH = 6
"""The shortest starting length of the generator (the code's start for 24- to 96-step profiles)."""
MAX_UPSAMPLINGS = 4
"""The most doublings of the generator (the code's four for 96 and 1440 steps)."""


def generator_lengths(length: int) -> list[int]:
    """``[L_0, ..., L_n_up = length]``: the generator's lengths, doubling (rounding up) ``n_up`` times.

    ``n_up = min(4, floor(log2(length / 6)))`` (0 below 12 steps): ``24 -> [6, 12, 24]``,
    ``48 -> [6, 12, 24, 48]``, ``96 -> [6, ..., 96]``, ``1440 -> [90, 180, 360, 720, 1440]``, as in the
    EnergyDiff code, and e.g. ``144 -> [9, 18, 36, 72, 144]``.
    """
    check_positive_int("length", length)
    n_up = 0
    while n_up < MAX_UPSAMPLINGS and length >= START_LENGTH * 2 ** (n_up + 1):
        n_up += 1
    return upsampling_lengths(length, n_up)


class ResidualBlock(nn.Module):
    """The code's generator block: ``LeakyReLU(GN(SN-conv(LeakyReLU(GN(SN-conv(x))))) + skip(x))``.

    Two spectrally normalised ``Conv1d(kernel 3, padding 1)`` layers, each followed by ``GroupNorm(1)`` (a
    layer norm over channels and time), LeakyReLU(0.2) after the first and after the sum; the skip path is a
    plain ``Conv1d(kernel 1)`` when the channel count changes, else the identity.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv1d(c_in, c_out, 3, padding=1))
        self.norm1 = nn.GroupNorm(1, c_out)
        self.conv2 = spectral_norm(nn.Conv1d(c_out, c_out, 3, padding=1))
        self.norm2 = nn.GroupNorm(1, c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        h = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        h = self.norm2(self.conv2(h))
        return F.leaky_relu(h + self.skip(x), 0.2)


class ResidualGenerator(nn.Module):
    """``z [B, latent_dim] -> x [B, T]`` in (-1, 1); see the module docstring for the layers."""

    def __init__(self, length: int, latent_dim: int = 100, base: int = 64) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("base", base)):
            check_positive_int(name, value)
        self.length = length
        self.lengths = generator_lengths(length)
        channels = [8 * base, 8 * base, 4 * base, 4 * base, 2 * base, base]
        self.project = nn.Linear(latent_dim, channels[0] * self.lengths[0])
        self.blocks = nn.ModuleList(ResidualBlock(c_in, c_out) for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.final = ResidualBlock(base, base)
        self.out = nn.Conv1d(base, 1, 7, padding=3)

    def forward(self, z):
        h = self.project(z).view(z.shape[0], -1, self.lengths[0])
        for k, block in enumerate(self.blocks):
            h = block(h)
            if k + 1 < len(self.lengths):
                h = F.interpolate(h, size=self.lengths[k + 1], mode="linear", align_corners=False)
        return self.out(self.final(h)).tanh().squeeze(1)


@dataclass(frozen=True)
class GANParams(AdversarialParams):
    """``gan``'s hyper-parameters: the settings shared with ``wgan-gp`` (with its own learning rate) plus the
    critic's dropout; it has no penalty weight and always normalises the critic spectrally."""

    lr: float = 2e-4
    dropout: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")


@register_model("gan")
class GAN(WGANGP):
    """EnergyDiff's GAN as its code trains it: Wasserstein loss, spectral-norm critic with dropout, no penalty."""

    name = "gan"
    # fixed by the model, not parameters: the code adds no penalty and normalises every critic layer
    gp_weight: ClassVar[float] = 0.0
    spectral_norm: ClassVar[bool] = True

    Params = GANParams
    profiles = {
        # 40 loop steps (200 critic updates) of small batches, half-width networks, no critic dropout: ~2 s for
        # ~140 profiles on one core (see the module docstring for how often so short a run learns)
        "test": {"base": 8, "train_steps": 40, "batch_size": 16, "lr": 2e-3, "ema_decay": 0.95, "dropout": 0.0},
        "paper": {"base": 64, "train_steps": None, "epochs": 500, "batch_size": 512, "lr": 1e-4, "ema_decay": None,
                  "checkpoint_every": 1000},
    }

    def build_networks(self, length: int) -> dict[str, nn.Module]:
        """Freshly initialised ``{"generator", "critic"}`` for profiles of ``length`` steps."""
        return {"generator": ResidualGenerator(length, self.latent_dim, self.base),
                "critic": Critic(length, self.base, spectral_norm=True, dropout=self.dropout)}
