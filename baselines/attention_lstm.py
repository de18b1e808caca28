"""``lstm-attention``: an LSTM encoder with multi-head self-attention and pooling, the unified-model paper's
forecasting baseline A1 (capability ``forecast``, point forecasts).

Paper. The unified paper lists A1 as "a hybrid load forecasting model combining LSTM and self-attention proposed
in 2021 by Zang et al." (its ref. [35], "Residential load forecasting based on LSTM fusing self-attention mechanism
with pooling", Energy 229, 2021) and gives its Table II scores, nothing about its inputs, sizes or training.
Assumed here: the history alone (no weather), read by an LSTM, multi-head self-attention over the LSTM outputs
with a residual connection and LayerNorm, mean and max pooling over time, and a feed-forward head to the whole
horizon at once; sizes and budgets are meterbench's (see Profiles).

Model. As for ``mlp-forecaster`` (:mod:`baselines.forecasters`, whose functions this module imports): each history is
normalised by the mean and std (floored at ``std_floor``) of its last day, and the static inputs are the six
calendar features of the forecast origin plus the window's mean and log-std (:func:`window_features`). The LSTM
reads the normalised history in patches of ``patch_minutes`` (an hour by default: 168 tokens for seven days at
any resolution up to an hour, so its cost does not grow with the resolution; the oldest ``H mod patch`` steps are
left out of the sequence when the patch does not divide the history); each token is the patch's values plus the
sine and cosine of its time of day, obtained by rotating the origin's. Self-attention (``n_heads`` heads, need
``hidden`` divisible by ``n_heads``) mixes the LSTM outputs; the pooled mean and max of the attended sequence,
with the static inputs, go through a GELU layer to the horizon. Like the MLP forecaster the output is the mean of
the same time of day over the history days plus this learned correction, whose last layer starts at zero (an
untrained network forecasts the day mean): without that skip connection a network fitted on overlapping windows
of a few households memorises them (see :class:`baselines.forecasters.MLPForecaster`). The forecast is
``output * std + mean`` in the task's scaled space, one point forecast per window (``n_samples`` is not used:
the forecasting task scores point forecasts by their errors and reports CRPS as n/a, as for ``mlp-forecaster``).

Training. ``fit`` learns nothing (it forgets earlier networks); ``fit_forecast`` trains one fresh network per
(history length, horizon) on the training windows with the MSE of the normalised horizon, AdamW
(``weight_decay``) in the shared loop (:mod:`bench.train`) without checkpoints (a short fit, repeated per
setting), gradient clipping at 1 and an EMA of the weights (``ema_decay``) for forecasting.

Measured on the LCL sample at 30 min under the unified suite's protocol (1173 training windows, 500 query
windows, seed 0, ``quick``): day-ahead MAE 0.217 kW (RMSE 0.424) against 0.246 (0.519) for seasonal-naive, 0.216
(0.431) for day-mean and 0.226 (0.443) for mlp-forecaster; hour-ahead 0.230 (0.414) against 0.261 (0.507),
0.234 (0.419) and 0.224 (0.414). Like the MLP it is a learned reference, not a tuned one.

Profiles. ``quick`` (defaults): hidden 32, one LSTM layer, 4 heads, 1000 steps x 64 windows, lr 1e-3 (about a
minute per setting on one CPU thread at 30 minutes with 7 history days); ``paper``: hidden 128, two LSTM layers,
8 heads, 10000 steps x 256 windows (GPU); ``test``: hidden 8, 2 heads, 40 steps x 32 windows.

Streams. ``MODEL_INIT`` seeds the weight initialisation; the shared loop draws minibatches from
``TRAIN_BATCHES`` and seeds dropout from ``TRAIN_DROPOUT``. Forecasting draws nothing. Deterministic given
``ctx.seed`` on a given device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from baselines.forecasters import (N_CALENDAR, _check_fraction, _steps_per_day, day_mean_index,
                                   window_features)
from baselines.nn.blocks import build_for_loading, check_positive_int, raise_if_nonfinite
from baselines.nn.sampling import draw_in_batches
from bench.api import Forecaster, Model, Params
from bench.context import RunContext
from bench.data.profileset import MINUTES_PER_DAY, ProfileSet
from bench.errors import ModelFitError
from bench.persist import UnsafeFileError, from_safe, to_safe
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ForecastExamples, ForecastQuery
from bench.train import Trainer, TrainConfig, resolve_device, seed_everything, train_config_from

NAME = "lstm-attention"
# windows per forward pass when forecasting: attention holds [batch x heads, tokens, tokens] weights (256 x 4 heads x
# 168^2 tokens is 116 MB in float32), far smaller batches than the MLP forecaster's
FORECAST_BATCH = 256
N_STATIC = N_CALENDAR + 2  # calendar features of the origin, window mean and log-std (window_features)
# columns of the time of day in bench.tasks.queries.calendar_features: sin at 0, cos at 3
_SIN_DAY, _COS_DAY = 0, 3


def patch_steps(patch_minutes: int, resolution: int) -> int:
    """Readings per LSTM token: ``patch_minutes // resolution``, at least one."""
    return max(1, int(patch_minutes) // int(resolution))


class LSTMAttentionNet(nn.Module):
    """``x -> day_mean(x) + head(pool(attend(LSTM(tokens(x)))), static(x))`` for inputs ``x [B, H + 8]`` laid out as
    :func:`baselines.forecasters.window_features` makes them (normalised history, then the static features).

    Args:
        history_steps: ``H``, steps of history.
        horizon: steps to forecast.
        steps_per_day: readings per day (for the tokens' time of day).
        patch: readings per token (``H // patch`` tokens; the oldest ``H mod patch`` steps are not read).
        hidden: LSTM and attention width.
        lstm_layers: stacked LSTM layers.
        n_heads: attention heads (divide ``hidden``).
        dropout: dropout between LSTM layers, on the pooled features and in the head.
        index: ``[D, horizon]`` history positions averaged by the skip connection (:func:`day_mean_index`).

    Raises:
        ValueError: a history shorter than one token.
    """

    def __init__(self, history_steps: int, horizon: int, steps_per_day: int, patch: int, hidden: int,
                 lstm_layers: int, n_heads: int, dropout: float, index: np.ndarray) -> None:
        super().__init__()
        n_tokens = history_steps // patch
        if n_tokens < 1:
            raise ValueError(f"{NAME}: a history of {history_steps} steps is shorter than one token of {patch} "
                             f"steps (lower patch_minutes)")
        self.history_steps, self.patch, self.n_tokens = history_steps, patch, n_tokens
        self.skip = history_steps - n_tokens * patch  # oldest steps left out of the sequence
        # a token's time of day is the origin's minus (steps before the origin) / steps_per_day of a turn
        before = history_steps - (self.skip + patch * np.arange(n_tokens))
        angle = 2 * np.pi * before / steps_per_day
        self.register_buffer("cos_back", torch.as_tensor(np.cos(angle), dtype=torch.float32))
        self.register_buffer("sin_back", torch.as_tensor(np.sin(angle), dtype=torch.float32))
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long))
        self.lstm = nn.LSTM(patch + 2, hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        # no dropout on the attention weights: it forces PyTorch's unfused attention (7x slower forward on a CPU)
        self.attention = nn.MultiheadAttention(hidden, n_heads, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        last = nn.Linear(hidden, horizon)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden + N_STATIC, hidden), nn.GELU(),
                                  nn.Dropout(dropout), last)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, n_tokens, patch + 2]``: each token's ``patch`` normalised readings, then the sine and cosine of
        the time of day of its first reading."""
        history, static = x[:, :self.history_steps], x[:, self.history_steps:]
        values = history[:, self.skip:].reshape(len(x), self.n_tokens, self.patch)
        sin_o, cos_o = static[:, _SIN_DAY:_SIN_DAY + 1], static[:, _COS_DAY:_COS_DAY + 1]
        # sin / cos of (origin angle - token offset), by the angle-difference identities
        sin_t = sin_o * self.cos_back - cos_o * self.sin_back
        cos_t = cos_o * self.cos_back + sin_o * self.sin_back
        return torch.cat([values, sin_t.unsqueeze(-1), cos_t.unsqueeze(-1)], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        encoded, _ = self.lstm(self.tokens(x))
        attended, _ = self.attention(encoded, encoded, encoded, need_weights=False)
        encoded = self.norm(encoded + attended)
        static = x[:, self.history_steps:]
        pooled = torch.cat([encoded.mean(dim=1), encoded.amax(dim=1), static], dim=-1)
        return x[:, self.index].mean(dim=1) + self.head(pooled)


@dataclass(frozen=True)
class LSTMAttentionParams(Params):
    """Hyper-parameters of :class:`LSTMAttentionForecaster`.

    Attributes:
        hidden: LSTM, attention and head width.
        lstm_layers: stacked LSTM layers.
        n_heads: attention heads (must divide ``hidden``).
        patch_minutes: minutes of readings per LSTM token (at least one reading).
        train_steps, batch_size, lr, weight_decay: the AdamW run of each (history, horizon) network.
        dropout: dropout between LSTM layers, on the pooled features and in the head (not on the attention
            weights: that makes PyTorch leave its fused attention kernel, 3-4x slower per training step on a CPU).
        ema_decay: decay of the weight average used for forecasting (None: the raw weights).
        std_floor: lower bound of the per-window standard deviation, in scaled units.
    """

    hidden: int = 32
    lstm_layers: int = 1
    n_heads: int = 4
    patch_minutes: int = 60
    train_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    dropout: float = 0.2
    ema_decay: float | None = 0.99
    std_floor: float = 0.05

    def __post_init__(self) -> None:
        check_positive_int("hidden", self.hidden)
        check_positive_int("lstm_layers", self.lstm_layers)
        if self.hidden % check_positive_int("n_heads", self.n_heads):
            raise ValueError(f"n_heads must divide hidden, got n_heads={self.n_heads} for hidden={self.hidden}")
        check_positive_int("patch_minutes", self.patch_minutes)
        check_positive_int("train_steps", self.train_steps)
        check_positive_int("batch_size", self.batch_size)
        if not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if self.ema_decay is not None:
            _check_fraction("ema_decay", self.ema_decay)
        _check_fraction("dropout", self.dropout)
        if not (math.isfinite(self.std_floor) and self.std_floor > 0):
            raise ValueError(f"std_floor must be a positive number, got {self.std_floor!r}")


# what each saved network records of the windows it was built for
_SHAPE_KEYS = ("history_steps", "horizon", "steps_per_day", "patch")


@register_model(NAME)
class LSTMAttentionForecaster(Model, Forecaster):
    """LSTM + multi-head self-attention + pooling over the normalised history, trained per (history, horizon)
    (point forecasts); the unified paper's A1 role. See the module docstring."""

    Params = LSTMAttentionParams
    profiles = {"test": {"hidden": 8, "n_heads": 2, "train_steps": 40, "batch_size": 32},
                "paper": {"hidden": 128, "lstm_layers": 2, "n_heads": 8, "train_steps": 10000, "batch_size": 256,
                          "ema_decay": 0.999}}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        # one network per (history steps, horizon), with the shape (steps per day, patch) it was built for
        self._heads: dict[tuple[int, int], nn.Module] = {}
        self._head_shapes: dict[tuple[int, int], dict[str, int]] = {}
        self.train_results_: dict[tuple[int, int], object] = {}

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Forget any trained network (the forecaster learns from the windows of ``fit_forecast`` alone)."""
        self._heads, self._head_shapes, self.train_results_ = {}, {}, {}

    def get_state(self) -> dict:
        """The trained networks, each under ``"<history steps>x<horizon>"`` with the shape it was built for."""
        return {"heads": {f"{h}x{k}": {**self._head_shapes[(h, k)],
                                         "network": to_safe(net, f"{NAME}.heads[{h}x{k}]")}
                          for (h, k), net in self._heads.items()}}

    def set_state(self, state: dict) -> None:
        """Rebuild every saved network from its shape, then load its weights."""
        self._heads, self._head_shapes, self.train_results_ = {}, {}, {}
        for name, head in state.get("heads", {}).items():
            if not isinstance(head, dict) or set(_SHAPE_KEYS + ("network",)) - set(head):
                raise UnsafeFileError(f"{NAME}: saved network {name!r} lacks its shape")
            shape = {k: int(head[k]) for k in _SHAPE_KEYS}
            net = build_for_loading(lambda: self._network(**shape))
            key = (shape["history_steps"], shape["horizon"])
            self._heads[key] = from_safe(head["network"], net).eval().requires_grad_(False)
            self._head_shapes[key] = shape

    def _train_config(self) -> TrainConfig:
        return train_config_from(self.params, grad_clip=1.0, checkpoint_every=0)

    def _network(self, history_steps: int, horizon: int, steps_per_day: int, patch: int) -> LSTMAttentionNet:
        return LSTMAttentionNet(history_steps, horizon, steps_per_day, patch, self.hidden, self.lstm_layers,
                                self.n_heads, self.dropout, day_mean_index(history_steps, horizon, steps_per_day))

    def _shape(self, query: ForecastQuery) -> dict[str, int]:
        """The network shape for windows like ``query`` (a clear error for a resolution that is not a day's
        divisor)."""
        return {"history_steps": int(query.history.shape[1]), "horizon": int(query.horizon),
                "steps_per_day": _steps_per_day(query, NAME),
                "patch": patch_steps(self.patch_minutes, query.resolution)}

    def build_network(self, query: ForecastQuery) -> LSTMAttentionNet:
        """A freshly initialised network for windows shaped like ``query``."""
        return self._network(**self._shape(query))

    def fit_forecast(self, examples: ForecastExamples, ctx: RunContext) -> None:
        """Train a fresh network for ``examples``' (history length, horizon) on its windows.

        Raises:
            ValueError: no training window, or a history shorter than one token.
            ModelFitError: the loss or the weights became non-finite.
        """
        query = examples.query
        if len(query) == 0:
            raise ValueError(f"{NAME}: examples hold no training window")
        shape = self._shape(query)
        inputs, mean, std = window_features(query, self.std_floor)
        target = (np.asarray(examples.target, dtype=np.float32) - mean) / std
        n_in = inputs.shape[1]
        seed_everything(ctx.int_seed(Stream.MODEL_INIT))
        trainer = Trainer({"net": self._network(**shape)}, None, self._train_config(),
                          replace(ctx, checkpoint_dir=None), ema=("net",) if self.ema_decay is not None else ())

        def step(batch: torch.Tensor, it: int, trainer: Trainer) -> dict:
            x, y = batch[:, :n_in], batch[:, n_in:]
            with trainer.autocast():
                pred = trainer.model("net")(x)
            loss = torch.mean((pred.float() - y) ** 2)
            raise_if_nonfinite(NAME, it, {"loss": loss})
            trainer.update(loss)
            return {"loss": loss.detach()}

        key = (shape["history_steps"], shape["horizon"])
        self.train_results_[key] = trainer.fit(np.concatenate([inputs, target], axis=1), step,
                                               stop_after=ctx.budget_steps)
        head = trainer.sampling_network("net").eval()
        if not all(torch.isfinite(p).all() for p in head.parameters()):
            raise ModelFitError(f"{NAME}: the network weights are non-finite after training")
        self._heads[key] = head
        self._head_shapes[key] = shape

    def forecast(self, query: ForecastQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[N, horizon]`` point forecasts in the scaled space (``n_samples`` is not used).

        Raises:
            RuntimeError: no network was trained for this (history length, horizon).
            ValueError: the network was trained at another resolution.
        """
        key = (int(query.history.shape[1]), int(query.horizon))
        if key not in self._heads:
            raise RuntimeError(f"{NAME}: no network for histories of {key[0]} steps and horizon {key[1]}; call "
                               f"fit_forecast with such windows first (trained: {sorted(self._heads)})")
        shape = self._shape(query)
        if shape != self._head_shapes[key]:
            trained_minutes = MINUTES_PER_DAY // self._head_shapes[key]["steps_per_day"]
            raise ValueError(f"{NAME}: the network for {key[0]} x {key[1]} steps was trained at "
                             f"{trained_minutes}-minute resolution, the query has {query.resolution} minutes")
        inputs, mean, std = window_features(query, self.std_floor)
        if len(inputs) == 0:
            return np.zeros((0, query.horizon), dtype=np.float32)
        device = resolve_device(ctx.device)
        head = self._heads[key].to(device)
        out = draw_in_batches(len(inputs), FORECAST_BATCH,
                              lambda start, size: head(torch.from_numpy(inputs[start:start + size]).to(device)))
        return (out * std + mean).astype(np.float32)
