"""``unified``: the pre-trained mixture-of-experts + information-bottleneck model of Wang et al., "A Unified Model
for Smart Meter Data Applications" (IEEE Trans. Smart Grid), for imputation, forecasting and anomaly detection.

Architecture (the paper's Fig. 2), for a profile ``x`` of ``T`` steps in the task's scaled space:

1. **Patching + instance normalisation** (Sec. III-A-1). The mean and standard deviation of the *observed*
   valid steps (deviation floored at ``norm_floor``; RevIN-like, the statistics are kept to map outputs back)
   normalise the profile; hidden steps are set to 0. The profile is cut into ``P = n_patches`` patches of
   ``d_P = T / P`` steps (``P`` must divide ``T``), and each patch's input is
   ``[normalised values (hidden = 0), observed mask]`` (``2 d_P`` numbers), so the network knows which zeros are
   hidden steps.
2. **Embedding** (eq. 3): ``x_emb = FC(x_p) + PE`` with the sinusoidal positional encoding of the patch index.
3. **Encoder**: ``n_layers`` pre-LayerNorm residual blocks, ``h <- h + MHSA(LN(h))`` (eqs. 4-5, ``d_model / d_k``
   heads of width ``d_k``), then ``h <- h + MoE(LN(h))`` (eqs. 6-12, :mod:`baselines.nn.moe`: ``n_experts``
   two-layer GELU experts of width ``expert_hidden`` (default ``4 d_model``; Table I does not give it), noisy
   top-``k`` gating with the paper's softmax noise scale, sparse dispatch), and a final LayerNorm.
4. **Variational bottleneck** (Sec. III-B, :mod:`baselines.nn.vib`): a Gaussian posterior per output token;
   ``z [B, P, d_model]`` (the "load characteristics") is a draw ``mu + sigma * eps`` in pre-training and the
   mean ``mu`` where a deterministic representation is needed.
5. **Recovery model g**: one linear layer ``d_model -> d_P`` applied to every token, then de-normalisation.

Pre-training (Algorithm 2, eq. 1 and eq. 26), in the shared loop (:mod:`bench.train`, so the runner's checkpoint
is written and reused by every task). Every step draws a fresh missing pattern per profile
(:func:`baselines.loadpin.draw_missing` with one block: with probability 1/2 independent points, else one
contiguous block; the missing fraction is uniform in ``[mask_min, mask_max]``; only valid steps are hidden and at
least one stays observed), adds Gaussian noise of ``noise_std`` (normalised units) to the observed values and
minimises::

    L = [ sum_i SSE_i  +  beta * sum_i sum_j (-1 + mu_ij^2 + sigma_ij^2 - 2 log sigma_ij) ] / sum_i n_i
        + sum_layers [w_value CV^2(Value) + w_load CV^2(Payload)]

* The first line is eq. 26's reconstruction and bottleneck terms exactly, divided by one constant: ``SSE_i`` is
  profile ``i``'s squared reconstruction error summed over its ``n_i`` valid steps (hidden and observed) in the
  normalised space, and the bottleneck term is eq. 25 *without* its factor 1/2, as eq. 26 writes it
  (:func:`baselines.nn.vib.eq26_penalty`, summed over the ``P x d_model`` representation of the profile). Eq. 26
  averages both sums over the batch; we divide them by the batch's number of valid steps instead (``T`` per
  profile for complete daily profiles), which rescales the whole loss by ``1 / T`` and leaves the ratio of the two
  terms, i.e. the meaning of ``beta``, as in eq. 26: Table I's ``beta = 0.001`` is used as printed
  (:func:`vib_objective`). The reconstruction term is then the per-step MSE, so its scale does not depend on the
  resolution.
* The balance terms are those of eq. 26 (:func:`baselines.nn.moe.balance_loss`), summed over the MoE layers, with
  Table I's weights; they are *not* divided by ``T``, i.e. relative to the literal eq. 26 they weigh ``T`` times
  more (eq. 26 adds them to the summed squared error; we keep their weight against the per-step error so that
  the experts' balance does not depend on the resolution).

A non-finite loss raises :class:`bench.errors.ModelFitError`. The pre-trained encoder is kept unchanged
(``theta_s``): every fine-tune starts from a copy of it.

Workflows (Sec. II-B):

* **impute** (single type; the recovery head g is the output layer): normalise from the observed steps, encode
  with the observed mask, reconstruct. Sample ``s`` of the ensemble draws ``z`` from the VIB posterior with its
  own seeded noise; without the VIB the samples are identical. Observed values are pasted back, padding is 0.
* **forecast** (multi type): the history (a multiple of ``T`` steps) is cut into windows of ``T`` steps (the
  last window = the last ``T`` steps); each window is normalised by its own mean and standard deviation and
  encoded by a copy of the pre-trained encoder; a feed-forward head (``head_layers`` layers of width
  ``head_hidden``, GELU) maps ``[flattened z of every window, every window's mean and std, calendar features of
  the origin]`` to the horizon in units normalised by the last window's statistics (mapped back for output). The
  head and the encoder copy are trained jointly on the training windows with MSE plus
  ``finetune_reg * sum ||theta - theta_s||^2`` (eq. 2's regulariser in the L2-SP form; ``freeze_encoder=True``
  trains the head alone). One (head, encoder copy) per (history length, horizon). With the VIB, training and
  forecasting draw ``z`` from the posterior, and ``forecast`` returns ``[S, N, h]`` (one draw per member);
  without it, a point forecast ``[N, h]``.
* **detect**: without household history, the single-type workflow: a linear output layer on ``[flattened z
  (posterior mean), instance mean, instance std]`` gives one logit. When the detection queries carry the
  household's preceding days (the anomaly task's default), the multi-type workflow: a feed-forward head on
  that representation plus the profile's per-step z-scores against the same time of day on those days (an
  attack on one day is invisible against the population of households, visible against the customer's own
  week). Binary cross-entropy (positives weighted by ``n_negative / n_positive`` so an unbalanced training set
  does not shift the logit) with the same regulariser on the encoder copy. The anomaly score is the logit.

Fine-tunes run in the shared loop without checkpoints (``checkpoint_dir=None``): ``finetune_steps`` AdamW
(weight decay 0) steps of ``finetune_batch`` at ``finetune_lr``, gradient clipping at ``grad_clip``. The paper gives
no fine-tune settings; ours were chosen on the LCL sample (30 min, quick profile): with ``finetune_reg = 0.01``
the encoder copy drifted and day-ahead forecasts got worse the longer they trained (RMSE 0.62 kW after 300 steps,
0.73 kW after 600, seasonal naive 0.53 kW), while ``finetune_reg = 1`` kept them at the level of a frozen encoder
(0.50 kW). ``ctx.budget_steps`` also caps each fine-tune.

Diagnostics (:meth:`UnifiedModel.diagnostics`): after pre-training, on up to ``diag_profiles`` training profiles
(a seeded subset) with one seeded draw of the pre-training masks and input noise, in evaluation mode (no gate
noise, so routing is the hard top-k): the share of (token, slot) routings each expert of each MoE layer
receives, their spread, and the three pre-training loss terms (the balance term with hard counts as the load).

Departures from the paper, besides the balance-term scaling above: the observed-mask channel in each patch's input and
normalisation statistics from the observed steps only (the paper normalises complete profiles); noise added after
normalisation to the observed steps only; pre-LayerNorm blocks with a final LayerNorm (the paper does not say
where its normalisation layers are); zero-initialised gate matrices and a noise-scale floor of 0.01 (Shazeer et
al.'s practice); gradient clipping at 1; the fine-tuning heads, regulariser weight and budgets above (not given).

Profiles:

* ``paper`` - Table I: ``P = 12``, ``d_model = 16``, ``d_k = 4`` (4 heads), 8 experts, top-2, 8 layers,
  ``beta = 0.001``, ``w_value = w_load = 0.1``, 100 epochs of batch 16 (converted to steps at fit time from the
  size of the set ``fit`` receives, batches drawn with replacement: under the paper's protocol the pre-training
  set is 80 % of all profiles, e.g. 8 318 of the 10 397 days of the LCL sample, 51 988 steps; for the paper's
  ~2.4 million pre-training days it would be ~15 million steps), Adam with lr 1e-3. Expert width
  ``4 d_model = 64`` (not in Table I). 0.15 M parameters. Fine-tunes: 2000 steps of batch 64 at lr 1e-3,
  ``finetune_reg = 1``, head width 256. Measured on one CPU thread at ``T = 48``: about 90 ms per pre-training
  step, i.e. about 80 minutes for the LCL sample.
* ``quick`` - ``d_model = 32``, ``d_k = 8`` (4 heads), 4 experts, top-2, 2 layers (0.08 M parameters),
  1500 steps of batch 64 at lr 1e-3; fine-tunes of 300 steps of batch 64, head width 128. Measured on one CPU
  thread at ``T = 48`` (LCL sample, 5 304 training days): pre-training 47 s (30-45 ms per step depending on the
  machine's load), a day-ahead forecasting fine-tune on 4000 windows of 7 days 40 s, a detection fine-tune on
  4000 profiles with their 7-day histories about 11 s (2 cores), imputing 200 profiles x 10 samples 0.03 s.
* ``test`` - ``P = 6``, ``d_model = 16``, ``d_k = 4``, one layer, 200 pre-training steps of batch 32 at lr 3e-3;
  fine-tunes of 100 steps of batch 32 at lr 3e-3 with ``finetune_reg = 0.1`` (so short a fine-tune needs the
  encoder copy to move), head width 64: about two seconds for 60 profiles of 24 or 48 steps on one core, every
  workflow included, for the contract test.

Randomness comes from the context's named streams: weight initialisation ``MODEL_INIT``, the heads of the
fine-tunes ``MODEL_FINETUNE``, the imputation ensemble ``MODEL_IMPUTE``, the forecast ensemble
``MODEL_FORECAST`` and the diagnostic subset ``MODEL_DIAGNOSTICS``. ``save`` / ``load`` keep the pre-trained
encoder and recovery head, every fine-tuned (encoder copy, head) pair with the shapes that rebuild it (history
length, horizon, history days) and the diagnostics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines.loadpin import draw_missing, observed_stats, profile_matrices
from baselines.nn.blocks import (build_for_loading, check_positive_int, dtype_from_name, dtype_name, mlp,
                                 raise_if_nonfinite, resolve_train_steps)
from baselines.nn.moe import DenseFeedForward, MoEFeedForward, NOISE_KINDS, RoutingStats, balance_loss
from baselines.nn.sampling import draw_in_batches
from baselines.nn.transformer import MultiHeadSelfAttention, sinusoidal_embedding
from baselines.nn.vib import VariationalBottleneck, eq26_penalty, kl_standard_normal
from bench.api import Detector, Forecaster, Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import DetectionExamples, DetectionQuery, ForecastExamples, ForecastQuery, ImputationQuery
from bench.train import Trainer, TrainConfig, train_config_from, autocast, resolve_device, seed_everything

DETECT_STD_FLOOR = 0.01  # scaled units (~46 W on LCL): floor of the history std in the detection z-scores


# -- patching and normalisation -------------------------------------------------------------------------------
def patch_length(length: int, n_patches: int) -> int:
    """``d_P = length / n_patches`` after checking that ``n_patches`` divides ``length``.

    Raises:
        ValueError: ``n_patches`` is not a positive integer or does not divide ``length``.
    """
    check_positive_int("n_patches", n_patches)
    check_positive_int("length", length)
    if length % n_patches:
        divisors = [d for d in range(1, min(length, 64) + 1) if length % d == 0]
        raise ValueError(f"n_patches={n_patches} does not divide the profile length T={length} "
                         f"(divisors of {length} up to 64: {divisors})")
    return length // n_patches


def patchify(x: torch.Tensor, n_patches: int) -> torch.Tensor:
    """``[B, T] -> [B, P, T / P]``: patch ``p`` holds steps ``p d_P ... (p + 1) d_P - 1`` in time order."""
    d_p = patch_length(x.shape[-1], n_patches)
    return x.reshape(x.shape[0], n_patches, d_p)


def normalise(x: torch.Tensor, observed: torch.Tensor, floor: float
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Instance normalisation from the observed steps: ``(x_n with unobserved steps 0, mean [B, 1], std [B, 1])``."""
    mean, std = observed_stats(x, observed, floor)
    return (x - mean) / std * observed.to(x.dtype), mean, std


# -- networks ---------------------------------------------------------------------------------------------------
@dataclass
class EncoderOutput:
    """``z``, the posterior ``mu`` and ``sigma`` (None without the VIB) and the routing statistics per layer."""

    z: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor | None
    stats: list[RoutingStats]


class EncoderBlock(nn.Module):
    """Pre-LayerNorm block: ``h + MHSA(LN(h))`` then ``h + FFN(LN(h))`` with a MoE or a dense FFN."""

    def __init__(self, d_model: int, n_heads: int, ffn: nn.Module) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = ffn

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, RoutingStats]:
        h = h + self.attn(self.norm1(h))
        f, stats = self.ffn(self.norm2(h))
        return h + f.to(h.dtype), stats


class UnifiedEncoder(nn.Module):
    """The unified model ``f``: patching input -> embedding + PE -> encoder blocks -> LayerNorm -> VIB.

    ``forward(x_n [B, T], observed [B, T])`` with ``x_n`` normalised and 0 where unobserved.
    """

    def __init__(self, length: int, n_patches: int, d_model: int, d_k: int, n_layers: int, n_experts: int,
                 k: int, expert_hidden: int, moe: bool, vib: bool, gate_noise: str = "softmax") -> None:
        super().__init__()
        self.n_patches = n_patches
        self.d_patch = patch_length(length, n_patches)
        self.embed = nn.Linear(2 * self.d_patch, d_model)
        self.register_buffer("position", sinusoidal_embedding(torch.arange(n_patches), d_model), persistent=False)

        def ffn() -> nn.Module:
            if moe:
                return MoEFeedForward(d_model, expert_hidden, n_experts, k, noise=gate_noise)
            return DenseFeedForward(d_model, expert_hidden)

        self.blocks = nn.ModuleList(EncoderBlock(d_model, d_model // d_k, ffn()) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.bottleneck = VariationalBottleneck(d_model) if vib else None

    def features(self, x_n: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, list[RoutingStats]]:
        """Token states ``[B, P, d_model]`` before the bottleneck and the routing statistics of every layer."""
        obs = observed.to(x_n.dtype)
        h = self.embed(torch.cat([patchify(x_n, self.n_patches), patchify(obs, self.n_patches)], dim=-1))
        h = h + self.position.to(h.dtype)
        stats = []
        for block in self.blocks:
            h, s = block(h)
            stats.append(s)
        return self.norm(h), stats

    def bottle(self, h: torch.Tensor, sample: bool | None = None, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(z, mu, sigma)`` from token states (``z = mu = h`` and ``sigma = None`` without the VIB)."""
        if self.bottleneck is None:
            return h.float(), h.float(), None
        return self.bottleneck(h, sample=sample, generator=generator)

    def forward(self, x_n: torch.Tensor, observed: torch.Tensor, sample: bool | None = None,
                generator: torch.Generator | None = None) -> EncoderOutput:
        h, stats = self.features(x_n, observed)
        z, mu, sigma = self.bottle(h, sample, generator)
        return EncoderOutput(z=z, mu=mu, sigma=sigma, stats=stats)


class Recovery(nn.Module):
    """The recovery model ``g``: one linear layer ``d_model -> d_P`` per token, tokens concatenated in time."""

    def __init__(self, d_model: int, d_patch: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, d_patch)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, P, d_model] -> [B, P * d_P]`` (normalised units)."""
        return self.proj(z).reshape(z.shape[0], -1).float()


def vib_objective(recon: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, mu: torch.Tensor | None,
                  sigma: torch.Tensor | None, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 26's reconstruction and bottleneck terms for a batch, divided by its number of valid steps.

    ``(objective, mse, kl)``: ``objective = (sum_i SSE_i + beta * sum_i P_i) / sum_i n_i`` with ``SSE_i`` the
    squared error of ``recon`` against ``target`` ``[B, T]`` summed over profile ``i``'s ``n_i`` valid steps and
    ``P_i = sum_j (-1 + mu_j^2 + sigma_j^2 - 2 log sigma_j)`` (:func:`baselines.nn.vib.eq26_penalty`, 0 without
    a bottleneck, ``sigma=None``); ``mse`` is the first part alone (the per-step MSE) and ``kl`` the batch mean
    of the true ``KL(p(z|x) || N(0, I))`` (eq. 25, reported in diagnostics).
    """
    w = valid.to(recon.dtype)
    n_valid = w.sum().clamp_min(1.0)
    mse = (((recon - target) ** 2) * w).sum() / n_valid
    if sigma is None:
        zero = mse.new_zeros(())
        return mse, mse, zero
    kl = kl_standard_normal(mu, sigma)
    penalty_sum = eq26_penalty(mu, sigma) * mu.shape[0]  # eq26_penalty is a batch mean: back to a batch sum
    return mse + beta * penalty_sum / n_valid, mse, kl


def squared_distance(module: nn.Module, reference: list[torch.Tensor]) -> torch.Tensor:
    """``sum ||theta - theta_s||^2`` over the parameters of ``module`` (L2-SP) against ``reference``."""
    return sum(((p.float() - r) ** 2).sum() for p, r in zip(module.parameters(), reference))


def routing_fractions(stats: list[RoutingStats]) -> list[np.ndarray]:
    """Per layer: the share of the (token, slot) routings each expert received (sums to 1)."""
    out = []
    for s in stats:
        counts = s.counts.detach().double().cpu().numpy()
        out.append(counts / max(counts.sum(), 1.0))
    return out


def _check_samples(n_samples: object, model: str) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"{model}: n_samples must be a positive integer, got {n_samples!r}")
    return int(n_samples)


# -- the model ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnifiedParams(Params):
    """The unified model's hyper-parameters; the defaults are the ``quick`` profile (module docstring). Exactly
    one of ``train_steps`` and ``epochs`` is set; ``expert_hidden=None`` means ``4 d_model``."""

    n_patches: int = 12
    d_model: int = 32
    d_k: int = 8
    n_experts: int = 4
    k: int = 2
    n_layers: int = 2
    expert_hidden: int | None = None
    gate_noise: Literal["softmax", "softplus"] = "softmax"
    beta: float = 0.001
    w_value: float = 0.1
    w_load: float = 0.1
    noise_std: float = 0.1
    mask_min: float = 0.1
    mask_max: float = 0.6
    norm_floor: float = 0.05
    train_steps: int | None = 1500
    epochs: float | None = None
    batch_size: int = 64
    lr: float = 1e-3
    grad_clip: float | None = 1.0
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 500
    finetune_steps: int = 300
    finetune_batch: int = 64
    finetune_lr: float = 1e-3
    finetune_reg: float = 1.0
    freeze_encoder: bool = False
    head_hidden: int = 128
    head_layers: int = 2
    diag_profiles: int = 1000
    sample_batch: int = 2048
    moe: bool = True
    vib: bool = True

    def __post_init__(self) -> None:
        for name in ("n_patches", "d_model", "d_k", "n_experts", "k", "n_layers", "batch_size", "finetune_steps",
                     "finetune_batch", "head_hidden", "diag_profiles", "sample_batch"):
            check_positive_int(name, getattr(self, name))
        if self.d_model % self.d_k:
            raise ValueError(f"d_k={self.d_k} must divide d_model={self.d_model} (heads = d_model / d_k)")
        if self.k > self.n_experts:
            raise ValueError(f"k={self.k} must not exceed n_experts={self.n_experts}")
        if self.expert_hidden is not None:
            check_positive_int("expert_hidden", self.expert_hidden)
        if self.gate_noise not in NOISE_KINDS:
            raise ValueError(f"gate_noise must be one of {NOISE_KINDS}, got {self.gate_noise!r}")
        if check_positive_int("head_layers", self.head_layers) < 2:
            raise ValueError(f"head_layers must be at least 2, got {self.head_layers}")
        for name in ("beta", "w_value", "w_load", "noise_std", "finetune_reg"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.mask_min <= self.mask_max < 1.0:
            raise ValueError(f"need 0 <= mask_min <= mask_max < 1, got mask_min={self.mask_min!r}, "
                             f"mask_max={self.mask_max!r}")
        if not self.norm_floor > 0:
            raise ValueError(f"norm_floor must be positive, got {self.norm_floor!r}")
        for name in ("lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if (self.train_steps is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of train_steps and epochs (got train_steps={self.train_steps!r}, "
                             f"epochs={self.epochs!r})")


@register_model("unified-plain", moe=False, vib=False)
@register_model("unified-no-vib", vib=False)
@register_model("unified-no-moe", moe=False)
@register_model("unified")
class UnifiedModel(Model, Imputer, Forecaster, Detector):
    """Pre-trained MoE Transformer with a variational bottleneck (Wang et al.), fine-tuned per task."""

    # a pre-training model (bench.tasks.common.fitting_set): ``fit`` receives the protocol's pre-training set
    # where it has one (the paper's random 80 % of all profiles), the fine-tunes the task's training part
    pretrains = True
    Params = UnifiedParams
    profiles = {
        # a one-layer, 16-wide encoder on 6 patches and short fine-tunes: about two seconds on one core for ~60
        # profiles, every workflow included
        "test": {"n_patches": 6, "d_model": 16, "d_k": 4, "n_layers": 1, "train_steps": 200, "batch_size": 32,
                 "lr": 3e-3, "finetune_steps": 100, "finetune_batch": 32, "finetune_lr": 3e-3, "finetune_reg": 0.1,
                 "head_hidden": 64, "diag_profiles": 200},
        "paper": {"d_model": 16, "d_k": 4, "n_experts": 8, "n_layers": 8, "train_steps": None, "epochs": 100,
                  "batch_size": 16, "checkpoint_every": 5000, "finetune_steps": 2000, "head_hidden": 256},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._encoder: UnifiedEncoder | None = None
        self._recovery: Recovery | None = None
        self._theta_s: list[torch.Tensor] = []
        self._forecasters: dict[tuple[int, int], tuple[UnifiedEncoder, nn.Module]] = {}
        self._detector: tuple[UnifiedEncoder, nn.Module, int] | None = None
        self._diagnostics: dict[str, float] = {}
        self.length_: int | None = None

    @property
    def expert_width(self) -> int:
        """The experts' hidden width: ``expert_hidden``, or ``4 d_model`` when that is None."""
        return self.expert_hidden if self.expert_hidden is not None else 4 * self.d_model

    # -- building blocks ------------------------------------------------------------------------------------------
    def build_networks(self, length: int) -> dict[str, nn.Module]:
        """Freshly initialised ``{"encoder", "recovery"}`` for profiles of ``length`` steps."""
        encoder = UnifiedEncoder(length, self.n_patches, self.d_model, self.d_k, self.n_layers, self.n_experts,
                                 self.k, self.expert_width, self.moe, self.vib, self.gate_noise)
        return {"encoder": encoder, "recovery": Recovery(self.d_model, encoder.d_patch)}

    def train_config(self, n_train: int) -> TrainConfig:
        """Pre-training settings for ``n_train`` profiles (epochs become steps here); Adam = AdamW without decay."""
        steps = resolve_train_steps(self.train_steps, self.epochs, n_train, self.batch_size)
        return train_config_from(self.params, steps=steps, weight_decay=0.0, betas=(0.9, 0.999))

    def _finetune_config(self) -> TrainConfig:
        return train_config_from(self.params, steps=self.finetune_steps, batch_size=self.finetune_batch,
                                 lr=self.finetune_lr, weight_decay=0.0, betas=(0.9, 0.999), checkpoint_every=0)

    def _forecast_head(self, history_len: int, horizon: int) -> nn.Module:
        """A fresh forecasting head for histories of ``history_len`` steps (whole windows of ``T``)."""
        windows = history_len // self.length_
        in_dim = windows * self.n_patches * self.d_model + 2 * windows + 6
        return mlp(in_dim, self.head_hidden, horizon, self.head_layers)

    def _detector_head(self, days: int) -> nn.Module:
        """A fresh detection head: linear without household history, feed-forward with ``days`` history days."""
        in_dim = self.n_patches * self.d_model + 2
        return nn.Linear(in_dim, 1) if days == 0 else mlp(in_dim + self.length_, self.head_hidden, 1,
                                                          self.head_layers)

    # -- persistence -------------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """Everything prediction needs ({} before fit): the pre-trained encoder and recovery head, every
        fine-tuned (encoder copy, head) pair with the shapes that rebuild it, the diagnostics and the sampling
        dtype. ``theta_s`` is the pre-trained encoder itself and is rebuilt from it."""
        if self._encoder is None:
            return {}
        forecasters = [{"history": h, "horizon": k, "encoder": to_safe(enc, "forecaster encoder"),
                        "head": to_safe(head, "forecaster head")}
                       for (h, k), (enc, head) in sorted(self._forecasters.items())]
        detector = None
        if self._detector is not None:
            enc, head, days = self._detector
            detector = {"days": int(days), "encoder": to_safe(enc, "detector encoder"),
                        "head": to_safe(head, "detector head")}
        return {"length_": int(self.length_), "amp_dtype": dtype_name(self._amp_dtype),
                "diagnostics": dict(self._diagnostics), "encoder": to_safe(self._encoder, "UnifiedModel._encoder"),
                "recovery": to_safe(self._recovery, "UnifiedModel._recovery"), "forecasters": forecasters,
                "detector": detector}

    def _load_encoder(self, saved: Any) -> UnifiedEncoder:
        encoder = build_for_loading(lambda: self.build_networks(self.length_)["encoder"])
        return from_safe(saved, encoder).eval().requires_grad_(False)

    def set_state(self, state: dict) -> None:
        """Rebuild every network for the saved shapes (profile length, history lengths, horizons, history
        days), then load its weights."""
        if not state:
            return
        self.length_ = int(state["length_"])
        self._amp_dtype = dtype_from_name(state["amp_dtype"])
        self._diagnostics = {str(k): float(v) for k, v in state["diagnostics"].items()}
        self._encoder = self._load_encoder(state["encoder"])
        recovery = build_for_loading(lambda: Recovery(self.d_model, self._encoder.d_patch))
        self._recovery = from_safe(state["recovery"], recovery).eval().requires_grad_(False)
        self._theta_s = [p.detach().clone() for p in self._encoder.parameters()]
        self._forecasters = {}
        for item in state["forecasters"]:
            key = (int(item["history"]), int(item["horizon"]))
            head = build_for_loading(lambda: self._forecast_head(*key))
            self._forecasters[key] = (self._load_encoder(item["encoder"]),
                                      from_safe(item["head"], head).eval().requires_grad_(False))
        self._detector = None
        if state["detector"] is not None:
            days = int(state["detector"]["days"])
            head = build_for_loading(lambda: self._detector_head(days))
            self._detector = (self._load_encoder(state["detector"]["encoder"]),
                              from_safe(state["detector"]["head"], head).eval().requires_grad_(False), days)

    def pretraining_losses(self, encoder: UnifiedEncoder, recovery: Recovery, x: torch.Tensor,
                           valid: torch.Tensor, generator: torch.Generator
                           ) -> tuple[dict[str, torch.Tensor], list[RoutingStats]]:
        """The eq. 26 terms for profiles ``x [B, T]`` (scaled) with valid mask ``valid`` (:func:`vib_objective`
        plus the balance terms; ``kl`` is the true KL, reported, whose eq. 26 weight is ``2 beta / T``).

        Masks, input noise and the posterior draw come from ``generator`` (CPU); gate noise (training mode only)
        from the global torch RNG.
        """
        missing = draw_missing(valid, self.mask_min, self.mask_max, generator, max_blocks=1)
        observed = valid & ~missing
        x_n, mean, std = normalise(x, observed, self.norm_floor)
        target = (x - mean) / std
        noise = torch.randn(x.shape, generator=generator).to(x.device) * self.noise_std
        x_in = x_n + noise * observed.to(x.dtype)
        out = encoder(x_in, observed, sample=self.vib, generator=generator)
        recon = recovery(out.z)
        objective, mse, kl = vib_objective(recon, target, valid, out.mu, out.sigma, self.beta)
        bal = sum((balance_loss(s.importance, s.load, self.w_value, self.w_load) for s in out.stats),
                  mse.new_zeros(()))
        total = objective + bal
        return {"loss": total, "mse": mse, "kl": kl, "balance": bal}, out.stats

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One pre-training step (a ``Trainer.fit`` step function); ``batch [B, 2, T]`` = values, valid."""
        x, valid = batch[:, 0], batch[:, 1] > 0.5
        with trainer.autocast():
            losses, _ = self.pretraining_losses(trainer.model("encoder"), trainer.model("recovery"), x, valid,
                                                trainer.generator)
        raise_if_nonfinite("unified", it, losses)
        trainer.update(losses["loss"])
        return {k: v.detach() for k, v in losses.items()}

    # -- pre-training -------------------------------------------------------------------------------------------
    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Pre-train on the scaled profiles given (Algorithm 2), resuming from ``ctx.checkpoint_dir``.

        Tasks pass the protocol's pre-training set here (the class sets ``pretrains = True``, see
        :func:`bench.tasks.common.fitting_set`; under the paper's protocol a random 80 % of all profiles, none of
        them in any task's training, validation or test part) and the task's training part to the fine-tunes.

        Raises:
            ValueError: unusable training set or a profile length that ``n_patches`` does not divide.
            ModelFitError: the loss or the weights became non-finite.
        """
        self._encoder = None
        self._forecasters, self._detector, self._diagnostics = {}, None, {}
        values, valid = profile_matrices(train, "unified")
        patch_length(values.shape[1], self.n_patches)
        data = np.stack([values, valid.astype(np.float32)], axis=1)
        cfg = self.train_config(len(values))
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer(self.build_networks(values.shape[1]), None, cfg, ctx)
        self.train_result_ = trainer.fit(data, self.training_step, stop_after=ctx.budget_steps)
        encoder, recovery = trainer.networks["encoder"].eval(), trainer.networks["recovery"].eval()
        params = list(encoder.parameters()) + list(recovery.parameters())
        if not all(torch.isfinite(p).all() for p in params):
            raise ModelFitError("unified: the weights are non-finite after pre-training")
        self._encoder, self._recovery = encoder.requires_grad_(False), recovery.requires_grad_(False)
        self._theta_s = [p.detach().clone() for p in encoder.parameters()]
        self._amp_dtype = trainer.amp_dtype
        self.length_ = values.shape[1]
        self._diagnostics = self._measure(values, valid, ctx, trainer.step_count)

    @torch.no_grad()
    def _measure(self, values: np.ndarray, valid: np.ndarray, ctx: RunContext, steps: int) -> dict[str, float]:
        """Expert utilisation and the pre-training loss terms on a seeded subset, in evaluation mode."""
        n = min(self.diag_profiles, len(values))
        # sub-stream 0: the subset; 1: its masks and input noise
        rows = np.sort(ctx.rng(Stream.MODEL_DIAGNOSTICS, 0).choice(len(values), n, replace=False))
        device = next(self._encoder.parameters()).device
        generator = ctx.torch_generator(Stream.MODEL_DIAGNOSTICS, 1)
        x = torch.as_tensor(values[rows], device=device)
        v = torch.as_tensor(valid[rows], device=device)
        losses, stats = self.pretraining_losses(self._encoder, self._recovery, x, v, generator)
        out = {"pretrain_mse": float(losses["mse"]), "pretrain_kl": float(losses["kl"]),
               "pretrain_balance": float(losses["balance"]), "pretrain_steps": float(steps)}
        if not self.moe:
            return out
        fractions = routing_fractions(stats)
        for layer, frac in enumerate(fractions):
            for e, f in enumerate(frac):
                out[f"expert_util/L{layer}/E{e}"] = float(f)
        stacked = np.stack(fractions)
        out["expert_util_max"] = float(stacked.max())
        out["expert_util_min"] = float(stacked.min())
        out["expert_util_cv"] = float(np.mean(stacked.std(axis=1) / stacked.mean(axis=1)))
        return out

    def diagnostics(self) -> dict[str, float]:
        """Expert utilisation and final pre-training losses (see the module docstring); ``{}`` before fit."""
        return dict(self._diagnostics)

    def _require_fit(self, method: str) -> None:
        if self._encoder is None:
            raise RuntimeError(f"unified: call fit() before {method}()")

    def _inference_setup(self, ctx: RunContext) -> tuple[torch.device, torch.dtype | None]:
        device = resolve_device(ctx.device)
        return device, (self._amp_dtype if device.type == "cuda" else None)

    # -- imputation (single type: the recovery head is the output layer) ------------------------------------
    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[n_samples, N, T]`` float32 reconstructions, observed values kept exactly, padding 0.

        Raises:
            RuntimeError: not fitted.
            ValueError: bad ``n_samples`` or profiles of another length than pre-trained on.
        """
        self._require_fit("impute")
        n_samples = _check_samples(n_samples, "unified")
        n, t = query.values.shape
        if t != self.length_:
            raise ValueError(f"unified: pre-trained on profiles of {self.length_} steps, the query has {t}")
        observed, valid = np.asarray(query.observed, bool), np.asarray(query.valid, bool)
        x = np.where(observed, np.nan_to_num(query.values, nan=0.0), 0.0).astype(np.float32)
        device, amp_dtype = self._inference_setup(ctx)
        encoder, recovery = self._encoder.to(device), self._recovery.to(device)
        generator = ctx.torch_generator(Stream.MODEL_IMPUTE)

        def encode(start: int, size: int) -> torch.Tensor:
            """``[size, P d_model + 2]``: the token states (flattened), then the instance mean and std."""
            xb = torch.as_tensor(x[start:start + size], device=device)
            ob = torch.as_tensor(observed[start:start + size], device=device)
            x_n, mean, std = normalise(xb, ob, self.norm_floor)
            with autocast(device, amp_dtype):
                h, _ = encoder.features(x_n, ob)
            return torch.cat([h.float().reshape(size, -1), mean.float(), std.float()], dim=1)

        # float32 throughout, so the round trip through NumPy is exact
        packed = torch.as_tensor(draw_in_batches(n, self.sample_batch, encode), device=device)
        h = packed[:, :-2].reshape(n, self.n_patches, self.d_model)
        mean, std = packed[:, -2:-1], packed[:, -1:]
        with torch.no_grad():
            out = np.empty((n_samples, n, t), dtype=np.float32)
            for s in range(n_samples):
                # one draw of the whole query per member: the ensemble does not depend on the chunking
                z, _, _ = encoder.bottle(h, sample=self.vib, generator=generator)
                out[s] = (recovery(z) * std + mean).cpu().numpy()
        out = np.where(observed[None], x[None], out)
        return np.where(valid[None], out, 0.0).astype(np.float32)

    # -- shared by the fine-tuned workflows ---------------------------------------------------------------------
    def _finetune(self, data: np.ndarray, head: nn.Module, loss_fn, ctx: RunContext, label: str
                  ) -> tuple[UnifiedEncoder, nn.Module]:
        """Train ``head`` and a copy of the pre-trained encoder on the rows of ``data`` with ``loss_fn``.

        ``loss_fn(encoder, head, batch, trainer) -> loss``; the L2-SP regulariser is added here. The encoder
        copy is frozen (evaluation mode, no gradients) when ``freeze_encoder`` is set.
        """
        encoder = copy.deepcopy(self._encoder)
        encoder.requires_grad_(not self.freeze_encoder)
        networks = {"head": head} if self.freeze_encoder else {"encoder": encoder, "head": head}
        ft_ctx = replace(ctx, checkpoint_dir=None)
        trainer = Trainer(networks, None, self._finetune_config(), ft_ctx)
        encoder.to(trainer.device)
        reference = [p.to(trainer.device) for p in self._theta_s]

        def step(batch: torch.Tensor, it: int, tr: Trainer) -> dict:
            if self.freeze_encoder:
                encoder.eval()
            with tr.autocast():
                task_loss = loss_fn(encoder, tr.model("head"), batch, tr)
            reg = (squared_distance(encoder, reference) if not self.freeze_encoder and self.finetune_reg > 0
                   else task_loss.new_zeros(()))
            loss = task_loss + self.finetune_reg * reg
            raise_if_nonfinite(f"unified ({label})", it, {"loss": loss})
            tr.update(loss)
            return {"loss": task_loss.detach(), "reg": reg.detach()}

        self.finetune_result_ = trainer.fit(data, step, stop_after=ctx.budget_steps)
        encoder.eval().requires_grad_(False)
        head.eval().requires_grad_(False)
        if not all(torch.isfinite(p).all() for p in list(encoder.parameters()) + list(head.parameters())):
            raise ModelFitError(f"unified ({label}): the weights are non-finite after fine-tuning")
        return encoder, head

    def _window_features(self, encoder: UnifiedEncoder, history: torch.Tensor, calendar: torch.Tensor,
                         sample: bool, generator: torch.Generator | None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head input ``[N, W P d + 2 W + 6]`` and the last window's mean and std ``[N, 1]`` of histories."""
        n, length = history.shape
        n_windows = length // self.length_
        windows = history.reshape(n * n_windows, self.length_)
        full = torch.ones_like(windows, dtype=torch.bool)
        x_n, mean, std = normalise(windows, full, self.norm_floor)
        z = encoder(x_n, full, sample=sample, generator=generator).z.float()
        mean, std = mean.reshape(n, n_windows), std.reshape(n, n_windows)
        feats = torch.cat([z.reshape(n, -1), mean, std, calendar], dim=1)
        return feats, mean[:, -1:], std[:, -1:]

    def _check_history(self, history_len: int) -> None:
        if history_len < self.length_ or history_len % self.length_:
            raise ValueError(f"unified: the history length ({history_len} steps) must be a positive multiple of "
                             f"the pre-training profile length T={self.length_}")

    # -- forecasting (multi type: a new feed-forward model on the load characteristics) ----------------------
    def fit_forecast(self, examples: ForecastExamples, ctx: RunContext) -> None:
        """Fine-tune a head (+ encoder copy) for this (history length, horizon); see the module docstring.

        Raises:
            RuntimeError: not fitted.
            ValueError: a history length that is not a multiple of ``T``.
            ModelFitError: the fine-tune diverged.
        """
        self._require_fit("fit_forecast")
        query = examples.query
        h_len, horizon = query.history.shape[1], int(query.horizon)
        self._check_history(h_len)
        calendar = query.calendar()
        data = np.concatenate([query.history, examples.target, calendar], axis=1).astype(np.float32)
        seed_everything(ctx.int_seed(Stream.MODEL_FINETUNE))
        head = self._forecast_head(h_len, horizon)

        def loss_fn(encoder: UnifiedEncoder, head_net: nn.Module, batch: torch.Tensor, tr: Trainer) -> torch.Tensor:
            hist, target, cal = batch[:, :h_len], batch[:, h_len:h_len + horizon], batch[:, h_len + horizon:]
            feats, mean, std = self._window_features(encoder, hist, cal, self.vib, tr.generator)
            pred = head_net(feats).float()
            return torch.mean((pred - (target - mean) / std) ** 2)

        self._forecasters[(h_len, horizon)] = self._finetune(data, head, loss_fn, ctx, "forecast")

    def forecast(self, query: ForecastQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[n_samples, N, horizon]`` (one posterior draw of every window's ``z`` per member) with the VIB,
        ``[N, horizon]`` (point forecast) without it.

        Raises:
            RuntimeError: not fitted, or no ``fit_forecast`` for this (history length, horizon).
        """
        self._require_fit("forecast")
        n_samples = _check_samples(n_samples, "unified")
        key = (query.history.shape[1], int(query.horizon))
        if key not in self._forecasters:
            raise RuntimeError(f"unified: no forecaster for history length {key[0]} and horizon {key[1]}; call "
                               f"fit_forecast() with such examples first (fitted: {sorted(self._forecasters)})")
        encoder, head = self._forecasters[key]
        device, amp_dtype = self._inference_setup(ctx)
        encoder, head = encoder.to(device), head.to(device)
        history = torch.as_tensor(np.asarray(query.history, np.float32), device=device)
        calendar = torch.as_tensor(query.calendar(), device=device)
        generator = ctx.torch_generator(Stream.MODEL_FORECAST)

        def member(start: int, size: int) -> torch.Tensor:
            sl = slice(start, start + size)
            with autocast(device, amp_dtype):
                feats, mean, std = self._window_features(encoder, history[sl], calendar[sl], self.vib, generator)
                pred = head(feats).float()
            return pred * std + mean

        members = n_samples if self.vib else 1
        out = np.stack([draw_in_batches(len(query), self.sample_batch, member) for _ in range(members)])
        return out if self.vib else out[0]

    # -- anomaly detection -------------------------------------------------------------------------------------
    def _detection_features(self, encoder: UnifiedEncoder, values: torch.Tensor, valid: torch.Tensor,
                            history: torch.Tensor | None) -> torch.Tensor:
        """Head input: ``[flattened z (posterior mean), instance mean, instance std]`` of the profile, plus,
        with ``history [N, D T]``, the profile's per-step z-score against the same time of day on the ``D``
        history days (``(x - mean) / max(std, detect_std_floor)``, clipped to +-10, 0 on padding)."""
        x_n, mean, std = normalise(values * valid.to(values.dtype), valid, self.norm_floor)
        z = encoder(x_n, valid, sample=False).mu.float()
        feats = [z.reshape(len(values), -1), mean, std]
        if history is not None:
            days = history.reshape(len(values), -1, values.shape[1]).float()
            ref_std = days.std(dim=1, unbiased=False).clamp_min(DETECT_STD_FLOOR)
            zscore = ((values.float() - days.mean(dim=1)) / ref_std).clamp(-10.0, 10.0)
            feats.append(zscore * valid.to(zscore.dtype))
        return torch.cat(feats, dim=1)

    def fit_detector(self, examples: DetectionExamples, ctx: RunContext) -> None:
        """Fine-tune a detector head (+ encoder copy) on labelled profiles with binary cross-entropy.

        Without ``history`` on the examples this is the paper's single-type workflow: a linear logit layer on
        the profile's representation. With ``history`` (the household's preceding days) it is the multi-type
        workflow: a feed-forward head (``head_layers`` x ``head_hidden``) on the representation plus the
        profile's per-step z-scores against those days, so the model can judge a day against the customer's
        own behaviour. ``anomaly_score`` then needs queries with the same number of history days.

        Raises:
            RuntimeError: not fitted.
            ValueError: profiles of another length than pre-trained on, or a single class.
            ModelFitError: the fine-tune diverged.
        """
        self._require_fit("fit_detector")
        query, labels = examples.query, np.asarray(examples.labels, bool)
        t = query.values.shape[1]
        if t != self.length_:
            raise ValueError(f"unified: pre-trained on profiles of {self.length_} steps, the examples have {t}")
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == len(labels):
            raise ValueError("unified: fit_detector needs both attacked and clean examples (labels of one class)")
        pos_weight = torch.tensor((len(labels) - n_pos) / n_pos)
        valid = np.asarray(query.valid, bool)
        values = np.where(valid, np.nan_to_num(query.values, nan=0.0), 0.0)
        days = query.history_days
        history = np.zeros((len(labels), 0)) if query.history is None else np.asarray(query.history)
        data = np.concatenate([values, valid, history, labels[:, None]], axis=1).astype(np.float32)
        seed_everything(ctx.int_seed(Stream.MODEL_FINETUNE))
        head = self._detector_head(days)
        h_end = 2 * t + days * t

        def loss_fn(encoder: UnifiedEncoder, head_net: nn.Module, batch: torch.Tensor, tr: Trainer) -> torch.Tensor:
            x, v, y = batch[:, :t], batch[:, t:2 * t] > 0.5, batch[:, h_end]
            hist = batch[:, 2 * t:h_end] if days else None
            logit = head_net(self._detection_features(encoder, x, v, hist)).float().squeeze(1)
            return F.binary_cross_entropy_with_logits(logit, y, pos_weight=pos_weight.to(logit.device))

        self._detector = (*self._finetune(data, head, loss_fn, ctx, "detect"), days)

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float logits of the fine-tuned detector (higher = more likely attacked), deterministic.

        Raises:
            RuntimeError: ``fit_detector`` was not called.
            ValueError: another profile length, or another number of history days, than the detector's.
        """
        if self._detector is None:
            raise RuntimeError("unified: call fit_detector() (after fit()) before anomaly_score()")
        t = query.values.shape[1]
        if t != self.length_:
            raise ValueError(f"unified: pre-trained on profiles of {self.length_} steps, the query has {t}")
        encoder, head, days = self._detector
        if query.history_days != days:
            raise ValueError(f"unified: the detector was fine-tuned with {days} history days, the query has "
                             f"{query.history_days}")
        device, amp_dtype = self._inference_setup(ctx)
        encoder, head = encoder.to(device), head.to(device)
        valid = np.asarray(query.valid, bool)
        values = np.where(valid, np.nan_to_num(query.values, nan=0.0), 0.0).astype(np.float32)
        history = None if query.history is None else np.asarray(query.history, np.float32)

        def score(start: int, size: int) -> torch.Tensor:
            sl = slice(start, start + size)
            xb = torch.as_tensor(values[sl], device=device)
            vb = torch.as_tensor(valid[sl], device=device)
            hb = None if history is None else torch.as_tensor(history[sl], device=device)
            with autocast(device, amp_dtype):
                return head(self._detection_features(encoder, xb, vb, hb)).float().squeeze(1)

        return draw_in_batches(len(values), self.sample_batch, score).astype(np.float64)


__all__ = ["UnifiedModel", "UnifiedEncoder", "EncoderBlock", "EncoderOutput", "Recovery", "patch_length", "patchify",
           "normalise", "squared_distance", "routing_fractions", "vib_objective"]
