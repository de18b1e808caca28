"""Flow-matching utilities: the conditional OT path, ODE samplers, measurement operators and posterior sampling.

Nothing here knows about a particular network; a model supplies a velocity function ``v(x, t) -> [B, T]``.

**Path and target.** With noise ``x0 ~ N(0, I)`` at ``t = 0`` and data ``x1`` at ``t = 1``, the conditional
optimal-transport path is ``x_t = (1 - t) x0 + t x1`` and its velocity ``d x_t / dt = x1 - x0`` is the regression
target of flow matching (:func:`ot_path`, :func:`ot_velocity`). Training times are drawn from a logit-normal
distribution, ``t = sigmoid(mean + std * z)`` with ``z ~ N(0, 1)`` (:func:`logit_normal_times`), which puts
more weight on the middle of the path than a uniform draw. :func:`masked_mse` averages the squared error over
valid steps only, so the padding of short months never enters the loss (it is excluded by selection, not by
multiplication, so even non-finite padding cannot leak).

**Sampling.** :func:`euler_sample` and :func:`heun_sample` integrate ``dx/dt = v(x, t)`` from ``t = 0`` to
``t = 1`` on a uniform grid (Heun: the explicit trapezoidal rule, second order, two evaluations per step).

**Measurements.** An operator ``A`` has ``apply(x)`` (the measurement of ``x``, e.g. block means) and
``project(x)`` (the closest profile, in the Euclidean sense, whose measurement equals the target ``y``):

* :class:`ObservedMask` (imputation): ``A x = x[observed]``; projection replaces the observed entries.
* :class:`AveragePool` (super-resolution): ``A x`` = means of ``factor``-step blocks; projection shifts every
  block by ``y_b - mean_b(x)`` (the orthogonal projection onto the affine set ``{A x = y}``).
* :class:`Mean` (numerical constraint): per-profile mean over valid steps; projection shifts the profile.
* :class:`Peak`: per-profile maximum over valid steps; projection clips everything above the target and, if
  the maximum falls short, raises the largest step to it (the closest point of ``{max x = y}``).

All take a ``valid`` mask: padding is ignored by the measurement and set to 0 by the projection. Targets of
``NaN`` (per profile for Mean / Peak, per block for AveragePool) mean "no constraint". :class:`Compose` applies
operators in sequence (alternating projections, repeated ``iterations`` times when they interact).

**Posterior sampling** (:func:`guided_sample`): at each Euler step from ``t`` to ``t + h`` the network's
endpoint estimate ``x1_hat = x_t + (1 - t) v(x_t, t)`` is projected onto the measurement, the velocity is
rebuilt from the projected endpoint, ``v' = (P(x1_hat) - x_t) / (1 - t)``, and ``x_{t+h} = x_t + h v'``.
Optional RePaint-style resampling moves the state back from ``t + h`` to ``t`` along the path,
``x_t = (t / (t + h)) x_{t+h} + sqrt((1 - t)^2 - (t (1 - t - h) / (t + h))^2) eps`` (which has the marginal of
the OT path at ``t`` when ``x_{t+h}`` has it at ``t + h``), and redoes the step, ``resample_steps`` times.
A final projection makes the output satisfy the measurement exactly.

**Guidance** (numerical constraints, :class:`EndpointGuidance`): instead of projecting, the endpoint estimate
takes ``iterations`` damped Gauss-Newton steps towards each constraint ``c(x) = y``,
``x1_hat <- x1_hat - strength * (c(x1_hat) - y) * g / |g|^2`` with ``g`` the gradient of ``c``: uniform over the
valid steps for :class:`Mean`, the softmax of ``x / tau`` over the valid steps for :class:`Peak` (a smooth
maximum whose value is the true maximum, as in SmartMeterFM's ``smooth_max`` operator). The output is not
projected, so how close a sample comes to its target is a property of the model and the guidance, which is
what constrained generation is scored on; ``strength = 1`` with many iterations approaches the projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import torch

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- path, target, loss ---------------------------------------------------------------------------------------
def _time_like(t: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """``t`` as a tensor broadcasting over ``x [B, ...]`` (scalar or one time per row)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        return t
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"times have shape {tuple(t.shape)} for a batch of {x.shape[0]}")
    return t.reshape(-1, *([1] * (x.dim() - 1)))


def ot_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """``x_t = (1 - t) x0 + t x1`` with ``t`` a scalar or ``[B]``."""
    tt = _time_like(t, x1)
    return (1 - tt) * x0 + tt * x1


def ot_velocity(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The conditional velocity ``x1 - x0`` of :func:`ot_path` (constant along the path)."""
    return x1 - x0


def logit_normal_times(normal: torch.Tensor, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """Logit-normal times ``sigmoid(mean + std * normal)`` in (0, 1) from standard normal draws ``normal``."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    return torch.sigmoid(mean + std * normal)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``(pred - target)^2`` over the entries where ``mask`` is True (all entries when None).

    Masked entries are removed with ``torch.where``, so neither their values nor their gradients reach the
    loss even when they are non-finite.

    Raises:
        ValueError: shapes differ or the mask selects nothing.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if mask is None:
        return torch.mean((pred - target) ** 2)
    mask = mask.to(torch.bool)
    if mask.shape != pred.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match {tuple(pred.shape)}")
    count = mask.sum()
    if int(count) == 0:
        raise ValueError("the mask selects no entries")
    diff = torch.where(mask, pred - torch.where(mask, target, torch.zeros_like(target)), torch.zeros_like(pred))
    return (diff ** 2).sum() / count


# -- ODE samplers ---------------------------------------------------------------------------------------------
def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return steps


def _times(steps: int, x: torch.Tensor) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, steps + 1, dtype=x.dtype, device=x.device)


def euler_sample(velocity: VelocityFn, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate ``dx/dt = velocity(x, t)`` from ``t = 0`` (``x0``) to 1 with ``steps`` explicit Euler steps.

    ``velocity`` receives ``t`` as a ``[B]`` tensor.
    """
    _check_steps(steps)
    ts = _times(steps, x0)
    x = x0
    for i in range(steps):
        t = ts[i].expand(x.shape[0])
        x = x + (ts[i + 1] - ts[i]) * velocity(x, t)
    return x


def heun_sample(velocity: VelocityFn, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Heun's method (explicit trapezoidal rule, second order; two velocity evaluations per step)."""
    _check_steps(steps)
    ts = _times(steps, x0)
    x = x0
    for i in range(steps):
        h = ts[i + 1] - ts[i]
        d1 = velocity(x, ts[i].expand(x.shape[0]))
        d2 = velocity(x + h * d1, ts[i + 1].expand(x.shape[0]))
        x = x + 0.5 * h * (d1 + d2)
    return x


ODE_SAMPLERS: dict[str, Callable[[VelocityFn, torch.Tensor, int], torch.Tensor]] = {
    "euler": euler_sample, "heun": heun_sample}


# -- measurement operators ------------------------------------------------------------------------------------
class Operator(Protocol):
    """A measurement: ``apply(x)`` measures ``x [B, T]``; ``project(x)`` is the closest ``x`` meeting the target."""

    def apply(self, x: torch.Tensor) -> torch.Tensor | tuple: ...

    def project(self, x: torch.Tensor) -> torch.Tensor: ...


def _as_valid(valid: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if valid is None:
        return torch.ones_like(x, dtype=torch.bool)
    valid = torch.as_tensor(valid, device=x.device).to(torch.bool)
    if valid.shape != x.shape:
        raise ValueError(f"valid mask {tuple(valid.shape)} does not match profiles {tuple(x.shape)}")
    return valid


def _zero_padding(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, x, torch.zeros_like(x))


@dataclass
class ObservedMask:
    """Imputation: the entries where ``observed`` is True must equal ``values`` (NaN elsewhere is ignored)."""

    values: torch.Tensor
    observed: torch.Tensor
    valid: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.observed = torch.as_tensor(self.observed).to(torch.bool)
        values = torch.as_tensor(self.values)
        if not values.is_floating_point():
            values = values.to(torch.float32)
        if values.shape != self.observed.shape:
            raise ValueError(f"values {tuple(values.shape)} and observed {tuple(self.observed.shape)} differ")
        if not torch.isfinite(values[self.observed]).all():
            raise ValueError("observed values must be finite")
        self.values = torch.where(self.observed, values, torch.zeros_like(values))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the observed entries, 0 elsewhere."""
        return torch.where(self.observed.to(x.device), x, torch.zeros_like(x))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        obs = self.observed.to(x.device)
        out = torch.where(obs, self.values.to(device=x.device, dtype=x.dtype), x)
        return _zero_padding(out, _as_valid(self.valid, x))


@dataclass
class AveragePool:
    """Super-resolution: the mean of each ``factor``-step block (over its valid steps) must equal ``low``.

    ``low [B, T / factor]``; a NaN block, or a block without valid steps, is unconstrained.
    """

    low: torch.Tensor
    factor: int
    valid: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 1:
            raise ValueError(f"factor must be a positive integer, got {self.factor!r}")
        self.low = torch.as_tensor(self.low)
        if not self.low.is_floating_point():
            self.low = self.low.to(torch.float32)
        if self.low.dim() != 2:
            raise ValueError(f"low must be [B, T / factor], got shape {tuple(self.low.shape)}")

    def _blocks(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, length = x.shape
        if length != self.low.shape[1] * self.factor or b != self.low.shape[0]:
            raise ValueError(f"profiles {tuple(x.shape)} do not match low {tuple(self.low.shape)} x {self.factor}")
        valid = _as_valid(self.valid, x).reshape(b, -1, self.factor)
        return x.reshape(b, -1, self.factor), valid

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Block means over valid steps ``[B, T / factor]`` (NaN for blocks without valid steps)."""
        blocks, valid = self._blocks(x)
        count = valid.sum(-1)
        total = torch.where(valid, blocks, torch.zeros_like(blocks)).sum(-1)
        return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        blocks, valid = self._blocks(x)
        low = self.low.to(device=x.device, dtype=x.dtype)
        shift = low - self.apply(x)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        out = torch.where(valid, blocks + shift.unsqueeze(-1), torch.zeros_like(blocks))
        return out.reshape(x.shape)


def _per_profile_target(target: torch.Tensor | Sequence[float], x: torch.Tensor) -> torch.Tensor:
    target = torch.as_tensor(target, dtype=x.dtype, device=x.device).reshape(-1)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"{target.shape[0]} targets for {x.shape[0]} profiles")
    return target


@dataclass
class Mean:
    """Numerical constraint: the mean over valid steps of profile ``i`` equals ``target[i]`` (NaN: free)."""

    target: torch.Tensor
    valid: torch.Tensor | None = None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        valid = _as_valid(self.valid, x)
        return _zero_padding(x, valid).sum(-1) / valid.sum(-1).clamp(min=1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        valid = _as_valid(self.valid, x)
        shift = _per_profile_target(self.target, x) - self.apply(x)
        shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        return _zero_padding(x + shift.unsqueeze(-1), valid)


@dataclass
class Peak:
    """Numerical constraint: the maximum over valid steps of profile ``i`` equals ``target[i]`` (NaN: free).

    The projection clips values above the target and, when the maximum is below it, raises the largest step
    to the target: the Euclidean-closest profile with that maximum.
    """

    target: torch.Tensor
    valid: torch.Tensor | None = None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        valid = _as_valid(self.valid, x)
        return torch.where(valid, x, torch.full_like(x, -math.inf)).amax(-1)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        valid = _as_valid(self.valid, x)
        target = _per_profile_target(self.target, x)
        active = torch.isfinite(target).unsqueeze(-1)
        peak = target.unsqueeze(-1)
        clipped = torch.where(active & valid, torch.minimum(x, torch.where(active, peak, x)), x)
        masked = torch.where(valid, clipped, torch.full_like(x, -math.inf))
        top = masked.argmax(-1, keepdim=True)
        raise_top = active & (masked.gather(-1, top) < peak)
        raised = clipped.scatter(-1, top, torch.where(raise_top, peak, clipped.gather(-1, top)))
        return _zero_padding(raised, valid)


def smooth_max_weights(x: torch.Tensor, valid: torch.Tensor, tau: float) -> torch.Tensor:
    """``softmax(x / tau)`` over the valid steps of each profile (0 on padding): the gradient of a smooth
    maximum, concentrated on the largest steps as ``tau`` shrinks."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    weights = torch.softmax(torch.where(valid, x / tau, torch.full_like(x, -math.inf)), dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # a profile without valid steps has no maximum to move


def constraint_linearisation(op: "Mean | Peak", x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(residual [B], gradient [B, T])`` of a numerical constraint at ``x``: ``c(x) - target`` (0 where the
    target is NaN) and the gradient of ``c`` (the peak's through :func:`smooth_max_weights`)."""
    valid = _as_valid(op.valid, x)
    residual = op.apply(x) - _per_profile_target(op.target, x)
    residual = torch.where(torch.isfinite(residual), residual, torch.zeros_like(residual))
    if isinstance(op, Mean):
        grad = valid.to(x.dtype) / valid.sum(-1, keepdim=True).clamp(min=1)
    elif isinstance(op, Peak):
        grad = smooth_max_weights(x, valid, tau)
    else:
        raise TypeError(f"guidance needs Mean or Peak constraints, got {type(op).__name__}")
    return residual, grad


@dataclass
class EndpointGuidance:
    """Damped Gauss-Newton guidance of an endpoint estimate towards numerical constraints (module docstring).

    Attributes:
        constraints: :class:`Mean` / :class:`Peak` operators.
        strength: step fraction in (0, 1] (1: the linearised constraint is met after the step).
        iterations: sweeps over the constraints per sampling step.
        tau: temperature of the smooth maximum, in the units of the profiles.
    """

    constraints: list = field(default_factory=list)
    strength: float = 0.5
    iterations: int = 1
    tau: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must lie in (0, 1], got {self.strength!r}")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {self.iterations!r}")
        if not self.tau > 0:
            raise ValueError(f"tau must be positive, got {self.tau!r}")

    def refine(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` moved towards every constraint (padding stays 0)."""
        for _ in range(self.iterations):
            for op in self.constraints:
                residual, grad = constraint_linearisation(op, x, self.tau)
                norm = (grad * grad).sum(-1).clamp(min=1e-12)
                x = _zero_padding(x - self.strength * (residual / norm).unsqueeze(-1) * grad, _as_valid(op.valid, x))
        return x


@dataclass
class Compose:
    """Several measurements at once: ``apply`` gives each one's measurement, ``project`` applies the
    projections in sequence, ``iterations`` times (alternating projections; 1 suffices for operators on
    disjoint parts, such as an observed mask and a constraint on the other steps of different profiles)."""

    operators: list = field(default_factory=list)
    iterations: int = 1

    def apply(self, x: torch.Tensor) -> tuple:
        return tuple(op.apply(x) for op in self.operators)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(max(1, self.iterations)):
            for op in self.operators:
                x = op.project(x)
        return x


# -- posterior sampling ---------------------------------------------------------------------------------------
def guided_sample(velocity: VelocityFn, x0: torch.Tensor, operator: Operator | None, steps: int,
                  resample_steps: int = 0, resample_after: float = 0.0,
                  generator: torch.Generator | None = None, valid: torch.Tensor | None = None,
                  guidance: EndpointGuidance | None = None) -> torch.Tensor:
    """Euler sampling with the endpoint projected onto ``operator`` (or moved by ``guidance``) at every step
    (see the module docstring).

    Args:
        velocity: ``v(x, t [B]) -> [B, T]``.
        x0: initial noise ``[B, T]`` (0 on padding).
        operator: the measurement (None: plain Euler sampling with the same step rule).
        steps: Euler steps on a uniform grid from 0 to 1.
        resample_steps: RePaint-style repeats of each step whose start time is ``>= resample_after``.
        generator: CPU generator for the resampling noise.
        valid: ``[B, T]`` mask; padding is held at 0 throughout.
        guidance: constraints the endpoint estimate is guided towards (after the projection, if both are given);
            the output is not projected onto them.

    Returns:
        ``[B, T]`` samples; with an operator, ``operator.project`` of the last state, so the measurement holds
        exactly (up to float rounding).
    """
    _check_steps(steps)
    if resample_steps < 0:
        raise ValueError(f"resample_steps must be >= 0, got {resample_steps}")
    valid_mask = _as_valid(valid, x0)
    ts = _times(steps, x0)
    x = _zero_padding(x0, valid_mask)

    def step(x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        v = velocity(x, t.expand(x.shape[0]))
        x1_hat = x + (1 - t) * v
        if operator is not None:
            x1_hat = operator.project(x1_hat)
        if guidance is not None:
            x1_hat = guidance.refine(x1_hat)
        v = (x1_hat - x) / (1 - t)
        return _zero_padding(x + (t_next - t) * v, valid_mask)

    for i in range(steps):
        t, t_next = ts[i], ts[i + 1]
        x_next = step(x, t, t_next)
        if resample_steps and float(t) >= resample_after and float(t) > 0:
            for _ in range(resample_steps):
                a = t / t_next
                std = torch.sqrt(torch.clamp((1 - t) ** 2 - (a * (1 - t_next)) ** 2, min=0.0))
                noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
                x_back = _zero_padding(a * x_next + std * noise, valid_mask)
                x_next = step(x_back, t, t_next)
        x = x_next
    if operator is not None:
        x = operator.project(x)
    return _zero_padding(x, valid_mask)
