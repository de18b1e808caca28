"""One training loop for every deep model: device, seeding, AdamW, EMA, bf16 autocast, gradient clipping,
checkpoint + resume, step or time budget and a progress bar.

A model supplies its networks, a ``step`` function and (optionally) several optimizers; the loop owns
everything else. ``step(batch, it, trainer)`` computes losses and calls ``trainer.update(loss, "name")`` once
per optimizer it wants to step (a GAN steps its critic several times per generator step that way). Batches
are drawn by the loop from one seeded generator whose state is checkpointed together with the weights, the
optimizers, the EMA copies and the global torch RNG, so a resumed run continues exactly where an
uninterrupted one would have been.

Checkpoints are data only (tensors and plain values: state dicts, RNG states as byte tensors), written
atomically and read back with :func:`bench.persist.safe_load`; a checkpoint file holding a pickled object is
refused with :class:`bench.persist.UnsafeFileError`, never run. Randomness comes from the cell seed's named
streams (:mod:`bench.seeds`): minibatches and per-step noise from ``TRAIN_BATCHES``, the global torch seed at
the first step (dropout) from ``TRAIN_DROPOUT``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from bench.context import RunContext
from bench.persist import UnsafeFileError, atomic_save, safe_load
from bench.seeds import Stream

CHECKPOINT_NAME = "train_state.pt"
# what a checkpoint holds; a file without all of these is not a checkpoint of this loop
_CHECKPOINT_KEYS = ("fingerprint", "step", "networks", "optimizers", "ema", "generator", "torch_rng", "cuda_rng")


@dataclass
class TrainConfig:
    """Optimisation settings shared by deep models (:func:`train_config_from` fills them from a model's
    hyper-parameters).

    ``amp``: ``"auto"`` (bf16 autocast on CUDA when supported, float32 on CPU, where bf16 changes results
    enough to hurt determinism across machines), ``"bf16"`` (autocast wherever the device supports it) or
    ``"off"``. ``budget_seconds`` stops early at a wall-clock limit (not deterministic: use ``steps`` for
    reproducible tables). ``compile``: a ``torch.compile`` mode (``"default"``, ``"reduce-overhead"``, ...)
    for the training forward and backward on CUDA devices, or None; paper-size networks on short sequences
    spend most of a step launching small kernels, which compilation fuses. It is not applied on the CPU,
    where it needs a C++ toolchain and the quick profiles gain little.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.999
    grad_clip: float | None = 1.0
    warmup_steps: int = 0
    amp: str = "auto"
    checkpoint_every: int = 500
    budget_seconds: float | None = None
    compile: str | None = None


# a model's hyper-parameter name -> the TrainConfig field it sets
_TRAIN_FIELDS = {"train_steps": "steps", "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay",
                 "betas": "betas", "ema_decay": "ema_decay", "grad_clip": "grad_clip", "warmup_steps": "warmup_steps",
                 "amp": "amp", "checkpoint_every": "checkpoint_every", "compile": "compile"}


def train_config_from(params: object, **fixed: object) -> TrainConfig:
    """The training loop's settings from a model's hyper-parameter dataclass: every field it shares with
    :class:`TrainConfig` (``train_steps`` -> ``steps``; an ``ema_decay`` of None = no EMA), then ``fixed``
    (settings the model does not expose, or steps it derives from epochs) over them."""
    names = {f.name for f in dataclasses.fields(params)}
    values = {target: getattr(params, name) for name, target in _TRAIN_FIELDS.items() if name in names}
    if "ema_decay" in values and values["ema_decay"] is None:
        values["ema_decay"] = 0.0
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return TrainConfig(**{**values, **fixed})


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, then Apple MPS, then CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False "
                           f"(torch {torch.__version__}); install a CUDA build of torch or use --device cpu")
    return device


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``, or None for full float32."""
    if amp == "off":
        return None
    if amp not in ("auto", "bf16"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'off', not {amp!r}")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if amp == "bf16" and device.type == "cpu":
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` (a no-op context for None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) so weight initialisation and dropout are reproducible."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# devices with a fused AdamW kernel (one pass over each parameter for all of Adam's arithmetic)
_FUSED_ADAM_DEVICES = ("cpu", "cuda")


def optimizer_kernel(device: torch.device) -> dict:
    """AdamW's implementation choice for ``device``: ``{"fused": True}`` where torch has the fused kernel,
    else the multi-tensor (``foreach``) path.

    torch's default on the CPU is the per-parameter loop (dozens of small kernels per parameter tensor), about a
    tenth of the default run's training time with few-hundred-thousand-parameter networks; the fused
    kernel does the same update up to floating-point reordering. On CUDA it also cuts the launch count.
    """
    return {"fused": True} if device.type in _FUSED_ADAM_DEVICES else {"foreach": True}


class EMA:
    """Exponential moving average of a module's parameters and buffers, used for sampling."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)
        # loading a state dict copies into these tensors, so the lists stay valid for the shadow's lifetime
        self._params = list(self.shadow.parameters())
        self._buffers = list(self.shadow.buffers())

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        # warm-up of the decay (as in common EMA practice) keeps early averages from being dominated by
        # the random initialisation when training runs are short
        decay = min(self.decay, (1 + step) / (10 + step))
        # one multi-tensor kernel instead of one launch per parameter (the per-step launch count, not the
        # arithmetic, limits paper-size networks on short sequences on a GPU); same arithmetic on the CPU
        torch._foreach_lerp_(self._params, [p.detach() for p in module.parameters()], 1 - decay)
        for s, b in zip(self._buffers, module.buffers()):
            s.copy_(b)


@dataclass
class TrainResult:
    """What a finished training run reports."""

    steps: int
    seconds: float
    resumed_from: int
    history: list[dict] = field(default_factory=list)
    stopped_by_budget: bool = False


class Trainer:
    """Runs ``step`` functions over seeded batches; see the module docstring."""

    def __init__(self, networks: dict[str, nn.Module], optimizers: dict[str, list[str]] | None,
                 cfg: TrainConfig, ctx: RunContext, ema: tuple[str, ...] = ()) -> None:
        """
        Args:
            networks: named modules (moved to the device here).
            optimizers: optimizer name -> names of the networks it updates; default one AdamW ``"main"``
                over every network.
            cfg: optimisation settings.
            ctx: run context (seed, device, dtype override, checkpoint dir, progress).
            ema: names of networks to keep EMA copies of (``self.ema[name]`` after training).
        """
        self.cfg = cfg
        self.ctx = ctx
        self.device = resolve_device(ctx.device)
        amp = "bf16" if ctx.dtype == "bf16" else cfg.amp
        self.amp_dtype = autocast_dtype(amp, self.device)
        self.networks = {k: v.to(self.device) for k, v in networks.items()}
        groups = optimizers or {"main": list(networks)}
        self.optimizers = {
            name: torch.optim.AdamW([p for n in nets for p in self.networks[n].parameters()], lr=cfg.lr,
                                    betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                                    **optimizer_kernel(self.device))
            for name, nets in groups.items()}
        self._opt_nets = groups
        self.ema = {n: EMA(self.networks[n], cfg.ema_decay) for n in ema}
        # compiled wrappers share the parameters of ``self.networks``, so checkpoints, EMA and sampling keep
        # using the plain modules and their state-dict keys
        compiled = bool(cfg.compile) and self.device.type == "cuda"
        self._forward = {k: torch.compile(v, mode=cfg.compile) if compiled else v for k, v in self.networks.items()}
        self.step_count = 0
        # minibatch order and per-step noise (randn / rand) come from one CPU generator, checkpointed with the run
        self.generator = ctx.torch_generator(Stream.TRAIN_BATCHES)

    # -- used by step functions -------------------------------------------------------------------------
    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    def model(self, name: str) -> nn.Module:
        """The network ``name`` to call in a training step (compiled when ``cfg.compile`` applies)."""
        return self._forward[name]

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard normal noise from the checkpointed generator, on the training device."""
        return torch.randn(*shape, generator=self.generator).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator).to(self.device)

    def update(self, loss: torch.Tensor, optimizer: str = "main") -> None:
        """Backpropagate ``loss`` and step ``optimizer`` (with warm-up and gradient clipping)."""
        opt = self.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            params = [p for n in self._opt_nets[optimizer] for p in self.networks[n].parameters()]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if self.cfg.warmup_steps:
            scale = min(1.0, (self.step_count + 1) / self.cfg.warmup_steps)
            for group in opt.param_groups:
                group["lr"] = self.cfg.lr * scale
        opt.step()

    # -- checkpointing --------------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        shapes = {k: [list(p.shape) for p in v.parameters()] for k, v in self.networks.items()}
        blob = json.dumps({"cfg": asdict(self.cfg), "shapes": shapes, "seed": self.ctx.seed}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _checkpoint_path(self) -> Path | None:
        return None if self.ctx.checkpoint_dir is None else Path(self.ctx.checkpoint_dir) / CHECKPOINT_NAME

    def checkpoint_state(self) -> dict:
        """Everything a resume needs, as tensors and plain values only (loadable with ``weights_only=True``):
        state dicts of networks, optimizers and EMA copies, and the RNG states as CPU byte tensors."""
        return {
            "fingerprint": self._fingerprint(), "step": self.step_count,
            "networks": {k: v.state_dict() for k, v in self.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "ema": {k: v.shadow.state_dict() for k, v in self.ema.items()},
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def save_checkpoint(self) -> None:
        """Write :meth:`checkpoint_state` atomically to the context's checkpoint directory (if it has one)."""
        path = self._checkpoint_path()
        if path is None:
            return
        atomic_save(self.checkpoint_state(), path)

    def try_resume(self) -> int:
        """Load a matching checkpoint if there is one; returns the step it resumes from (0 if none).

        A checkpoint of another config, model or seed is ignored (training starts afresh). A file that holds
        anything but tensors and plain values raises :class:`bench.persist.UnsafeFileError` naming it; its
        contents are never executed.
        """
        path = self._checkpoint_path()
        if path is None or not path.is_file():
            return 0
        # loaded on the CPU: RNG states must stay CPU byte tensors, and load_state_dict copies weights and
        # optimizer moments onto the devices of the live parameters
        state = safe_load(path, map_location="cpu")
        if not isinstance(state, dict) or any(k not in state for k in _CHECKPOINT_KEYS):
            raise UnsafeFileError(f"{path}: not a training checkpoint of bench.train (expected a dict with "
                                  f"{', '.join(_CHECKPOINT_KEYS)})")
        if state["fingerprint"] != self._fingerprint():
            return 0  # a checkpoint of a different config or model: start afresh rather than mix them
        for k, v in self.networks.items():
            v.load_state_dict(state["networks"][k])
        for k, v in self.optimizers.items():
            v.load_state_dict(state["optimizers"][k])
        for k, v in self.ema.items():
            v.shadow.load_state_dict(state["ema"][k])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step_count = int(state["step"])
        return self.step_count

    # -- the loop ---------------------------------------------------------------------------------------
    def fit(self, data: torch.Tensor | np.ndarray, step: Callable[[torch.Tensor, int, "Trainer"], dict],
            stop_after: int | None = None) -> TrainResult:
        """Train for ``cfg.steps`` steps (or until the time budget), resuming from a checkpoint if present.

        ``stop_after`` ends the call after that many steps of this call without finishing the run (used to
        test that checkpoint + resume equals an uninterrupted run).
        """
        data = torch.as_tensor(np.asarray(data, dtype=np.float32))
        if len(data) == 0:
            raise ValueError("no training data")
        resumed = self.try_resume()
        if not resumed:
            # dropout and other global-RNG draws start from the seed; a resumed run restores them instead
            seed_everything(self.ctx.int_seed(Stream.TRAIN_DROPOUT))
        for net in self.networks.values():
            net.train()
        start = time.perf_counter()
        history: list[dict] = []
        bar = None
        if self.ctx.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.cfg.steps, initial=resumed, desc="train", unit="step", leave=False)
        done_here = 0
        stopped = False
        budget = self.cfg.budget_seconds or self.ctx.budget_seconds
        while self.step_count < self.cfg.steps:
            idx = torch.randint(0, len(data), (min(self.cfg.batch_size, len(data)),), generator=self.generator)
            batch = data[idx].to(self.device)
            logs = step(batch, self.step_count, self) or {}
            for name, e in self.ema.items():
                e.update(self.networks[name], self.step_count)
            self.step_count += 1
            done_here += 1
            # reading a loss value waits for the device, so logs are read only every 50 steps
            if self.step_count % 50 == 0 or self.step_count == self.cfg.steps:
                record = {"step": self.step_count, **{k: float(v) for k, v in logs.items()}}
                record["elapsed"] = time.perf_counter() - start  # after float(): the device has caught up
                history.append(record)
                if bar is not None and logs:
                    bar.set_postfix({k: f"{record[k]:.4g}" for k in logs}, refresh=False)
            if bar is not None:
                bar.update(1)
            if self.cfg.checkpoint_every and self.step_count % self.cfg.checkpoint_every == 0:
                self.save_checkpoint()
            if stop_after is not None and done_here >= stop_after:
                self.save_checkpoint()
                break
            if budget and time.perf_counter() - start > budget:
                stopped = True
                self.save_checkpoint()
                break
        if bar is not None:
            bar.close()
        if done_here and self.step_count >= self.cfg.steps:
            # a finished run is kept too: another task fitting the same model on the same training set
            # (the runner keys checkpoints on both) resumes at the last step instead of training again
            self.save_checkpoint()
        for net in self.networks.values():
            net.eval()
        return TrainResult(steps=self.step_count, seconds=time.perf_counter() - start, resumed_from=resumed,
                           history=history, stopped_by_budget=stopped)

    def sampling_network(self, name: str) -> nn.Module:
        """The EMA copy of ``name`` if one is kept, else the network itself (in eval mode)."""
        return self.ema[name].shadow if name in self.ema else self.networks[name].eval()
