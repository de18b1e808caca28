"""Missing-data patterns, the imputation task and the super-resolution task on tiny synthetic profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines.naive_tasks import HoldUpsample, LinearInterp, LinearUpsample
from bench.api import Imputer, Model, Outcome, SuperResolver
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.tasks import imputation, super_resolution
from bench.tasks.masking import missing_mask, n_missing, observed_mask
from bench.tasks.queries import ImputationQuery
from tests.conftest import rows_by_key

SMALL = {"max_queries": 30, "n_samples": 4, "n_bootstrap": 3, "fractions_missing": [0.1, 0.5]}


def toy_profiles(n_series: int = 4, days: int = 40, resolution: int = 15, start: str = "2013-01-01",
                 seed: int = 0) -> ProfileSet:
    """Daily profiles of a few households: a smooth daily shape with random amplitude plus small noise (kW)."""
    rng = np.random.default_rng(seed)
    spd = 1440 // resolution
    t = np.arange(spd) / spd
    starts = pd.date_range(start, periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        for day in starts:
            amp = rng.uniform(0.2, 0.6)
            values.append(0.3 + 0.1 * s + amp * np.sin(np.pi * t) ** 2 + 0.03 * rng.random(spd))
            meta.append({"series_id": f"S{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std" if s % 2 == 0 else "ToU"})
    values = np.array(values, dtype=np.float32)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=resolution, period="day", name="toy")


class Oracle(Model, Imputer, SuperResolver):
    """Returns the truth (optionally shifted by a constant in the scaled space) for every query."""

    def __init__(self, truth: np.ndarray, shift: float = 0.0) -> None:
        super().__init__()
        self.truth, self.shift = truth, shift

    def fit(self, train, ctx):
        pass

    def _ens(self, n_samples):
        return np.broadcast_to(self.truth + self.shift, (n_samples, *self.truth.shape)).copy()

    def impute(self, query, n_samples, ctx):
        return self._ens(n_samples)

    def super_resolve(self, query, n_samples, ctx):
        return self._ens(n_samples)


class ZeroImputer(Oracle):
    def impute(self, query, n_samples, ctx):
        return np.zeros((n_samples, *query.values.shape), dtype=np.float32)



# -- masking --------------------------------------------------------------------------------------------------
def padded_valid(n: int = 20, length: int = 62) -> np.ndarray:
    lengths = np.random.default_rng(1).integers(20, length + 1, size=n)
    return np.arange(length)[None, :] < lengths[:, None]


@pytest.mark.parametrize("pattern", ["random", "block"])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_mask_fraction_padding_and_contiguity(pattern, fraction):
    valid = padded_valid()
    missing = missing_mask(valid, pattern, fraction, np.random.default_rng(0))
    assert not (missing & ~valid).any()  # padding is never missing
    n_valid = valid.sum(axis=1)
    np.testing.assert_array_equal(missing.sum(axis=1), np.floor(fraction * n_valid + 0.5))
    observed = observed_mask(valid, pattern, fraction, np.random.default_rng(0))
    np.testing.assert_array_equal(observed, valid & ~missing)  # padding never observed either
    if pattern == "block":
        for row in missing:
            steps = np.flatnonzero(row)
            assert np.all(np.diff(steps) == 1)


def test_mask_seeded_and_random_pattern_spread():
    valid = np.ones((200, 50), dtype=bool)
    a = missing_mask(valid, "random", 0.3, np.random.default_rng(5))
    b = missing_mask(valid, "random", 0.3, np.random.default_rng(5))
    c = missing_mask(valid, "random", 0.3, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # uniform over positions: every step is hidden in about 30% of the profiles
    assert np.abs(a.mean(axis=0) - 0.3).max() < 0.15
    starts = missing_mask(valid, "block", 0.3, np.random.default_rng(5)).argmax(axis=1)
    assert len(np.unique(starts)) > 10 and starts.max() <= 35  # 15 hidden of 50: starts 0..35


def test_mask_edge_cases_and_errors():
    np.testing.assert_array_equal(n_missing(np.array([0, 1, 2, 10]), 0.5), [0, 0, 1, 5])
    np.testing.assert_array_equal(n_missing(np.array([3, 10]), 0.01), [1, 1])  # at least one hidden
    np.testing.assert_array_equal(n_missing(np.array([3]), 0.9), [2])  # at least one kept
    with pytest.raises(ValueError, match="pattern"):
        missing_mask(np.ones((2, 4), bool), "burst", 0.3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="between 0 and 1"):
        missing_mask(np.ones((2, 4), bool), "random", 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="boolean"):
        missing_mask(np.ones((2, 4)), "random", 0.3, np.random.default_rng(0))


def test_query_history_validation():
    values = np.ones((2, 4), dtype=np.float32)
    ok = np.ones((2, 4), dtype=bool)
    meta = pd.DataFrame({"month": [1, 1]})
    ImputationQuery(values, ok, ok, meta, 60, history=np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="history"):
        ImputationQuery(values, ok, ok, meta, 60, history=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="history"):
        ImputationQuery(values, ok, ok, meta, 60, history=np.zeros((2, 4), dtype=int))


# -- imputation -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imp_data():
    cfg = {**imputation.DEFAULTS, **SMALL}
    return cfg, imputation.prepare(toy_profiles(), cfg, seed=0)


def test_imputation_prepare(imp_data):
    cfg, data = imp_data
    assert data.settings == ["random-10%", "random-50%", "block-10%", "block-50%"]
    assert len(data.real) == 30 and data.observed.shape == (4, 30, 96)
    hidden = (~data.observed).sum(axis=2)
    np.testing.assert_array_equal(hidden[1], 48)  # 50% of 96
    np.testing.assert_array_equal(hidden[0], 10)  # round(9.6)
    query = data.query(1)
    assert np.isnan(query.values[~query.observed]).all()
    np.testing.assert_array_equal(query.values[query.observed], data.real.values[query.observed])
    # history: the same series seven days earlier, from the full (unsplit) set, scaled; NaN before day 8
    full = toy_profiles()
    for row in range(len(data.real)):
        series, start = data.real.meta.loc[row, ["series_id", "start"]]
        source = full.meta.index[(full.meta["series_id"] == series) & (full.meta["start"] == start - pd.Timedelta(days=7))]
        if len(source):
            np.testing.assert_allclose(data.history[row], data.scaler.transform(full.values[source[0]]), atol=1e-6)
        else:
            assert np.isnan(data.history[row]).all()
    assert np.isfinite(data.history).any() and np.isnan(data.history).any()
    again = imputation.prepare(toy_profiles(), cfg, seed=0)
    np.testing.assert_array_equal(again.observed, data.observed)


def test_imputation_rows_perfect_shifted_and_linear_beats_zero(imp_data):
    cfg, data = imp_data
    ctx = RunContext(seed=0)
    expected = imputation.expected_rows(cfg)
    assert len(expected) == 4 * len(imputation.METRIC_NAMES)

    def scored(model):
        outcome = imputation.run(model, data, ctx)
        assert isinstance(outcome, Outcome) and outcome.extra == {}
        assert outcome.status == "ok" and outcome.samples.shape == (4, 4, 30, 96)
        rows = imputation.score(outcome, data, cfg, seed=0)
        assert [(r["setting"], r["metric"]) for r in rows] == expected
        return rows_by_key(rows)

    perfect = scored(Oracle(data.real.values))
    kw_per_unit = (data.scaler.high - data.scaler.low) / 2
    shifts = [0.05, 0.2]
    shifted = [scored(Oracle(data.real.values, s)) for s in shifts]
    linear, zero = scored(LinearInterp()), scored(ZeroImputer(data.real.values))
    for setting in data.settings:
        assert perfect[(setting, "CRPS")]["value"] < 1e-6
        assert perfect[(setting, "Cov90")]["value"] == 1.0
        for s, rows in zip(shifts, shifted):
            # a deterministic ensemble off by d has CRPS = MAE = RMSE = d (kW)
            for metric in ("CRPS", "MAE", "RMSE"):
                assert rows[(setting, metric)]["value"] == pytest.approx(s * kw_per_unit, rel=1e-4)
            assert rows[(setting, "Cov90")]["value"] == 0.0
            assert rows[(setting, "CovErr90")]["value"] == pytest.approx(0.9)
        assert shifted[1][(setting, "CRPS")]["value"] > shifted[0][(setting, "CRPS")]["value"]
        for metric in ("CRPS", "RMSE", "MAE", "MAPE"):
            assert linear[(setting, metric)]["value"] < zero[(setting, metric)]["value"]
        assert linear[(setting, "CRPS")]["std"] >= 0


def test_imputation_failed_fit_gives_failed_rows(imp_data):
    cfg, data = imp_data

    class Broken(LinearInterp):
        def fit(self, train, ctx):
            raise ModelFitError("diverged")

    outcome = imputation.run(Broken(), data, RunContext(seed=0))
    rows = imputation.score(outcome, data, cfg, seed=0)
    assert [(r["setting"], r["metric"]) for r in rows] == imputation.expected_rows(cfg)
    assert all(r["status"] == "failed" and r["note"] == "diverged" for r in rows)


# -- super-resolution -----------------------------------------------------------------------------------------
def test_sr_settings_by_resolution():
    cfg = super_resolution.DEFAULTS
    assert [s for s, _ in super_resolution.expected_rows(cfg, 15)[::3]] == ["x4 (60->15 min)", "x2 (30->15 min)"]
    assert [s for s, _ in super_resolution.expected_rows(cfg, 30)[::3]] == ["x2 (60->30 min)"]
    assert super_resolution.expected_rows(cfg, 60) == []
    assert [s for s, _ in super_resolution.expected_rows({"factors": [3]}, 5)[::3]] == ["x3 (15->5 min)"]
    assert super_resolution.expected_rows({"factors": [7]}, 5) == []  # 35 min does not divide a day
    with pytest.raises(ValueError, match="resolution"):
        super_resolution.expected_rows(cfg)


def test_block_means_with_padding():
    values = np.arange(12, dtype=np.float32).reshape(1, 12)
    valid = np.arange(12)[None] < 6
    np.testing.assert_allclose(super_resolution.block_means(values, valid, 4), [[1.5, 4.5, 0.0]])


@pytest.fixture(scope="module")
def sr_data():
    cfg = {**super_resolution.DEFAULTS, "max_queries": 30, "n_samples": 3, "n_bootstrap": 3}
    return cfg, super_resolution.prepare(toy_profiles(), cfg, seed=0)


def test_sr_end_to_end(sr_data):
    cfg, data = sr_data
    ctx = RunContext(seed=0)
    assert data.settings == ["x4 (60->15 min)", "x2 (30->15 min)"]

    def scored(model):
        outcome = super_resolution.run(model, data, ctx)
        assert outcome.status == "ok"
        rows = super_resolution.score(outcome, data, cfg, seed=0)
        expected = super_resolution.expected_rows(cfg, 15)
        assert [(r["setting"], r["metric"]) for r in rows[:len(expected)]] == expected
        return rows_by_key(rows), outcome.samples

    perfect, _ = scored(Oracle(data.real.values))
    shifted, _ = scored(Oracle(data.real.values, 0.1))
    hold, hold_samples = scored(HoldUpsample())
    linear, linear_samples = scored(LinearUpsample())
    kw_per_unit = (data.scaler.high - data.scaler.low) / 2
    for index, setting in enumerate(data.settings):
        for metric in super_resolution.METRIC_NAMES:
            assert perfect[(setting, metric)]["value"] < 1e-6
        assert shifted[(setting, "CRPS")]["value"] == pytest.approx(0.1 * kw_per_unit, rel=1e-4)
        # a constant shift moves the peak and the trough by the same amount
        assert shifted[(setting, "PeakCRPS")]["value"] == pytest.approx(0.2 * kw_per_unit, rel=1e-4)
        low = data.query(index).low
        factor = data.factors[index]
        for samples in (hold_samples, linear_samples):
            means = samples[index].reshape(3, 30, -1, factor).mean(axis=3)
            np.testing.assert_allclose(means, np.broadcast_to(low, means.shape), atol=1e-5)
        # smooth days: the piecewise-linear profile is closer than the step function
        assert linear[(setting, "RMSE")]["value"] < hold[(setting, "RMSE")]["value"]
        assert 0 < hold[(setting, "CRPS")]["value"] < shifted[(setting, "CRPS")]["value"] * 2


def test_sr_without_applicable_factor_does_not_fit():
    cfg = {**super_resolution.DEFAULTS, "max_queries": 10, "n_samples": 2}
    data = super_resolution.prepare(toy_profiles(resolution=60), cfg, seed=0)

    class MustNotFit(HoldUpsample):
        def fit(self, train, ctx):
            raise AssertionError("fitted without any setting")

    outcome = super_resolution.run(MustNotFit(), data, RunContext(seed=0))
    assert outcome.status == "ok" and outcome.samples is None and "60 min" in outcome.note
    assert super_resolution.score(outcome, data, cfg, seed=0) == []


def test_imputation_rows_are_the_registered_metrics_on_the_hidden_steps(imp_data):
    """Each row is the registered metric (ensemble metrics on the ensemble, point metrics on its median) of the
    kW values on the hidden steps; with bootstrap_frac = 1 the bootstrap is the metric on every profile."""
    from metrics import METRICS

    _, data = imp_data
    cfg = {**imputation.DEFAULTS, **SMALL, "bootstrap_frac": 1.0}
    outcome = imputation.run(LinearInterp(), data, RunContext(seed=0))
    rows = rows_by_key(imputation.score(outcome, data, cfg, seed=0))
    truth = data.scaler.inverse(data.real.values).astype(np.float64)
    for index, setting in enumerate(data.settings):
        ens = data.scaler.inverse(outcome.samples[index]).astype(np.float64)
        scored = data.real.mask & ~data.observed[index]
        for metric in imputation.METRIC_NAMES:
            spec = METRICS[metric]
            pred = ens if spec.needs == "ensemble" else np.median(ens, axis=0)
            expected = spec.fn(truth, pred, mask=scored)
            assert rows[(setting, metric)]["value"] == pytest.approx(expected, rel=1e-12), (setting, metric)
            assert rows[(setting, metric)]["std"] == 0.0


def test_sr_rows_are_the_registered_metrics_on_the_valid_steps(sr_data):
    from metrics import METRICS

    _, data = sr_data
    cfg = {**super_resolution.DEFAULTS, "max_queries": 30, "n_samples": 3, "bootstrap_frac": 1.0}
    outcome = super_resolution.run(LinearUpsample(), data, RunContext(seed=0))
    rows = rows_by_key(super_resolution.score(outcome, data, cfg, seed=0))
    truth = data.scaler.inverse(data.real.values).astype(np.float64)
    for index, setting in enumerate(data.settings):
        ens = data.scaler.inverse(outcome.samples[index]).astype(np.float64)
        for metric in super_resolution.METRIC_NAMES:
            spec = METRICS[metric]
            pred = ens if spec.needs == "ensemble" else np.median(ens, axis=0)
            expected = spec.fn(truth, pred, mask=data.real.mask)
            assert rows[(setting, metric)]["value"] == pytest.approx(expected, rel=1e-12), (setting, metric)


def test_paired_bootstrap_draws_from_its_stream():
    """The paired bootstrap's subsets come from the seed's paired-bootstrap stream, the same for every call."""
    from bench import seeds
    from bench.seeds import Stream
    from bench.tasks.common import paired_bootstrap_values, paired_row

    seen = []

    def fn(rows):
        seen.append(rows)
        return float(rows.sum())

    row = paired_row("s", "m", paired_bootstrap_values(fn, 20, 4, 0.5, seed=7))
    mean, std = row["value"], row["std"]
    rng = seeds.rng(7, Stream.PAIRED_BOOTSTRAP)
    expected = [np.sort(rng.choice(20, size=10, replace=False)) for _ in range(4)]
    for got, want in zip(seen, expected):
        np.testing.assert_array_equal(got, want)
    assert mean == pytest.approx(np.mean([w.sum() for w in expected]))
    assert std == pytest.approx(np.std([w.sum() for w in expected], ddof=1))
    assert row["repeats"] == [float(w.sum()) for w in expected]
    assert list(paired_bootstrap_values(fn, 20, 4, 0.5, seed=7)) == row["repeats"]


def test_sr_is_also_scored_per_customer_category(sr_data):
    from metrics import METRICS

    _, data = sr_data
    cfg = {**super_resolution.DEFAULTS, "max_queries": 30, "n_samples": 3, "bootstrap_frac": 1.0, "min_category": 5}
    outcome = super_resolution.run(LinearUpsample(), data, RunContext(seed=0))
    rows = rows_by_key(super_resolution.score(outcome, data, cfg, seed=0))
    truth = data.scaler.inverse(data.real.values).astype(np.float64)
    categories = data.real.meta["category"].to_numpy()
    assert sorted(set(categories)) == ["Std", "ToU"]
    for category in ("Std", "ToU"):
        members = categories == category
        for index, setting in enumerate(data.settings):
            ens = data.scaler.inverse(outcome.samples[index][:, members]).astype(np.float64)
            for metric in super_resolution.METRIC_NAMES:
                spec = METRICS[metric]
                pred = ens if spec.needs == "ensemble" else np.median(ens, axis=0)
                row = rows[(f"{setting}, category={category}", metric)]
                assert row["value"] == pytest.approx(spec.fn(truth[members], pred, mask=data.real.mask[members]),
                                                     rel=1e-12)
                assert row["note"] == f"{int(members.sum())} profiles"
    # switched off, or too few profiles in a category: the pooled settings only
    for off in ({"by_category": False}, {"min_category": 1000}):
        plain = super_resolution.score(outcome, data, {**cfg, **off}, seed=0)
        assert {r["setting"] for r in plain} == set(data.settings)
    meta = data.real.meta.assign(category="Std")
    assert super_resolution.category_groups(meta, cfg) == []  # one category is the pooled table
    with pytest.raises(ValueError, match="min_category"):
        super_resolution.category_groups(meta, {**cfg, "min_category": 0})
    # a failed outcome fails the category rows too
    failed = super_resolution.score(Outcome(status="failed", note="boom"), data, cfg, seed=0)
    assert {r["setting"] for r in failed} == {s for s, _ in rows} and all(r["status"] == "failed" for r in failed)
