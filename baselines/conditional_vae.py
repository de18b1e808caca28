"""``cvae`` and ``faraday``: conditional variational auto-encoders, the SmartMeterFM paper's VAE baselines.

Conditions. Each profile carries the labels of its ``cond`` / meta row for the attributes in ``attributes``
(default month 1-12, the ``category`` strings seen in training, and the weekday 0-6 of its first day). Every
attribute has one extra **null** label: a missing column, a missing value, an out-of-range month or weekday
and a category not seen in training all map to null. A :class:`LabelEmbedding` sums one learned vector of
``emb_dim`` values per attribute into a single condition vector ``c``.

Model (``cvae``, :class:`ConditionalVAENet`). The encoder, :class:`baselines.vae.Encoder` (an MLP of
``n_layers`` GELU layers, LayerNorm before every hidden layer after the first), maps ``[x, c]`` (profile and
condition concatenated) to the mean ``mu`` and log-variance ``logvar`` of a diagonal Gaussian posterior over
``latent_dim`` latents; the decoder, an MLP of the same depth (:func:`baselines.nn.blocks.mlp`), maps
``[z, c]`` back to ``T`` values (linear output). Encoder and decoder share the label embedding.

Loss (the negative ELBO with a weighted KL, as the SmartMeterFM code's baseline)::

    loss = sum_{b,t valid} (x_hat - x)^2 / #valid  +  kl_weight * mean_b KL(N(mu_b, diag(exp(logvar_b))) || N(0, I))

with the squared error averaged over the valid steps of the batch (:func:`baselines.flow.masked_mse`; monthly
profiles are padded to 31 days and their padding is left out, as the public code's month mask does) and
the KL summed over latents (:func:`baselines.vae.kl_to_standard_normal`); ``z = mu + exp(logvar / 2) eps``.
During training each attribute's label is replaced by null independently with probability
``label_dropout`` (the same labels for encoder and decoder), so the null label learns the marginal over that
attribute and an unknown category still decodes sensibly.

Sampling (``cvae``): ``z ~ N(0, I)`` decoded under the requested labels (the decoder output, no observation
noise), from the EMA copy of the network (``ema_decay=None`` samples the raw weights). Monthly profiles are 0
beyond ``days * steps_per_day`` of the requested month (``cond["days"]``; all 31 days when it is missing).
``cond=None`` draws unconditionally: each row takes the labels and month length of a training profile drawn
uniformly, so the samples follow the training mixture of conditions.

Model (``faraday``, Chai et al., "Faraday: synthetic smart meter generator for the smart grid", the
SmartMeterFM paper's baseline): the same conditional VAE, trained the same way, whose standard normal prior
is replaced after training by a Gaussian mixture fitted in latent space - it samples latents where the
training profiles' posteriors actually lie instead of from prior regions no profile encodes to. The public
SmartMeterFM code encodes every training profile under its own labels, draws ``z ~ q(z | x, c)`` (the
reparametrised posterior sample, i.e. the aggregate posterior) and fits one mixture of 10 full-covariance
Gaussians to all of them jointly, with covariances floored by ``1e-3 I``; sampling draws ``z`` from the
mixture and decodes it under the requested labels. Here scikit-learn's ``GaussianMixture`` (EM, k-means
initialisation, ``random_state`` from the ``MODEL_FIT`` stream, ``reg_covar`` added to every covariance)
does the fit on the whole training set at once (the public code runs batch-wise EM steps). ``gmm_latents =
"mean"`` fits the posterior means instead; at most ``gmm_max_points`` latents (a seeded subset) enter EM.

Training runs in the shared loop (:mod:`bench.train`): one AdamW optimiser (weight decay 0, i.e. Adam) over
the whole network, EMA of it, gradient clipping, bf16 autocast on CUDA, checkpoint + resume in
``ctx.checkpoint_dir``; ``ctx.budget_steps`` ends a fit early (a later fit with the same context resumes).
A non-finite loss raises :class:`bench.errors.ModelFitError` naming the step.

Profiles:

* ``paper`` - the SmartMeterFM code's baseline settings. Stated there (its VAE training script and config):
  128 latents (``--latent_dim`` default), ``beta = kl_weight = 0.01`` (its default; the code warns that 0.1 and
  above collapse the posterior), label embedding width equal to the latent width (128), label dropout 0.1,
  Adam with lr 1e-4 and betas (0.9, 0.999), batch 64, 50 000 steps, gradient clipping at norm 1, bf16 mixed
  precision, no EMA (samples come from the trained weights); Faraday: 10 mixture components, full
  covariances, floor 1e-3, fitted on posterior samples. Assumed: the public networks are 1-D convolutional
  with AdaLN conditioning; this baseline is the MLP conditional VAE with concatenated labels, at the
  EnergyDiff VAE baseline's size (5 layers each side, width 512, as ``vae``'s ``paper``). The public VAE
  config conditions on month only; here every profile conditions on month, category and weekday, the labels
  the conditional task gives every model.
* ``quick`` - width 256, 32 latents, embedding 32, 5 layers each side, KL weight 0.01, label dropout 0.1,
  3000 steps of batch 64 at lr 1e-3 with gradient clipping at 1, EMA 0.995 (``vae``'s quick network and
  schedule). Measured on a shared two-core machine (two torch threads) for 696 daily profiles of 96 steps
  in 24 month-category groups: about 40 s per fit for either model (``faraday``'s mixture adds well under a
  second); 720 conditional samples take 0.1 s.
* ``test`` - width 32, 8 latents, embedding 8, 3 layers each side, 300 steps of batch 32 at lr 3e-3, EMA
  0.98, a mixture of 4 components for ``faraday``: under a second per fit for the contract test's 140
  profiles of 48 steps on one core.

With a KL weight of 0.01, toy sets whose profiles differ mainly by their labels leave the posterior
nearly at the prior (the labels explain the variation the decoder can represent); the aggregate posterior
is then close to ``N(0, I)`` and ``faraday`` samples much like ``cvae``. The two differ where the latent
carries structure beyond the labels.

Randomness comes from the context's named streams: weight initialisation ``MODEL_INIT``, minibatches,
reparametrisation noise and label dropout the loop's ``TRAIN_BATCHES``, the mixture fit (its
initialisation, the posterior draws it is fitted on and the subset) ``MODEL_FIT``, sampling noise
``MODEL_SAMPLE`` and the training rows that unconditional draws take their labels from
``MODEL_SAMPLE_ROWS``. Latents are drawn on the CPU, so a seed gives the same samples on every device.

``save`` / ``load`` keep the EMA network, what rebuilds it (profile length, layout, training categories),
the training labels and month lengths that unconditional draws use, and for ``faraday`` the mixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from baselines.flow import masked_mse
from baselines.nn.blocks import (build_for_loading, check_positive_int, dtype_from_name, dtype_name, mlp,
                                 raise_if_nonfinite, resolve_train_steps)
from baselines.nn.sampling import draw_in_batches
from baselines.smartmeterfm import drop_labels
from baselines.vae import Encoder, VAEParams, kl_to_standard_normal
from bench.api import ConditionalGenerator, Generator, Model
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.persist import from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.train import Trainer, TrainConfig, autocast, resolve_device, seed_everything, train_config_from

# attribute -> number of real labels (category: as many as the training set has)
FIXED_VOCAB = {"month": 12, "weekday": 7}
CONDITION_ATTRIBUTES = ("month", "category", "weekday")


def check_attributes(attributes: tuple[str, ...]) -> tuple[str, ...]:
    """``attributes`` as a tuple after checking it names known, distinct condition attributes."""
    attributes = tuple(attributes)
    unknown = [a for a in attributes if a not in CONDITION_ATTRIBUTES]
    if not attributes or unknown or len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes must be distinct names among {', '.join(CONDITION_ATTRIBUTES)}, "
                         f"got {attributes!r}")
    return attributes


def check_label_dropout(p: float) -> float:
    """``p`` when it is a probability in [0, 1)."""
    if not (np.isfinite(p) and 0.0 <= p < 1.0):
        raise ValueError(f"label_dropout must lie in [0, 1), got {p!r}")
    return p


def check_conditioning(params) -> None:
    """Check the conditioning hyper-parameters every conditional baseline shares: ``emb_dim`` (a positive
    integer), ``label_dropout`` (a probability in [0, 1)) and ``attributes`` (distinct known names)."""
    check_positive_int("emb_dim", params.emb_dim)
    check_label_dropout(params.label_dropout)
    check_attributes(params.attributes)


@dataclass
class ConditionCodec:
    """Maps condition frames to label indices and valid-step masks; fixed by the training set.

    Attributes:
        attributes: the conditioning attributes, in label-column order.
        categories: the category strings seen in training (sorted).
        length: profile length ``T``.
        steps_per_day: steps per day at the training resolution.
        period: ``"day"`` or ``"month"`` (monthly profiles are padded to 31 days).
        train_labels: ``[N, A]`` int64 labels of the training profiles (unconditional draws pick rows of it).
        train_days: ``[N]`` int64 month lengths of the training profiles (1 for daily profiles).
    """

    attributes: tuple[str, ...]
    categories: tuple[str, ...]
    length: int
    steps_per_day: int
    period: str
    train_labels: np.ndarray
    train_days: np.ndarray

    @classmethod
    def from_training(cls, train: ProfileSet, attributes: tuple[str, ...]) -> "ConditionCodec":
        """The codec of ``train`` (its categories, layout and labels)."""
        categories = tuple(sorted({str(c) for c in train.meta["category"] if not pd.isna(c)})) \
            if "category" in train.meta else ()
        days = pd.to_numeric(train.meta["days"], errors="coerce").to_numpy(dtype=float) \
            if "days" in train.meta else np.full(len(train), np.nan)
        # a training month without a usable length counts as the full padded length
        full = train.length / train.steps_per_day
        days = np.where(np.isfinite(days), days, full).round().astype(np.int64)
        codec = cls(tuple(attributes), categories, int(train.length), int(train.steps_per_day), train.period,
                    np.zeros((0, len(attributes)), dtype=np.int64), days)
        codec.train_labels = codec.encode(train.meta)
        return codec

    @property
    def vocab(self) -> tuple[int, ...]:
        """Number of real labels per attribute; index ``vocab[a]`` is attribute ``a``'s null label."""
        return tuple(len(self.categories) if a == "category" else FIXED_VOCAB[a] for a in self.attributes)

    def encode(self, meta: pd.DataFrame) -> np.ndarray:
        """``[n, A]`` int64 label indices of the rows of ``meta`` (missing column or value, out-of-range number,
        unseen category -> null)."""
        vocab = self.vocab
        out = np.tile(np.asarray(vocab, dtype=np.int64), (len(meta), 1))
        index = {c: i for i, c in enumerate(self.categories)}
        for j, attribute in enumerate(self.attributes):
            if attribute not in meta.columns:
                continue
            null = vocab[j]
            if attribute == "category":
                out[:, j] = [null if pd.isna(c) else index.get(str(c), null) for c in meta[attribute]]
                continue
            value = pd.to_numeric(meta[attribute], errors="coerce").to_numpy(dtype=float)
            low = 1 if attribute == "month" else 0
            ok = np.isfinite(value) & (value == np.round(value)) & (value >= low) & (value < low + null)
            out[ok, j] = value[ok].astype(np.int64) - low
        return out

    def valid(self, days: np.ndarray) -> np.ndarray:
        """``[n, T]`` valid-step masks: the first ``days * steps_per_day`` steps of a monthly profile (all 31
        days where ``days`` is missing), every step of a daily one."""
        days = np.asarray(days, dtype=float)
        if self.period != "month":
            return np.ones((len(days), self.length), dtype=bool)
        steps = np.where(np.isfinite(days), days * self.steps_per_day, self.length)
        return np.arange(self.length)[None, :] < np.clip(steps, 1, self.length)[:, None]

    def sampling_conditions(self, n: int, cond: pd.DataFrame | None, ctx: RunContext,
                            model: str) -> tuple[np.ndarray, np.ndarray]:
        """``(labels [n, A], valid [n, T])`` for a ``sample(n, cond)`` call: ``cond``'s rows, or for ``cond=None``
        the labels and month lengths of ``n`` training profiles drawn uniformly (``MODEL_SAMPLE_ROWS``).

        Raises:
            ValueError: ``cond`` is not a DataFrame of ``n`` rows.
        """
        if cond is None:
            rows = ctx.rng(Stream.MODEL_SAMPLE_ROWS).integers(0, len(self.train_labels), size=n)
            return self.train_labels[rows], self.valid(self.train_days[rows])
        if not isinstance(cond, pd.DataFrame) or len(cond) != n:
            got = f"{len(cond)} rows" if isinstance(cond, pd.DataFrame) else type(cond).__name__
            raise ValueError(f"{model}: cond must be a DataFrame with n = {n} rows, got {got}")
        days = pd.to_numeric(cond["days"], errors="coerce").to_numpy(dtype=float) if "days" in cond.columns \
            else np.full(n, np.nan)
        return self.encode(cond), self.valid(days)

    def state(self) -> dict:
        """The codec as plain values and arrays (for a model file)."""
        return {"attributes": list(self.attributes), "categories": list(self.categories), "length": self.length,
                "steps_per_day": self.steps_per_day, "period": self.period,
                "train_labels": self.train_labels, "train_days": self.train_days}

    @classmethod
    def from_state(cls, state: dict) -> "ConditionCodec":
        """Inverse of :meth:`state` (its values as :func:`bench.persist.from_safe` restores them)."""
        state = from_safe(state)
        return cls(tuple(str(a) for a in state["attributes"]), tuple(str(c) for c in state["categories"]),
                   int(state["length"]), int(state["steps_per_day"]), str(state["period"]),
                   np.asarray(state["train_labels"], dtype=np.int64), np.asarray(state["train_days"], dtype=np.int64))


def check_training_set(train: ProfileSet, model: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, valid)`` of ``train`` as float32 (0 on invalid steps) and bool, after checking it is usable.

    Raises:
        ValueError: empty set, a profile without a valid step, non-finite valid values or no month column.
    """
    values = np.asarray(train.values, dtype=np.float32)
    valid = np.asarray(train.mask, dtype=bool)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{model}: training set {train.name!r} is empty (shape {values.shape})")
    if not valid.any(axis=1).all():
        raise ValueError(f"{model}: training set {train.name!r} has profiles without a valid step")
    if not np.isfinite(values[valid]).all():
        raise ValueError(f"{model}: training set {train.name!r} holds non-finite valid values")
    return np.where(valid, values, 0.0).astype(np.float32), valid


def pack_training_rows(values: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[values | valid | labels]`` as one float32 matrix: the shared loop draws batches of rows of it."""
    return np.concatenate([values, valid.astype(np.float32), labels.astype(np.float32)], axis=1).astype(np.float32)


def unpack_training_rows(batch: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_training_rows` on a batch: ``(values, valid bool, labels int64)``."""
    return batch[:, :length], batch[:, length:2 * length] > 0.5, batch[:, 2 * length:].round().long()


def check_sample_size(n: object, fitted: bool, model: str) -> int:
    """``n`` as an int for a fitted model.

    Raises:
        RuntimeError: the model is not fitted.
        ValueError: ``n`` is not a positive integer.
    """
    if not fitted:
        raise RuntimeError(f"{model}: call fit() before sample()")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{model}: n must be a positive integer, got {n!r}")
    return int(n)


def standard_normal_latents(n: int, dim: int, ctx: RunContext) -> np.ndarray:
    """``[n, dim]`` float32 draws of ``N(0, I)`` from the ``MODEL_SAMPLE`` stream, made on the CPU (the same
    latents on every device)."""
    return torch.randn(n, dim, generator=ctx.torch_generator(Stream.MODEL_SAMPLE)).numpy()


def decode_labelled(decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z: np.ndarray, labels: np.ndarray,
                    valid: np.ndarray, batch: int, device: torch.device,
                    amp_dtype: torch.dtype | None) -> np.ndarray:
    """``[n, T]`` float32 outputs of ``decode(z, labels)`` (a network already on ``device``) in batches of at most
    ``batch`` rows, 0 where ``valid`` is False; ``amp_dtype`` autocasts on CUDA only."""
    amp_dtype = amp_dtype if device.type == "cuda" else None

    def draw(start: int, size: int) -> torch.Tensor:
        zb = torch.from_numpy(np.ascontiguousarray(z[start:start + size], dtype=np.float32)).to(device)
        lb = torch.from_numpy(np.ascontiguousarray(labels[start:start + size], dtype=np.int64)).to(device)
        with autocast(device, amp_dtype):
            return decode(zb, lb).float()

    return np.where(valid, draw_in_batches(len(z), batch, draw), 0.0).astype(np.float32)


class LabelEmbedding(nn.Module):
    """``labels [B, A]`` (int, null = ``vocab[a]``) -> ``[B, dim]``: the sum of one learned vector per attribute."""

    def __init__(self, vocab: tuple[int, ...], dim: int, zero_init: bool = False) -> None:
        super().__init__()
        self.vocab = tuple(int(v) for v in vocab)
        self.tables = nn.ModuleList(nn.Embedding(v + 1, check_positive_int("dim", dim)) for v in self.vocab)
        if zero_init:
            for table in self.tables:
                nn.init.zeros_(table.weight)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.dim() != 2 or labels.shape[1] != len(self.tables):
            raise ValueError(f"expected labels [B, {len(self.tables)}], got {tuple(labels.shape)}")
        out = self.tables[0](labels[:, 0])
        for j in range(1, len(self.tables)):
            out = out + self.tables[j](labels[:, j])
        return out


class ConditionalVAENet(nn.Module):
    """Encoder ``[x, c] -> (mu, logvar)`` and decoder ``[z, c] -> x_hat`` sharing one label embedding ``c``."""

    def __init__(self, length: int, vocab: tuple[int, ...], hidden: int, latent_dim: int, n_layers: int,
                 emb_dim: int) -> None:
        super().__init__()
        self.labels = LabelEmbedding(vocab, emb_dim)
        self.encoder = Encoder(length + emb_dim, hidden, latent_dim, n_layers)
        self.decoder = mlp(latent_dim + emb_dim, hidden, length, n_layers)

    def encode(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``(mu, logvar)`` of profiles ``x [B, T]`` under ``labels [B, A]``."""
        return self.encoder(torch.cat([x, self.labels(labels)], dim=-1))

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Profiles ``[B, T]`` decoded from latents ``z`` under ``labels``."""
        return self.decoder(torch.cat([z, self.labels(labels)], dim=-1))


@dataclass(frozen=True)
class CVAEParams(VAEParams):
    """The conditional VAE's hyper-parameters: :class:`baselines.vae.VAEParams` (with the SmartMeterFM code's KL
    weight 0.01) plus the label embedding width, the label dropout and the conditioning attributes."""

    kl_weight: float = 0.01
    emb_dim: int = 32
    label_dropout: float = 0.1
    attributes: tuple[str, ...] = CONDITION_ATTRIBUTES

    def __post_init__(self) -> None:
        super().__post_init__()
        check_conditioning(self)


@register_model("cvae")
class ConditionalVAE(Model, Generator, ConditionalGenerator):
    """Conditional VAE with MLP encoder/decoder and label embeddings (SmartMeterFM baseline; z ~ N(0, I))."""

    name = "cvae"  # the registry name, used in messages (``faraday`` sets its own)

    Params = CVAEParams
    profiles = {
        "test": {"hidden": 32, "latent_dim": 8, "emb_dim": 8, "n_layers": 3, "train_steps": 300, "batch_size": 32,
                 "lr": 3e-3, "ema_decay": 0.98},
        "paper": {"hidden": 512, "latent_dim": 128, "emb_dim": 128, "train_steps": 50_000, "batch_size": 64,
                  "lr": 1e-4, "ema_decay": None, "checkpoint_every": 5000},
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._net: ConditionalVAENet | None = None
        self._codec: ConditionCodec | None = None

    # -- training -------------------------------------------------------------------------------------------
    def build_network(self, codec: ConditionCodec) -> ConditionalVAENet:
        """A freshly initialised network for ``codec``'s profile length and label vocabulary."""
        return ConditionalVAENet(codec.length, codec.vocab, self.hidden, self.latent_dim, self.n_layers,
                                 self.emb_dim)

    def train_config(self, n_train: int) -> TrainConfig:
        """The shared-loop settings for ``n_train`` profiles (epochs become steps here)."""
        steps = resolve_train_steps(self.train_steps, self.epochs, n_train, self.batch_size)
        return train_config_from(self.params, steps=steps, weight_decay=0.0, betas=(0.9, 0.999))

    def training_step(self, batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
        """One masked negative-ELBO step on a packed batch (a ``Trainer.fit`` step function)."""
        net = trainer.networks["net"]
        x, valid, labels = unpack_training_rows(batch, self._codec.length)
        labels = drop_labels(labels, self._codec.vocab, self.label_dropout, trainer.rand(*labels.shape))
        with trainer.autocast():
            mu, logvar = net.encode(x, labels)
        mu, logvar = mu.float(), logvar.float()
        z = mu + torch.exp(0.5 * logvar) * trainer.randn(*mu.shape)
        with trainer.autocast():
            x_hat = net.decode(z, labels).float()
        recon = masked_mse(x_hat, x, valid)
        kl = kl_to_standard_normal(mu, logvar).mean()
        loss = recon + self.kl_weight * kl
        raise_if_nonfinite(self.name, it, {"loss": loss, "recon": recon, "kl": kl})
        trainer.update(loss)
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train the conditional VAE on ``train`` (values in [-1, 1], ``mask`` = valid steps, meta = labels).

        Raises:
            ValueError: unusable training set.
            ModelFitError: the loss or the network weights became non-finite.
        """
        self._net = None
        values, valid = check_training_set(train, self.name)
        self._codec = ConditionCodec.from_training(train, self.attributes)
        packed = pack_training_rows(values, valid, self._codec.train_labels)
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer({"net": self.build_network(self._codec)}, None, self.train_config(len(values)), ctx,
                          ema=("net",) if self.ema_decay is not None else ())
        self.train_result_ = trainer.fit(packed, self.training_step, stop_after=ctx.budget_steps)
        net = trainer.sampling_network("net")
        if not all(torch.isfinite(p).all() for p in net.parameters()):
            raise ModelFitError(f"{self.name}: the network weights are non-finite after training")
        self._net = net.eval()
        self._amp_dtype = trainer.amp_dtype

    # -- persistence ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """The sampling (EMA) network, the condition codec and the sampling dtype ({} before fit)."""
        if self._net is None:
            return {}
        return {"codec": to_safe(self._codec.state(), f"{type(self).__name__}.codec"),
                "amp_dtype": dtype_name(self._amp_dtype), "_net": to_safe(self._net, f"{type(self).__name__}._net")}

    def set_state(self, state: dict) -> None:
        """Rebuild the network for the saved codec, then load its weights."""
        if not state:
            return
        state = dict(state)
        self._amp_dtype = dtype_from_name(state.pop("amp_dtype"))
        self._codec = ConditionCodec.from_state(state.pop("codec"))
        self._net = build_for_loading(lambda: self.build_network(self._codec)).eval().requires_grad_(False)
        super().set_state(state)

    # -- sampling -------------------------------------------------------------------------------------------
    def draw_latents(self, n: int, ctx: RunContext) -> np.ndarray:
        """``[n, latent_dim]`` float32 latents ``z ~ N(0, I)`` from the ``MODEL_SAMPLE`` stream (on the CPU)."""
        return standard_normal_latents(n, self.latent_dim, ctx)

    def decode(self, z: np.ndarray, labels: np.ndarray, valid: np.ndarray, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 decodings of latents ``z`` under ``labels``, 0 where ``valid`` is False."""
        device = resolve_device(ctx.device)
        net = self._net.to(device)
        return decode_labelled(net.decode, z, labels, valid, self.sample_batch, device, self._amp_dtype)

    def sample(self, n: int, cond: pd.DataFrame | None, ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32: row ``i`` decoded under condition row ``i`` of ``cond`` (``cond=None``: under the
        labels of a training profile drawn uniformly), 0 beyond the month's valid steps."""
        n = check_sample_size(n, self._net is not None, self.name)
        labels, valid = self._codec.sampling_conditions(n, cond, ctx, self.name)
        return self.decode(self.draw_latents(n, ctx), labels, valid, ctx)


@dataclass(frozen=True)
class FaradayParams(CVAEParams):
    """``faraday``'s hyper-parameters: the conditional VAE's plus the latent mixture's."""

    n_components: int = 10
    reg_covar: float = 1e-3
    gmm_latents: Literal["sample", "mean"] = "sample"
    gmm_max_iter: int = 200
    gmm_max_points: int = 50_000

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_components", "gmm_max_iter", "gmm_max_points"):
            check_positive_int(name, getattr(self, name))
        if not (np.isfinite(self.reg_covar) and self.reg_covar > 0):
            raise ValueError(f"reg_covar must be a positive number, got {self.reg_covar!r}")


@register_model("faraday")
class Faraday(ConditionalVAE):
    """Conditional VAE whose prior is replaced by a Gaussian mixture fitted to the training latents (Faraday)."""

    name = "faraday"

    Params = FaradayParams
    profiles = {
        "test": {**ConditionalVAE.profiles["test"], "n_components": 4},
        "paper": dict(ConditionalVAE.profiles["paper"]),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.gmm_weights_: np.ndarray | None = None
        self.gmm_means_: np.ndarray | None = None
        self.gmm_chol_: np.ndarray | None = None

    def encode_training_set(self, values: np.ndarray, labels: np.ndarray, ctx: RunContext) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
        """``(mu, logvar)`` ``[N, latent_dim]`` of the training profiles under their own labels (EMA network)."""
        device = resolve_device(ctx.device)
        net = self._net.to(device)
        amp_dtype = self._amp_dtype if device.type == "cuda" else None

        def encode(start: int, size: int) -> torch.Tensor:
            x = torch.from_numpy(values[start:start + size]).to(device)
            lb = torch.from_numpy(labels[start:start + size]).to(device)
            with autocast(device, amp_dtype):
                mu, logvar = net.encode(x, lb)
            return torch.cat([mu.float(), logvar.float()], dim=-1)

        both = draw_in_batches(len(values), self.sample_batch, encode)
        return both[:, :self.latent_dim], both[:, self.latent_dim:]

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train the conditional VAE, then fit the latent mixture (module docstring).

        Raises:
            ValueError: unusable training set.
            ModelFitError: the network or the mixture became non-finite.
        """
        from sklearn.mixture import GaussianMixture

        self.gmm_weights_ = self.gmm_means_ = self.gmm_chol_ = None
        super().fit(train, ctx)
        values, _ = check_training_set(train, self.name)
        mu, logvar = self.encode_training_set(values, self._codec.train_labels, ctx)
        rng = ctx.rng(Stream.MODEL_FIT)
        latents = mu if self.gmm_latents == "mean" else mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)
        latents = latents.astype(np.float64)
        if len(latents) > self.gmm_max_points:
            latents = latents[np.sort(rng.choice(len(latents), self.gmm_max_points, replace=False))]
        if not np.isfinite(latents).all():
            raise ModelFitError(f"{self.name}: the training latents are non-finite")
        gm = GaussianMixture(n_components=min(self.n_components, len(latents)), covariance_type="full",
                             reg_covar=self.reg_covar, max_iter=self.gmm_max_iter,
                             random_state=ctx.int_seed(Stream.MODEL_FIT, bits=31)).fit(latents)
        self.gmm_converged_ = bool(gm.converged_)
        self.gmm_iterations_ = int(gm.n_iter_)
        self.gmm_weights_ = np.asarray(gm.weights_, dtype=np.float64)
        self.gmm_means_ = np.asarray(gm.means_, dtype=np.float64)
        self.gmm_chol_ = np.linalg.cholesky(np.asarray(gm.covariances_, dtype=np.float64))
        if not all(np.isfinite(a).all() for a in (self.gmm_weights_, self.gmm_means_, self.gmm_chol_)):
            raise ModelFitError(f"{self.name}: the latent mixture is non-finite")

    def diagnostics(self) -> dict[str, float]:
        """EM iterations and convergence of the latent mixture."""
        if self.gmm_weights_ is None:
            return {}
        return {"gmm_iterations": float(self.gmm_iterations_), "gmm_converged": float(self.gmm_converged_)}

    _MIXTURE = ("gmm_weights_", "gmm_means_", "gmm_chol_", "gmm_converged_", "gmm_iterations_")

    def get_state(self) -> dict:
        """The conditional VAE's state plus the mixture (weights, means, covariance Cholesky factors)."""
        state = super().get_state()
        if state:
            state.update({k: to_safe(getattr(self, k), f"Faraday.{k}") for k in self._MIXTURE})
        return state

    def draw_latents(self, n: int, ctx: RunContext) -> np.ndarray:
        """``[n, latent_dim]`` float32 draws from the latent mixture (``MODEL_SAMPLE`` stream)."""
        rng = ctx.rng(Stream.MODEL_SAMPLE)
        weights = self.gmm_weights_ / self.gmm_weights_.sum()
        component = rng.choice(len(weights), size=n, p=weights)
        eps = rng.standard_normal((n, self.gmm_means_.shape[1]))
        z = self.gmm_means_[component] + np.einsum("nij,nj->ni", self.gmm_chol_[component], eps)
        return z.astype(np.float32)
