"""Noise schedule, prediction-target conversions and samplers, checked against exact denoisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from baselines.diffusion import (
    NoiseSchedule,
    cosine_schedule,
    q_sample,
    sample_ancestral,
    sample_ddim,
    sample_dpm_solver_pp,
    sampling_timesteps,
    target,
    to_eps,
    to_v,
    to_x0,
)

SCHEDULE = cosine_schedule(1000)
MU = torch.tensor([0.3, -0.2])
SD = torch.tensor([0.5, 0.2])


def gaussian_denoiser(prediction: str = "x0"):
    """Exact posterior mean E[x0 | x_s] for x0 ~ N(MU, diag(SD^2)), returned as ``prediction``."""

    def model(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        alpha, sigma = SCHEDULE.coefficients(s)
        a, g = alpha[:, None], sigma[:, None]
        x0 = MU + a * SD**2 / (a * a * SD**2 + g * g) * (x - a * MU)
        return {"x0": x0, "eps": to_eps(x0, x, alpha, sigma, "x0"), "v": to_v(x0, x, alpha, sigma, "x0")}[prediction]

    return model


def two_point_denoiser(a: float = 0.6):
    """Exact E[x0 | x_s] for x0 = +-a with probability 1/2 each (1-D): a * tanh(alpha a x / sigma^2)."""

    def model(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        alpha, sigma = SCHEDULE.coefficients(s)
        return a * torch.tanh(alpha[:, None] * a * x / sigma[:, None] ** 2)

    return model


# -- schedule and conversions ---------------------------------------------------------------------------------
def test_cosine_schedule_is_monotone_in_unit_interval():
    ab = SCHEDULE.alpha_bar
    assert SCHEDULE.steps == 1000 and ab.dtype == np.float64
    assert np.all(ab > 0) and np.all(ab <= 1) and np.all(np.diff(ab) < 0)
    assert ab[0] > 0.999 and ab[-1] < 1e-6
    lam = SCHEDULE.log_snr(np.arange(1000))
    assert np.all(np.diff(lam) < 0)
    np.testing.assert_allclose(SCHEDULE.alpha(np.arange(1000)) ** 2 + SCHEDULE.sigma(np.arange(1000)) ** 2, 1.0,
                               atol=1e-12)


def test_fractional_steps_interpolate_and_log_snr_inverts():
    s = np.array([0.0, 10.0, 10.5, 500.25, 998.9, 999.0])
    la = np.log(SCHEDULE.alpha(s))
    np.testing.assert_allclose(la[1], 0.5 * np.log(SCHEDULE.alpha_bar[10]), rtol=1e-12)
    np.testing.assert_allclose(la[2], 0.25 * (np.log(SCHEDULE.alpha_bar[10]) + np.log(SCHEDULE.alpha_bar[11])),
                               rtol=1e-12)
    np.testing.assert_allclose(SCHEDULE.step_of_log_snr(SCHEDULE.log_snr(s)), s, atol=1e-7)
    with pytest.raises(ValueError):
        SCHEDULE.alpha(1000.0)


def test_schedule_rejects_bad_input():
    with pytest.raises(ValueError):
        NoiseSchedule(np.array([0.5, 0.6]))
    with pytest.raises(ValueError):
        cosine_schedule(1)


def test_prediction_conversions_invert_each_other():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 12, generator=gen, dtype=torch.float64)
    eps = torch.randn(64, 12, generator=gen, dtype=torch.float64)
    s = torch.randint(0, 1000, (64,), generator=gen)
    alpha, sigma = SCHEDULE.coefficients(s, torch.float64)
    x = q_sample(x0, eps, alpha, sigma)
    np.testing.assert_allclose((alpha**2 + sigma**2).numpy(), 1.0, atol=1e-12)
    preds = {k: target(x0, eps, alpha, sigma, k) for k in ("x0", "eps", "v")}
    for kind, pred in preds.items():
        torch.testing.assert_close(to_x0(pred, x, alpha, sigma, kind), x0, rtol=0, atol=1e-8)
        torch.testing.assert_close(to_eps(pred, x, alpha, sigma, kind), eps, rtol=0, atol=1e-8)
        torch.testing.assert_close(to_v(pred, x, alpha, sigma, kind), preds["v"], rtol=0, atol=1e-8)
    with pytest.raises(ValueError):
        target(x0, eps, alpha, sigma, "score")


def test_sampling_timesteps():
    t = sampling_timesteps(SCHEDULE, 1000)
    np.testing.assert_array_equal(t, np.arange(999, -1, -1))
    for steps in (2, 7, 333, 999):
        t = sampling_timesteps(SCHEDULE, steps)
        assert len(t) == steps and t[0] == 999 and t[-1] == 0 and np.all(np.diff(t) < 0)
        assert np.all(t == np.round(t))
        lam = SCHEDULE.log_snr(sampling_timesteps(SCHEDULE, steps, "logsnr"))
        np.testing.assert_allclose(np.diff(lam), (lam[-1] - lam[0]) / (steps - 1), rtol=1e-6)
    with pytest.raises(ValueError):
        sampling_timesteps(SCHEDULE, 0)
    with pytest.raises(ValueError):
        sampling_timesteps(SCHEDULE, 1001)


# -- samplers on a Gaussian with the exact denoiser ------------------------------------------------------------
def _moments(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0).numpy(), x.std(0).numpy()


@pytest.mark.parametrize("name, fn, kwargs, std_tol", [
    ("dpm-solver++ order 3, 20 steps", sample_dpm_solver_pp, {"steps": 20, "order": 3}, 0.03),
    ("dpm-solver++ order 2, 30 steps", sample_dpm_solver_pp, {"steps": 30, "order": 2}, 0.03),
    ("ddim, 100 steps", sample_ddim, {"steps": 100}, 0.08),
    ("ancestral, all 1000 steps", sample_ancestral, {}, 0.03),
])
@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_samplers_reproduce_a_gaussian(name, fn, kwargs, std_tol, prediction):
    gen = torch.Generator().manual_seed(1)
    x = fn(gaussian_denoiser(prediction), (20000, 2), SCHEDULE, prediction=prediction, generator=gen, **kwargs)
    mean, std = _moments(x)
    np.testing.assert_allclose(mean, MU.numpy(), atol=0.015, err_msg=name)
    np.testing.assert_allclose(std, SD.numpy(), rtol=std_tol, err_msg=name)


def test_dpm_solver_matches_the_exact_ode_solution_and_its_order():
    """For Gaussian data the probability-flow ODE keeps (x_s - alpha mu) / sqrt(alpha^2 sd^2 + sigma^2) fixed."""
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    a_end, s_end = float(SCHEDULE.alpha(999)), float(SCHEDULE.sigma(999))
    z = (noise - a_end * MU) / torch.sqrt(a_end**2 * SD**2 + s_end**2)
    a0, s0 = float(SCHEDULE.alpha(0)), float(SCHEDULE.sigma(0))
    exact = MU + a0 * SD**2 * z / torch.sqrt(a0**2 * SD**2 + s0**2)  # E[x0 | x_0-step] on the trajectory

    def error(order: int, steps: int) -> float:
        x = sample_dpm_solver_pp(gaussian_denoiser("v"), tuple(noise.shape), SCHEDULE, steps=steps, order=order,
                                 prediction="v", noise=noise)
        return float((x - exact).abs().max())

    e1, e2, e3 = error(1, 40), error(2, 40), error(3, 40)
    assert e3 < e2 < e1
    assert e3 < 1e-2
    # third order: doubling the steps shrinks the error by far more than the 4x of a second-order method
    assert error(3, 80) < e3 / 6
    # deterministic: the same initial noise gives the same samples
    torch.testing.assert_close(sample_dpm_solver_pp(gaussian_denoiser(), (5, 2), SCHEDULE, steps=10,
                                                    prediction="x0", noise=noise[:5]),
                               sample_dpm_solver_pp(gaussian_denoiser(), (5, 2), SCHEDULE, steps=10,
                                                    prediction="x0", noise=noise[:5]), rtol=0, atol=0)


def test_dpm_solver_matches_ancestral_distribution():
    dpm = sample_dpm_solver_pp(gaussian_denoiser("v"), (6000, 2), SCHEDULE, steps=25, prediction="v",
                               generator=torch.Generator().manual_seed(3))
    anc = sample_ancestral(gaussian_denoiser("v"), (6000, 2), SCHEDULE, prediction="v",
                           generator=torch.Generator().manual_seed(4))
    for d in range(2):
        assert stats.ks_2samp(dpm[:, d].numpy(), anc[:, d].numpy()).statistic < 0.035
    np.testing.assert_allclose(dpm.std(0).numpy(), anc.std(0).numpy(), rtol=0.04)


@pytest.mark.parametrize("fn, kwargs", [(sample_dpm_solver_pp, {"steps": 30}), (sample_ddim, {"steps": 100}),
                                        (sample_ancestral, {"steps": 250})])
def test_samplers_on_a_two_point_mixture(fn, kwargs):
    x = fn(two_point_denoiser(0.6), (4000, 1), SCHEDULE, prediction="x0",
           generator=torch.Generator().manual_seed(5), **kwargs).squeeze(1)
    assert torch.all((x - 0.6).abs().minimum((x + 0.6).abs()) < 0.02)  # every sample on one of the atoms
    share = float((x > 0).float().mean())
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / 4000)


def test_clip_bounds_the_data_prediction_and_bad_arguments_raise():
    wide = lambda x, s: torch.full_like(x, 5.0)  # noqa: E731 - a deliberately out-of-range x0 predictor
    x = sample_ddim(wide, (3, 4), SCHEDULE, steps=5, prediction="x0", clip=1.0,
                    generator=torch.Generator().manual_seed(0))
    assert torch.all(x == 1.0)
    with pytest.raises(ValueError):
        sample_dpm_solver_pp(wide, (3, 4), SCHEDULE, steps=5, order=4)
    with pytest.raises(ValueError):
        sample_ddim(wide, (3, 4), SCHEDULE, steps=5, prediction="score")
    with pytest.raises(ValueError):
        sample_ddim(wide, (3, 4), SCHEDULE, steps=5, noise=torch.zeros(2, 4))
