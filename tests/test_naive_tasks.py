"""Naive imputation, super-resolution and conditional baselines against closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.naive_tasks import (ConditionalResample, ConstrainedResample, CubicUpsample, HoldUpsample, LastWeek,
                                   LinearInterp, LinearUpsample)
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.registry import get_model
from bench.tasks.queries import ImputationQuery, SuperResolutionQuery

CTX = RunContext(seed=0)


def meta(n: int, month: int = 1, days: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"series_id": ["S"] * n, "start": pd.Timestamp("2013-01-01"), "month": month,
                         "weekday": 0, "days": days, "category": "Std"})


def profiles(values: np.ndarray, mask=None, resolution=60, period="day", months=None, days=None) -> ProfileSet:
    m = meta(len(values))
    if months is not None:
        m["month"] = months
    if days is not None:
        m["days"] = days
    mask = np.ones(values.shape, bool) if mask is None else mask
    return ProfileSet(values, mask, m, resolution, period)


def imputation_query(values, observed, valid=None, history=None, resolution=60):
    valid = np.ones(values.shape, bool) if valid is None else valid
    shown = np.where(observed, values, np.nan).astype(np.float32)
    return ImputationQuery(shown, observed, valid, meta(len(values)), resolution, history=history)


def fitted(model, length=8):
    model.fit(profiles(np.full((3, length), 0.25, dtype=np.float32)), CTX)
    return model


def test_registered():
    for name, caps in [("linear-interp", {"impute"}), ("last-week", {"impute"}),
                       ("hold-upsample", {"super_resolve"}), ("linear-upsample", {"super_resolve"}),
                       ("cubic-upsample", {"super_resolve"}),
                       ("conditional-resample", {"generate", "conditional"}),
                       ("constrained-resample", {"generate", "conditional", "constrained"})]:
        spec = get_model(name)
        assert spec.capabilities == caps
        # references that copy or interpolate their input: the contract test does not ask them to learn
        assert spec.cls.learns is False
        assert spec.config("paper") == spec.config("test") == {}  # nothing to configure


def test_linear_interp_exact_on_lines_constant_at_ends():
    values = np.array([[0, 1, 2, 3, 4, 5, 6, 7]], dtype=np.float32)
    observed = np.array([[0, 0, 1, 0, 0, 1, 0, 0]], dtype=bool)
    out = fitted(LinearInterp()).impute(imputation_query(values, observed), 3, CTX)
    assert out.shape == (3, 1, 8)
    np.testing.assert_allclose(out[0, 0], [2, 2, 2, 3, 4, 5, 5, 5])
    np.testing.assert_array_equal(out[0], out[2])
    # padding stays 0; a profile with nothing observed falls back to the training mean
    valid = np.array([[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8], dtype=bool)
    observed = np.array([[1, 0, 0, 0, 0, 1, 0, 0], [0] * 8], dtype=bool)
    out = fitted(LinearInterp()).impute(imputation_query(np.tile(values, (2, 1)), observed, valid), 2, CTX)
    np.testing.assert_allclose(out[0, 0], [0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_allclose(out[0, 1], 0.25)


def test_last_week_history_then_within_month_shift():
    values = np.arange(8, dtype=np.float32)[None]
    observed = np.array([[1, 0, 0, 1, 1, 1, 0, 1]], dtype=bool)
    history = np.array([[9, 9, np.nan, 9, 9, 9, 9, 9]])
    out = fitted(LastWeek()).impute(imputation_query(values, observed, history=history), 2, CTX)[0, 0]
    np.testing.assert_allclose(out, [0, 9, 2, 3, 4, 5, 9, 7])  # step 2: history unknown -> interpolation
    # a "month" of 3 weeks at a resolution of one day per step (1440 min): shift of 7 steps
    month = np.arange(21, dtype=np.float32)[None] % 7 * 10.0  # weekly periodic
    observed = np.ones((1, 21), bool)
    observed[0, [1, 9, 20]] = False
    out = fitted(LastWeek(), 21).impute(imputation_query(month, observed, resolution=1440), 1, CTX)[0, 0]
    np.testing.assert_allclose(out, month[0])  # 1 from step 8 (next week), 9 from 2, 20 from 13
    observed[0, [6, 13, 20]] = False  # no week-shifted reference for 6, 13, 20: interpolate
    out = fitted(LastWeek(), 21).impute(imputation_query(month, observed, resolution=1440), 1, CTX)[0, 0]
    np.testing.assert_allclose(out[[6, 13, 20]], [25, 25, 50])  # between 50 and 0; 50 held


@pytest.mark.parametrize("factor", [2, 4])
def test_upsamplers_keep_block_means_with_padding(factor):
    rng = np.random.default_rng(0)
    length = 24
    valid = np.arange(length)[None] < np.array([[24], [16], [20]])
    low = rng.uniform(-1, 1, (3, length // factor)).astype(np.float32)
    low[~valid[:, ::factor]] = 0.0
    query = SuperResolutionQuery(low, factor, valid, meta(3), 15)
    for model in (HoldUpsample(), LinearUpsample(), CubicUpsample()):
        out = model.super_resolve(query, 2, CTX)
        assert out.shape == (2, 3, length)
        assert (out[:, ~valid] == 0).all()
        means = out[0].reshape(3, -1, factor).mean(axis=2)
        np.testing.assert_allclose(means[valid[:, ::factor]], low[valid[:, ::factor]], atol=1e-6)
    np.testing.assert_array_equal(HoldUpsample().super_resolve(query, 1, CTX)[0, 0],
                                  np.repeat(low[0], factor))


def test_linear_upsample_exact_on_ramp_interior():
    fine = np.arange(32, dtype=np.float64)[None] * 0.1
    low = fine.reshape(1, 8, 4).mean(axis=2).astype(np.float32)
    out = LinearUpsample().super_resolve(SuperResolutionQuery(low, 4, np.ones((1, 32), bool), meta(1), 15),
                                         1, CTX)[0, 0]
    np.testing.assert_allclose(out[4:-4], fine[0, 4:-4], atol=1e-6)
    hold = HoldUpsample().super_resolve(SuperResolutionQuery(low, 4, np.ones((1, 32), bool), meta(1), 15), 1, CTX)
    assert np.abs(out - fine[0]).mean() < np.abs(hold[0, 0] - fine[0]).mean()


def test_cubic_upsample_is_scipy_pchip_plus_the_block_mean_shift():
    from scipy.interpolate import PchipInterpolator

    fine = np.sin(np.linspace(0, 3, 48))[None] + 0.2 * np.linspace(0, 1, 48)[None] ** 2
    low = fine.reshape(1, 12, 4).mean(axis=2).astype(np.float32)
    query = SuperResolutionQuery(low, 4, np.ones((1, 48), bool), meta(1), 15)
    out = CubicUpsample().super_resolve(query, 1, CTX)[0, 0]
    centres = np.arange(12) * 4 + 1.5
    curve = PchipInterpolator(centres, low[0].astype(np.float64))(np.clip(np.arange(48), centres[0], centres[-1]))
    shift = low[0] - curve.reshape(12, 4).mean(axis=1)
    np.testing.assert_allclose(out, (curve.reshape(12, 4) + shift[:, None]).ravel(), atol=1e-6)
    # on a smooth curve the cubic beats the straight lines, which beat the steps
    errors = [np.abs(m.super_resolve(query, 1, CTX)[0, 0] - fine[0]).mean()
              for m in (CubicUpsample(), LinearUpsample(), HoldUpsample())]
    assert errors[0] < errors[1] < errors[2]


def test_conditional_resample_matches_month_and_category_and_pads():
    values = np.repeat(np.arange(1, 7, dtype=np.float32)[:, None], 31 * 2, axis=1)  # row i holds i + 1
    train = profiles(values, resolution=720, period="month", months=[1, 1, 2, 2, 3, 3], days=[31, 31, 28, 28, 31, 31])
    train.meta["category"] = ["Std", "ToU", "Std", "ToU", "Std", "Std"]
    model = ConditionalResample()
    model.fit(train, CTX)
    cond = pd.DataFrame({"month": [1, 2, 3, 7, 3], "weekday": 0, "days": [31, 28, 31, 31, 30],
                         "category": ["ToU", "Std", "ToU", "Std", "Std"]})
    out = model.sample(5, cond, CTX)
    assert out[0, 0] == 2 and out[1, 0] == 3  # month and category
    assert out[2, 0] in (5, 6)  # no ToU in March: any March profile
    assert out[3, 0] in range(1, 7)  # no July at all: any profile
    assert (out[1, 56:] == 0).all() and (out[1, :56] == 3).all()  # 28 days of 2 steps, then padding
    assert (out[4, 60:] == 0).all() and (out[4, :60] > 0).all()
    np.testing.assert_array_equal(out, model.sample(5, cond, CTX))  # seeded
    assert model.sample(4, None, CTX).shape == (4, 62)
    with pytest.raises(ValueError, match="rows"):
        model.sample(3, cond, CTX)


# -- save / load ---------------------------------------------------------------------------------------------------
def round_trip(model, tmp_path):
    path = model.save(tmp_path / f"{type(model).__name__}.pt")
    return type(model).load(path)


def test_imputers_and_upsamplers_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, (2, 24)).astype(np.float32)
    observed = rng.random((2, 24)) < 0.5
    observed[1] = False  # nothing observed: the fitted training mean fills it
    query = imputation_query(values, observed)
    for cls in (LinearInterp, LastWeek):
        model = fitted(cls(), 24)
        loaded = round_trip(model, tmp_path)
        np.testing.assert_array_equal(loaded._mean, model._mean)
        np.testing.assert_array_equal(loaded.impute(query, 2, CTX), model.impute(query, 2, CTX))
    sr = SuperResolutionQuery(values.reshape(2, 6, 4).mean(axis=2), 4, np.ones((2, 24), bool), meta(2), 15)
    for cls in (HoldUpsample, LinearUpsample, CubicUpsample):
        model = cls()
        model.fit(profiles(values), CTX)
        np.testing.assert_array_equal(round_trip(model, tmp_path).super_resolve(sr, 2, CTX),
                                      model.super_resolve(sr, 2, CTX))


def test_conditional_resample_round_trip_keeps_pools_and_padding(tmp_path):
    values = np.repeat(np.arange(1, 7, dtype=np.float32)[:, None], 31 * 2, axis=1)
    train = profiles(values, resolution=720, period="month", months=[1, 1, 2, 2, 3, 3], days=[31, 31, 28, 28, 31, 31])
    train.meta["category"] = ["Std", "ToU", "Std", "ToU", "Std", "Std"]
    model = ConditionalResample()
    model.fit(train, CTX)
    loaded = round_trip(model, tmp_path)
    cond = pd.DataFrame({"month": [1, 2, 3, 7, 3, 1], "weekday": 0, "days": [31, 28, 31, 31, 30, 31],
                         "category": ["ToU", "Std", "ToU", "Std", "Std", "Std"]})
    for seed in (0, 1, 2):
        ctx = RunContext(seed=seed)
        np.testing.assert_array_equal(loaded.sample(6, cond, ctx), model.sample(6, cond, ctx))
        np.testing.assert_array_equal(loaded.sample(4, None, ctx), model.sample(4, None, ctx))
    with pytest.raises(RuntimeError, match="fit"):
        round_trip(ConditionalResample(), tmp_path).sample(2, None, CTX)


def test_constrained_resample_returns_the_pool_profile_nearest_the_targets():
    # month 1: three flat days at 0.1, 0.5, 0.9 and one with a 2.0 spike; month 2: one day at -0.5
    values = np.array([[0.1] * 4, [0.5] * 4, [0.9] * 4, [0.0, 0.0, 0.0, 2.0], [-0.5] * 4], dtype=np.float32)
    model = ConstrainedResample()
    model.fit(profiles(values, months=[1, 1, 1, 1, 2]), CTX)
    cond = meta(4).assign(month=[1, 1, 1, 2], target_peak=[0.45, 1.9, np.nan, 0.9], target_mean=[np.nan, 0.4, 0.95, np.nan])
    out = model.sample(4, cond, CTX)
    # nearest peak 0.5; peak 1.9 and mean 0.4 -> the spike (1.9-2)^2+(0.4-0.5)^2 beats 0.9's (1.0^2+0.5^2);
    # mean 0.95 -> 0.9; month 2 has one day, whatever the target
    np.testing.assert_array_equal(out, values[[1, 3, 2, 4]])
    # without targets it is conditional-resample
    plain = meta(3).assign(month=[1, 2, 1])
    np.testing.assert_array_equal(model.sample(3, plain, CTX), ConditionalResample.sample(model, 3, plain, CTX))
