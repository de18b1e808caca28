"""SmartMeterFM: one conditional flow-matching model for generation, imputation and super-resolution.

**Flow matching** (:mod:`baselines.flow`). Noise ``x0 ~ N(0, I)`` (zero on padding) is carried to a profile
``x1`` along ``x_t = (1 - t) x0 + t x1``; the network ``v_theta(x_t, t, c)`` regresses the velocity
``x1 - x0`` under the masked MSE ``sum_valid (v_theta - (x1 - x0))^2 / #valid``, with ``t ~ logit-normal(0, 1)``.
Sampling integrates ``dx/dt = v`` from ``t = 0`` to 1 (Euler or Heun).

**Network** (:class:`SmartMeterFMNet`), for ``x_t [B, T]``:

1. Folding by ``r`` (``T / r`` tokens of ``r`` values) and a linear token embedding to ``d_model``.
2. **Aligned positional embedding**: token ``k`` starts ``k r Delta`` minutes after the first midnight
   (``Delta`` the resolution); its calendar position is ``p_k = 1440 * weekday + k r Delta``, the minutes since
   the Monday 00:00 of the first day's week. ``p_k`` is encoded by daily and weekly Fourier harmonics
   (``sin/cos(2 pi j p / 1440)``, ``sin/cos(2 pi j p / 10080)``) together with the geometric sinusoidal code of
   :func:`baselines.nn.sinusoidal_embedding`, then an MLP, and added to the tokens. The same clock time and
   weekday get the same code at every resolution, folding factor and profile length, and two months that
   start on different weekdays line up by weekday. When the weekday label is dropped (null), the weekday
   offset is dropped too (``p_k = k r Delta``) so that no weekday information reaches the unconditional model.
3. **Conditioning**: ``c = MLP(sin(1000 t)) + sum_a E_a[label_a]`` over the attributes month (12 labels),
   weekday of the first day (7), month length ``days`` (vocabulary {1, 28, 29, 30, 31}: 1 for daily
   profiles) and category (built from the training meta), each embedding with one extra **null** label;
   unknown values map to null.
4. ``n_layers`` pre-LN Transformer blocks with **adaLN-Zero** (:class:`baselines.nn.TransformerBlock`,
   ``gated=True``: each LayerNorm output is modulated by ``c`` and each residual branch gated by a
   zero-initialised projection of ``c``, so every block starts as the identity) and a final adaLN LayerNorm
   with a zero-initialised linear head to ``r`` values per token (DiT's final layer: the initial velocity
   is 0).
5. **Valid-step masking** (months of 28-31 days padded to 31): tokens made only of padding are removed from
   every attention row by the key mask (the fold factor should divide the steps per day so a token is
   either all valid or all padding), the noise is zero on padding, the loss skips padding, and the output is
   zeroed on padding.

**Label dropout and guidance.** During training each attribute is replaced by null independently with
probability ``label_dropout``, so one network learns ``v(x, t, c)`` and ``v(x, t, null)``. Sampling with
a condition uses classifier-free guidance ``v = v_null + w (v_cond - v_null)`` with ``w = guidance_scale``
(``w = 1`` is the plain conditional velocity and costs one evaluation; ``w != 1`` two). ``cond=None``
samples with every label null; for monthly data its valid mask (the month length, a structural input like
the positions) is drawn from the training months.

**Posterior sampling for the other tasks** (:func:`baselines.flow.guided_sample`): at each Euler step the
endpoint estimate ``x1_hat = x_t + (1 - t) v`` is projected onto the measurement and the velocity is rebuilt
from it; the output is projected once more, so observed values are kept exactly (imputation,
:class:`~baselines.flow.ObservedMask`), block means equal the coarse values (super-resolution,
:class:`~baselines.flow.AveragePool`). The query's meta gives the labels, so the same trained weights serve every
task.

**Constrained generation** (``target_peak`` / ``target_mean`` in ``cond``) is guided, as in SmartMeterFM,
not projected: at each step the endpoint estimate takes ``guidance_iterations`` damped Gauss-Newton steps of
size ``guidance_strength`` towards the mean and the smooth maximum (temperature ``peak_tau``) of
:class:`~baselines.flow.EndpointGuidance`, and the output is left as sampled, so the RMSE of the achieved peak
and mean measures the method. ``smartmeterfm-projected`` (``constraint_mode="projection"``) is a reference:
it projects onto :class:`~baselines.flow.Peak` and :class:`~baselines.flow.Mean` (alternated
``constraint_iterations`` times) at every step and once more at the end, so it meets the targets by
construction (the peak exactly, the mean to about 1e-3 in the scaled space) and its RMSE of ~0 says nothing
about the model. ``resample_steps > 0`` adds RePaint-style resampling for steps starting at
``t >= resample_after``.

Profiles:

* ``paper`` - the monthly 15-minute setup: fold ``r = 8``, ``d_model = 256``, 12 layers, 4 heads (the public
  SmartMeterFM configuration), FFN ``4 d = 1024`` (not stated; the standard ratio), no dropout (not stated),
  label dropout 0.1, ``t ~ logit-normal(0, 1)``, AdamW with betas (0.9, 0.95) and weight decay 0.05, warm-up
  steps. Not given by the sources and chosen here: 200k steps of batch 64 at lr 2e-4 with 2000 warm-up
  steps, EMA 0.9999, 100 Euler steps, ``w = 1``, no resampling. The public code decays the learning rate by a
  cosine schedule after the warm-up; the shared loop (:mod:`bench.train`) has warm-up only, so the rate stays
  constant. The public code also uses QK-RMSNorm and RoPE next to the absolute encoding; the shared
  Transformer blocks have neither, and the aligned encoding here is absolute only. ``compile =
  "reduce-overhead"`` (CUDA graphs on CUDA devices; ignored on the CPU); bf16 autocast on CUDA.
* ``quick`` - two CPU cores in about one to two minutes per fit at ``T = 96``: ``fold = "auto"`` (the rule of
  :func:`baselines.energydiff.resolve_fold`), ``d_model = 64``, 3 layers, 4 heads, FFN 256, 1500 steps of
  batch 64 at lr 1e-3 (100 warm-up steps), weight decay 0, EMA 0.995, 32 Euler steps. Measured on a loaded
  two-core machine with one torch thread, 700 daily profiles at ``T = 96``: 68 ms per step (about 100 s per
  fit) and 8 s for 720 samples.
* ``test`` - one block of width 32 (2 heads, FFN 64), 200 steps of batch 32 at lr 3e-3, EMA 0.98, 8 Euler
  steps: about a second for 60 profiles of 24 or 48 steps on one core, every task included, for the contract
  test. With only 60 profiles the conditional network follows its labels closely, so metadata that do not
  describe the profiles (e.g. a month label per household of a toy) hurt its imputations.

Randomness comes from the context's named streams: weight initialisation ``MODEL_INIT``, sampling noise
``MODEL_SAMPLE`` (generation), ``MODEL_IMPUTE`` and ``MODEL_SUPER_RESOLVE``, and the training months paired
with unconditional draws ``MODEL_SAMPLE_ROWS``. ``save`` / ``load`` keep the EMA network, what rebuilds it
(profile length, resolution, the training categories) and the training valid masks that unconditional
sampling draws from.

``ctx.budget_steps`` ends a fit after that many training steps of this call (resumable from
``ctx.checkpoint_dir`` as in the shared loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
import torch.nn.functional as F

from baselines.energydiff import resolve_fold
from baselines.flow import (ODE_SAMPLERS, AveragePool, Compose, EndpointGuidance, Mean, ObservedMask, Peak,
                            guided_sample, logit_normal_times, masked_mse, ot_path, ot_velocity)
from baselines.nn.blocks import build_for_loading, dtype_from_name, dtype_name
from baselines.nn.sampling import draw_in_batches
from baselines.nn.transformer import SinusoidalMLP, TransformerBlock, check_fold, fold, sinusoidal_embedding, unfold
from bench.api import ConstrainedGenerator, Generator, Imputer, Model, Params, SuperResolver
from bench.context import RunContext
from bench.data.profileset import ProfileSet, steps_per_day
from bench.errors import ModelFitError
from bench.persist import from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery
from bench.train import Trainer, TrainConfig, train_config_from, autocast, resolve_device, seed_everything

ATTRIBUTES = ("month", "weekday", "days", "category")
DAYS_VOCAB = (1, 28, 29, 30, 31)
DAILY_HARMONICS = 4
WEEKLY_HARMONICS = 3


def aligned_positions(tokens: int, fold_factor: int, resolution: int, weekday: torch.Tensor,
                      known: torch.Tensor | None = None) -> torch.Tensor:
    """Calendar position in minutes of each token's first step, ``[B, tokens]``.

    ``1440 * weekday + k * fold_factor * resolution``: minutes since the Monday 00:00 of the first day's
    week. Rows where ``known`` is False (weekday label null) get no weekday offset.
    """
    step = torch.arange(tokens, dtype=torch.float32, device=weekday.device) * float(fold_factor * resolution)
    offset = 1440.0 * weekday.to(torch.float32)
    if known is not None:
        offset = torch.where(known, offset, torch.zeros_like(offset))
    return offset.unsqueeze(-1) + step


def calendar_features(minutes: torch.Tensor, dim: int) -> torch.Tensor:
    """Daily and weekly Fourier harmonics of ``minutes`` plus a ``dim``-wide sinusoidal code, ``[..., F]``."""
    parts = [sinusoidal_embedding(minutes, dim)]
    for period, harmonics in ((1440.0, DAILY_HARMONICS), (10080.0, WEEKLY_HARMONICS)):
        j = torch.arange(1, harmonics + 1, dtype=torch.float32, device=minutes.device)
        angle = 2 * math.pi * minutes.unsqueeze(-1) * j / period
        parts += [torch.sin(angle), torch.cos(angle)]
    return torch.cat(parts, dim=-1)


class SmartMeterFMNet(nn.Module):
    """Velocity network ``(x_t [B, T], t [B], labels [B, 4], valid [B, T]) -> [B, T]`` (module docstring).

    ``labels`` columns follow :data:`ATTRIBUTES` as integer indices; index ``vocab[a]`` is attribute ``a``'s
    null label.
    """

    def __init__(self, length: int, resolution: int, fold_factor: int, vocab: tuple[int, int, int, int],
                 d_model: int = 256, n_layers: int = 12, n_heads: int = 4, d_ff: int = 1024,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if resolution < 1:
            raise ValueError(f"resolution must be a positive number of minutes, got {resolution}")
        self.length = length
        self.resolution = resolution
        self.fold_factor = fold_factor
        self.tokens = check_fold(length, fold_factor)
        self.vocab = tuple(int(v) for v in vocab)
        self.embed = nn.Linear(fold_factor, d_model)
        pos_dim = d_model + 2 * (DAILY_HARMONICS + WEEKLY_HARMONICS)
        self.pos_dim = d_model
        self.pos_mlp = nn.Sequential(nn.Linear(pos_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.time_embed = SinusoidalMLP(d_model)
        self.labels = nn.ModuleList(nn.Embedding(v + 1, d_model) for v in self.vocab)
        for emb in self.labels:
            nn.init.normal_(emb.weight, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, dropout, cond_dim=d_model, gated=True)
                                    for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.final_mod = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, fold_factor)
        for layer in (self.final_mod, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected input [B, {self.length}], got {tuple(x.shape)}")
        b = x.shape[0]
        if valid is None:
            valid = torch.ones_like(x, dtype=torch.bool)
        valid = valid.to(torch.bool)
        x = torch.where(valid, x, torch.zeros_like(x))
        weekday = labels[:, 1]
        known = weekday < self.vocab[1]
        pos = aligned_positions(self.tokens, self.fold_factor, self.resolution,
                                torch.where(known, weekday, torch.zeros_like(weekday)), known)
        h = self.embed(fold(x, self.fold_factor)) + self.pos_mlp(calendar_features(pos, self.pos_dim))
        c = self.time_embed(t.reshape(b).to(torch.float32) * 1000.0)
        for i, emb in enumerate(self.labels):
            c = c + emb(labels[:, i])
        key_mask = fold(valid, self.fold_factor).any(-1)
        for block in self.blocks:
            h = block(h, c, key_mask)
        shift, scale = self.final_mod(F.silu(c)).unsqueeze(1).chunk(2, dim=-1)
        out = self.out((1 + scale) * self.final_norm(h) + shift)
        v = unfold(out, self.fold_factor).squeeze(-1)
        return torch.where(valid, v, torch.zeros_like(v))


def drop_labels(labels: torch.Tensor, vocab: tuple[int, ...], p: float, uniform: torch.Tensor) -> torch.Tensor:
    """Replace each label by its attribute's null index where ``uniform < p`` (``uniform`` in [0, 1), same shape)."""
    null = torch.as_tensor(vocab, dtype=labels.dtype, device=labels.device).expand_as(labels)
    return torch.where(uniform < p, null, labels)


@dataclass(frozen=True)
class SmartMeterFMParams(Params):
    """SmartMeterFM's hyper-parameters; the defaults are the ``quick`` profile (module docstring)."""

    fold: int | Literal["auto"] = "auto"
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    label_dropout: float = 0.1
    t_mean: float = 0.0
    t_std: float = 1.0
    train_steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    ema_decay: float = 0.995
    grad_clip: float | None = 1.0
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 1000
    sampler: Literal["euler", "heun"] = "euler"
    sample_steps: int = 32
    guidance_scale: float = 1.0
    resample_steps: int = 0
    resample_after: float = 0.5
    constraint_mode: Literal["guidance", "projection"] = "guidance"
    guidance_strength: float = 0.5
    guidance_iterations: int = 1
    peak_tau: float = 0.02
    constraint_iterations: int = 20
    sample_batch: int = 1024
    compile: str | None = None

    def __post_init__(self) -> None:
        fold = self.fold
        if fold != "auto" and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 1):
            raise ValueError(f"fold must be a positive integer or 'auto', got {fold!r}")
        if self.sampler not in ODE_SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(ODE_SAMPLERS)}, got {self.sampler!r}")
        for name in ("d_model", "n_layers", "n_heads", "d_ff", "train_steps", "batch_size", "sample_steps",
                     "sample_batch", "constraint_iterations", "guidance_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not self.t_std > 0:
            raise ValueError(f"t_std must be positive, got {self.t_std}")
        if self.resample_steps < 0:
            raise ValueError(f"resample_steps must be >= 0, got {self.resample_steps}")
        if not 0.0 < self.guidance_strength <= 1.0:
            raise ValueError(f"guidance_strength must lie in (0, 1], got {self.guidance_strength}")
        if not self.peak_tau > 0:
            raise ValueError(f"peak_tau must be positive, got {self.peak_tau}")


@register_model("smartmeterfm-projected", constraint_mode="projection")
@register_model("smartmeterfm")
class SmartMeterFM(Model, Generator, ConstrainedGenerator, Imputer, SuperResolver):
    """SmartMeterFM: conditional flow matching with a folded Transformer; guidance serves imputation and SR."""

    Params = SmartMeterFMParams
    profiles = {
        # a one-block network on 6-12 tokens: fits ~60 profiles and serves every task in about a second
        "test": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "train_steps": 200, "batch_size": 32,
                 "lr": 3e-3, "warmup_steps": 20, "ema_decay": 0.98, "sample_steps": 8},
        "paper": {"fold": 8, "d_model": 256, "n_layers": 12, "d_ff": 1024, "train_steps": 200_000, "lr": 2e-4,
                  "weight_decay": 0.05, "warmup_steps": 2000, "ema_decay": 0.9999, "sample_steps": 100,
                  "checkpoint_every": 5000, "compile": "reduce-overhead"},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._net: nn.Module | None = None

    @property
    def net_config(self) -> dict:
        """The velocity network's size arguments (:class:`SmartMeterFMNet`)."""
        return {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads, "d_ff": self.d_ff,
                "dropout": float(self.dropout)}

    @property
    def train_config(self) -> TrainConfig:
        """The shared training loop's settings (AdamW betas (0.9, 0.95), as the public code)."""
        return train_config_from(self.params, betas=(0.9, 0.95))

    # -- labels ---------------------------------------------------------------------------------------------
    @property
    def vocab(self) -> tuple[int, int, int, int]:
        """Number of real labels per attribute (the null label is that index)."""
        return (12, 7, len(DAYS_VOCAB), len(self.categories_))

    def encode_labels(self, meta: pd.DataFrame | None, n: int) -> np.ndarray:
        """``[n, 4]`` int64 label indices from ``meta`` (missing column, NaN or unknown value -> null)."""
        month_null, weekday_null, days_null, cat_null = self.vocab
        out = np.array([[month_null, weekday_null, days_null, cat_null]] * n, dtype=np.int64).reshape(n, 4)
        if meta is None:
            return out
        if len(meta) != n:
            raise ValueError(f"meta has {len(meta)} rows for {n} profiles")

        def numeric(col: str) -> np.ndarray:
            return pd.to_numeric(meta[col], errors="coerce").to_numpy(dtype=float)

        if "month" in meta:
            m = numeric("month")
            ok = np.isfinite(m) & (m >= 1) & (m <= 12) & (m == np.round(m))
            out[ok, 0] = m[ok].astype(np.int64) - 1
        if "weekday" in meta:
            w = numeric("weekday")
            ok = np.isfinite(w) & (w >= 0) & (w <= 6) & (w == np.round(w))
            out[ok, 1] = w[ok].astype(np.int64)
        if "days" in meta:
            d = numeric("days")
            index = {v: i for i, v in enumerate(DAYS_VOCAB)}
            out[:, 2] = [index.get(int(v), days_null) if np.isfinite(v) else days_null for v in d]
        if "category" in meta:
            index = {c: i for i, c in enumerate(self.categories_)}
            out[:, 3] = [index.get(str(c), cat_null) if not pd.isna(c) else cat_null for c in meta["category"]]
        return out

    def valid_from_days(self, days: np.ndarray) -> np.ndarray:
        """``[n, T]`` valid masks: the first ``days * steps_per_day`` steps (all steps for daily profiles)."""
        days = np.asarray(days, dtype=float)
        spd = steps_per_day(self.resolution_)
        lengths = np.where(np.isfinite(days), days * spd, self.length_)
        lengths = np.clip(lengths, 1, self.length_)
        return np.arange(self.length_)[None, :] < lengths[:, None]

    # -- training -------------------------------------------------------------------------------------------
    def build_network(self, length: int, resolution: int) -> SmartMeterFMNet:
        """A fresh velocity network (needs ``categories_`` set by :meth:`fit` or by hand)."""
        return SmartMeterFMNet(length, resolution, resolve_fold(self.fold, length), self.vocab, **self.net_config)

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One flow-matching step on a packed batch ``[values | valid | labels]`` (a ``Trainer.fit`` step)."""
        length = self.length_
        x1 = batch[:, :length]
        valid = batch[:, length:2 * length] > 0.5
        labels = batch[:, 2 * length:].round().long()
        b = x1.shape[0]
        labels = drop_labels(labels, self.vocab, self.label_dropout, trainer.rand(b, len(ATTRIBUTES)))
        t = logit_normal_times(trainer.randn(b), self.t_mean, self.t_std)
        x0 = torch.where(valid, trainer.randn(b, length), torch.zeros_like(x1))
        x1 = torch.where(valid, x1, torch.zeros_like(x1))
        x_t = ot_path(x0, x1, t)
        with trainer.autocast():
            pred = trainer.model("net")(x_t, t, labels, valid)
        loss = masked_mse(pred.float(), ot_velocity(x0, x1), valid)
        if it % 100 == 0 and not torch.isfinite(loss):
            raise ModelFitError(f"smartmeterfm: training loss became non-finite at step {it}")
        trainer.update(loss)
        return {"loss": loss.detach()}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train on ``train`` (values scaled to about [-1, 1]; ``mask`` = valid steps) with the shared loop.

        Raises:
            ValueError: empty set, non-finite valid values, or ``T`` not divisible by the folding factor.
            ModelFitError: the loss or the EMA weights became non-finite.
        """
        self._net = None
        values = np.asarray(train.values, dtype=np.float32)
        valid = np.asarray(train.mask, dtype=bool)
        if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
            raise ValueError(f"smartmeterfm: training set {train.name!r} is empty (shape {values.shape})")
        if not np.isfinite(values[valid]).all():
            raise ValueError(f"smartmeterfm: training set {train.name!r} holds non-finite valid values")
        if not valid.any(axis=1).all():
            raise ValueError(f"smartmeterfm: training set {train.name!r} has profiles without valid steps")
        self.length_ = values.shape[1]
        self.resolution_ = int(train.resolution)
        self.period_ = train.period
        self.categories_ = tuple(sorted({str(c) for c in train.meta["category"] if not pd.isna(c)}))
        labels = self.encode_labels(train.meta, len(values))
        packed = np.concatenate([np.where(valid, values, 0.0), valid.astype(np.float32), labels.astype(np.float32)],
                                axis=1).astype(np.float32)
        self.train_valid_ = valid
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        net = self.build_network(self.length_, self.resolution_)
        trainer = Trainer({"net": net}, None, self.train_config, ctx, ema=("net",))
        self.train_result_ = trainer.fit(packed, self.training_step, stop_after=ctx.budget_steps)
        ema = trainer.sampling_network("net")
        if not all(torch.isfinite(p).all() for p in ema.parameters()):
            raise ModelFitError("smartmeterfm: the EMA weights are non-finite")
        self._net = ema.eval()
        self._amp_dtype = trainer.amp_dtype

    # -- persistence ----------------------------------------------------------------------------------------
    _STATE = ("length_", "resolution_", "period_", "categories_", "train_valid_")

    def get_state(self) -> dict:
        """The EMA network, what rebuilds it (length, resolution, categories), the training valid masks that
        unconditional sampling draws from, and the sampling dtype ({} before fit)."""
        if self._net is None:
            return {}
        state = {k: to_safe(getattr(self, k), f"SmartMeterFM.{k}") for k in self._STATE}
        return {**state, "amp_dtype": dtype_name(self._amp_dtype), "_net": to_safe(self._net, "SmartMeterFM._net")}

    def set_state(self, state: dict) -> None:
        """Rebuild the network for the saved shape and categories, then load its weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        self.categories_ = tuple(str(c) for c in from_safe(state.pop("categories_")))
        length, resolution = int(state["length_"]), int(state["resolution_"])
        self._net = build_for_loading(lambda: self.build_network(length, resolution)).eval().requires_grad_(False)
        super().set_state(state)

    # -- sampling -------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._net is None:
            raise RuntimeError("smartmeterfm: call fit() before sampling")

    def _velocity(self, device: torch.device, labels: torch.Tensor, valid: torch.Tensor, scale: float):
        """The (guided) velocity function for fixed labels and valid masks."""
        net = self._net.to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None
        null = torch.as_tensor(self.vocab, dtype=labels.dtype, device=device).expand_as(labels)
        guided = scale != 1.0 and bool((labels != null).any())

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with autocast(device, amp_dtype):
                if not guided:
                    return net(x, t, labels, valid).float()
                both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]),
                           torch.cat([valid, valid])).float()
                v_cond, v_null = both.chunk(2)
                return v_null + scale * (v_cond - v_null)

        return velocity

    def _run(self, labels: np.ndarray, valid: np.ndarray, operator_for, ctx: RunContext,
             stream: Stream) -> np.ndarray:
        """Sample one profile per row of ``labels`` / ``valid`` in batches; ``operator_for(rows)`` gives the
        measurement of those rows (an operator to project on, an :class:`EndpointGuidance`, or None: plain ODE
        sampling with the configured sampler). Noise comes from
        ``stream`` of ``ctx``."""
        device = resolve_device(ctx.device)
        generator = ctx.torch_generator(stream)

        def draw(start: int, size: int) -> torch.Tensor:
            rows = np.arange(start, start + size)
            lab = torch.as_tensor(labels[rows], device=device)
            val = torch.as_tensor(valid[rows], device=device)
            noise = torch.randn(size, self.length_, generator=generator).to(device)
            noise = torch.where(val, noise, torch.zeros_like(noise))
            velocity = self._velocity(device, lab, val, self.guidance_scale)
            op = operator_for(rows, device)
            guidance = op if isinstance(op, EndpointGuidance) else None
            if op is None and self.resample_steps == 0:
                x = ODE_SAMPLERS[self.sampler](velocity, noise, self.sample_steps)
            else:
                x = guided_sample(velocity, noise, None if guidance else op, self.sample_steps,
                                  self.resample_steps, self.resample_after, generator=generator, valid=val,
                                  guidance=guidance)
            return torch.where(val, x, torch.zeros_like(x))

        return draw_in_batches(len(labels), self.sample_batch, draw)

    def sample(self, n: int, cond: pd.DataFrame | None, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 profiles (scaled space, 0 on padding).

        ``cond`` None: every label null. A DataFrame of ``n`` rows: profile ``i`` under row ``i`` (guided by
        ``guidance_scale``); its optional ``target_peak`` / ``target_mean`` columns are approached by guidance
        (``constraint_mode="guidance"``) or met exactly by projection (``"projection"``).
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"smartmeterfm: n must be a positive integer, got {n!r}")
        n = int(n)
        if cond is None:
            labels = self.encode_labels(None, n)
            rows = ctx.rng(Stream.MODEL_SAMPLE_ROWS).integers(0, len(self.train_valid_), size=n)
            valid = self.train_valid_[rows]
            return self._run(labels, valid, lambda r, d: None, ctx, Stream.MODEL_SAMPLE)
        if not isinstance(cond, pd.DataFrame):
            raise ValueError(f"smartmeterfm: cond must be None or a DataFrame, got {type(cond).__name__}")
        if len(cond) != n:
            raise ValueError(f"smartmeterfm: cond has {len(cond)} rows for n={n}")
        cond = cond.reset_index(drop=True)
        labels = self.encode_labels(cond, n)
        days = (pd.to_numeric(cond["days"], errors="coerce").to_numpy(dtype=float) if "days" in cond
                else np.full(n, np.nan))
        valid = self.valid_from_days(days)
        peak = (pd.to_numeric(cond["target_peak"], errors="coerce").to_numpy(dtype=np.float32)
                if "target_peak" in cond else None)
        mean = (pd.to_numeric(cond["target_mean"], errors="coerce").to_numpy(dtype=np.float32)
                if "target_mean" in cond else None)
        has_peak = peak is not None and np.isfinite(peak).any()
        has_mean = mean is not None and np.isfinite(mean).any()
        if not (has_peak or has_mean):
            return self._run(labels, valid, lambda r, d: None, ctx, Stream.MODEL_SAMPLE)

        def operator_for(rows: np.ndarray, device: torch.device):
            val = torch.as_tensor(valid[rows], device=device)
            ops = []
            if has_mean:
                ops.append(Mean(torch.as_tensor(mean[rows], device=device), val))
            if has_peak:
                ops.append(Peak(torch.as_tensor(peak[rows], device=device), val))
            if self.constraint_mode == "guidance":
                return EndpointGuidance(ops, strength=self.guidance_strength, iterations=self.guidance_iterations,
                                        tau=self.peak_tau)
            return Compose(ops, iterations=self.constraint_iterations if len(ops) > 1 else 1)

        return self._run(labels, valid, operator_for, ctx, Stream.MODEL_SAMPLE)

    def _repeat(self, meta: pd.DataFrame, n_samples: int, n: int) -> np.ndarray:
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"smartmeterfm: n_samples must be a positive integer, got {n_samples!r}")
        return np.tile(self.encode_labels(meta.reset_index(drop=True), n), (int(n_samples), 1))

    def _check_length(self, length: int) -> None:
        if length != self.length_:
            raise ValueError(f"smartmeterfm: query profiles have T={length}; the model was fitted on T={self.length_}")

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` imputations by posterior sampling with the observed-value projection.

        Observed values are returned exactly; padding is 0.
        """
        self._check_fitted()
        n, length = query.values.shape
        self._check_length(length)
        labels = self._repeat(query.meta, n_samples, n)
        s = len(labels) // n
        observed = np.tile(np.asarray(query.observed, dtype=bool), (s, 1))
        valid = np.tile(np.asarray(query.valid, dtype=bool), (s, 1))
        values = np.tile(np.where(query.observed, query.values, 0.0).astype(np.float32), (s, 1))

        def operator_for(rows: np.ndarray, device: torch.device):
            return ObservedMask(torch.as_tensor(values[rows], device=device),
                                torch.as_tensor(observed[rows], device=device),
                                torch.as_tensor(valid[rows], device=device))

        out = self._run(labels, valid, operator_for, ctx, Stream.MODEL_IMPUTE).reshape(s, n, length)
        # the projection already restores them; copying keeps them bit-identical to the query
        obs = np.asarray(query.observed, dtype=bool)
        out[:, obs] = np.asarray(query.values, dtype=np.float32)[obs]
        return out

    def super_resolve(self, query: SuperResolutionQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` high-resolution samples whose ``factor``-block means reproduce ``query.low``."""
        self._check_fitted()
        n, length = len(query), query.length
        self._check_length(length)
        labels = self._repeat(query.meta, n_samples, n)
        s = len(labels) // n
        valid = np.tile(np.asarray(query.valid, dtype=bool), (s, 1))
        low = np.tile(np.asarray(query.low, dtype=np.float32), (s, 1))

        def operator_for(rows: np.ndarray, device: torch.device):
            return AveragePool(torch.as_tensor(low[rows], device=device), int(query.factor),
                               torch.as_tensor(valid[rows], device=device))

        return self._run(labels, valid, operator_for, ctx, Stream.MODEL_SUPER_RESOLVE).reshape(s, n, length)
