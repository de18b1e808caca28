"""Gaussian diffusion in discrete time: noise schedule, forward process, prediction targets and samplers.

Notation (variance-preserving diffusion, steps ``s = 0 .. S - 1``): ``x_s = alpha_s * x_0 + sigma_s * eps`` with
``alpha_s = sqrt(alpha_bar_s)``, ``sigma_s = sqrt(1 - alpha_bar_s)``, ``eps ~ N(0, I)``, and log signal-to-noise
``lambda_s = log(alpha_s / sigma_s)``. A network can predict one of three equivalent targets:

* ``"eps"`` the noise, ``"x0"`` the clean data, or
* ``"v"`` the velocity ``v = alpha_s * eps - sigma_s * x_0`` (Salimans & Ho 2022), with
  ``x_0 = alpha_s * x_s - sigma_s * v`` and ``eps = sigma_s * x_s + alpha_s * v``.

Every sampler is a plain function over a callable ``model(x, s) -> prediction`` where ``x`` is a batch
``[B, ...]`` and ``s`` a ``[B]`` float tensor of steps. Steps may be fractional: ``log alpha`` is interpolated
linearly between integer steps (DPM-Solver's treatment of discrete-time models), so a network with a
continuous step embedding can be evaluated between the steps it was trained on. Each sampler makes ``steps``
network evaluations at steps from ``S - 1`` down to ``0`` (:func:`sampling_timesteps`) and returns the data
prediction of the last evaluation (at step 0), so all of them share one cost measure:

* :func:`sample_ancestral` - DDPM ancestral sampling, drawing from the Gaussian posterior
  ``q(x_s' | x_s, x_0 = x0_hat)`` between consecutive evaluated steps (all ``S`` steps by default, which is
  the sampler of Ho et al. 2020);
* :func:`sample_ddim` - DDIM (Song et al. 2021), deterministic for ``eta = 0``;
* :func:`sample_dpm_solver_pp` - multistep DPM-Solver++ (Lu et al. 2022) of order 1, 2 or 3 for the
  probability-flow ODE in its data-prediction form;
* :func:`sample_repaint` - inpainting by replacement of the known entries (RePaint) on the ancestral or DDIM
  update, with optional resampling jumps.

The DPM-Solver++ update from ``t_prev`` to ``t`` integrates the exact solution of the ODE
``x_t = (sigma_t / sigma_prev) x_prev + sigma_t * int_{lambda_prev}^{lambda_t} e^lambda x0_hat(lambda) dlambda``
with ``x0_hat`` replaced by its Taylor expansion in ``lambda`` around ``lambda_prev``; the derivatives are
estimated by finite differences of the data predictions kept from earlier steps. With ``h = lambda_t -
lambda_prev``, ``phi_1 = expm1(-h)``, ``phi_2 = phi_1 / h + 1`` and ``phi_3 = phi_2 / h - 1/2``, the three
terms of the integral are ``-alpha_t phi_1 x0_hat``, ``alpha_t h phi_2 x0_hat'`` and ``-alpha_t h^2 phi_3 x0_hat''``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

PREDICTIONS = ("v", "eps", "x0")

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete variance-preserving schedule: ``alpha_bar[s]`` for steps ``s = 0 .. S - 1`` (float64).

    ``alpha_bar`` decreases strictly from close to 1 (almost clean) to close to 0 (almost pure noise).
    """

    alpha_bar: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        ab = np.asarray(self.alpha_bar, dtype=np.float64)
        if ab.ndim != 1 or len(ab) < 2:
            raise ValueError("alpha_bar must be a 1-D array of at least 2 steps")
        if not (np.all(ab > 0) and np.all(ab <= 1) and np.all(np.diff(ab) < 0)):
            raise ValueError("alpha_bar must lie in (0, 1] and decrease strictly")
        object.__setattr__(self, "alpha_bar", ab)

    @property
    def steps(self) -> int:
        """The number ``S`` of diffusion steps."""
        return len(self.alpha_bar)

    def log_alpha(self, s: float | np.ndarray) -> np.ndarray | float:
        """``log alpha_s``, linear between integer steps so that fractional ``s`` is defined too.

        Interpolating ``log alpha`` piecewise linearly is how DPM-Solver treats discrete-time models; at integer
        ``s`` it is exact.
        """
        s = np.asarray(s, dtype=np.float64)
        if np.any(s < 0) or np.any(s > self.steps - 1):
            raise ValueError(f"diffusion step out of range [0, {self.steps - 1}]")
        return np.interp(s, np.arange(self.steps, dtype=np.float64), 0.5 * np.log(self.alpha_bar))

    def alpha(self, s: float | np.ndarray) -> np.ndarray | float:
        """Signal scale ``alpha_s = sqrt(alpha_bar_s)``."""
        return np.exp(self.log_alpha(s))

    def sigma(self, s: float | np.ndarray) -> np.ndarray | float:
        """Noise scale ``sigma_s = sqrt(1 - alpha_bar_s)``."""
        return np.sqrt(-np.expm1(2.0 * self.log_alpha(s)))

    def log_snr(self, s: float | np.ndarray) -> np.ndarray | float:
        """``lambda_s = log(alpha_s / sigma_s)`` (strictly decreasing in ``s``)."""
        la = self.log_alpha(s)
        return la - 0.5 * np.log(-np.expm1(2.0 * la))

    def step_of_log_snr(self, lam: float | np.ndarray) -> np.ndarray | float:
        """The (fractional) step whose log-SNR is ``lam``: the exact inverse of :meth:`log_snr`.

        Raises:
            ValueError: ``lam`` lies outside ``[lambda_{S-1}, lambda_0]``.
        """
        lam = np.asarray(lam, dtype=np.float64)
        lo, hi = self.log_snr(self.steps - 1), self.log_snr(0)
        if np.any(lam < lo - 1e-9) or np.any(lam > hi + 1e-9):
            raise ValueError(f"log-SNR outside the schedule's range [{lo:.4g}, {hi:.4g}]")
        # alpha^2 = sigmoid(2 lambda), and log alpha is linear in s between integer steps
        la = -0.5 * np.logaddexp(0.0, -2.0 * lam)
        grid = 0.5 * np.log(self.alpha_bar)
        steps = np.arange(self.steps, dtype=np.float64)
        return np.interp(la, grid[::-1], steps[::-1])

    def coefficients(self, s: torch.Tensor, dtype: torch.dtype = torch.float32
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_s, sigma_s)`` for a tensor of (possibly fractional) steps, on its device."""
        idx = s.detach().to("cpu", torch.float64).numpy()
        alpha = torch.as_tensor(self.alpha(idx), dtype=dtype, device=s.device)
        sigma = torch.as_tensor(self.sigma(idx), dtype=dtype, device=s.device)
        return alpha, sigma


def cosine_schedule(steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """The cosine schedule of Nichol & Dhariwal (2021) with ``steps`` discrete steps.

    ``alpha_bar(t) = f(t) / f(0)``, ``f(t) = cos((t / S + offset) / (1 + offset) * pi / 2)^2``, evaluated at
    ``t = 1 .. S``; each step's ``beta = 1 - alpha_bar_t / alpha_bar_{t-1}`` is capped at ``max_beta`` so the
    last steps do not collapse the signal to exactly zero.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"a schedule needs at least 2 steps, got {steps!r}")
    if not 0.0 < max_beta < 1.0:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")
    t = np.arange(steps + 1, dtype=np.float64) / steps
    f = np.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    return NoiseSchedule(np.cumprod(1.0 - betas), name="cosine")


def _expand(coef: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    """Broadcast a per-sample coefficient ``[B]`` against ``x [B, ...]``."""
    if isinstance(coef, torch.Tensor) and coef.dim() == 1:
        return coef.view(-1, *([1] * (x.dim() - 1)))
    return coef


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def q_sample(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor | float,
             sigma: torch.Tensor | float) -> torch.Tensor:
    """Draw from the forward process ``q(x_s | x_0)``: ``alpha_s x_0 + sigma_s noise`` (coefficients ``[B]``)."""
    return _expand(alpha, x0) * x0 + _expand(sigma, x0) * noise


def target(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor | float, sigma: torch.Tensor | float,
           prediction: str) -> torch.Tensor:
    """The regression target of ``prediction`` for data ``x0`` noised with ``noise``."""
    _check_prediction(prediction)
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    return _expand(alpha, x0) * noise - _expand(sigma, x0) * x0


def to_x0(pred: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor | float, sigma: torch.Tensor | float,
          prediction: str) -> torch.Tensor:
    """The data prediction implied by a network output ``pred`` of type ``prediction`` at ``x_s = x``."""
    _check_prediction(prediction)
    a, s = _expand(alpha, x), _expand(sigma, x)
    if prediction == "x0":
        return pred
    if prediction == "eps":
        return (x - s * pred) / a
    return a * x - s * pred


def to_eps(pred: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor | float, sigma: torch.Tensor | float,
           prediction: str) -> torch.Tensor:
    """The noise prediction implied by a network output ``pred`` of type ``prediction`` at ``x_s = x``."""
    _check_prediction(prediction)
    a, s = _expand(alpha, x), _expand(sigma, x)
    if prediction == "eps":
        return pred
    if prediction == "x0":
        return (x - a * pred) / s
    return s * x + a * pred


def to_v(pred: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor | float, sigma: torch.Tensor | float,
         prediction: str) -> torch.Tensor:
    """The velocity prediction implied by a network output ``pred`` of type ``prediction`` at ``x_s = x``."""
    _check_prediction(prediction)
    if prediction == "v":
        return pred
    x0 = to_x0(pred, x, alpha, sigma, prediction)
    eps = to_eps(pred, x, alpha, sigma, prediction)
    return _expand(alpha, x) * eps - _expand(sigma, x) * x0


SPACINGS = ("time", "logsnr")


def sampling_timesteps(schedule: NoiseSchedule, steps: int, spacing: str = "time") -> np.ndarray:
    """``steps`` strictly decreasing diffusion steps from ``S - 1`` down to ``0``.

    ``"time"`` spaces them uniformly in ``s`` and rounds to the integer steps the network was trained on;
    ``"logsnr"`` spaces them uniformly in ``lambda`` (fractional steps, via :meth:`NoiseSchedule.step_of_log_snr`).

    Raises:
        ValueError: ``steps`` is not in ``[1, S]`` (``"time"``) or not positive, or ``spacing`` is unknown.
    """
    total = schedule.steps
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    upper = total if spacing == "time" else 100 * total
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= upper:
        raise ValueError(f"sampler steps must be an integer in [1, {upper}], got {steps!r}")
    if steps == 1:
        return np.array([total - 1.0])
    if spacing == "time":
        # floor(x + 0.5) rather than round(): a spacing >= 1 then always gives distinct integers
        return np.floor(np.linspace(total - 1, 0, steps) + 0.5)
    lam = np.linspace(schedule.log_snr(total - 1), schedule.log_snr(0), steps)
    times = schedule.step_of_log_snr(lam)
    times[0], times[-1] = total - 1.0, 0.0  # exact ends despite round-off in the inversion
    return times


class _Denoiser:
    """Calls the model at one step for the whole batch and returns its (optionally clipped) data prediction."""

    def __init__(self, model: Model, schedule: NoiseSchedule, prediction: str, clip: float | None) -> None:
        _check_prediction(prediction)
        if clip is not None and clip <= 0:
            raise ValueError(f"clip must be positive or None, got {clip}")
        self.model, self.schedule, self.prediction, self.clip = model, schedule, prediction, clip

    def __call__(self, x: torch.Tensor, s: float) -> torch.Tensor:
        steps = torch.full((x.shape[0],), float(s), dtype=torch.float32, device=x.device)
        pred = self.model(x, steps).to(x.dtype)
        x0 = to_x0(pred, x, float(self.schedule.alpha(s)), float(self.schedule.sigma(s)), self.prediction)
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return x0


def _initial_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str,
                   noise: torch.Tensor | None) -> torch.Tensor:
    if noise is not None:
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"initial noise has shape {tuple(noise.shape)}, expected {tuple(shape)}")
        return noise.to(device=device, dtype=torch.float32)
    # drawn on the CPU so that a seed gives the same samples on every device
    return torch.randn(shape, generator=generator).to(device)


def _normal_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator).to(x.device)


def _ancestral_step(x: torch.Tensor, x0: torch.Tensor, ab: float, ab_prev: float,
                    generator: torch.Generator | None) -> torch.Tensor:
    """One draw from ``q(x_s' | x_s = x, x_0 = x0)`` of the respaced chain (``ab = alpha_bar_s > ab_prev``)."""
    beta = 1.0 - ab / ab_prev
    mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)) * x
    return mean + math.sqrt(beta * (1 - ab_prev) / (1 - ab)) * _normal_like(x, generator)


def _ddim_step(x: torch.Tensor, x0: torch.Tensor, ab: float, ab_prev: float, eta: float,
               generator: torch.Generator | None) -> torch.Tensor:
    """One DDIM update from ``alpha_bar = ab`` to ``ab_prev`` given the data prediction ``x0``."""
    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    c = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - c * c, 0.0)) * eps
    if c > 0:
        x = x + c * _normal_like(x, generator)
    return x


@torch.no_grad()
def sample_ancestral(model: Model, shape: tuple[int, ...], schedule: NoiseSchedule, *, steps: int | None = None,
                     prediction: str = "v", clip: float | None = None, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu", noise: torch.Tensor | None = None,
                     spacing: str = "time") -> torch.Tensor:
    """DDPM ancestral sampling; ``steps=None`` evaluates the network at every one of the ``S`` steps.

    Between evaluated steps ``s > s'`` it draws ``x_s'`` from the forward-process posterior
    ``q(x_s' | x_s, x_0 = x0_hat)`` of the respaced chain (``beta = 1 - alpha_bar_s / alpha_bar_s'``):
    mean ``sqrt(ab_s') beta / (1 - ab_s) x0_hat + sqrt(1 - beta) (1 - ab_s') / (1 - ab_s) x_s`` and variance
    ``beta (1 - ab_s') / (1 - ab_s)``. The last evaluation's ``x0_hat`` is returned. This posterior
    ("small") variance leaves out the uncertainty of ``x0_hat`` itself, so a chain with few steps comes out
    slightly under-dispersed; the bias vanishes as the steps get finer.
    """
    den = _Denoiser(model, schedule, prediction, clip)
    times = sampling_timesteps(schedule, schedule.steps if steps is None else steps, spacing)
    ab_all = schedule.alpha(times) ** 2
    x = _initial_noise(shape, generator, device, noise)
    for i, s in enumerate(times):
        x0 = den(x, s)
        if i == len(times) - 1:
            return x0
        x = _ancestral_step(x, x0, ab_all[i], ab_all[i + 1], generator)
    return x


@torch.no_grad()
def sample_ddim(model: Model, shape: tuple[int, ...], schedule: NoiseSchedule, *, steps: int = 50,
                eta: float = 0.0, prediction: str = "v", clip: float | None = None,
                generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                noise: torch.Tensor | None = None, spacing: str = "time") -> torch.Tensor:
    """DDIM sampling with ``steps`` evaluations; ``eta = 0`` is deterministic, ``eta = 1`` ancestral-like.

    ``x_s' = sqrt(ab_s') x0_hat + sqrt(1 - ab_s' - c^2) eps_hat + c z`` with
    ``c = eta sqrt((1 - ab_s') / (1 - ab_s) (1 - ab_s / ab_s'))``.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    den = _Denoiser(model, schedule, prediction, clip)
    times = sampling_timesteps(schedule, steps, spacing)
    ab_all = schedule.alpha(times) ** 2
    x = _initial_noise(shape, generator, device, noise)
    for i, s in enumerate(times):
        x0 = den(x, s)
        if i == len(times) - 1:
            return x0
        x = _ddim_step(x, x0, ab_all[i], ab_all[i + 1], eta, generator)
    return x


@torch.no_grad()
def sample_dpm_solver_pp(model: Model, shape: tuple[int, ...], schedule: NoiseSchedule, *, steps: int = 100,
                         order: int = 3, prediction: str = "v", clip: float | None = None,
                         generator: torch.Generator | None = None, device: torch.device | str = "cpu",
                         noise: torch.Tensor | None = None, spacing: str = "logsnr",
                         lower_order_final: bool = True) -> torch.Tensor:
    """Multistep DPM-Solver++ (data prediction) with ``steps`` evaluations and order 1, 2 or 3.

    Order 1 is DDIM with ``eta = 0``; order 2 is DPM-Solver++(2M) of Lu et al.; order 3 adds the
    second-derivative term of the module docstring. The first updates use a lower order until enough past
    predictions exist; with ``lower_order_final`` and fewer than 10 steps the last updates drop in order as
    well, which keeps very short runs stable. Steps are spaced uniformly in log-SNR by default: on the
    discrete cosine schedule, uniform spacing in ``s`` puts one huge log-SNR jump at the noisy end (the last
    step's ``beta`` is capped), where the multistep extrapolation of orders 2 and 3 loses its accuracy.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"DPM-Solver++ order must be 1, 2 or 3, got {order!r}")
    den = _Denoiser(model, schedule, prediction, clip)
    times = sampling_timesteps(schedule, steps, spacing)
    lam = schedule.log_snr(times)
    alphas, sigmas = schedule.alpha(times), schedule.sigma(times)
    x = _initial_noise(shape, generator, device, noise)
    history: list[torch.Tensor] = []  # data predictions, newest last
    updates = len(times) - 1
    for i, s in enumerate(times):
        history = (history + [den(x, s)])[-3:]
        if i == updates:
            return history[-1]
        step_order = min(order, len(history))
        if lower_order_final and updates < 10:
            step_order = min(step_order, updates - i)
        h = lam[i + 1] - lam[i]
        alpha_t = float(alphas[i + 1])
        phi_1 = math.expm1(-h)
        m0 = history[-1]
        x = float(sigmas[i + 1] / sigmas[i]) * x - (alpha_t * phi_1) * m0
        if step_order >= 2:
            r0 = (lam[i] - lam[i - 1]) / h
            d1_0 = (m0 - history[-2]) / r0
            if step_order == 2:
                # DPM-Solver++(2M): x0_hat extrapolated as (1 + 1/2r) m0 - (1/2r) m1
                x = x - (0.5 * alpha_t * phi_1) * d1_0
            else:
                phi_2 = phi_1 / h + 1.0
                phi_3 = phi_2 / h - 0.5
                r1 = (lam[i - 1] - lam[i - 2]) / h
                d1_1 = (history[-2] - history[-3]) / r1
                # D1 ~ h x0_hat' and D2 ~ h^2 x0_hat'' / 2 from the two backward differences
                d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + (alpha_t * phi_2) * d1 - (2.0 * alpha_t * phi_3) * d2
    return x


REPAINT_SAMPLERS = ("ancestral", "ddim")


@torch.no_grad()
def sample_repaint(model: Model, known: torch.Tensor, mask: torch.Tensor, schedule: NoiseSchedule, *,
                   steps: int = 50, resample: int = 1, sampler: str = "ancestral", eta: float = 1.0,
                   prediction: str = "v", clip: float | None = None, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Inpainting by replacement (RePaint, Lugmayr et al. 2022) with an unconditional model; no retraining.

    ``known [B, ...]`` holds the observed values where ``mask`` is True (anything elsewhere). Before each
    network evaluation at step ``s`` the observed entries of the current sample are replaced by a fresh
    forward-noised copy of the known values, ``alpha_s y + sigma_s z``, so the network sees a sample that is
    consistent with the observation at that noise level; the unknown entries then follow the reverse update
    (``sampler="ancestral"``, or ``"ddim"`` with ``eta``) from that harmonised sample. With ``resample = r > 1``
    every update except the last is repeated ``r`` times: the updated sample is diffused back to step ``s``
    (``x_s = sqrt(ab_s / ab_s') x_s' + sqrt(1 - ab_s / ab_s') z``) and updated again, which lets the unknown
    part adapt to the known part (jump length 1). The result is the last data prediction with the known
    values pasted back, after ``steps * r - (r - 1)`` evaluations.

    Raises:
        ValueError: bad ``resample``, ``sampler``, ``eta`` or mismatched shapes.
    """
    if isinstance(resample, bool) or not isinstance(resample, (int, np.integer)) or resample < 1:
        raise ValueError(f"resample must be a positive integer, got {resample!r}")
    if sampler not in REPAINT_SAMPLERS:
        raise ValueError(f"sampler must be one of {REPAINT_SAMPLERS}, got {sampler!r}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    if known.shape != mask.shape:
        raise ValueError(f"known {tuple(known.shape)} and mask {tuple(mask.shape)} differ in shape")
    den = _Denoiser(model, schedule, prediction, clip)
    times = sampling_timesteps(schedule, steps, spacing="time")
    ab_all = schedule.alpha(times) ** 2
    known = torch.nan_to_num(known.to(device=device, dtype=torch.float32))
    mask = mask.to(device=device, dtype=torch.bool)
    x = _initial_noise(tuple(known.shape), generator, device, None)
    last = len(times) - 1
    for i, s in enumerate(times):
        repeats = 1 if i == last else int(resample)
        for j in range(repeats):
            ab = float(ab_all[i])
            noisy_known = math.sqrt(ab) * known + math.sqrt(1.0 - ab) * _normal_like(known, generator)
            x = torch.where(mask, noisy_known, x)
            x0 = den(x, s)
            if i == last:
                return torch.where(mask, known, x0)
            ab_prev = float(ab_all[i + 1])
            if sampler == "ancestral":
                x_next = _ancestral_step(x, x0, ab, ab_prev, generator)
            else:
                x_next = _ddim_step(x, x0, ab, ab_prev, eta, generator)
            if j < repeats - 1:
                # diffuse back from s' to s: q(x_s | x_s') has scale sqrt(ab_s / ab_s') and variance 1 - that^2
                ratio = ab / ab_prev
                x = math.sqrt(ratio) * x_next + math.sqrt(1.0 - ratio) * _normal_like(x_next, generator)
            else:
                x = x_next
    return x


SAMPLERS = {
    "dpm-solver++": sample_dpm_solver_pp,
    "ddim": sample_ddim,
    "ancestral": sample_ancestral,
}
