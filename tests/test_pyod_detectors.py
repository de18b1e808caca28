"""The library-backed detectors of baselines/pyod_detectors.py: agreement with PyOD / LightGBM called directly,
the statistical features against a brute-force reference, learning on a toy attack problem, save / load and
the missing-extra error."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.pyod_detectors import (BASE_FEATURES, HISTORY_FEATURES, AutoEncoderDetector, ECODDetector,
                                      FeatureGBMDetector, IForestDetector, day_features)
from bench import seeds
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.extras import MissingExtraError
from bench.registry import get_model
from bench.seeds import Stream
from bench.tasks import anomaly
from bench.tasks.queries import DetectionExamples, DetectionQuery
from metrics import auroc

pytestmark = pytest.mark.usefixtures("torch_one_thread")

CTX = RunContext(seed=0)
NAMES = ("iforest", "ecod", "pyod-autoencoder", "feature-gbm-detector")
SPLIT = {"split": "pooled", "fractions": [0.5, 0.25, 0.25], "max_train": None, "max_eval": None}
SMALL_AE = {"hidden": (12, 4), "epochs": 10, "batch_size": 16, "dropout": 0.1}


def households(n_series: int = 8, days: int = 30, seed: int = 3) -> ProfileSet:
    """Hourly days of households of similar level with a morning and an evening peak and a little noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24) + 0.5
    shape = 0.2 + 0.5 * np.exp(-0.5 * ((hours - 8) / 1.5) ** 2) + 0.8 * np.exp(-0.5 * ((hours - 19) / 2.0) ** 2)
    starts = pd.date_range("2013-01-01", periods=days, freq="D")
    values, meta = [], []
    for s in range(n_series):
        for day in starts:
            values.append((1.0 + 0.05 * s) * shape * rng.uniform(0.9, 1.1) + 0.03 * rng.standard_normal(24))
            meta.append({"series_id": f"S{s}", "start": day, "month": day.month, "weekday": day.weekday(),
                         "days": 1, "category": "Std"})
    values = np.clip(np.array(values, dtype=np.float32), 0.0, None)
    return ProfileSet(values=values, mask=np.ones(values.shape, dtype=bool), meta=pd.DataFrame(meta),
                      resolution=60, period="day", name="toy")


def prepare(history_days: int):
    cfg = {**anomaly.DEFAULTS, **SPLIT, "history_days": history_days, "scale_min": 0.5, "scale_max": 0.8,
           "n_bootstrap": 2}
    return anomaly.prepare(households(), cfg, seed=0)


@pytest.fixture(scope="module")
def toy():
    return prepare(0)


@pytest.fixture(scope="module")
def toy_history():
    return prepare(7)


def query(values: np.ndarray, valid: np.ndarray | None = None, history: np.ndarray | None = None,
          resolution: int = 60) -> DetectionQuery:
    values = np.asarray(values, dtype=np.float32)
    valid = np.ones(values.shape, dtype=bool) if valid is None else valid
    return DetectionQuery(values=values, valid=valid, meta=pd.DataFrame({"series_id": range(len(values))}),
                          resolution=resolution, history=history)


def fitted(name: str, data, overrides: dict | None = None, ctx: RunContext = CTX, setting: int = 0):
    model = get_model(name).build("test", overrides)
    model.fit(data.train, ctx)
    model.fit_detector(data.fit_examples(setting), ctx)
    return model


def train_matrix(data) -> np.ndarray:
    return np.where(data.train.mask, data.train.values, 0.0).astype(np.float64)


# -- registration ----------------------------------------------------------------------------------------------
def test_registered_with_profiles():
    for name in NAMES:
        spec = get_model(name)
        assert spec.capabilities == frozenset({"detect"}) and spec.cls.learns, name
        assert set(spec.config("test")) == set(spec.config("paper")) == set(spec.config("quick")), name
    assert get_model("iforest").config("quick")["n_estimators"] == 100
    assert get_model("pyod-autoencoder").config("quick")["hidden"] == (64, 32)
    assert get_model("pyod-autoencoder").config("test")["hidden"] == (16, 4)
    assert get_model("ecod").config("quick") == {}


# -- agreement with the libraries called directly --------------------------------------------------------------
def test_iforest_and_ecod_are_pyod_fitted_on_the_training_profiles(toy):
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    train, q = train_matrix(toy), toy.query(0)
    model = IForestDetector(n_estimators=30, max_samples=64, max_features=0.5)
    model.fit(toy.train, CTX)
    assert model.random_state_ == seeds.int_seed(0, Stream.MODEL_FIT, bits=31)  # the seed comes from the stream
    ref = IForest(n_estimators=30, max_samples=64, max_features=0.5, random_state=model.random_state_).fit(train)
    np.testing.assert_array_equal(model.anomaly_score(q, CTX), ref.decision_function(q.values.astype(np.float64)))
    # max_samples beyond the training set is the whole set
    big = IForestDetector(n_estimators=10, max_samples=10_000)
    big.fit(toy.train, CTX)
    whole = IForest(n_estimators=10, max_samples=len(train), random_state=big.random_state_).fit(train)
    np.testing.assert_array_equal(big.anomaly_score(q, CTX), whole.decision_function(q.values.astype(np.float64)))

    ecod = ECODDetector()
    ecod.fit(toy.train, CTX)
    np.testing.assert_array_equal(ecod.anomaly_score(q, CTX), ECOD().fit(train).decision_function(
        q.values.astype(np.float64)))


def test_pyod_detectors_zero_the_padding_steps(toy):
    values = toy.query(0).values[:6].copy()
    valid = np.ones(values.shape, dtype=bool)
    valid[:3, 18:] = False
    moved = values.copy()
    moved[:3, 18:] += 5.0  # only padding steps change
    zeroed = np.where(valid, values, 0.0)
    for model in (IForestDetector(n_estimators=10), ECODDetector()):
        model.fit(toy.train, CTX)
        scores = model.anomaly_score(query(moved, valid), CTX)
        np.testing.assert_array_equal(scores, model.anomaly_score(query(values, valid), CTX))
        np.testing.assert_array_equal(scores, model.anomaly_score(query(zeroed), CTX))


def test_autoencoder_is_pyods_and_scores_its_reconstruction_error(toy):
    from pyod.models.auto_encoder import AutoEncoder

    train, q = train_matrix(toy), toy.query(0)
    model = AutoEncoderDetector(**SMALL_AE)
    model.fit(toy.train, CTX)
    scores = model.anomaly_score(q, CTX)
    ref = AutoEncoder(hidden_neuron_list=[12, 4], epoch_num=10, batch_size=16, lr=1e-3,
                      optimizer_params={"weight_decay": 1e-5}, dropout_rate=0.1, batch_norm=True, device="cpu",
                      random_state=model.random_state_, verbose=0).fit(train)
    np.testing.assert_allclose(scores, ref.decision_function(q.values.astype(np.float64)), rtol=1e-6)
    # the score is the Euclidean norm of the standardised profile minus its reconstruction
    np.testing.assert_allclose(model.x_mean_, train.mean(axis=0))
    z = torch.from_numpy(((q.values - model.x_mean_) / (model.x_std_ + 1e-8)).astype(np.float32))
    model.network_.eval()
    with torch.no_grad():
        expected = torch.linalg.vector_norm(z - model.network_(z), dim=1).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_feature_gbm_is_lightgbm_on_the_day_features(toy):
    import lightgbm

    model = fitted("feature-gbm-detector", toy)
    train = train_matrix(toy)
    np.testing.assert_allclose(model.mean_, train.mean(axis=0))
    np.testing.assert_allclose(model.std_, train.std(axis=0))
    cfg = get_model("feature-gbm-detector").config("test")
    examples, q = toy.fit_examples(0), toy.query(0)

    def features(x: DetectionQuery) -> np.ndarray:
        return day_features(x, model.mean_, model.std_, cfg["window_hours"], cfg["std_floor"], cfg["level_floor"])

    clf = lightgbm.LGBMClassifier(n_estimators=cfg["n_estimators"], learning_rate=cfg["learning_rate"],
                                  num_leaves=cfg["num_leaves"], min_child_samples=cfg["min_child_samples"],
                                  random_state=seeds.int_seed(0, Stream.MODEL_FIT, bits=31), n_jobs=1,
                                  deterministic=True, force_row_wise=True, verbose=-1)
    clf.fit(features(examples.query), examples.labels.astype(int))
    np.testing.assert_allclose(model.anomaly_score(q, CTX), clf.predict(features(q), raw_score=True), rtol=1e-12)
    assert features(q).shape == (len(q), len(BASE_FEATURES))


# -- the statistical features against a brute-force reference ---------------------------------------------------
def reference_features(x, v, resolution, ref_mean, ref_std, history, window_hours, std_floor, level_floor):
    """One day's features by plain loops over its valid steps (the definitions of day_features' docstring)."""
    length = len(x)
    w = min(max(1, round(60 * window_hours / resolution)), length)
    xs = x[v]
    out = {"mean": xs.mean(), "std": xs.std(), "min": xs.min(), "max": xs.max()}
    for q in (10, 25, 50, 75, 90):
        out[f"q{q}"] = np.quantile(xs, q / 100)
    steps = [(t, x[t + 1] - x[t]) for t in range(length - 1) if v[t] and v[t + 1]]
    d = np.array([s for _, s in steps])
    out.update(max_rise=d.max(), max_drop=d.min(), mean_abs_step=np.abs(d).mean())

    def windows(series, ok):  # means over the valid steps of every window of w steps that has one
        return [np.mean([series[t] for t in range(a, a + w) if ok[t]])
                for a in range(len(series) - w + 1) if any(ok[a:a + w])]

    out.update(window_max=max(windows(x, v)), window_min=min(windows(x, v)))
    step_series = np.array([x[t + 1] - x[t] for t in range(length - 1)])
    step_ok = np.array([v[t] and v[t + 1] for t in range(length - 1)])
    out.update(ramp_max=max(windows(step_series, step_ok)), ramp_min=min(windows(step_series, step_ok)))
    level = np.maximum((x + 1) / 2, level_floor)

    def against(prefix, mean, std):
        z = (x - mean) / std
        ref_level = np.maximum((mean + 1) / 2, level_floor)
        ratio = np.log(level) - np.log(ref_level)
        return {f"{prefix}_z_mean": z[v].mean(), f"{prefix}_z_window": max(abs(m) for m in windows(z, v)),
                f"{prefix}_log_level_ratio": np.log(max(level[v].mean(), level_floor)) - np.log(ref_level[v].mean()),
                f"{prefix}_window_log_ratio_max": max(windows(ratio, v)),
                f"{prefix}_window_log_ratio_min": min(windows(ratio, v))}

    out.update(against("pop", ref_mean, np.maximum(ref_std, std_floor)))
    if history is not None:
        days = history.reshape(-1, length)
        out.update(against("hist", days.mean(axis=0), np.maximum(days.std(axis=0), std_floor)))
        out["hist_log_std_ratio"] = (np.log(xs.std() + std_floor)
                                     - np.log(np.mean([day.std() for day in days]) + std_floor))
    return out


@pytest.mark.parametrize("with_history", [False, True])
def test_day_features_match_a_brute_force_reference(with_history):
    rng = np.random.default_rng(5)
    n, length = 5, 8
    values = rng.uniform(-1, 0.8, (n, length))
    valid = np.ones((n, length), dtype=bool)
    valid[1, 6:] = False  # month padding at the end
    valid[2, 3] = False  # a gap: steps around it are not differenced
    values[~valid] = 7.0  # never read
    ref_mean, ref_std = rng.uniform(-0.6, 0.2, length), rng.uniform(0.0, 0.3, length)
    ref_std[0] = 0.001  # below the floor
    history = rng.uniform(-1, 0.5, (n, 3 * length)) if with_history else None
    q = query(values, valid, history, resolution=30)
    got = day_features(q, ref_mean, ref_std, window_hours=1.5, std_floor=0.05, level_floor=0.02)
    names = BASE_FEATURES + (HISTORY_FEATURES if with_history else ())
    assert got.shape == (n, len(names))
    for i in range(n):
        ref = reference_features(values[i].astype(np.float32).astype(np.float64), valid[i], 30, ref_mean, ref_std,
                                 None if history is None else history[i], 1.5, 0.05, 0.02)
        np.testing.assert_allclose(got[i], [ref[k] for k in names], rtol=1e-9, atol=1e-12,
                                   err_msg=f"row {i}")
    # a day with no valid step has all-zero features
    empty = day_features(query(values[:1], np.zeros((1, length), dtype=bool)), ref_mean, ref_std, 1.5, 0.05, 0.02)
    np.testing.assert_array_equal(empty, 0.0)
    with pytest.raises(ValueError, match="reference statistics"):
        day_features(q, ref_mean[:-1], ref_std[:-1], 1.5, 0.05, 0.02)


def test_a_scaled_segment_moves_the_level_ratio_features():
    x = np.full((2, 12), 0.0)
    x[1, 4:8] = 0.5  # level (x + 1) / 2 goes from 0.5 to 0.75 on 4 steps: log ratio log(1.5)
    got = day_features(query(x), np.zeros(12), np.full(12, 0.1), window_hours=4.0, std_floor=0.01,
                       level_floor=0.01)
    col = {name: got[:, i] for i, name in enumerate(BASE_FEATURES)}
    np.testing.assert_allclose(col["pop_window_log_ratio_max"], [0.0, np.log(1.5)])
    np.testing.assert_allclose(col["pop_z_window"], [0.0, 5.0])


# -- learning on a toy attack problem --------------------------------------------------------------------------
@pytest.mark.parametrize("name, floor", [("iforest", 0.7), ("ecod", 0.75), ("pyod-autoencoder", 0.9)])
def test_unsupervised_detectors_separate_attacked_days(name, floor, toy):
    model = get_model(name).build("test")
    model.fit(toy.train, CTX)
    scores = [auroc(toy.query_labels[i], model.anomaly_score(toy.query(i), CTX)) for i in range(len(toy.settings))]
    assert min(scores) > floor and np.mean(scores) > floor + 0.05, scores  # chance is 0.5


@pytest.mark.parametrize("history_days", [0, 7])
def test_feature_gbm_learns_from_the_labels(history_days, toy, toy_history):
    data = toy_history if history_days else toy
    for i, setting in enumerate(data.settings):
        model = fitted("feature-gbm-detector", data, setting=i)
        assert model.uses_history_ == bool(history_days)
        true_auc = auroc(data.query_labels[i], model.anomaly_score(data.query(i), CTX))
        assert true_auc > 0.95, (setting, true_auc)
        # the same classifier trained on shuffled labels has nothing to learn
        examples = data.fit_examples(i)
        shuffled = []
        for k in range(3):
            perm = np.random.default_rng(k).permutation(examples.labels)
            model.fit_detector(DetectionExamples(examples.query, perm), CTX)
            shuffled.append(auroc(data.query_labels[i], model.anomaly_score(data.query(i), CTX)))
        assert np.mean(shuffled) < true_auc - 0.25, (setting, true_auc, shuffled)


# -- determinism and save / load -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_seeds(name, toy, tmp_path):
    model = fitted(name, toy)
    q = toy.query(0)
    scores = model.anomaly_score(q, CTX)
    loaded = type(model).load(model.save(tmp_path / f"{name}.pt"))
    assert loaded.params == model.params
    np.testing.assert_array_equal(loaded.anomaly_score(q, CTX), scores)
    np.testing.assert_array_equal(fitted(name, toy).anomaly_score(q, CTX), scores)  # same seed, same scores
    if name in ("iforest", "pyod-autoencoder"):  # ECOD draws no random number, nor does LightGBM without bagging
        other = fitted(name, toy, ctx=RunContext(seed=1)).anomaly_score(q, CTX)
        assert not np.array_equal(other, scores)
    with pytest.raises(RuntimeError, match="fit"):  # an unfitted model comes back unfitted
        unfitted = type(model)(**get_model(name).config("test"))
        type(model).load(unfitted.save(tmp_path / "unfitted.pt")).anomaly_score(q, CTX)


def test_saved_state_is_data(toy):
    iforest = fitted("iforest", toy)
    assert set(iforest.get_state()) == {"train_", "random_state_"}
    np.testing.assert_array_equal(iforest.train_, toy.train.values)
    gbm = fitted("feature-gbm-detector", toy)
    state = gbm.get_state()
    assert isinstance(state["booster_text_"], str) and state["booster_text_"].startswith("tree")
    auto = fitted("pyod-autoencoder", toy)
    weights = auto.get_state()["network_"]
    assert all(isinstance(v, torch.Tensor) for v in next(iter(weights.values())).values())


# -- errors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, module", [("iforest", "pyod.models.iforest"), ("ecod", "pyod.models.ecod"),
                                          ("pyod-autoencoder", "pyod.models.auto_encoder"),
                                          ("feature-gbm-detector", "lightgbm")])
def test_a_missing_library_names_the_extra(name, module, toy, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import_module then raises ImportError
    model = get_model(name).build("test")
    with pytest.raises(MissingExtraError, match=r"meterbench\[baselines\]") as err:
        model.fit(toy.train, CTX)
        model.fit_detector(toy.fit_examples(0), CTX)
    assert name in str(err.value)


def test_bad_input_is_a_clear_error(toy, toy_history):
    q = toy.query(0)
    for model in (IForestDetector(), ECODDetector(), AutoEncoderDetector(), FeatureGBMDetector()):
        with pytest.raises(RuntimeError, match="call fit"):
            model.anomaly_score(q, CTX)
    gbm = FeatureGBMDetector(**get_model("feature-gbm-detector").config("test"))
    gbm.fit(toy.train, CTX)
    with pytest.raises(RuntimeError, match="fit_detector"):
        gbm.anomaly_score(q, CTX)
    examples = toy.fit_examples(0)
    with pytest.raises(ModelFitError, match="both attacked and clean"):
        gbm.fit_detector(DetectionExamples(examples.query, np.zeros(len(examples.labels), dtype=bool)), CTX)
    gbm.fit_detector(examples, CTX)
    with pytest.raises(ValueError, match="without history"):
        gbm.anomaly_score(toy_history.query(0), CTX)
    with pytest.raises(ValueError, match="steps"):
        gbm.anomaly_score(query(np.zeros((2, 7))), CTX)
    iforest = IForestDetector(n_estimators=5)
    iforest.fit(toy.train, CTX)
    with pytest.raises(ValueError, match="steps"):
        iforest.anomaly_score(query(np.zeros((2, 7))), CTX)
    with pytest.raises(ModelFitError, match="two training profiles"):
        iforest.fit(toy.train.subset(np.arange(1)), CTX)


@pytest.mark.parametrize("cls, params, match", [
    (IForestDetector, {"n_estimators": 0}, "n_estimators"),
    (IForestDetector, {"max_features": 1.5}, "max_features"),
    (AutoEncoderDetector, {"hidden": ()}, "hidden"),
    (AutoEncoderDetector, {"batch_size": 1}, "batch_norm"),
    (AutoEncoderDetector, {"dropout": 1.0}, "dropout"),
    (AutoEncoderDetector, {"lr": 0.0}, "lr"),
    (FeatureGBMDetector, {"num_leaves": 1}, "num_leaves"),
    (FeatureGBMDetector, {"window_hours": -1.0}, "window_hours"),
])
def test_parameters_are_checked(cls, params, match):
    with pytest.raises(ValueError, match=match):
        cls(**params)
