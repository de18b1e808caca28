"""ProfileSet invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.data.profileset import ProfileSet
from bench.data.segment import segment
from bench.errors import DataError
from tests.conftest import make_readings


def test_subset_and_fingerprint():
    ps = segment(make_readings(n_series=2, days=4), "day")
    sub = ps.subset([0, 2])
    assert len(sub) == 2 and sub.meta["series_id"].tolist() == ["S00", "S00"]
    assert ps.fingerprint() == segment(make_readings(n_series=2, days=4), "day").fingerprint()
    changed = ps.with_values(ps.values + 1e-3)
    assert changed.fingerprint() != ps.fingerprint()


def test_invalid_shapes_and_meta_raise():
    meta = pd.DataFrame({c: [0] for c in ("series_id", "start", "month", "weekday", "days", "category")})
    with pytest.raises(DataError, match="shapes"):
        ProfileSet(np.zeros((1, 4)), np.ones((1, 5), bool), meta, 60, "day")
    with pytest.raises(DataError, match="lacks columns"):
        ProfileSet(np.zeros((1, 4)), np.ones((1, 4), bool), meta.drop(columns="days"), 60, "day")
    with pytest.raises(DataError, match="period"):
        ProfileSet(np.zeros((1, 4)), np.ones((1, 4), bool), meta, 60, "week")
