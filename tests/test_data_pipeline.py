"""Segmenting, resampling, splitting and scaling of profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.data.readings import Readings
from bench.data.resample import resample_readings
from bench.data.scaling import MinMaxScaler
from bench.data.segment import Completeness, segment
from bench.data.split import split_profiles
from bench.errors import DataError
from tests.conftest import make_readings


def test_segment_days_shape_values_and_meta():
    r = make_readings(n_series=2, days=3, resolution=30)
    ps = segment(r, "day")
    assert ps.values.shape == (6, 48) and ps.mask.all()
    first = r.frame[r.frame.series_id == "S00"]["kw"].to_numpy()[:48]
    np.testing.assert_allclose(ps.values[0], first, rtol=1e-6)
    assert list(ps.meta["weekday"][:3]) == [1, 2, 3]  # 2013-01-01 was a Tuesday
    assert set(ps.meta["category"]) == {"Std"}


def test_incomplete_days_dropped_or_masked():
    r = make_readings(n_series=1, days=3)
    frame = r.frame.drop(index=[50, 51]).reset_index(drop=True)  # two missing half-hours on day 2
    frame.loc[100, "kw"] = np.nan  # one NaN on day 3
    r2 = Readings(frame=frame, resolution=30, info=r.info, name="toy")
    assert len(segment(r2, "day")) == 1
    lenient = segment(r2, "day", Completeness(min_observed=0.9))
    assert len(lenient) == 3
    assert lenient.mask.sum(axis=1).tolist() == [48, 46, 47]
    assert lenient.values[~lenient.mask].sum() == 0


def test_segment_month_padding_mask():
    r = make_readings(n_series=1, days=59, resolution=60)  # January and February 2013
    ps = segment(r, "month")
    assert ps.values.shape == (2, 31 * 24)
    assert ps.meta["days"].tolist() == [31, 28]
    assert ps.mask[0].all()
    assert ps.mask[1, : 28 * 24].all() and not ps.mask[1, 28 * 24:].any()


def test_segment_no_complete_day_is_a_clear_error():
    r = make_readings(n_series=1, days=1)
    frame = r.frame.iloc[:-1]
    with pytest.raises(DataError, match="no day"):
        segment(Readings(frame=frame, resolution=30, info=r.info, name="toy"), "day")


def test_resample_averages_power_and_propagates_gaps():
    r = make_readings(n_series=1, days=1, resolution=15)
    coarse = resample_readings(r, 60)
    np.testing.assert_allclose(coarse.frame["kw"].to_numpy(), r.frame["kw"].to_numpy().reshape(24, 4).mean(1))
    frame = r.frame.drop(index=[5]).reset_index(drop=True)
    gappy = resample_readings(Readings(frame=frame, resolution=15, info=r.info, name="toy"), 60)
    assert np.isnan(gappy.frame["kw"].iloc[1]) and gappy.frame["kw"].notna().sum() == 23
    with pytest.raises(DataError, match="multiple"):
        resample_readings(r, 40)


def test_profileset_resample_matches_readings_resample():
    r = make_readings(n_series=2, days=2, resolution=15)
    a = segment(resample_readings(r, 60), "day")
    b = segment(r, "day").resample(60)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6)


def test_readings_reject_negative_duplicate_and_off_grid():
    r = make_readings(n_series=1, days=1)
    bad = r.frame.copy()
    bad.loc[3, "kw"] = -0.5
    with pytest.raises(DataError, match="negative"):
        Readings(frame=bad, resolution=30, info=r.info, name="toy")
    dup = pd.concat([r.frame, r.frame.iloc[[4]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate"):
        Readings(frame=dup, resolution=30, info=r.info, name="toy")
    off = r.frame.copy()
    off.loc[2, "timestamp"] += pd.Timedelta(minutes=7)
    with pytest.raises(DataError, match="grid"):
        Readings(frame=off, resolution=30, info=r.info, name="toy")
    with pytest.raises(DataError, match="columns"):
        Readings(frame=r.frame.rename(columns={"kw": "kwh"}), resolution=30, info=r.info, name="toy")


def test_split_by_household_is_disjoint_and_seeded():
    ps = segment(make_readings(n_series=12, days=20, seed=1), "day")
    a = split_profiles(ps, seed=3)
    b = split_profiles(ps, seed=3)
    c = split_profiles(ps, seed=4)
    assert "household" in a.rule
    ids = [set(p.meta["series_id"]) for p in (a.train, a.val, a.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(len(p) for p in (a.train, a.val, a.test)) == len(ps)
    assert a.train.fingerprint() == b.train.fingerprint()
    assert a.train.fingerprint() != c.train.fingerprint()
    assert abs(len(a.train) / len(ps) - 0.5) <= 0.1


def test_split_by_day_for_one_household_and_too_little_data():
    ps = segment(make_readings(n_series=1, days=60), "day")
    s = split_profiles(ps, seed=0)
    assert s.rule.startswith("by day")
    assert (len(s.train), len(s.val), len(s.test)) == (30, 15, 15)
    with pytest.raises(DataError, match="too little data"):
        split_profiles(segment(make_readings(n_series=1, days=20), "day"), seed=0)


def test_scaler_fitted_on_train_maps_to_unit_interval_and_inverts():
    ps = segment(make_readings(n_series=1, days=5), "day")
    scaler = MinMaxScaler.fit(ps)
    assert scaler.low == 0.0
    assert scaler.high == pytest.approx(1.1 * ps.values.max())
    z = scaler.transform(ps.values)
    assert z.min() >= -1 and z.max() <= 1
    np.testing.assert_allclose(scaler.inverse(z), ps.values, rtol=1e-5)
    with pytest.raises(DataError, match="constant"):
        MinMaxScaler.fit(ps.with_values(np.zeros_like(ps.values)))
