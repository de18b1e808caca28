"""PyPOTS imputers on meterbench's imputation contract: ``saits``, ``brits`` and ``csdi``.

Each model wraps one class of the PyPOTS library (``pip install 'meterbench[baselines]'``); nothing of the
networks or their training is re-implemented here. A daily (or monthly) profile of ``T`` steps is one PyPOTS
sample with ``n_steps = T`` and ``n_features = 1``; steps that are not observed (and month padding) are NaN, which
is how PyPOTS marks missing values.

* ``saits`` - SAITS (diagonally-masked self-attention, two attention blocks and a learned combination), trained
  with PyPOTS's own joint objective: reconstruction of the observed values (ORT) plus the masked imputation task
  (MIT), in which PyPOTS hides a fresh 20 % of the observed values of every training sample at every epoch
  (its fixed artificial-missing rate). Deterministic: the point imputation repeated ``S`` times.
* ``brits`` - BRITS (bidirectional recurrent imputation), trained with PyPOTS's BRITS objective (each observed
  value is estimated before the recurrence reads it, plus the forward / backward consistency loss) on training
  profiles with a fixed random 20 % of their steps hidden (``train_missing``): BRITS's own objective has no
  masking of its own, and trained on complete profiles it never meets a gap (its decay inputs stay at one step),
  so its imputations of real gaps came out worse than the training mean. Deterministic: the point imputation
  repeated ``S`` times.
* ``csdi`` - CSDI (conditional score-based diffusion), trained with PyPOTS's random target masking (a random
  share of each sample's observed values becomes the diffusion target, the rest the condition). Its ``S``
  samples are ``S`` independent reverse-diffusion draws, so the ensemble has spread and its CRPS is meaningful.

Randomness: every library call runs under :func:`pypots.utils.random.set_random_seed` with a seed drawn from a
named stream (``MODEL_FIT`` for building and training, ``MODEL_IMPUTE`` for CSDI's sampling); the Python,
NumPy and torch global generators are restored afterwards, so the seeding does not leak into other code.

Persistence: the state is the underlying torch module's ``state_dict`` (PyPOTS models expose it as ``.model``)
plus ``n_steps``; ``set_state`` builds the PyPOTS model with the same parameters and loads the weights. No
PyPOTS ``.save()`` file, no pickle; PyPOTS writes no checkpoint or tensorboard file (``saving_path=None``).

Training uses no validation set: PyPOTS then keeps the weights of the epoch with the lowest training loss, and
``patience`` (when set) stops after that many epochs without a lower training loss.

Profiles: ``quick`` (the defaults) trains 50 epochs of small networks on the CPU. Measured on one thread of a
shared, loaded 2-core machine with 1247 training profiles of 48 steps: about 3.6 s per epoch for SAITS and BRITS
and 2.9 s for CSDI (2.5 to 3 minutes per fit), and CSDI's 10 draws for 200 profiles take about 26 s (62 s at 96
steps). ``test`` is the contract test's size (a fit in seconds); ``paper`` the published configurations named in
each class (GPU).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar, Iterator, Literal

import numpy as np
import torch

from bench.api import Imputer, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.extras import require
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import ImputationQuery
from bench.train import resolve_device


# -- the library ------------------------------------------------------------------------------------------------
def _pypots(model: str) -> SimpleNamespace:
    """The PyPOTS pieces the wrappers use, imported on first use (a missing library is a
    :class:`bench.extras.MissingExtraError` naming ``meterbench[baselines]``)."""
    # importing pypots prints a banner of one of its dependencies to stdout, which would land in the middle of
    # a benchmark's printed tables; stderr (where PyPOTS logs) is left alone
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        require("pypots", model=model)
        imputation = require("pypots.imputation", model=model)
        optim = require("pypots.optim", model=model)
        seeding = require("pypots.utils.random", model=model)
        logs = require("pypots.utils.logging", model=model)
    return SimpleNamespace(imputation=imputation, Adam=optim.Adam, set_random_seed=seeding.set_random_seed,
                           logger=logs.logger)


@contextlib.contextmanager
def _library_call(lib: SimpleNamespace, seed: int | None, device: torch.device) -> Iterator[None]:
    """Run PyPOTS code seeded with ``seed`` (None: not reseeded) and give the global random generators back
    afterwards.

    PyPOTS draws weight initialisation, minibatch order, artificial masks and diffusion noise from the global
    Python / NumPy / torch generators; restoring them keeps a model's seeding from shifting anyone else's draws.
    Its INFO / WARNING log lines (one per model built, e.g. that no saving path was given, and one per epoch)
    are dropped while it runs; errors still show.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    level = lib.logger.level
    # a filter, not a level: building a model with verbose=False resets PyPOTS's logger level itself
    errors_only = _ErrorsOnly()
    lib.logger.addFilter(errors_only)
    try:
        with torch.random.fork_rng(devices=cuda), warnings.catch_warnings():
            # torch notes that CSDI's attention layers are not batch-first: a speed hint about library code
            warnings.filterwarnings("ignore", message=".*enable_nested_tensor is True.*", category=UserWarning)
            if seed is not None:
                lib.set_random_seed(seed)
            yield
    finally:
        lib.logger.removeFilter(errors_only)
        lib.logger.setLevel(level)
        random.setstate(py_state)
        np.random.set_state(np_state)


class _ErrorsOnly(logging.Filter):
    """Lets through only records of level ERROR and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _check_n_samples(n_samples: Any, model: str) -> int:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"{model}: n_samples must be a positive integer, got {n_samples!r}")
    return int(n_samples)


# -- parameters -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingParams(Params):
    """What every PyPOTS imputer is trained with (Adam, no validation set)."""

    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int | None = None  # stop after this many epochs without a lower training loss (None: never)

    def __post_init__(self) -> None:
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.patience is not None and not 1 <= self.patience <= self.epochs:
            raise ValueError(f"patience must lie in [1, epochs={self.epochs}] or be None, got {self.patience}")


@dataclass(frozen=True)
class SAITSParams(TrainingParams):
    """SAITS sizes (``d_k = d_v = d_model / n_heads``)."""

    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    d_ffn: int = 128
    dropout: float = 0.1
    attn_dropout: float = 0.0
    diagonal_attention_mask: bool = True
    ORT_weight: float = 1.0  # observed reconstruction task
    MIT_weight: float = 1.0  # masked imputation task

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_layers", "d_model", "n_heads", "d_ffn"):
            _check_positive(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.ORT_weight < 0 or self.MIT_weight < 0 or self.ORT_weight + self.MIT_weight == 0:
            raise ValueError(f"ORT_weight and MIT_weight must be >= 0 and not both 0, got "
                             f"{self.ORT_weight} and {self.MIT_weight}")


@dataclass(frozen=True)
class BRITSParams(TrainingParams):
    """BRITS size."""

    rnn_hidden_size: int = 64
    learning_rate: float = 3e-3
    # share of the observed training steps hidden at random before training: BRITS learns to bridge gaps only
    # from gaps in its training data (its time-decay inputs are never > 1 step on complete profiles)
    train_missing: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("rnn_hidden_size", self.rnn_hidden_size)
        if not 0.0 <= self.train_missing < 1.0:
            raise ValueError(f"train_missing must lie in [0, 1), got {self.train_missing}")


@dataclass(frozen=True)
class CSDIParams(TrainingParams):
    """CSDI sizes and diffusion schedule."""

    n_layers: int = 2
    n_heads: int = 4
    n_channels: int = 32
    d_time_embedding: int = 64
    d_feature_embedding: int = 8
    d_diffusion_embedding: int = 64
    n_diffusion_steps: int = 50
    schedule: Literal["quad", "linear"] = "quad"
    beta_start: float = 1e-4
    beta_end: float = 0.5
    target_strategy: Literal["random", "mix"] = "random"
    batch_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("n_layers", "n_heads", "n_channels", "d_time_embedding", "d_feature_embedding",
                     "d_diffusion_embedding", "n_diffusion_steps"):
            _check_positive(name, getattr(self, name))
        if self.n_channels % self.n_heads:
            raise ValueError(f"n_channels={self.n_channels} must be divisible by n_heads={self.n_heads}")
        for name in ("d_time_embedding", "d_diffusion_embedding"):
            if getattr(self, name) % 2:  # sine / cosine halves
                raise ValueError(f"{name} must be even, got {getattr(self, name)}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")


# -- the shared wrapper -------------------------------------------------------------------------------------------
class PyPOTSImputer(Model, Imputer):
    """Base of the PyPOTS wrappers: data layout, seeding, fit, impute and save / load.

    A subclass names the PyPOTS class (``library_class``) and maps its parameters to the class's keyword
    arguments (:meth:`library_kwargs`); a stochastic one sets ``stochastic = True``.
    """

    Params = TrainingParams
    library_class: ClassVar[str] = ""
    registered_name: ClassVar[str] = ""
    stochastic: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._net: Any = None  # the fitted PyPOTS model
        self._n_steps: int | None = None
        self._diagnostics: dict[str, float] = {}

    # -- the library object ------------------------------------------------------------------------------------
    def library_kwargs(self, n_steps: int) -> dict:
        """The PyPOTS constructor's model-specific keyword arguments for profiles of ``n_steps`` steps."""
        raise NotImplementedError

    def build_library_model(self, lib: SimpleNamespace, n_steps: int, device: torch.device) -> Any:
        """A fresh PyPOTS model (weights drawn from the torch global generator, so build it seeded)."""
        cls = getattr(lib.imputation, self.library_class)
        return cls(n_steps=n_steps, n_features=1, **self.library_kwargs(n_steps), batch_size=self.batch_size,
                   epochs=self.epochs, patience=self.patience, optimizer=lib.Adam(lr=self.learning_rate),
                   num_workers=0, device=device, saving_path=None, model_saving_strategy=None, verbose=False)

    # -- fit ---------------------------------------------------------------------------------------------------------
    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Build the PyPOTS model and train it on ``train``'s profiles (unobserved steps as NaN).

        Raises:
            ModelFitError: no training profile has an observed step, or PyPOTS's training failed (an error
                during the first epoch, a non-finite loss, non-finite weights).
        """
        values, mask = np.asarray(train.values), np.asarray(train.mask, dtype=bool)
        if values.ndim != 2 or mask.shape != values.shape:
            raise ValueError(f"{self.registered_name}: training values and mask must share a 2-D shape, got "
                             f"{values.shape} and {mask.shape}")
        keep = mask.any(axis=1)  # a profile with nothing observed teaches nothing
        if not keep.any():
            raise ModelFitError(f"{self.registered_name}: no training profile has an observed step")
        x = self.training_input(np.where(mask, values, np.nan)[keep, :, None].astype(np.float32), ctx)
        n_steps = values.shape[1]
        lib = _pypots(self.registered_name)
        device = resolve_device(ctx.device)
        with _library_call(lib, ctx.int_seed(Stream.MODEL_FIT, bits=31), device):
            net = self.build_library_model(lib, n_steps, device)
            try:
                net.fit({"X": x})
            except (RuntimeError, ValueError) as err:  # PyPOTS's own "training failed" / "loss is NaN"
                raise ModelFitError(f"{self.registered_name}: PyPOTS training failed: {err}") from None
        if not all(torch.isfinite(v).all() for v in net.model.state_dict().values() if v.is_floating_point()):
            raise ModelFitError(f"{self.registered_name}: training produced non-finite weights")
        self._net, self._n_steps = net, n_steps
        self._diagnostics = {"best_epoch": float(net.best_epoch), "best_train_loss": float(net.best_loss),
                             "train_profiles": float(keep.sum())}

    def training_input(self, x: np.ndarray, ctx: RunContext) -> np.ndarray:
        """The ``[N, T, 1]`` training array (NaN = missing) the library model learns from; as given by default."""
        return x

    def diagnostics(self) -> dict[str, float]:
        """``best_epoch`` (the epoch whose weights are kept), ``best_train_loss`` (PyPOTS's training loss then)
        and ``train_profiles``; ``{}`` before a fit."""
        return dict(self._diagnostics)

    # -- impute ------------------------------------------------------------------------------------------------------
    def _prepared_query(self, query: ImputationQuery, n_samples: int) -> tuple[np.ndarray, int]:
        if self._net is None:
            raise RuntimeError(f"{self.registered_name}: impute called before fit")
        n_samples = _check_n_samples(n_samples, self.registered_name)
        if query.values.shape[1] != self._n_steps:
            raise ValueError(f"{self.registered_name}: query profiles have {query.values.shape[1]} steps, the "
                             f"model was fitted on {self._n_steps}")
        x = np.where(query.observed, query.values, np.nan)[:, :, None].astype(np.float32)
        return x, n_samples

    def impute(self, query: ImputationQuery, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32: PyPOTS's imputation of the unobserved steps, observed values kept exactly,
        padding 0. Deterministic models repeat their point imputation ``S`` times."""
        x, n_samples = self._prepared_query(query, n_samples)
        lib = _pypots(self.registered_name)
        device = resolve_device(ctx.device)
        with _library_call(lib, ctx.int_seed(Stream.MODEL_IMPUTE, bits=31) if self.stochastic else None, device):
            self._net.to(device)
            draws = self.library_imputations(x, n_samples)  # [S, N, T]
        draws = np.where(query.observed[None], query.values[None], draws)
        return np.where(query.valid[None], draws, 0.0).astype(np.float32)

    def library_imputations(self, x: np.ndarray, n_samples: int) -> np.ndarray:
        """``[S, N, T]`` imputations of ``x [N, T, 1]`` (NaN = missing) by the fitted PyPOTS model."""
        point = np.asarray(self._net.predict({"X": x})["imputation"])[..., 0]
        return np.broadcast_to(point, (n_samples, *point.shape))

    # -- save / load ---------------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """``n_steps``, the PyPOTS torch module's ``state_dict`` and the diagnostics (``{}`` before a fit)."""
        if self._net is None:
            return {}
        weights = {k: v.detach().cpu().clone() for k, v in self._net.model.state_dict().items()}
        return {"n_steps": int(self._n_steps), "network": weights, "diagnostics": dict(self._diagnostics)}

    def set_state(self, state: dict) -> None:
        """Build the PyPOTS model for ``state['n_steps']`` with this instance's parameters (on the CPU; ``impute``
        moves it to the run's device) and load the saved weights into it."""
        if not state:
            self._net, self._n_steps, self._diagnostics = None, None, {}
            return
        lib = _pypots(self.registered_name)
        n_steps = int(state["n_steps"])
        cpu = torch.device("cpu")
        with _library_call(lib, None, cpu):  # the initial weights are replaced, the generators given back
            net = self.build_library_model(lib, n_steps, cpu)
        net.model.load_state_dict(state["network"])
        net.model.eval()
        self._net, self._n_steps = net, n_steps
        self._diagnostics = {str(k): float(v) for k, v in state.get("diagnostics", {}).items()}


# -- the models ---------------------------------------------------------------------------------------------------
@register_model("saits")
class SAITSImputer(PyPOTSImputer):
    """PyPOTS SAITS: self-attention imputer, a stand-in for the unified paper's C3 role (a bidirectional encoder
    restoring missing load segments, BERT-PIN).

    Trained with ORT + MIT (PyPOTS masks 20 % of the observed values per sample and epoch); deterministic, the
    point imputation repeated ``S`` times. ``paper``: the size of the SAITS authors' Electricity base
    configuration (2 layers, d_model 256, 4 heads, d_ffn 128, dropout 0.1, Adam 1e-3, batch 128), 300 epochs
    with patience 30 on the training loss (the authors stop early on a validation set).
    """

    Params = SAITSParams
    library_class = "SAITS"
    registered_name = "saits"
    profiles = {
        "test": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_ffn": 32, "dropout": 0.0, "epochs": 15,
                 "batch_size": 32, "learning_rate": 1e-2},
        "paper": {"n_layers": 2, "d_model": 256, "n_heads": 4, "d_ffn": 128, "dropout": 0.1, "epochs": 300,
                  "patience": 30, "batch_size": 128},
    }

    def library_kwargs(self, n_steps: int) -> dict:
        head = self.d_model // self.n_heads
        return {"n_layers": self.n_layers, "d_model": self.d_model, "n_heads": self.n_heads, "d_k": head,
                "d_v": head, "d_ffn": self.d_ffn, "dropout": self.dropout, "attn_dropout": self.attn_dropout,
                "diagonal_attention_mask": self.diagonal_attention_mask, "ORT_weight": self.ORT_weight,
                "MIT_weight": self.MIT_weight}


@register_model("brits")
class BRITSImputer(PyPOTSImputer):
    """PyPOTS BRITS: bidirectional recurrent imputer, a recurrent counterpart of the unified paper's C3 role
    (bidirectional restoration of missing load data).

    Trained with BRITS's own objective on the training profiles with a random ``train_missing`` share (20 %) of
    their steps hidden: on complete profiles BRITS never sees a gap, and its imputations of real gaps were
    worse than the training mean; deterministic, the point imputation repeated ``S`` times. ``paper``: the SAITS authors' tuned BRITS configuration for the Electricity data (hidden size
    512, Adam 4.15e-4, batch 128), 300 epochs with patience 30 on the training loss.
    """

    Params = BRITSParams
    library_class = "BRITS"
    registered_name = "brits"
    profiles = {
        "test": {"rnn_hidden_size": 16, "epochs": 6, "batch_size": 16, "learning_rate": 2e-2},
        "paper": {"rnn_hidden_size": 512, "epochs": 300, "patience": 30, "batch_size": 128,
                  "learning_rate": 4.15e-4},
    }

    def library_kwargs(self, n_steps: int) -> dict:
        return {"rnn_hidden_size": self.rnn_hidden_size}

    def training_input(self, x: np.ndarray, ctx: RunContext) -> np.ndarray:
        """``x`` with a random ``train_missing`` share of its observed steps hidden (NaN), each step
        independently (missing completely at random), from the run's fit stream."""
        if self.train_missing == 0.0:
            return x
        hide = ctx.rng(Stream.MODEL_FIT, 1).random(x.shape) < self.train_missing
        return np.where(hide, np.nan, x).astype(np.float32)


@register_model("csdi")
class CSDIImputer(PyPOTSImputer):
    """PyPOTS CSDI: conditional diffusion imputer whose ``S`` reverse-diffusion draws form the ensemble.

    Trained with PyPOTS's target masking (``target_strategy``); sampling noise from the run's imputation
    stream. ``paper``: the CSDI authors' base configuration (4 residual layers, 64 channels, 8 heads,
    diffusion embedding 128, time embedding 128, feature embedding 16, 50 quadratic-schedule steps with
    beta 1e-4 to 0.5, 200 epochs, batch 16, Adam 1e-3).
    """

    Params = CSDIParams
    library_class = "CSDI"
    registered_name = "csdi"
    stochastic = True
    profiles = {
        "test": {"n_layers": 1, "n_heads": 2, "n_channels": 16, "d_time_embedding": 16, "d_feature_embedding": 4,
                 "d_diffusion_embedding": 16, "n_diffusion_steps": 20, "epochs": 15, "learning_rate": 1e-2},
        "paper": {"n_layers": 4, "n_heads": 8, "n_channels": 64, "d_time_embedding": 128,
                  "d_feature_embedding": 16, "d_diffusion_embedding": 128, "n_diffusion_steps": 50,
                  "epochs": 200, "batch_size": 16, "learning_rate": 1e-3},
    }

    def library_kwargs(self, n_steps: int) -> dict:
        return {"n_layers": self.n_layers, "n_heads": self.n_heads, "n_channels": self.n_channels,
                "d_time_embedding": self.d_time_embedding, "d_feature_embedding": self.d_feature_embedding,
                "d_diffusion_embedding": self.d_diffusion_embedding, "n_diffusion_steps": self.n_diffusion_steps,
                "target_strategy": self.target_strategy, "schedule": self.schedule, "beta_start": self.beta_start,
                "beta_end": self.beta_end}

    def library_imputations(self, x: np.ndarray, n_samples: int) -> np.ndarray:
        """``S`` reverse-diffusion draws: PyPOTS returns ``[N, S, T, 1]``."""
        draws = np.asarray(self._net.predict({"X": x}, n_sampling_times=n_samples)["imputation"])[..., 0]
        return np.transpose(draws, (1, 0, 2))
