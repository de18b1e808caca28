"""The generation task: its registration, the outcome of a run, failures, and rows that are the registered metrics
with the real profiles first (KL(generated || real), as the EnergyDiff code)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import seeds
from bench.api import Generator, Model, Outcome, Task
from bench.context import RunContext
from bench.data.segment import segment
from bench.errors import ModelFitError
from bench.seeds import Stream
from bench.tasks import generation, get_task
from metrics import METRICS, bootstrap, kl_pooled
from tests.conftest import make_readings

CFG = {**generation.DEFAULTS, "split": "pooled", "n_bootstrap": 3}


@pytest.fixture(scope="module")
def data():
    return generation.prepare(segment(make_readings(n_series=6, days=40, start="2013-01-01"), "day"), CFG, seed=0)


class Shifted(Model, Generator):
    """Training days drawn with replacement (from its own model stream), plus a constant ``shift``."""

    def __init__(self, shift: float = 0.0, fail: str = "") -> None:
        super().__init__()
        self.shift, self.fail = shift, fail

    def fit(self, train, ctx):
        if self.fail == "fit":
            raise ModelFitError("diverged")
        self.train = train.values

    def sample(self, n, cond, ctx):
        rows = ctx.rng(Stream.MODEL_SAMPLE).integers(len(self.train), size=n)
        out = self.train[rows] + self.shift
        if self.fail == "nan":
            out[0, 0] = np.nan
        if self.fail == "shape":
            out = out[:, :-1]
        return out


def test_registered_task():
    task = get_task("generation")
    assert isinstance(task, Task) and task is generation.TASK
    assert task.capability == "generate" and task.defaults is generation.DEFAULTS
    assert task.prepare is generation.prepare and task.run is generation.run and task.score is generation.score
    assert task.expected_rows(CFG) == [("", m) for m in (*CFG["metrics"], "DCR_ratio", "Memorised", "TSTR")]
    assert task.expected_rows({**CFG, "privacy": False, "tstr": False}) == [("", m) for m in CFG["metrics"]]
    assert task.source == generation.__file__ and task.protocol_notes == ()


def test_run_gives_an_outcome_with_samples_and_timings(data):
    outcome = generation.run(Shifted(), data, RunContext(seed=0))
    assert isinstance(outcome, Outcome) and outcome.status == "ok" and outcome.extra == {}
    assert outcome.samples.shape == (data.n_generate, data.real.length) and outcome.samples.dtype == np.float32
    assert outcome.fit_seconds >= 0 and outcome.sample_seconds >= 0


def test_failures(data):
    for fail, note in (("fit", "diverged"), ("nan", "non-finite")):
        outcome = generation.run(Shifted(fail=fail), data, RunContext(seed=0))
        assert outcome.status == "failed" and note in outcome.note and outcome.samples is None
        rows = generation.score(outcome, data, CFG, 0)
        assert [r["metric"] for r in rows] == [m for _, m in generation.expected_rows(CFG)]
        assert all(r["status"] == "failed" and np.isnan(r["value"]) and note in r["note"] for r in rows)
    with pytest.raises(RuntimeError, match="shape"):
        generation.run(Shifted(fail="shape"), data, RunContext(seed=0))


def test_rows_are_the_registered_metrics_with_real_first(data):
    """bootstrap_frac = 1: every repeat scores every profile, so each row is the metric itself (std 0)."""
    outcome = generation.run(Shifted(shift=0.2), data, RunContext(seed=0))
    cfg = {**CFG, "bootstrap_frac": 1.0, "metrics": [*CFG["metrics"], "MMD_paper", "KS_step"]}
    rows = {r["metric"]: r for r in generation.score(outcome, data, cfg, 0)}
    real, gen = data.real.values, outcome.samples
    for name in cfg["metrics"]:
        spec = METRICS[name]
        kwargs = {"bandwidth": data.bandwidth} if name == "MMD" else {}
        # (each repeat scores the profiles in a shuffled order: equal up to round-off)
        assert rows[name]["value"] == pytest.approx(spec.fn(real, gen, **kwargs), rel=1e-9), name
        assert rows[name]["std"] == pytest.approx(0.0, abs=1e-9) and rows[name]["status"] == "ok"
    # KL keeps its direction, KL(generated || real): the swapped call is another number here
    assert rows["KL"]["value"] == pytest.approx(kl_pooled(real, gen), rel=1e-9)
    assert abs(kl_pooled(gen, real) - rows["KL"]["value"]) > 1e-3


def test_bootstrap_draws_from_the_generation_stream_and_cached_samples_score_the_same(data):
    outcome = generation.run(Shifted(shift=0.1), data, RunContext(seed=0))
    rows = generation.score(outcome, data, CFG, seed=5)
    mean, std = bootstrap(lambda r, g: METRICS["KS"].fn(r, g), data.real.values, outcome.samples,
                          n_repeats=CFG["n_bootstrap"], frac=CFG["bootstrap_frac"],
                          seed=seeds.int_seed(5, Stream.GENERATION_BOOTSTRAP))
    ks = next(r for r in rows if r["metric"] == "KS")
    assert (ks["value"], ks["std"]) == (mean, std)
    # the post-processing path rebuilds an outcome from the cached status, note and samples alone
    rebuilt = Outcome(status=outcome.status, note=outcome.note, samples=outcome.samples)
    assert generation.score(rebuilt, data, CFG, seed=5) == rows
    with pytest.raises(ValueError, match="CRPS"):
        generation.score(outcome, data, {**CFG, "metrics": ["CRPS"]}, seed=5)
