"""The conditional-generation task: groups, MMD permutation test, the constrained setting and failures."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.naive_tasks import ConditionalResample
from bench.api import ConditionalGenerator, ConstrainedGenerator, Model, Outcome
from bench.context import RunContext
from bench.errors import ModelFitError
from bench.tasks import conditional
from tests.conftest import rows_by_key
from tests.test_tasks_imputation_sr import toy_profiles

CFG = {**conditional.DEFAULTS, "n_permutations": 200, "n_bootstrap": 3}


@pytest.fixture(scope="module")
def data():
    # 4 households x 40 days from Jan 1: evaluation profiles in January and February
    return conditional.prepare(toy_profiles(), CFG, seed=0)


class SameGroupReal(Model, ConditionalGenerator):
    """Returns, for each condition row, another real evaluation profile of the same month (a perfect model)."""

    def __init__(self, real, seed=0):
        super().__init__()
        self.real, self.rng = real, np.random.default_rng(seed)

    def fit(self, train, ctx):
        pass

    def sample(self, n, cond, ctx):
        out = np.empty((n, self.real.length), dtype=np.float32)
        months = self.real.meta["month"].to_numpy()
        for i, month in enumerate(cond["month"]):
            out[i] = self.real.values[self.rng.choice(np.flatnonzero(months == month))]
        return out


class Noise(SameGroupReal):
    def sample(self, n, cond, ctx):
        return self.rng.uniform(-1, 1, (n, self.real.length)).astype(np.float32)


class Constrained(SameGroupReal, ConstrainedGenerator):
    """Meets the peak / mean targets exactly by an affine map of a real profile (when targets are given)."""

    def __init__(self, real, error=0.0):
        super().__init__(real)
        self.error = error

    def sample(self, n, cond, ctx):
        out = super().sample(n, cond, ctx).astype(np.float64)
        if "target_peak" in cond.columns:
            peak, mean = out.max(axis=1, keepdims=True), out.mean(axis=1, keepdims=True)
            tp, tm = cond["target_peak"].to_numpy()[:, None], cond["target_mean"].to_numpy()[:, None]
            out = tm + (out - mean) * (tp - tm) / (peak - mean) + self.error
        return out.astype(np.float32)


def test_groups_and_expected_rows(data):
    labels = [label for label, _ in data.groups]
    assert labels == ["month=1", "month=2"]
    assert all(len(rows) >= 10 for _, rows in data.groups)
    assert conditional.expected_rows(CFG) == [("conditional", "MMD"), ("conditional", "MMD_p"),
                                              ("conditional", "MMD_pass"), ("conditional", "TSTR_class"),
                                              ("constrained", "PeakRMSE"),
                                              ("constrained", "MeanRMSE")]
    cond = data.conditions(constrained=True)
    assert list(cond.columns) == ["month", "weekday", "days", "category", "target_peak", "target_mean"]
    np.testing.assert_allclose(cond["target_peak"], data.real.values.max(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="min_group"):
        conditional.condition_groups(data.real.meta, ["month"], 1)


def test_same_group_real_passes_and_noise_fails(data):
    ctx = RunContext(seed=0)
    good = rows_by_key(conditional.score(conditional.run(SameGroupReal(data.real), data, ctx), data, CFG, 0))
    bad = rows_by_key(conditional.score(conditional.run(Noise(data.real), data, ctx), data, CFG, 0))
    assert good[("conditional", "MMD_p")]["value"] > 0.2
    assert good[("conditional", "MMD_pass")]["value"] == 1.0
    assert bad[("conditional", "MMD_p")]["value"] == pytest.approx(1 / 201)  # the smallest possible p
    assert bad[("conditional", "MMD_pass")]["value"] == 0.0
    assert bad[("conditional", "MMD")]["value"] > 10 * abs(good[("conditional", "MMD")]["value"])
    # models without the constrained capability get n/a constrained rows
    for rows in (good, bad):
        assert rows[("constrained", "PeakRMSE")]["status"] == "n/a"
        assert np.isnan(rows[("constrained", "MeanRMSE")]["value"])


def test_conditional_resample_end_to_end(data):
    ctx = RunContext(seed=0)
    outcome = conditional.run(ConditionalResample(), data, ctx)
    assert isinstance(outcome, Outcome) and outcome.status == "ok" and outcome.extra == {"constrained": False}
    assert outcome.samples.shape == (1, len(data.real), 96) and outcome.fit_seconds >= 0
    rows = conditional.score(outcome, data, CFG, seed=0)
    assert [(r["setting"], r["metric"]) for r in rows] == conditional.expected_rows(CFG)
    assert all(r["status"] == "ok" for r in rows[:3])
    again = conditional.score(conditional.run(ConditionalResample(), data, ctx), data, CFG, seed=0)
    assert again == rows  # seeded draws and permutations


def test_constrained_setting(data):
    ctx = RunContext(seed=0)
    exact = rows_by_key(conditional.score(conditional.run(Constrained(data.real), data, ctx), data, CFG, 0))
    off = rows_by_key(conditional.score(conditional.run(Constrained(data.real, 0.1), data, ctx), data, CFG, 0))
    kw_per_unit = (data.scaler.high - data.scaler.low) / 2
    for metric in ("PeakRMSE", "MeanRMSE"):
        assert exact[("constrained", metric)]["status"] == "ok"
        assert exact[("constrained", metric)]["value"] < 1e-5
        assert off[("constrained", metric)]["value"] == pytest.approx(0.1 * kw_per_unit, rel=1e-3)


def test_failed_fit(data):
    class Broken(ConditionalResample):
        def fit(self, train, ctx):
            raise ModelFitError("no luck")

    class BrokenConstrained(Broken, ConstrainedGenerator):
        pass

    rows = conditional.score(conditional.run(Broken(), data, RunContext()), data, CFG, 0)
    assert [r["status"] for r in rows] == ["failed"] * 4 + ["n/a"] * 2
    rows = conditional.score(conditional.run(BrokenConstrained(), data, RunContext()), data, CFG, 0)
    assert [r["status"] for r in rows] == ["failed"] * 6 and rows[0]["note"] == "no luck"


def test_tstr_class_row_is_a_paired_ratio_of_error_rates(data):
    rows = rows_by_key(conditional.score(conditional.run(SameGroupReal(data.real), data, RunContext()), data, CFG, 0))
    row = rows[("conditional", "TSTR_class")]
    assert row["status"] == "ok" and len(row["repeats"]) == CFG["n_bootstrap"]
    assert row["value"] == pytest.approx(np.mean(row["repeats"])) and row["value"] >= 0


def test_no_large_enough_group():
    cfg = {**CFG, "min_group": 500}
    small = conditional.prepare(toy_profiles(), cfg, seed=0)
    rows = conditional.score(conditional.run(ConditionalResample(), small, RunContext()), small, cfg, 0)
    assert [r["status"] for r in rows[:3]] == ["failed"] * 3 and "500" in rows[0]["note"]


def test_constrained_draw_is_cached_as_the_second_sample_set(data):
    outcome = conditional.run(Constrained(data.real), data, RunContext(seed=0))
    assert outcome.samples.shape == (2, len(data.real), 96) and outcome.extra == {"constrained": True}
    # an outcome rebuilt from the cached fields alone (status, note, samples) scores the same
    rebuilt = Outcome(status=outcome.status, note=outcome.note, samples=outcome.samples)
    assert conditional.score(rebuilt, data, CFG, 0) == conditional.score(outcome, data, CFG, 0)


def test_mmd_rows_are_the_registered_metrics_per_group(data):
    """MMD, MMD_p and MMD_pass of the task are the registered functions on each group, averaged over groups, with
    each group's permutation seed from the condition-group stream."""
    from bench import seeds
    from bench.seeds import Stream
    from metrics import METRICS

    outcome = conditional.run(Noise(data.real), data, RunContext(seed=0))
    rows = rows_by_key(conditional.score(outcome, data, CFG, seed=3))
    for metric in ("MMD", "MMD_p", "MMD_pass"):
        fn = METRICS[metric].fn
        kwargs = {"bandwidth": data.bandwidth}
        if metric != "MMD":
            kwargs["n_permutations"] = CFG["n_permutations"]
        if metric == "MMD_pass":
            kwargs["alpha"] = CFG["alpha"]
        per_group = [fn(data.real.values[r], outcome.samples[0][r], **kwargs,
                        **({"seed": seeds.int_seed(3, Stream.CONDITION_GROUPS, g)} if metric != "MMD" else {}))
                     for g, (_, r) in enumerate(data.groups)]
        assert rows[("conditional", metric)]["value"] == pytest.approx(np.mean(per_group), rel=1e-12, abs=1e-15)
        assert rows[("conditional", metric)]["std"] == pytest.approx(np.std(per_group), rel=1e-9, abs=1e-15)
