"""Anomaly detection: tell profiles altered by a false-data-injection attack from clean ones.

Protocol: the shared split and scaling (:func:`bench.tasks.common.split_and_scale`); one setting per attack
kind of :mod:`bench.tasks.attacks` (``"scaling"``, ``"ramping"``). For each setting:

* **training examples**: a seeded subset of at most ``max_train_examples`` training profiles, unscaled to kW,
  attacked (``attack_fraction`` of them, default half) and scaled back; split, stratified by label, into a
  *fit* part and a *calibration* part (``calibration_frac`` of each class);
* **test queries**: at most ``max_queries`` evaluation profiles (households unseen in training), attacked
  the same way with their own random stream.

The model is fitted once on the clean training profiles (``fit``, shared with every other task), then, per
setting, given the labelled fit part (``fit_detector``, when the model has it) and asked for anomaly scores
(higher = more anomalous) of the calibration part and of the test queries. The decision threshold is the one
that maximises accuracy on the calibration part (:func:`calibrate_threshold`); a test profile is flagged when
its score exceeds it. Metrics, against the test profiles' true labels (mean ± std over ``n_bootstrap``
paired subsets of ``bootstrap_frac`` of the test profiles, as in :mod:`bench.tasks.imputation`):

* ``Accuracy``, ``Precision``, ``Recall``, ``F1`` of the thresholded labels (higher is better);
* ``AUROC`` of the raw scores, threshold-free (higher is better, 0.5 = chance).

With the default ``attack_fraction = 0.5`` both classes are equally frequent in the calibration part and the
test queries, so accuracy weighs missed attacks and false alarms equally. The calibration profiles are
training profiles the model was fitted on: a model that scores its own training days lower than unseen days
gets a threshold that flags too much on the test households (AUROC is unaffected).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.errors import ModelFitError
from bench.tasks.attacks import ATTACK_KINDS, DEFAULT_PARAMS, inject
from bench.tasks.common import SPLIT_DEFAULTS, split_and_scale
from bench.tasks.imputation import failed_rows, paired_bootstrap
from bench.tasks.queries import DetectionExamples, DetectionQuery

NAME = "anomaly"
CAPABILITY = "detect"
METRICS = ("Accuracy", "Precision", "Recall", "F1", "AUROC")
DEFAULTS = {
    "attacks": list(ATTACK_KINDS),
    "attack_fraction": 0.5,
    **DEFAULT_PARAMS,
    "max_queries": 1000,
    "max_train_examples": 4000,
    "calibration_frac": 0.2,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    **SPLIT_DEFAULTS,
}
METRIC_DIRECTIONS: dict[str, str] = {}
"""All metrics of this task are in :data:`metrics.registry.ALL_METRICS`."""
UNRANKED_METRICS: dict[str, str] = {}

# rng streams of the task (offsets of ``[seed, stream, ...]``); 1 is the split caps, 3-5 other tasks' streams
_QUERY_STREAM = 6  # which evaluation profiles are queried
_EXAMPLE_STREAM = 7  # which training profiles become labelled examples
_CALIBRATION_STREAM = 8  # fit / calibration split of the examples, per setting
_ATTACK_STREAM = 9  # attacks, per setting: [seed, 9, kind index, 0 = examples | 1 = queries]


@dataclass
class TaskData:
    """Scaled training profiles, attacked examples and attacked test queries of every setting."""

    train: ProfileSet
    real: ProfileSet  # the queried evaluation profiles, clean
    scaler: MinMaxScaler
    split_rule: str
    settings: list[str]
    examples: ProfileSet  # the clean training profiles the examples are made of
    example_values: np.ndarray  # [n_settings, M, T] scaled, attacked
    example_labels: np.ndarray  # [n_settings, M] bool
    calibration: np.ndarray  # [n_settings, M] bool, True = calibration part, False = fit part
    query_values: np.ndarray  # [n_settings, N, T] scaled, attacked
    query_labels: np.ndarray  # [n_settings, N] bool

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"

    def _query(self, profiles: ProfileSet, values: np.ndarray) -> DetectionQuery:
        return DetectionQuery(values=values.copy(), valid=profiles.mask.copy(), meta=profiles.meta.copy(),
                              resolution=profiles.resolution)

    def query(self, index: int) -> DetectionQuery:
        """The test :class:`DetectionQuery` of setting ``index`` (labels withheld)."""
        return self._query(self.real, self.query_values[index])

    def fit_examples(self, index: int) -> DetectionExamples:
        """The labelled fit part of setting ``index``'s training examples."""
        rows = np.flatnonzero(~self.calibration[index])
        return DetectionExamples(self._query(self.examples.subset(rows), self.example_values[index, rows]),
                                 self.example_labels[index, rows].copy())

    def calibration_examples(self, index: int) -> DetectionExamples:
        """The labelled calibration part of setting ``index``'s training examples."""
        rows = np.flatnonzero(self.calibration[index])
        return DetectionExamples(self._query(self.examples.subset(rows), self.example_values[index, rows]),
                                 self.example_labels[index, rows].copy())


def attack_settings(cfg: dict) -> list[str]:
    """The attack kinds of ``cfg["attacks"]``, checked."""
    kinds = list(cfg["attacks"])
    for kind in kinds:
        if kind not in ATTACK_KINDS:
            raise ValueError(f"unknown attack {kind!r} in attacks; known: {', '.join(ATTACK_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"attacks lists a kind twice: {kinds}")
    return kinds


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair the task scores (``resolution`` is accepted for a uniform signature)."""
    return [(kind, metric) for kind in attack_settings(cfg) for metric in METRICS]


def attack_scaled(values: np.ndarray, valid: np.ndarray, scaler: MinMaxScaler, kind: str, cfg: dict,
                  resolution: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Attack scaled profiles in kW (:func:`bench.tasks.attacks.inject` with ``cfg``'s fraction and
    parameters) and return ``(scaled attacked values, labels)``; untouched steps keep their scaled values bit
    for bit (no round trip through kW), padding stays 0."""
    params = {key: cfg[key] for key in DEFAULT_PARAMS if key in cfg}
    kw = scaler.inverse(values)
    attacked, labels, _ = inject(kw, valid, kind, cfg["attack_fraction"], resolution, rng, **params)
    changed = attacked != kw
    out = np.where(changed, scaler.transform(attacked), values)
    return np.where(valid, out, 0.0).astype(np.float32), labels


def stratified_calibration(labels: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """``[M]`` bool: ``round(frac * n)`` examples of each class (halves up), drawn without replacement, marked
    True (calibration part); the rest form the fit part."""
    out = np.zeros(len(labels), dtype=bool)
    for cls in (False, True):
        members = np.flatnonzero(labels == cls)
        take = int(np.floor(frac * len(members) + 0.5))
        if take:
            out[rng.choice(members, size=take, replace=False)] = True
    return out


def _check_cfg(cfg: dict) -> None:
    for key in ("max_queries", "max_train_examples"):
        cap = cfg.get(key)
        if cap is not None and (isinstance(cap, bool) or int(cap) != cap or int(cap) < 1):
            raise ValueError(f"{key} must be a positive integer or None, got {cap!r}")
    if not 0.0 < float(cfg["calibration_frac"]) < 1.0:
        raise ValueError(f"calibration_frac must lie strictly between 0 and 1, got {cfg['calibration_frac']!r}")
    if not 0.0 < float(cfg["attack_fraction"]) < 1.0:
        raise ValueError(f"attack_fraction must lie strictly between 0 and 1 (both classes are needed), got "
                         f"{cfg['attack_fraction']!r}")


def _cap(profiles: ProfileSet, cap: int | None, rng: np.random.Generator) -> ProfileSet:
    if cap and len(profiles) > int(cap):
        return profiles.subset(np.sort(rng.choice(len(profiles), int(cap), replace=False)))
    return profiles


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale, pick the example and query profiles (seeded caps) and inject every setting's attacks
    (see the module docstring)."""
    kinds = attack_settings(cfg)
    _check_cfg(cfg)
    split = split_and_scale(profiles, cfg, seed)
    real = _cap(split.real, cfg.get("max_queries"), np.random.default_rng([seed, _QUERY_STREAM]))
    examples = _cap(split.train, cfg.get("max_train_examples"), np.random.default_rng([seed, _EXAMPLE_STREAM]))
    ex_values, ex_labels, calibration, q_values, q_labels = [], [], [], [], []
    for index, kind in enumerate(kinds):
        k = ATTACK_KINDS.index(kind)
        values, labels = attack_scaled(examples.values, examples.mask, split.scaler, kind, cfg,
                                       profiles.resolution, np.random.default_rng([seed, _ATTACK_STREAM, k, 0]))
        ex_values.append(values)
        ex_labels.append(labels)
        calibration.append(stratified_calibration(labels, float(cfg["calibration_frac"]),
                                                  np.random.default_rng([seed, _CALIBRATION_STREAM, k])))
        values, labels = attack_scaled(real.values, real.mask, split.scaler, kind, cfg, profiles.resolution,
                                       np.random.default_rng([seed, _ATTACK_STREAM, k, 1]))
        q_values.append(values)
        q_labels.append(labels)

    def stack(arrays: list[np.ndarray], shape: tuple, dtype) -> np.ndarray:
        return np.stack(arrays) if arrays else np.zeros((0, *shape), dtype=dtype)

    m, n, length = len(examples), len(real), real.length
    return TaskData(train=split.train, real=real, scaler=split.scaler, split_rule=split.split_rule,
                    settings=kinds, examples=examples,
                    example_values=stack(ex_values, (m, length), np.float32),
                    example_labels=stack(ex_labels, (m,), bool), calibration=stack(calibration, (m,), bool),
                    query_values=stack(q_values, (n, length), np.float32),
                    query_labels=stack(q_labels, (n,), bool))


def calibrate_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold ``t`` maximising the accuracy of ``score > t`` on labelled calibration scores.

    Accuracy only changes where ``t`` crosses a score, so the candidates are one per gap between adjacent
    distinct sorted scores, placed at the gap's midpoint, plus "flag everything" (just below the lowest
    score) and "flag nothing" (the highest score). Equal scores always get the same label. When several
    candidates reach the best accuracy, the lowest (the one flagging the most profiles) is taken.

    Raises:
        ValueError: shapes differ, no score, or a non-finite score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.ndim != 1 or labels.shape != scores.shape or scores.size == 0:
        raise ValueError(f"scores and labels must be non-empty 1-D arrays of one length, got {scores.shape} "
                         f"and {labels.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("calibration scores must be finite")
    distinct, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights=labels, minlength=len(distinct))
    neg = np.bincount(inverse, weights=~labels, minlength=len(distinct))
    # cut c (0..D) flags the distinct values with index >= c: correct = negatives below + positives from c on
    neg_below = np.concatenate([[0.0], np.cumsum(neg)])
    pos_from = np.concatenate([np.cumsum(pos[::-1])[::-1], [0.0]])
    best = int(np.argmax(neg_below + pos_from))  # the first maximum: the lowest threshold
    if best == 0:
        return float(np.nextafter(distinct[0], -np.inf))
    if best == len(distinct):
        return float(distinct[-1])
    low, high = distinct[best - 1], distinct[best]
    mid = low + 0.5 * (high - low)
    return float(mid if low <= mid < high else low)


def _check_scores(scores, n: int, what: str) -> tuple[np.ndarray | None, str]:
    """``(scores as float64 [n], "")`` or ``(None, reason)``."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (n,):
        return None, f"model returned anomaly scores of shape {arr.shape} for {what}, expected {(n,)}"
    if not np.isfinite(arr).all():
        return None, f"non-finite anomaly scores ({what})"
    return arr, ""


def run(model, data: TaskData, ctx: RunContext) -> dict:
    """Fit ``model`` on the training profiles, then per setting fit the detector (if the model has
    ``fit_detector``), calibrate the threshold and score the test queries.

    ``scores`` is ``[n_settings, N]`` float64 and ``thresholds`` ``[n_settings]``. A :class:`ModelFitError`,
    scores of the wrong shape or non-finite scores give a ``failed`` outcome with the reason.
    """
    outcome = {"status": "ok", "note": "", "scores": None, "thresholds": None}
    scores, thresholds = [], []
    try:
        start = time.perf_counter()
        model.fit(data.train, ctx)
        outcome["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        for index, setting in enumerate(data.settings):
            if hasattr(model, "fit_detector"):
                model.fit_detector(data.fit_examples(index), ctx)
            calibration = data.calibration_examples(index)
            cal, note = _check_scores(model.anomaly_score(calibration.query, ctx), len(calibration.labels),
                                      f"{setting} calibration")
            if cal is None:
                outcome.update(status="failed", note=note)
                return outcome
            test, note = _check_scores(model.anomaly_score(data.query(index), ctx), len(data.real), setting)
            if test is None:
                outcome.update(status="failed", note=note)
                return outcome
            thresholds.append(calibrate_threshold(cal, calibration.labels))
            scores.append(test)
        outcome["sample_seconds"] = time.perf_counter() - start
    except ModelFitError as err:
        outcome.update(status="failed", note=str(err))
        return outcome
    outcome["scores"] = np.stack(scores) if scores else np.zeros((0, len(data.real)))
    outcome["thresholds"] = np.array(thresholds, dtype=np.float64)
    return outcome


def _metric(name: str, labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray):
    """``rows -> value`` of metric ``name`` on the test profiles ``rows``."""
    import metrics

    if name == "AUROC":
        return lambda r: metrics.auroc(labels[r], scores[r])
    fn = {"Accuracy": metrics.accuracy, "Precision": metrics.precision, "Recall": metrics.recall,
          "F1": metrics.f1}.get(name)
    if fn is None:
        raise ValueError(f"unknown anomaly metric {name!r}; known: {', '.join(METRICS)}")
    return lambda r: fn(labels[r], predicted[r])


def score(outcome: dict, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Per setting and metric, the paired-bootstrap mean ± std over the test profiles."""
    pairs = [(s, m) for s in data.settings for m in METRICS]
    if outcome["status"] != "ok":
        return failed_rows(pairs, outcome["status"], outcome["note"])
    rows = []
    for index, setting in enumerate(data.settings):
        labels = data.query_labels[index]
        scores = outcome["scores"][index]
        predicted = scores > outcome["thresholds"][index]
        for metric in METRICS:
            try:
                mean, std = paired_bootstrap(_metric(metric, labels, scores, predicted), len(labels),
                                             cfg["n_bootstrap"], cfg["bootstrap_frac"], seed)
            except ValueError as err:
                if metric != "AUROC":  # AUROC alone is undefined on a subset holding one class
                    raise
                rows += failed_rows([(setting, metric)], "failed", str(err))
                continue
            rows.append({"setting": setting, "metric": metric, "value": mean, "std": std, "status": "ok",
                         "note": ""})
    return rows
