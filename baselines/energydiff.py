"""EnergyDiff: a denoising diffusion model with a folded Transformer denoiser (the EnergyDiff paper, Sec. III-A).

Network (:class:`EnergyDiffNet`), for a daily profile ``x_s [T]`` at diffusion step ``s``:

1. **Folding** (eq. 9): ``r`` consecutive steps become one token of ``r`` channels, ``T / r`` tokens, which cuts
   the attention cost by ``r^2`` (``fold=1`` disables it, for the folding ablation of the paper's Table IX).
   ``T`` must be divisible by ``r``.
2. **Diffusion-step encoding** (eqs. 10-14): a sinusoidal encoding of ``s`` through a SiLU MLP gives the step
   embedding; it scales and shifts the folded input, ``(1 + scale(s)) * x + shift(s)``, with the projection
   initialised at zero as in the paper, and it modulates every Transformer block (FiLM / adaLN, below). The
   paper maps the encoding by Linear-SiLU-Linear straight to one scale and shift; we share a
   Linear-SiLU-Linear embedding between all uses and give each use its own SiLU-Linear head (the DiT layout),
   one linear layer deeper.
3. **Initial convolution** (eq. 18): a large-kernel ``Conv1d`` from ``r`` channels to ``d_model`` with circular
   padding (a day wraps around midnight). The kernel is shrunk for very short token sequences so that no
   token is seen twice through the wrap (:class:`baselines.nn.TokenConv1d`).
4. **Time-of-day encoding** (eqs. 15-17): token ``k`` starts at minute ``k * r * resolution`` of the day;
   that minute is encoded sinusoidally and mapped by an MLP to a scale and shift of the token features. Since
   the position is a clock time, not a token index, the same time of day gets the same encoding at every
   resolution and folding factor.
5. **Transformer blocks** (eqs. 19-29): ``n_layers`` pre-LayerNorm blocks (multi-head attention and a GELU
   feed-forward network, dropout); each LayerNorm output is modulated by the step embedding,
   ``(1 + scale(s)) * LN(h) + shift(s)``, through zero-initialised projections.
6. **Final projection** (eq. 30): a linear map of the concatenation of the blocks' input (after step 4) and
   their (normalised) output back to ``r`` values per token - a skip connection around the Transformer - and
   unfolding to ``T`` steps.

Diffusion (:mod:`baselines.diffusion`): cosine noise schedule with ``diffusion_steps`` steps; training draws
``s`` uniformly and minimises the MSE of the **v-prediction** ``v = alpha_s eps - sigma_s x_0``. We predict
``v`` as the public EnergyDiff code does (``pred_v``): unlike ``eps``, its target stays well scaled at both ends of
the cosine schedule (``eps``-prediction turns into a division by ``alpha_s ~ 0`` when ``x_0`` is recovered at
the noisy end, ``x_0``-prediction gives a near-identity task at the clean end), and it trains stably with the
MSE loss (the paper's text presents DDPM in its mean/noise parametrisation). Training runs in the shared loop
(:mod:`bench.train`: AdamW, EMA, gradient clipping, bf16 autocast on CUDA, checkpoint + resume), with the
weights initialised from the ``MODEL_INIT`` stream; sampling uses the EMA weights, in batches of
``sample_batch`` under ``torch.no_grad()``, with DPM-Solver++ by default (``sampler="ddim"`` or
``"ancestral"`` as alternatives), and clips the data prediction to ``[-clip, clip]`` (the training data are
scaled to ``[-1, 1]``). DPM-Solver++ spaces its ``sample_steps`` evaluations uniformly in log-SNR, which lands
between the integer steps the network was trained on; the sinusoidal step embedding is continuous, so this is
well defined (DDIM and ancestral sampling use integer steps spaced uniformly in ``s``; ``sample_steps``
applies to every sampler, so ancestral sampling with fewer than ``diffusion_steps`` steps runs the respaced
chain).

Imputation (capability ``impute``) needs no retraining: it guides the unconditional model by replacement
(RePaint): at every reverse step the observed steps of the noisy sample are overwritten by the observed values
forward-noised to that step, the unobserved steps follow the ancestral update (``impute_sampler``), each
update is repeated ``impute_resample`` times by diffusing back one step (resampling jumps), and the observed
values are pasted back into the final data prediction. ``impute_steps`` (50 quick, 100 paper) sets the
respaced chain length, so a completion costs about ``impute_steps * impute_resample`` network evaluations.
Only complete daily profiles are supported (the network has no padding mask).

Profiles:

* ``paper`` - the paper's network and schedule: ``fold=8``, 12 layers, ``d_model=512``, 8 heads, FFN 2048,
  dropout 0.1, 1000 diffusion steps, AdamW lr 1e-4, batch 64, 100k steps, EMA 0.9999, DPM-Solver++ of order
  3 with 100 steps, bf16 on CUDA, and ``compile="reduce-overhead"`` (``torch.compile`` with CUDA graphs for
  the training forward and backward; ignored on the CPU): uncompiled, this network on a few tokens is bound
  by kernel launches, and CUDA graphs train it about 4x faster on an H100 (88 vs 22 steps/s at ``T = 24``,
  ``results/perf/gpu-h100``). The paper's text states ``S = 4000`` training steps in its computation
  section while its public configuration trains with 1000 (``num_diffusion_step: 1000``); we use 1000, which
  is also the step count of the paper's ancestral-sampling timing ("E.Diff. (1000)"). The paper does not give
  the initial convolution's kernel size; we use 7.
* ``quick`` - a small network that trains and samples on two CPU cores in about a minute at ``T = 96``:
  ``fold="auto"`` (the smallest ``r >= 4`` dividing ``T`` with at most 24 tokens: ``r = 4`` at
  ``T = 24 / 48 / 96`` -> 6 / 12 / 24 tokens, ``r = 60`` at ``T = 1440``), ``d_model=64``, 3 layers, 4 heads,
  FFN 256, no dropout, 1800 steps of batch 64 at lr 1e-3 (100 warm-up steps), EMA 0.995, DPM-Solver++ of
  order 3 with 40 steps. Measured on two CPU cores for 700 training profiles and 720 samples: about 69 s
  at ``T = 96`` (64 s training, 5.5 s sampling), 42 s at ``T = 48`` and 35 s at ``T = 24``.
* ``test`` - one Transformer block of width 32 (2 heads, FFN 64), 200 steps of batch 32 at lr 3e-3, EMA 0.98,
  10 sampling and 10 imputation steps without resampling jumps: about a second for 60 profiles of 24 or 48
  steps on one core, for the contract test.

Noise is drawn on the CPU from the context's ``MODEL_SAMPLE`` (sampling) and ``MODEL_IMPUTE`` (imputation)
streams, so a seed gives the same samples on every device. ``save`` / ``load`` keep the EMA network and the
profile length and resolution that rebuild it.

``ctx.budget_steps`` ends a fit after that many training steps of this call (the state is checkpointed in
``ctx.checkpoint_dir``; a later ``fit`` with the same context resumes and finishes the run), like the
wall-clock budget ``ctx.budget_seconds`` of the shared loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.diffusion import REPAINT_SAMPLERS, SAMPLERS, cosine_schedule, q_sample, sample_repaint, target
from baselines.naive import check_sample_request, training_matrix
from baselines.nn.blocks import build_for_loading, dtype_from_name, dtype_name
from baselines.nn.sampling import draw_in_batches
from baselines.nn.transformer import FiLM, SinusoidalMLP, TokenConv1d, TransformerBlock, check_fold, fold, unfold
from bench.api import Generator, Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery
from bench.train import Trainer, TrainConfig, train_config_from, autocast, resolve_device, seed_everything

AUTO_MIN_FOLD = 4
AUTO_MAX_TOKENS = 24


def resolve_fold(fold_factor: int | str, length: int) -> int:
    """The folding factor for ``length`` steps: ``fold_factor`` itself, or the ``"auto"`` rule.

    ``"auto"``: the smallest divisor ``r >= 4`` of ``length`` giving at most 24 tokens (``length`` itself when
    no smaller divisor qualifies).

    Raises:
        ValueError: an integer ``fold_factor`` that does not divide ``length``, or an unknown string.
    """
    if fold_factor == "auto":
        for r in range(AUTO_MIN_FOLD, length + 1):
            if length % r == 0 and length // r <= AUTO_MAX_TOKENS:
                return r
        return length
    if isinstance(fold_factor, str):
        raise ValueError(f"fold must be a positive integer or 'auto', got {fold_factor!r}")
    check_fold(length, fold_factor)
    return fold_factor


class EnergyDiffNet(nn.Module):
    """The EnergyDiff denoiser ``(x_s [B, T], s [B]) -> v_hat [B, T]`` (see the module docstring)."""

    def __init__(self, length: int, resolution: int, fold_factor: int, d_model: int = 512, n_layers: int = 12,
                 n_heads: int = 8, d_ff: int = 2048, dropout: float = 0.1, kernel_size: int = 7) -> None:
        super().__init__()
        if resolution < 1:
            raise ValueError(f"resolution must be a positive number of minutes, got {resolution}")
        self.length = length
        self.fold_factor = fold_factor
        self.tokens = check_fold(length, fold_factor)
        self.step_embed = SinusoidalMLP(d_model)
        self.input_film = FiLM(d_model, fold_factor, zero_init=True)
        self.conv = TokenConv1d(fold_factor, d_model, kernel_size, self.tokens)
        minutes = torch.arange(self.tokens, dtype=torch.float32) * float(fold_factor * resolution)
        self.register_buffer("minutes", minutes, persistent=False)
        self.time_embed = SinusoidalMLP(d_model)
        self.time_film = FiLM(d_model, d_model, zero_init=False)
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, dropout, cond_dim=d_model)
                                    for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(2 * d_model, fold_factor)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``x [B, T]`` noisy profiles, ``s [B]`` (float) diffusion steps -> ``[B, T]`` v-prediction."""
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected input [B, {self.length}], got {tuple(x.shape)}")
        emb = self.step_embed(s)  # [B, d]
        z = self.input_film(fold(x, self.fold_factor), emb.unsqueeze(1))
        h0 = self.time_film(self.conv(z), self.time_embed(self.minutes))
        h = h0
        for block in self.blocks:
            h = block(h, emb)
        # out([h0, LN(h)]) as the sum of the two halves of its weight applied to each part: the same linear map
        # without materialising the [B, L, 2 d] concatenation (nor splitting its gradient in the backward pass);
        # out of place, so that autocast may give the two products different dtypes
        d = h0.shape[-1]
        weight = self.out.weight
        out = F.linear(h0, weight[:, :d], self.out.bias) + F.linear(self.final_norm(h), weight[:, d:])
        return unfold(out, self.fold_factor).squeeze(-1)


@dataclass(frozen=True)
class EnergyDiffParams(Params):
    """EnergyDiff's hyper-parameters; the defaults are the ``quick`` profile (module docstring)."""

    fold: int | Literal["auto"] = "auto"
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    kernel_size: int = 7
    diffusion_steps: int = 1000
    train_steps: int = 1800
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    ema_decay: float = 0.995
    grad_clip: float | None = 1.0
    amp: Literal["auto", "bf16", "off"] = "auto"
    checkpoint_every: int = 1000
    sampler: Literal["dpm-solver++", "ddim", "ancestral"] = "dpm-solver++"
    sample_steps: int = 40
    solver_order: Literal[1, 2, 3] = 3
    sample_batch: int = 1024
    clip: float | None = 1.0
    compile: str | None = None
    impute_steps: int = 50
    impute_resample: int = 2
    impute_sampler: Literal["ancestral", "ddim"] = "ancestral"

    def __post_init__(self) -> None:
        fold = self.fold
        if fold != "auto" and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 1):
            raise ValueError(f"fold must be a positive integer or 'auto', got {fold!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {self.sampler!r}")
        if self.solver_order not in (1, 2, 3):
            raise ValueError(f"solver_order must be 1, 2 or 3, got {self.solver_order!r}")
        if self.impute_sampler not in REPAINT_SAMPLERS:
            raise ValueError(f"impute_sampler must be one of {REPAINT_SAMPLERS}, got {self.impute_sampler!r}")
        for name in ("d_model", "n_layers", "n_heads", "d_ff", "train_steps", "batch_size", "sample_steps",
                     "sample_batch", "impute_steps", "impute_resample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.sample_steps > self.diffusion_steps:
            raise ValueError(f"sample_steps={self.sample_steps} exceeds diffusion_steps={self.diffusion_steps}")
        if self.impute_steps > self.diffusion_steps:
            raise ValueError(f"impute_steps={self.impute_steps} exceeds diffusion_steps={self.diffusion_steps}")


@register_model("energydiff")
class EnergyDiff(Model, Generator, Imputer):
    """EnergyDiff: diffusion model with a folded Transformer denoiser (v-prediction, DPM-Solver++ sampling)."""

    Params = EnergyDiffParams
    profiles = {
        # a one-block network on 6-12 tokens: fits ~60 profiles and imputes them in about a second on one core
        "test": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "train_steps": 200, "batch_size": 32,
                 "lr": 3e-3, "warmup_steps": 20, "ema_decay": 0.98, "sample_steps": 10, "impute_steps": 10,
                 "impute_resample": 1},
        "paper": {"fold": 8, "d_model": 512, "n_layers": 12, "n_heads": 8, "d_ff": 2048, "dropout": 0.1,
                  "train_steps": 100_000, "lr": 1e-4, "warmup_steps": 0, "ema_decay": 0.9999, "sample_steps": 100,
                  "checkpoint_every": 5000, "compile": "reduce-overhead", "impute_steps": 100,
                  "impute_resample": 5},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.schedule = cosine_schedule(self.diffusion_steps)
        self._net: nn.Module | None = None

    @property
    def net_config(self) -> dict:
        """The denoiser's size arguments (:class:`EnergyDiffNet`)."""
        return {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads, "d_ff": self.d_ff,
                "dropout": float(self.dropout), "kernel_size": self.kernel_size}

    @property
    def train_config(self) -> TrainConfig:
        """The shared training loop's settings."""
        return train_config_from(self.params)

    # -- training -------------------------------------------------------------------------------------------
    def build_network(self, length: int, resolution: int) -> EnergyDiffNet:
        """A freshly initialised denoiser for profiles of ``length`` steps at ``resolution`` minutes.

        Raises:
            ValueError: the folding factor does not divide ``length``.
        """
        return EnergyDiffNet(length, resolution, resolve_fold(self.fold, length), **self.net_config)

    def _coefficient_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``alpha_s`` and ``sigma_s`` for every integer step, cached per device (indexed each training step)."""
        cached = getattr(self, "_tables", None)
        if cached is None or cached[0].device != device:
            steps = np.arange(self.schedule.steps)
            cached = tuple(torch.as_tensor(v, dtype=torch.float32, device=device)
                           for v in (self.schedule.alpha(steps), self.schedule.sigma(steps)))
            self._tables = cached
        return cached

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One v-prediction MSE step at uniformly drawn diffusion steps (a ``Trainer.fit`` step function)."""
        b = batch.shape[0]
        total = self.schedule.steps
        s = torch.clamp((trainer.rand(b) * total).long(), max=total - 1)
        noise = trainer.randn(*batch.shape)
        alpha, sigma = self._coefficient_tables(batch.device)
        alpha, sigma = alpha[s], sigma[s]
        x_s = q_sample(batch, noise, alpha, sigma)
        with trainer.autocast():
            pred = trainer.model("net")(x_s, s.float())
        loss = torch.mean((pred.float() - target(batch, noise, alpha, sigma, "v")) ** 2)
        if it % 100 == 0 and not torch.isfinite(loss):
            raise ModelFitError(f"energydiff: training loss became non-finite at step {it}")
        trainer.update(loss)
        return {"loss": loss.detach()}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train the denoiser on ``train.values`` (``[N, T]`` scaled to [-1, 1]) with the shared loop.

        Raises:
            ValueError: unusable training set, or ``T`` not divisible by the folding factor.
            ModelFitError: the loss or the weights became non-finite.
        """
        self._net = None
        x = training_matrix(train, "energydiff").astype(np.float32)
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        net = self.build_network(x.shape[1], int(train.resolution))
        trainer = Trainer({"net": net}, None, self.train_config, ctx, ema=("net",))
        self.train_result_ = trainer.fit(x, self.training_step, stop_after=ctx.budget_steps)
        ema = trainer.sampling_network("net")
        if not all(torch.isfinite(p).all() for p in ema.parameters()):
            raise ModelFitError("energydiff: the EMA weights are non-finite")
        self._net = ema.eval()
        self._amp_dtype = trainer.amp_dtype
        self.length_ = x.shape[1]
        self.resolution_ = int(train.resolution)

    # -- persistence ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The EMA denoiser's weights, the shape that rebuilds it and the sampling dtype ({} before fit)."""
        if self._net is None:
            return {}
        return {"length_": int(self.length_), "resolution_": int(self.resolution_),
                "amp_dtype": dtype_name(self._amp_dtype), "_net": to_safe(self._net, "EnergyDiff._net")}

    def set_state(self, state: dict) -> None:
        """Rebuild the denoiser for the saved profile length and resolution, then load its weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        length, resolution = int(state["length_"]), int(state["resolution_"])
        self._net = build_for_loading(lambda: self.build_network(length, resolution)).eval().requires_grad_(False)
        super().set_state(state)

    # -- sampling -------------------------------------------------------------------------------------------
    def _sampling_model(self, ctx: RunContext):
        """The EMA network on ``ctx``'s device as a ``model(x, s)`` callable (autocast on CUDA) and the device."""
        device = resolve_device(ctx.device)
        net = self._net.to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None

        def model(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            with autocast(device, amp_dtype):
                return net(x, s).float()

        return model, device

    def sample(self, n: int, cond: object, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 profiles in the scaled space, drawn with the EMA network.

        Noise comes from the ``MODEL_SAMPLE`` stream of ``ctx`` (drawn on the CPU, so a seed gives the same
        initial noise on every device); samples are produced in batches of ``sample_batch``.
        """
        n = check_sample_request(n, cond, self._net is not None, "energydiff")
        model, device = self._sampling_model(ctx)
        generator = ctx.torch_generator(Stream.MODEL_SAMPLE)
        fn = SAMPLERS[self.sampler]
        extra = {"order": self.solver_order} if self.sampler == "dpm-solver++" else {}
        return draw_in_batches(n, self.sample_batch, lambda start, b: fn(
            model, (b, self.length_), self.schedule, steps=self.sample_steps, prediction="v", clip=self.clip,
            generator=generator, device=device, **extra))

    # -- imputation -----------------------------------------------------------------------------------------
    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 completions of daily profiles by RePaint-style guidance of the unconditional model.

        Each reverse step replaces the observed steps of the noisy sample by the observed values noised to that
        step (:func:`baselines.diffusion.sample_repaint`) with ``impute_steps`` steps, ``impute_resample``
        resampling jumps and the ``impute_sampler`` update; the observed values are pasted back at the end. The
        ``S x N`` chains run in batches of ``sample_batch``, noise from the ``MODEL_IMPUTE`` stream of ``ctx``.

        Raises:
            RuntimeError: the model was not fitted.
            ValueError: ``n_samples`` not a positive integer, a profile length other than the fitted one, or
                padding steps in the query (EnergyDiff models complete daily profiles only).
        """
        if self._net is None:
            raise RuntimeError("energydiff: call fit() before impute()")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"energydiff: n_samples must be a positive integer, got {n_samples!r}")
        n_prof, length = query.values.shape
        if length != self.length_:
            raise ValueError(f"energydiff: query profiles have {length} steps, the model was fitted on "
                             f"{self.length_}")
        if not np.asarray(query.valid, dtype=bool).all():
            raise ValueError("energydiff: the query holds padding steps (valid False); only complete daily "
                             "profiles can be imputed")
        observed = np.asarray(query.observed, dtype=bool)
        known = np.where(observed, query.values, 0.0).astype(np.float32)
        # chain j = s * N + i completes profile i for sample s
        known_all = np.tile(known, (int(n_samples), 1))
        mask_all = np.tile(observed, (int(n_samples), 1))
        model, device = self._sampling_model(ctx)
        generator = ctx.torch_generator(Stream.MODEL_IMPUTE)
        samples = draw_in_batches(len(known_all), self.sample_batch, lambda start, b: sample_repaint(
            model, torch.from_numpy(known_all[start:start + b]), torch.from_numpy(mask_all[start:start + b]),
            self.schedule, steps=self.impute_steps, resample=self.impute_resample, sampler=self.impute_sampler,
            prediction="v", clip=self.clip, generator=generator, device=device))
        samples = samples.reshape(int(n_samples), n_prof, length)
        # exact observed values (float32 as given), whatever the device arithmetic did
        samples = np.where(observed[None], query.values[None], samples)
        return samples.astype(np.float32)
