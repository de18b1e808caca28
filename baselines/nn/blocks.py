"""Small pieces shared by the deep generative baselines (``vae``, ``wgan-gp``).

* :func:`mlp` - a stack of fully connected layers with GELU activations and LayerNorm between hidden layers.
* :func:`resolve_train_steps` - a training length given either in optimiser steps or in epochs.
* :func:`raise_if_nonfinite` - turns a diverged loss into a :class:`bench.errors.ModelFitError`.
* :func:`check_positive_int` - argument validation with a message naming the parameter.
* :func:`dtype_name` / :func:`dtype_from_name` - the autocast dtype of a fitted model as a plain string in
  model files; :func:`build_for_loading` builds networks for a model file to fill.
"""

from __future__ import annotations

import math
from typing import Callable, TypeVar

import torch
from torch import nn

from bench.errors import ModelFitError

M = TypeVar("M")


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int when it is a positive integer (``bool`` excluded), else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def mlp(in_dim: int, hidden: int, out_dim: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` linear layers ``in_dim -> hidden -> ... -> hidden -> out_dim`` with GELU activations.

    Every hidden layer after the first is preceded by a LayerNorm (keeps the deep stack well scaled at the
    paper's width of 512 without batch statistics, so training and sampling behave alike); the last layer is
    linear with no activation.

    Raises:
        ValueError: a non-positive size or fewer than 2 layers.
    """
    for name, value in (("in_dim", in_dim), ("hidden", hidden), ("out_dim", out_dim)):
        check_positive_int(name, value)
    if check_positive_int("n_layers", n_layers) < 2:
        raise ValueError(f"n_layers must be at least 2 (input and output layer), got {n_layers}")
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden), nn.GELU()]
    for _ in range(n_layers - 2):
        layers += [nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)


def resolve_train_steps(train_steps: int | None, epochs: float | None, n_train: int, batch_size: int,
                        batches_per_step: int = 1) -> int:
    """The number of optimiser steps of a run given either ``train_steps`` or ``epochs``.

    An epoch is one pass over ``n_train`` profiles in batches of ``min(batch_size, n_train)``; a step that
    consumes ``batches_per_step`` batches (a GAN's critic updates) counts that many batches. The result is
    ``ceil(epochs * n_train / (batch * batches_per_step))``, at least 1.

    Raises:
        ValueError: both or neither of ``train_steps`` and ``epochs`` given, or non-positive values.
    """
    if (train_steps is None) == (epochs is None):
        raise ValueError(f"give exactly one of train_steps and epochs (got train_steps={train_steps!r}, "
                         f"epochs={epochs!r})")
    if train_steps is not None:
        return check_positive_int("train_steps", train_steps)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not epochs > 0:
        raise ValueError(f"epochs must be a positive number, got {epochs!r}")
    check_positive_int("n_train", n_train)
    batch = min(check_positive_int("batch_size", batch_size), n_train)
    per_step = batch * check_positive_int("batches_per_step", batches_per_step)
    return max(1, math.ceil(epochs * n_train / per_step))


def raise_if_nonfinite(model: str, step: int, losses: dict[str, torch.Tensor]) -> None:
    """Raise :class:`ModelFitError` naming the step and the values when any loss is NaN or infinite.

    Each entry may hold one loss or several (e.g. one per critic update of the step); all are checked
    together, with one device synchronisation per training step.
    """
    flat = {k: v.detach().float().reshape(-1) for k, v in losses.items()}
    if not bool(torch.isfinite(torch.cat(list(flat.values()))).all()):
        shown = ", ".join(f"{k}={[round(x, 4) for x in v.cpu().tolist()]}" if v.numel() > 1
                          else f"{k}={float(v):.4g}" for k, v in flat.items())
        raise ModelFitError(f"{model}: training diverged at step {step} (non-finite loss: {shown})")


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """``torch.bfloat16 -> "bfloat16"`` (None stays None): a dtype as a plain value for a model file."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"expected a torch.dtype or None, got {dtype!r}")
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str | None) -> torch.dtype | None:
    """Inverse of :func:`dtype_name`.

    Raises:
        ValueError: ``name`` is not the name of a torch floating-point dtype.
    """
    if name is None:
        return None
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"not a torch floating-point dtype: {name!r}")
    return dtype



def build_for_loading(build: Callable[[], M]) -> M:
    """``build()`` for networks whose weights a model file is about to overwrite, without advancing the global
    torch RNG (their random initialisation is discarded, so loading a model leaves the caller's draws alone)."""
    with torch.random.fork_rng(devices=[]):
        return build()
