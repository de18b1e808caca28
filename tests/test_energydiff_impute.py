"""EnergyDiff imputation by replacement guidance (RePaint) on the unconditional network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.diffusion import cosine_schedule, sample_repaint
from baselines.energydiff import EnergyDiff
from bench.context import RunContext
from bench.data.profileset import META_COLUMNS, ProfileSet
from bench.registry import get_model
from bench.tasks.queries import ImputationQuery

T = 24
TINY = {"fold": 4, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "lr": 2e-3, "warmup_steps": 20,
        "ema_decay": 0.99, "checkpoint_every": 0, "impute_steps": 30, "impute_resample": 2}


def meta(n: int) -> pd.DataFrame:
    return pd.DataFrame({c: np.zeros(n, dtype=int) for c in META_COLUMNS})


def sine_days(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(T) / T
    amp = rng.uniform(0.3, 0.8, (n, 1))
    shift = rng.uniform(-0.25, 0.25, (n, 1))
    return (amp * np.sin(2 * np.pi * (t - shift)) + 0.02 * rng.standard_normal((n, T))).astype(np.float32)


def query_of(values: np.ndarray, observed: np.ndarray, valid: np.ndarray | None = None) -> ImputationQuery:
    valid = np.ones(values.shape, bool) if valid is None else valid
    return ImputationQuery(np.where(observed, values, np.nan).astype(np.float32), observed, valid,
                           meta(len(values)), 60)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    train, test = sine_days(256, rng), sine_days(24, rng)
    model = EnergyDiff(**TINY, train_steps=250)
    model.fit(ProfileSet(values=train, mask=np.ones(train.shape, bool), meta=meta(len(train)), resolution=60,
                         period="day", name="toy"), RunContext(seed=0))
    return model, train, test


def test_configs_carry_the_imputation_keys():
    spec = get_model("energydiff")
    assert "impute" in spec.capabilities
    assert spec.config("quick")["impute_steps"] == 50 and spec.config("paper")["impute_steps"] == 100
    assert spec.config("paper")["compile"] == "reduce-overhead"
    with pytest.raises(ValueError, match="impute_sampler"):
        spec.build("quick", {"impute_sampler": "dpm-solver++"})
    with pytest.raises(ValueError, match="impute_steps=2000 exceeds"):
        spec.build("quick", {"impute_steps": 2000})


def test_imputation_keeps_observations_and_beats_mean_fill(trained):
    model, train, test = trained
    rng = np.random.default_rng(1)
    observed = rng.random(test.shape) < 0.3
    query = query_of(test, observed)
    samples = model.impute(query, 8, RunContext(seed=2))
    assert samples.shape == (8, len(test), T) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples[:, observed], np.broadcast_to(test[observed], (8, observed.sum())))
    mean_fill = np.broadcast_to(train.mean(0), test.shape)
    rmse = np.sqrt(np.mean((np.median(samples, 0) - test)[~observed] ** 2))
    rmse_mean = np.sqrt(np.mean((mean_fill - test)[~observed] ** 2))
    assert rmse < 0.7 * rmse_mean, (rmse, rmse_mean)
    np.testing.assert_array_equal(samples, model.impute(query, 8, RunContext(seed=2)))


def test_padding_and_bad_queries_raise(trained):
    model, _, test = trained
    valid = np.ones(test.shape, bool)
    valid[:, -4:] = False
    observed = valid & (np.arange(T) % 2 == 0)
    with pytest.raises(ValueError, match="padding"):
        model.impute(query_of(test, observed, valid), 2, RunContext())
    with pytest.raises(ValueError, match="n_samples"):
        model.impute(query_of(test, observed & valid), 0, RunContext())
    fresh = EnergyDiff(**TINY)
    with pytest.raises(RuntimeError, match="fit"):
        fresh.impute(query_of(test, observed), 2, RunContext())


def test_repaint_with_an_exact_denoiser_recovers_a_known_profile():
    # The data distribution is a point mass at x*: its exact x0-denoiser returns x* for every input, so the
    # guided chain must return x* on the unknown steps and the given values on the known ones.
    target_x = torch.linspace(-0.5, 0.5, 8).repeat(3, 1)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, ::3] = True
    schedule = cosine_schedule(100)
    for sampler in ("ancestral", "ddim"):
        out = sample_repaint(lambda x, s: target_x.clone(), target_x, mask, schedule, steps=10, resample=3,
                             sampler=sampler, prediction="x0", generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, target_x)
    with pytest.raises(ValueError):
        sample_repaint(lambda x, s: x, target_x, mask, schedule, resample=0)
