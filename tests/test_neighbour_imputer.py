"""``knn-imputer``: the same fill as scikit-learn's KNNImputer called directly, learning on a tiny problem,
padding and empty queries, save / load, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import KNNImputer

from baselines.neighbour_imputer import NeighbourImputer
from bench.api import ParamError
from bench.context import RunContext
from bench.errors import ModelFitError
from bench.tasks.queries import ImputationQuery
from tests.conftest import daily_set, sine_days

LENGTH = 24


def _query(truth: np.ndarray, observed: np.ndarray, valid: np.ndarray | None = None) -> ImputationQuery:
    valid = np.ones_like(observed) if valid is None else valid
    return ImputationQuery(values=np.where(observed, truth, np.nan).astype(np.float32), observed=observed,
                           valid=valid, meta=daily_set(truth).meta, resolution=60)


def _problem(seed: int = 3):
    """80 training sine days (a fifth of their steps unobserved) and 30 query days with 30 % hidden."""
    rng = np.random.default_rng(seed)
    train_values = sine_days(80, rng, LENGTH)
    train_mask = rng.random(train_values.shape) >= 0.2
    truth = sine_days(30, rng, LENGTH)
    observed = rng.random(truth.shape) >= 0.3
    observed[:, 0] = True
    return daily_set(train_values, train_mask), truth, _query(truth, observed)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_matches_scikit_learn_called_directly(weights):
    train, truth, query = _problem()
    model = NeighbourImputer(n_neighbors=4, weights=weights)
    model.fit(train, RunContext())
    out = model.impute(query, 3, RunContext())
    assert out.shape == (3, *truth.shape) and out.dtype == np.float32
    reference = KNNImputer(n_neighbors=4, weights=weights).fit(
        np.where(train.mask, train.values, np.nan).astype(np.float64))
    expected = reference.transform(np.where(query.observed, truth, np.nan).astype(np.float64)).astype(np.float32)
    for sample in out:  # deterministic: every sample is the point imputation
        np.testing.assert_array_equal(sample, expected)
    np.testing.assert_array_equal(out[0][query.observed], truth[query.observed])


def test_a_hidden_step_is_the_mean_of_the_nearest_days_that_observe_it():
    """A closed-form case: with k = 2, the fill is the mean of the two training days nearest on the observed steps."""
    train = np.array([[0.0, 0.0, 1.0], [0.1, 0.1, 3.0], [5.0, 5.0, 100.0], [0.05, 0.05, np.nan]], dtype=np.float32)
    model = NeighbourImputer(n_neighbors=2)
    model.fit(daily_set(np.nan_to_num(train), ~np.isnan(train), resolution=480), RunContext())
    truth = np.array([[0.05, 0.05, 0.0]], dtype=np.float32)
    query = ImputationQuery(values=np.array([[0.05, 0.05, np.nan]], dtype=np.float32),
                            observed=np.array([[True, True, False]]), valid=np.ones((1, 3), dtype=bool),
                            meta=daily_set(truth).meta, resolution=480)
    # day 4 is nearest (distance 0) but does not observe step 3 and day 3 is far: the fill is (1 + 3) / 2
    np.testing.assert_allclose(model.impute(query, 2, RunContext())[:, 0], [[0.05, 0.05, 2.0]] * 2, rtol=1e-6)


def test_learns_the_tiny_problem():
    """Beats the per-step training mean (which knows each step's level but not the day's phase and amplitude)."""
    train, truth, query = _problem()
    model = NeighbourImputer(n_neighbors=5)
    model.fit(train, RunContext())
    hidden = ~query.observed
    ours = np.abs(model.impute(query, 2, RunContext())[0] - truth)[hidden].mean()
    step_mean = np.nanmean(np.where(train.mask, train.values, np.nan), axis=0)
    baseline = np.abs(step_mean[None] - truth)[hidden].mean()
    assert ours < 0.5 * baseline, (ours, baseline)


def test_padding_and_profiles_with_nothing_observed():
    train, truth, _ = _problem()
    mask = train.mask.copy()
    mask[:, -3:] = False  # steps no training day observes (like month padding) keep their columns
    padded_train = daily_set(train.values, mask)
    observed = np.ones(truth.shape, dtype=bool)
    observed[:, 5:9] = False
    observed[0] = False  # a profile with nothing observed
    valid = np.ones_like(observed)
    valid[:, -3:] = False
    observed &= valid
    model = NeighbourImputer(n_neighbors=3)
    model.fit(padded_train, RunContext())
    out = model.impute(_query(truth, observed, valid), 2, RunContext())[0]
    assert np.isfinite(out).all() and (out[:, -3:] == 0).all()
    # nothing to measure a distance on: scikit-learn fills every step with the training mean of that step
    column_means = np.nanmean(np.where(mask, train.values, np.nan)[:, :-3], axis=0)
    np.testing.assert_allclose(out[0, :-3], column_means, rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    train, _, query = _problem()
    model = NeighbourImputer(n_neighbors=4, weights="distance")
    model.fit(train, RunContext())
    loaded = NeighbourImputer.load(model.save(tmp_path / "knn.pt"))
    assert loaded.n_neighbors == 4 and loaded.weights == "distance"
    np.testing.assert_array_equal(loaded.impute(query, 3, RunContext()), model.impute(query, 3, RunContext()))


def test_bad_input_is_refused():
    train, truth, query = _problem()
    model = NeighbourImputer()
    with pytest.raises(RuntimeError, match="impute called before fit"):
        model.impute(query, 2, RunContext())
    model.fit(train, RunContext())
    short = _query(truth[:, :12], query.observed[:, :12])
    with pytest.raises(ValueError, match="query profiles have 12 steps, the model was fitted on 24"):
        model.impute(short, 2, RunContext())
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        model.impute(query, 0, RunContext())
    with pytest.raises(ParamError, match="n_neighbors must be >= 1"):
        NeighbourImputer(n_neighbors=0)
    with pytest.raises(ParamError, match="weights expects"):
        NeighbourImputer(weights="gaussian")
    empty = daily_set(np.zeros((3, LENGTH), dtype=np.float32), np.zeros((3, LENGTH), dtype=bool))
    with pytest.raises(ModelFitError, match="no training profile has an observed step"):
        NeighbourImputer().fit(empty, RunContext())
