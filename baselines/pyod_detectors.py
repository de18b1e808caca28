"""Library-backed anomaly detectors (capability ``detect``): three PyOD unsupervised detectors and a gradient-
boosted classifier on statistical features of each day (LightGBM).

* ``iforest``, ``ecod``, ``pyod-autoencoder``: PyOD's ``IForest``, ``ECOD`` and ``AutoEncoder`` fitted in ``fit``
  on the clean training profiles; a profile's feature vector is the day itself (its scaled values, non-valid
  steps 0, as in the training matrix). The score is the fitted detector's ``decision_function`` (higher = more
  anomalous). They ignore the labelled examples and ``query.history``: the training profiles they are fitted
  on carry no history, so a history feature would have nothing to be fitted against.
* ``feature-gbm-detector``: statistical features of each day (:func:`day_features`) and a LightGBM binary
  classifier trained in ``fit_detector`` on the task's labelled attacked / clean training examples; the score
  is the classifier's raw log-odds of "attacked".

Saved state is data only (:mod:`bench.persist`): ``iforest`` and ``ecod`` keep their training matrix and the
seed and refit in ``set_state`` (see each class), ``pyod-autoencoder`` keeps its network's weights and the
standardisation statistics, ``feature-gbm-detector`` keeps the booster's text model (LightGBM's
``model_to_string``) and the population statistics its features use.

The libraries are imported inside the methods (:func:`bench.extras.require`), so the registry loads without
them and a missing one is a :class:`bench.extras.MissingExtraError` naming ``meterbench[baselines]``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from baselines.detectors import largest_window_mean, query_matrix, window_means, window_steps
from baselines.nn.blocks import check_positive_int
from bench.api import Detector, Model, Params
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.errors import ModelFitError
from bench.extras import require
from bench.registry import register_model
from bench.seeds import Stream
from bench.tasks.queries import DetectionExamples, DetectionQuery


# -- inputs ----------------------------------------------------------------------------------------------------
def training_matrix(train: ProfileSet, model: str) -> np.ndarray:
    """``[N, T]`` float32 training profiles with non-valid steps 0, after checking the set is usable.

    Raises:
        ModelFitError: fewer than two profiles, no step, or non-finite values on valid steps.
    """
    values = np.asarray(train.values, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] == 0:
        raise ModelFitError(f"{model}: need at least two training profiles, got shape {values.shape}")
    mask = np.asarray(train.mask, dtype=bool)
    if not np.isfinite(values[mask]).all():
        raise ModelFitError(f"{model}: training set {train.name!r} holds non-finite values")
    return np.where(mask, values, np.float32(0.0))


def _check_scores(scores: Any, n: int, model: str) -> np.ndarray:
    """``scores`` as float64 ``[n]``; a library returning another shape or a non-finite score is an error."""
    out = np.asarray(scores, dtype=np.float64).reshape(-1)
    if out.shape != (n,):
        raise RuntimeError(f"{model}: the library returned {out.shape[0]} scores for {n} profiles")
    if not np.isfinite(out).all():
        raise ModelFitError(f"{model}: the fitted detector gives non-finite anomaly scores")
    return out


SCORE_BATCH = 1024
"""Profiles per forward pass when ``pyod-autoencoder`` scores."""


# -- PyOD detectors --------------------------------------------------------------------------------------------
class _RefitPyOD(Model, Detector):
    """Common part of the PyOD detectors whose fitted state is a library object: the training matrix and the
    seed are the saved state, and :meth:`set_state` refits the library detector on them (PyOD's ``IForest``
    holds scikit-learn trees, which have no data format; refitting with the same ``random_state`` on the same
    matrix rebuilds the same detector)."""

    name: ClassVar[str] = ""
    _STATE: ClassVar[tuple[str, ...]] = ("train_", "random_state_")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.train_: np.ndarray | None = None  # [N, T] float32, non-valid steps 0
        self.random_state_: int | None = None
        self._detector: Any = None

    @abstractmethod
    def build_detector(self, n_rows: int) -> Any:
        """A fresh, unfitted PyOD detector with this model's parameters for ``n_rows`` training rows."""

    def _fit_library(self) -> None:
        detector = self.build_detector(len(self.train_))
        # the matrix is kept in float32 (as the profiles are); the float64 copy handed to PyOD is the same
        # on every call, so a refit in set_state sees bit-identical input
        detector.fit(self.train_.astype(np.float64))
        _check_scores(detector.decision_scores_, len(self.train_), self.name)
        self._detector = detector

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Fit the PyOD detector on the clean training profiles (non-valid steps 0), seeded from
        ``Stream.MODEL_FIT``."""
        self.train_ = training_matrix(train, self.name)
        self.random_state_ = ctx.int_seed(Stream.MODEL_FIT, bits=31)
        self._fit_library()

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float64: the fitted detector's ``decision_function`` of the query profiles (non-valid steps
        0), higher = more anomalous."""
        values = query_matrix(query, None if self.train_ is None else self.train_.shape[1], self.name)
        return _check_scores(self._detector.decision_function(values), len(values), self.name)

    def get_state(self) -> dict:
        """The training matrix and the seed (the library object is rebuilt from them by :meth:`set_state`)."""
        from bench.persist import to_safe

        return {k: to_safe(getattr(self, k), f"{type(self).__name__}.{k}") for k in self._STATE}

    def set_state(self, state: dict) -> None:
        """Restore the training matrix and the seed, then refit the library detector on them (deterministic:
        same matrix, same ``random_state``)."""
        super().set_state(state)
        if self.train_ is not None:
            self._fit_library()


@dataclass(frozen=True)
class IForestParams(Params):
    """Hyper-parameters of :class:`IForestDetector` (PyOD's ``IForest``, i.e. scikit-learn's isolation forest).

    Attributes:
        n_estimators: number of isolation trees.
        max_samples: training profiles drawn for each tree (at most the number of training profiles).
        max_features: fraction of the steps drawn for each tree, in (0, 1].
    """

    n_estimators: int = 100
    max_samples: int = 256
    max_features: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("n_estimators", self.n_estimators)
        check_positive_int("max_samples", self.max_samples)
        if not (math.isfinite(self.max_features) and 0.0 < self.max_features <= 1.0):
            raise ValueError(f"max_features must lie in (0, 1], got {self.max_features!r}")


@register_model("iforest")
class IForestDetector(_RefitPyOD):
    """Isolation forest (PyOD IForest) on the day's profile: the unified paper's B3 role (unsupervised).

    An unsupervised anomaly-detection framework fitted on the clean training profiles.
    The defaults are PyOD's (scikit-learn's) and the paper profile keeps them: the paper gives no setting for
    its unsupervised baseline. Saved as its training matrix and seed and refitted on load (scikit-learn trees
    have no data format)."""

    Params = IForestParams
    profiles = {"test": {"n_estimators": 25, "max_samples": 64}, "paper": {}}
    name = "iforest"

    def build_detector(self, n_rows: int) -> Any:
        """PyOD ``IForest`` with ``max_samples = min(max_samples, n_rows)`` (scikit-learn would clip it with a
        warning), on one job."""
        iforest = require("pyod.models.iforest", model=self.name)
        return iforest.IForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, n_rows),
                               max_features=self.max_features, n_jobs=1, random_state=self.random_state_)


@dataclass(frozen=True)
class ECODParams(Params):
    """:class:`ECODDetector` has no hyper-parameter: ECOD is parameter-free (its ``contamination`` only sets a
    label threshold, which the task replaces with its calibrated one)."""


@register_model("ecod")
class ECODDetector(_RefitPyOD):
    """Empirical-CDF outliers (PyOD ECOD) of the day's profile: the unified paper's B3 role (unsupervised).

    An unsupervised, parameter-free anomaly-detection framework fitted on the clean training profiles.
    ECOD's fitted state is its training matrix: ``decision_function`` builds each step's empirical CDF over
    the training profiles *together with the scored batch* (PyOD's definition), so a profile's score depends
    slightly on the other profiles scored with it. Saved as the training matrix; the refit in ``set_state``
    is exact (ECOD draws no random number)."""

    Params = ECODParams
    profiles = {"test": {}, "paper": {}}
    name = "ecod"

    def build_detector(self, n_rows: int) -> Any:
        """PyOD ``ECOD`` on its single-process path (``n_jobs = 1``)."""
        ecod = require("pyod.models.ecod", model=self.name)
        return ecod.ECOD(n_jobs=1)


@dataclass(frozen=True)
class AutoEncoderParams(Params):
    """Hyper-parameters of :class:`AutoEncoderDetector` (PyOD's ``AutoEncoder``).

    Attributes:
        hidden: widths of the encoder's layers (the decoder mirrors them); the last is the bottleneck.
        epochs: passes over the training profiles.
        batch_size: profiles per minibatch (at most the number of training profiles).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        dropout: dropout after each hidden layer.
        batch_norm: batch normalisation in each hidden layer.
    """

    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-5
    dropout: float = 0.2
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if not self.hidden:
            raise ValueError("hidden must list at least one layer width")
        for width in self.hidden:
            check_positive_int("hidden widths", width)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        if self.batch_norm and self.batch_size < 2:
            raise ValueError(f"batch_norm needs batch_size >= 2, got {self.batch_size}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a {'positive' if name == 'lr' else 'non-negative'} number, "
                                 f"got {value!r}")
        if not (math.isfinite(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")


@register_model("pyod-autoencoder")
class AutoEncoderDetector(Model, Detector):
    """Autoencoder reconstruction error (PyOD AutoEncoder) of the day: the unified paper's B3 role (unsupervised).

    PyOD standardises each step with the training mean and std, trains the network to reconstruct the
    profiles (MSE, Adam) and scores a profile by the Euclidean norm of its standardised reconstruction error.
    Randomness: PyOD seeds the global ``random`` / NumPy / torch generators with ``random_state`` (drawn from
    ``Stream.MODEL_FIT``) when the detector is built, right before it is fitted, so initialisation, batch order
    and dropout repeat under one seed. The defaults are PyOD's (the paper profile keeps them: the paper gives
    no setting). Saved as the network's weights plus the standardisation statistics; ``set_state`` rebuilds
    the same network on the CPU and loads them (no refit)."""

    Params = AutoEncoderParams
    profiles = {"test": {"hidden": (16, 4), "epochs": 15, "batch_size": 16, "dropout": 0.0}, "paper": {}}
    name: ClassVar[str] = "pyod-autoencoder"
    _STATE: ClassVar[tuple[str, ...]] = ("random_state_", "feature_size_", "x_mean_", "x_std_", "network_")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.random_state_: int | None = None
        self.feature_size_: int | None = None
        self.x_mean_: np.ndarray | None = None
        self.x_std_: np.ndarray | None = None
        self.network_: Any = None  # the detector's torch module (PyOD's ``AutoEncoderModel``)
        self._detector: Any = None

    def build_detector(self, batch_size: int, device: Any) -> Any:
        """A fresh, unfitted PyOD ``AutoEncoder`` with this model's parameters (silent, not compiled)."""
        auto_encoder = require("pyod.models.auto_encoder", model=self.name)
        return auto_encoder.AutoEncoder(
            hidden_neuron_list=list(self.hidden), epoch_num=self.epochs, batch_size=batch_size, lr=self.lr,
            optimizer_params={"weight_decay": self.weight_decay}, dropout_rate=self.dropout,
            batch_norm=self.batch_norm, preprocessing=True, device=device, random_state=self.random_state_,
            use_compile=False, verbose=0)

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Train PyOD's autoencoder on the clean training profiles (non-valid steps 0) on ``ctx.device``.

        The batch is ``min(batch_size, N)``: PyOD drops an incomplete last batch, so a larger batch than
        profiles would train nothing.
        """
        from bench.train import resolve_device

        values = training_matrix(train, self.name).astype(np.float64)
        self.random_state_ = ctx.int_seed(Stream.MODEL_FIT, bits=31)
        detector = self.build_detector(min(self.batch_size, len(values)), resolve_device(ctx.device))
        try:
            detector.fit(values)
        except (RuntimeError, ValueError) as err:
            raise ModelFitError(f"{self.name}: PyOD AutoEncoder failed to fit ({err})") from err
        _check_scores(detector.decision_scores_, len(values), self.name)
        self._attach(detector)

    def _attach(self, detector: Any) -> None:
        """Keep ``detector`` and mirror its fitted state in this model's (saved) attributes."""
        self._detector = detector
        self.feature_size_ = int(detector.feature_size)
        self.x_mean_ = np.asarray(detector.X_mean, dtype=np.float64)
        self.x_std_ = np.asarray(detector.X_std, dtype=np.float64)
        self.network_ = detector.model

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float64: PyOD's ``decision_function`` (norm of the standardised reconstruction error)."""
        values = query_matrix(query, self.feature_size_, self.name)
        # a fixed scoring batch: the fitted and the loaded model then run the very same matrix products
        scores = self._detector.decision_function(values, batch_size=SCORE_BATCH)
        return _check_scores(scores, len(values), self.name)

    def get_state(self) -> dict:
        """Seed, input size, standardisation statistics and the network's state dict."""
        from bench.persist import to_safe

        return {k: to_safe(getattr(self, k), f"{type(self).__name__}.{k}") for k in self._STATE}

    def set_state(self, state: dict) -> None:
        """Rebuild PyOD's network for the saved input size on the CPU, load the weights into it and restore
        the standardisation statistics (an unfitted model stays unfitted)."""
        import torch

        if state.get("feature_size_") is not None:
            self.random_state_ = state.get("random_state_")
            detector = self.build_detector(self.batch_size, torch.device("cpu"))
            detector.feature_size = int(state["feature_size_"])
            detector.build_model()  # PyOD builds its network for ``feature_size`` here
            self.network_ = detector.model
            super().set_state(state)  # loads the saved weights into self.network_
            detector.model = self.network_.to(torch.device("cpu"))
            detector.X_mean, detector.X_std = self.x_mean_, self.x_std_
            self._attach(detector)
        else:
            super().set_state(state)


# -- statistical features + gradient boosting ------------------------------------------------------------------
BASE_FEATURES = ("mean", "std", "min", "max", "q10", "q25", "q50", "q75", "q90",
                 "max_rise", "max_drop", "mean_abs_step", "window_max", "window_min", "ramp_max", "ramp_min",
                 "pop_z_mean", "pop_z_window", "pop_log_level_ratio", "pop_window_log_ratio_max",
                 "pop_window_log_ratio_min")
"""Feature names of :func:`day_features` for every query (see its docstring)."""
HISTORY_FEATURES = ("hist_z_mean", "hist_z_window", "hist_log_level_ratio", "hist_window_log_ratio_max",
                    "hist_window_log_ratio_min", "hist_log_std_ratio")
"""Feature names :func:`day_features` appends for a query with history."""


def _masked_extreme(values: np.ndarray, has: np.ndarray, largest: bool) -> np.ndarray:
    """Row-wise max (or min) of ``values`` over ``has``; 0 for a row where ``has`` is all False."""
    fill = -np.inf if largest else np.inf
    picked = np.where(has, values, fill)
    out = picked.max(axis=1, initial=-np.inf) if largest else picked.min(axis=1, initial=np.inf)
    return np.where(has.any(axis=1), out, 0.0)


def _masked_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.where(valid, values, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def day_features(query: DetectionQuery, ref_mean: np.ndarray, ref_std: np.ndarray, window_hours: float,
                 std_floor: float, level_floor: float) -> np.ndarray:
    """``[N, F]`` float64 statistical features of each queried day (:data:`BASE_FEATURES`, then
    :data:`HISTORY_FEATURES` when the query carries a history), computed on its valid steps.

    ``x`` is the scaled day, ``u = (x + 1) / 2`` its *level*: proportional to the load in kW whenever the task's
    scaler has lower bound 0 (non-negative training loads), so ratios of levels are ratios of loads, which a
    multiplicative attack changes. Windows are ``window_hours`` long (:func:`window_steps`).

    * ``mean``, ``std``, ``min``, ``max``, quantiles ``q10`` .. ``q90`` of ``x``;
    * steps ``d = x[t + 1] - x[t]`` between consecutive valid steps: ``max_rise`` (largest ``d``), ``max_drop``
      (smallest), ``mean_abs_step``; ``ramp_max`` / ``ramp_min``: the largest / smallest window mean of ``d``
      (a sustained ramp);
    * ``window_max`` / ``window_min``: the largest / smallest window mean of ``x``;
    * against the training population (``ref_mean`` / ``ref_std`` per step, the std floored at ``std_floor``):
      ``z = (x - ref_mean) / ref_std``: ``pop_z_mean`` (mean ``z``), ``pop_z_window`` (largest ``|window mean of
      z|``); ``pop_log_level_ratio = log(mean u / mean u_ref)`` and the largest / smallest window mean of
      ``log(u / u_ref)`` per step (levels floored at ``level_floor``);
    * with history (per time-of-day mean and std of the ``D`` history days, std floored): ``hist_z_mean``,
      ``hist_z_window``, ``hist_log_level_ratio``, ``hist_window_log_ratio_max`` / ``_min`` as above against
      the household's own days, and ``hist_log_std_ratio = log((std of the day + floor) / (mean std of the
      history days + floor))``.

    A day with no valid step gets 0 for every feature.

    Raises:
        ValueError: the reference statistics do not match the profile length.
    """
    values = np.asarray(query.values, dtype=np.float64)
    valid = np.asarray(query.valid, dtype=bool)
    n, length = values.shape
    if np.shape(ref_mean) != (length,) or np.shape(ref_std) != (length,):
        raise ValueError(f"reference statistics of shape {np.shape(ref_mean)} for profiles of {length} steps")
    x = np.where(valid, values, 0.0)
    count = valid.sum(axis=1)
    width = window_steps(window_hours, query.resolution)

    mean = _masked_mean(x, valid)
    std = np.sqrt(_masked_mean((x - mean[:, None]) ** 2, valid))
    # non-valid steps are NaN so that nanquantile skips them; a day with no valid step is all 0 instead (its
    # features are 0 anyway), which keeps nanquantile from warning about an all-NaN row
    nan_x = np.where(valid, x, np.nan)
    quantiles = np.nanquantile(np.where(count[:, None] > 0, nan_x, 0.0), [0.1, 0.25, 0.5, 0.75, 0.9], axis=1)
    step_valid = valid[:, 1:] & valid[:, :-1]
    steps = np.where(step_valid, x[:, 1:] - x[:, :-1], 0.0)
    window_x, has_x = window_means(x, valid, width)
    if length > 1:
        window_d, has_d = window_means(steps, step_valid, width)
    else:  # a one-step profile has no step to difference
        window_d, has_d = np.zeros((n, 1)), np.zeros((n, 1), dtype=bool)

    level = np.maximum((x + 1.0) / 2.0, level_floor)
    ref_std = np.maximum(np.asarray(ref_std, dtype=np.float64), std_floor)
    ref_level = np.maximum((np.asarray(ref_mean, dtype=np.float64) + 1.0) / 2.0, level_floor)

    def against(ref_x: np.ndarray, ref_s: np.ndarray, ref_u: np.ndarray) -> list[np.ndarray]:
        """Mean z, largest |window mean z|, log level ratio and the extreme window log ratios against a
        reference (broadcastable to ``[N, T]``)."""
        z = (x - ref_x) / ref_s
        log_ratio = np.log(level) - np.log(ref_u)
        ratio_windows, has = window_means(log_ratio, valid, width)
        # the floor only matters for a day with no valid step (mean 0), whose features are zeroed below
        ref_u_mean = np.maximum(_masked_mean(np.broadcast_to(ref_u, x.shape), valid), level_floor)
        return [_masked_mean(z, valid), largest_window_mean(z, valid, width),
                np.log(np.maximum(_masked_mean(level, valid), level_floor)) - np.log(ref_u_mean),
                _masked_extreme(ratio_windows, has, True), _masked_extreme(ratio_windows, has, False)]

    columns = [mean, std, _masked_extreme(x, valid, False), _masked_extreme(x, valid, True), *quantiles,
               _masked_extreme(steps, step_valid, True), _masked_extreme(steps, step_valid, False),
               _masked_mean(np.abs(steps), step_valid),
               _masked_extreme(window_x, has_x, True), _masked_extreme(window_x, has_x, False),
               _masked_extreme(window_d, has_d, True), _masked_extreme(window_d, has_d, False),
               *against(np.asarray(ref_mean, dtype=np.float64), ref_std, ref_level)]
    if query.history is not None:
        history = np.asarray(query.history, dtype=np.float64).reshape(n, query.history_days, length)
        hist_mean = history.mean(axis=1)
        hist_std = np.maximum(history.std(axis=1), std_floor)
        hist_level = np.maximum((hist_mean + 1.0) / 2.0, level_floor)
        day_std_of_history = history.std(axis=2).mean(axis=1)
        columns += [*against(hist_mean, hist_std, hist_level),
                    np.log(std + std_floor) - np.log(day_std_of_history + std_floor)]
    out = np.stack(columns, axis=1)
    return np.where(count[:, None] > 0, out, 0.0)


@dataclass(frozen=True)
class FeatureGBMParams(Params):
    """Hyper-parameters of :class:`FeatureGBMDetector`.

    Attributes:
        n_estimators: boosting rounds.
        learning_rate: shrinkage of each tree.
        num_leaves: leaves per tree.
        min_child_samples: fewest training examples in a leaf.
        window_hours: length of the sliding windows of the window features.
        std_floor: lower bound of reference standard deviations, in scaled units.
        level_floor: lower bound of the levels ``(x + 1) / 2`` inside logarithms.
    """

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 20
    window_hours: float = 3.0
    std_floor: float = 0.01
    level_floor: float = 0.01

    def __post_init__(self) -> None:
        for name in ("n_estimators", "min_child_samples"):
            check_positive_int(name, getattr(self, name))
        if check_positive_int("num_leaves", self.num_leaves) < 2:
            raise ValueError(f"num_leaves must be at least 2, got {self.num_leaves}")
        for name in ("learning_rate", "window_hours", "std_floor", "level_floor"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")


@register_model("feature-gbm-detector")
class FeatureGBMDetector(Model, Detector):
    """LightGBM on statistical features of each day, trained on labelled attacks: the unified paper's B1 role.

    The B1 role is statistical features + machine learning (the paper's ref. [38]); the classifier learns from
    the labelled attacked / clean training examples.

    ``fit`` keeps the per-step mean and std of the clean training profiles (the population reference of
    :func:`day_features`); ``fit_detector`` computes the examples' features and trains a LightGBM binary
    classifier (seeded from ``Stream.MODEL_FIT``, one thread, LightGBM's deterministic mode); the score is its
    raw log-odds of "attacked". Features against the household's history are added when the examples carry
    one, and queries must then carry one too. Saved as the booster's text model (``model_to_string``) and the
    population statistics; scores always come from a booster read back from that text, so a loaded model
    scores exactly as the fitted one."""

    Params = FeatureGBMParams
    profiles = {"test": {"n_estimators": 60, "num_leaves": 7, "min_child_samples": 5}, "paper": {}}
    name: ClassVar[str] = "feature-gbm-detector"
    _STATE: ClassVar[tuple[str, ...]] = ("mean_", "std_", "booster_text_", "uses_history_")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.booster_text_: str | None = None
        self.uses_history_: bool | None = None
        self._booster: Any = None

    def fit(self, train: ProfileSet, ctx: RunContext) -> None:
        """Per-step mean and population std of the clean training profiles over their valid steps."""
        values = training_matrix(train, self.name).astype(np.float64)
        mask = np.asarray(train.mask, dtype=bool)
        counts = np.maximum(mask.sum(axis=0), 1)
        self.mean_ = values.sum(axis=0) / counts
        self.std_ = np.sqrt((np.where(mask, values - self.mean_, 0.0) ** 2).sum(axis=0) / counts)
        self.booster_text_, self.uses_history_, self._booster = None, None, None

    def features(self, query: DetectionQuery) -> np.ndarray:
        """``[N, F]`` :func:`day_features` of ``query`` against the fitted population statistics."""
        query_matrix(query, None if self.mean_ is None else len(self.mean_), self.name)
        return day_features(query, self.mean_, self.std_, self.window_hours, self.std_floor, self.level_floor)

    def classifier(self, random_state: int) -> Any:
        """The unfitted ``lightgbm.LGBMClassifier`` this model trains (one thread, deterministic, silent)."""
        lightgbm = require("lightgbm", model=self.name)
        return lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, random_state=random_state, n_jobs=1, deterministic=True,
            force_row_wise=True, verbose=-1)

    def fit_detector(self, examples: DetectionExamples, ctx: RunContext) -> None:
        """Train the classifier on the examples' features and labels (True = attacked), replacing any earlier
        one.

        Raises:
            RuntimeError: ``fit`` was not called.
            ModelFitError: the examples hold only one class, or LightGBM fails.
        """
        features = self.features(examples.query)
        labels = np.asarray(examples.labels, dtype=bool)
        if labels.all() or not labels.any():
            raise ModelFitError(f"{self.name}: the labelled examples must hold both attacked and clean profiles, "
                                f"got {int(labels.sum())} attacked of {len(labels)}")
        model = self.classifier(ctx.int_seed(Stream.MODEL_FIT, bits=31))
        try:
            model.fit(features, labels.astype(np.int64))
        except Exception as err:  # LightGBM reports its failures as LightGBMError / ValueError
            raise ModelFitError(f"{self.name}: LightGBM failed to fit ({err})") from err
        self.booster_text_ = model.booster_.model_to_string()
        self.uses_history_ = examples.query.history is not None
        self._load_booster()

    def _load_booster(self) -> None:
        lightgbm = require("lightgbm", model=self.name)
        self._booster = lightgbm.Booster(model_str=self.booster_text_)

    def anomaly_score(self, query: DetectionQuery, ctx: RunContext) -> np.ndarray:
        """``[N]`` float64 raw log-odds of "attacked" from the booster.

        Raises:
            RuntimeError: ``fit`` or ``fit_detector`` was not called.
            ValueError: the query has history and the examples had none, or the other way round.
        """
        query_matrix(query, None if self.mean_ is None else len(self.mean_), self.name)
        if self._booster is None:
            raise RuntimeError(f"{self.name}: call fit_detector() before anomaly_score()")
        if (query.history is not None) != self.uses_history_:
            had = "with" if self.uses_history_ else "without"
            raise ValueError(f"{self.name}: the classifier was trained on examples {had} history; the query must "
                             f"be {had} history too")
        features = self.features(query)
        scores = self._booster.predict(features, raw_score=True, num_threads=1)
        return _check_scores(scores, len(features), self.name)

    def get_state(self) -> dict:
        """Population statistics, the booster's text model and whether its features include history."""
        from bench.persist import to_safe

        return {k: to_safe(getattr(self, k), f"{type(self).__name__}.{k}") for k in self._STATE}

    def set_state(self, state: dict) -> None:
        """Restore the statistics and read the booster back from its text model."""
        super().set_state(state)
        self._booster = None
        if self.booster_text_ is not None:
            self._load_booster()
