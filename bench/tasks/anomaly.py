"""Anomaly detection: tell profiles altered by a false-data-injection attack from clean ones.

Protocol: the shared split and scaling (:func:`bench.tasks.common.split_and_scale`, with no random cap on the
training or evaluation profiles by default: histories need consecutive days); one setting per attack kind of
:mod:`bench.tasks.attacks` (``"scaling"``, ``"ramping"``).

**History.** With ``history_days = D > 0`` (default 7) the task only uses profiles that are the last day of a
run of ``D + 1`` consecutive complete days of one household (:func:`bench.tasks.windows.consecutive_days` on
the full profile set, so a day's history is found wherever the split put the preceding days; with a split by
household that is always the same side, with a split by day a held-out day's history may hold training
days; a ``max_train`` / ``max_eval`` cap thins the candidate days but not their histories). Every
:class:`~bench.tasks.queries.DetectionQuery` then carries ``history [N, D * T]``: the ``D`` preceding days,
oldest first, scaled and clean (attacks only ever touch the profile itself). Households differ far more
than an attack changes a day, so a day is best judged against the same household's own recent days.
``history_days = 0`` uses every profile and no history.

**Profiles.** Three disjoint groups, all restricted to profiles with history as above:

* **training examples**: at most ``max_train_examples`` training profiles (a seeded subset), all handed to
  ``fit_detector`` with their labels;
* **calibration profiles**: held-out households: the households of the evaluation profiles are shuffled
  (seeded) and the first half of them (``n // 2``) give the calibration profiles, at most
  ``max_calibration``; when the evaluation profiles come from fewer than 2 households (the split "by day"
  of :mod:`bench.data.split` on one-household data), and under the unified paper's ``"pretrain"`` split
  (whose validation and test parts are random parts of the pooled profiles), the evaluation *profiles* are
  split in random halves instead (:func:`holdout_rule`);
* **test queries**: the other half of the evaluation households (never seen in training or calibration), at
  most ``max_queries`` profiles.

Each group is attacked on its own random sub-stream (``attack_fraction`` of the eligible profiles, default half;
:func:`attack_scaled`), in kW, and scaled back.

The model is fitted once (``fit``, shared with every other task) on the clean training profiles, or on the
pre-training set for pre-training models under the ``"pretrain"`` rule (:func:`bench.tasks.common.fitting_set`),
then, per setting, given the labelled training examples (``fit_detector``, a no-op unless the model overrides it)
and asked for
anomaly scores (higher = more anomalous) of the calibration profiles and of the test queries. The decision
threshold is the one that maximises accuracy on the calibration profiles (:func:`calibrate_threshold`): households
the model has not seen, like the test households, so a model that scores its own training days lower than unseen
days does not get a threshold that flags too much. A test profile is flagged when its score exceeds the threshold.
Metrics, against the test profiles' true labels (mean ± std over ``n_bootstrap`` paired subsets of
``bootstrap_frac`` of the test profiles, as in :mod:`bench.tasks.imputation`):

* ``Accuracy``, ``Precision``, ``Recall``, ``F1`` of the thresholded labels (higher is better);
* ``AUROC`` of the raw scores, threshold-free (higher is better, 0.5 = chance).

With the default ``attack_fraction = 0.5`` both classes are equally frequent in the calibration profiles and
the test queries, so accuracy weighs missed attacks and false alarms equally.

Random streams (:mod:`bench.seeds`, each used here only): ``ANOMALY_QUERIES`` the test-query cap,
``ANOMALY_EXAMPLES`` the training-example cap, ``ANOMALY_HOLDOUT`` the calibration / test split of the evaluation
households, ``ANOMALY_CALIBRATION`` the calibration cap, and ``ANOMALY_ATTACKS`` the attacks, sub-stream
``[kind index, group]`` with group 0 = training examples, 1 = test queries, 2 = calibration.

The outcome has no ``samples`` (cached samples are profiles in the scaled space); its ``extra`` holds the test
queries' anomaly scores ``scores [n_settings, N]`` (float64) and the calibrated ``thresholds [n_settings]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import seeds
from bench.api import Model, Outcome, Task
from bench.context import RunContext
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.errors import ModelFitError
from bench.seeds import Stream
from bench.tasks import register_task
from bench.tasks.attacks import ATTACK_KINDS, DEFAULT_PARAMS, PROVENANCE, inject
from bench.tasks.common import (SPLIT_DEFAULTS, bootstrap_row, checked_names, failed_rows, fitting_set,
                                split_and_scale)
from bench.tasks.queries import DetectionExamples, DetectionQuery
from bench.tasks.windows import HistoryIndex

METRIC_NAMES = ("Accuracy", "Precision", "Recall", "F1", "AUROC")
"""The task's metrics (all in :data:`metrics.registry.METRICS`), in table order."""
DEFAULTS = {
    "attacks": list(ATTACK_KINDS),
    "attack_fraction": 0.5,
    **DEFAULT_PARAMS,
    "history_days": 7,
    "max_queries": 1000,
    "max_calibration": 1000,
    "max_train_examples": 4000,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    **SPLIT_DEFAULTS,
    "max_eval": None,  # histories need consecutive days: no random subset of profiles
    "max_train": None,
}
PAPER_LAYOUT = {"caption": "Anomaly detection in the layout of the unified-model paper's Table II",
                "metrics": ["Accuracy", "Precision", "Recall", "F1", "AUROC"], "settings": ["scaling", "ramping"]}
"""Second rendering of the task's table (see :func:`bench.report.render.paper_layout`)."""

PROTOCOL_NOTES = (
    "paper: anomaly detection on the pooled CER + LCL daily 30-min profiles left after pre-training, split at "
    "random 6:2:2 (Sec. IV-A-1); scored by accuracy, precision and recall (Sec. IV-A-2, Table II)",
    "paper: anomaly detection is a load-analysis (single-type) task: an output layer behind the pre-trained "
    "model, whose input is the profile alone (Sec. II-B); history_days = 0 reproduces this (detectors see the "
    "day without the customer's preceding days; the unified suites set it)",
    *PROVENANCE,
    "assumed: attack_fraction = 0.5 of the profiles of each part are attacked; the paper does not say, but its "
    "Table II implies it: accuracy, precision and recall of one classifier fix the attacked share p = (1 - acc) "
    "/ (1 - R + R (1/P - 1)), 0.53 (scaling) and 0.50 (ramping) for the proposed model",
    "assumed: the detector's decision threshold maximises accuracy on the calibration half of the held-out "
    "profiles (under split = pretrain: a random half of validation + test); the other half is scored",
)
"""What the unified-model paper (and its ref. [34] for the attacks) states about this task's protocol and what
meterbench assumes (printed with the tables by :func:`bench.report.render.protocol_lines`)."""

_GROUPS = {"examples": 0, "queries": 1, "calibration": 2}
"""Attack sub-stream of each group: ``[kind index, group]`` of the attack stream."""


@dataclass
class TaskData:
    """Scaled training profiles and, per setting, the attacked training examples, calibration profiles and test
    queries (see the module docstring). Histories are ``[n, D * T]`` scaled arrays, or None when
    ``history_days`` is 0."""

    train: ProfileSet
    real: ProfileSet  # the test profiles (queried), clean
    scaler: MinMaxScaler
    split_rule: str
    settings: list[str]
    history_days: int
    holdout_rule: str  # how calibration and test profiles were separated ("by household" / "by profile")
    examples: ProfileSet  # the clean training profiles the examples are made of
    example_history: np.ndarray | None
    example_values: np.ndarray  # [n_settings, M, T] scaled, attacked
    example_labels: np.ndarray  # [n_settings, M] bool
    calibration: ProfileSet  # the clean calibration profiles (held-out households)
    calibration_history: np.ndarray | None
    calibration_values: np.ndarray  # [n_settings, C, T] scaled, attacked
    calibration_labels: np.ndarray  # [n_settings, C] bool
    query_history: np.ndarray | None
    query_values: np.ndarray  # [n_settings, N, T] scaled, attacked
    query_labels: np.ndarray  # [n_settings, N] bool
    pretrain: ProfileSet | None = None  # the scaled pre-training set of the "pretrain" rule (pre-training models)

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}-{self.calibration.fingerprint()}"

    @staticmethod
    def _query(profiles: ProfileSet, values: np.ndarray, history: np.ndarray | None) -> DetectionQuery:
        return DetectionQuery(values=values.copy(), valid=profiles.mask.copy(), meta=profiles.meta.copy(),
                              resolution=profiles.resolution, history=None if history is None else history.copy())

    def query(self, index: int) -> DetectionQuery:
        """The test :class:`DetectionQuery` of setting ``index`` (labels withheld)."""
        return self._query(self.real, self.query_values[index], self.query_history)

    def fit_examples(self, index: int) -> DetectionExamples:
        """Every labelled training example of setting ``index`` (handed to ``fit_detector``)."""
        return DetectionExamples(self._query(self.examples, self.example_values[index], self.example_history),
                                 self.example_labels[index].copy())

    def calibration_examples(self, index: int) -> DetectionExamples:
        """The labelled calibration profiles of setting ``index`` (held-out households)."""
        return DetectionExamples(self._query(self.calibration, self.calibration_values[index],
                                             self.calibration_history),
                                 self.calibration_labels[index].copy())


def attack_settings(cfg: dict) -> list[str]:
    """The attack kinds of ``cfg["attacks"]``, checked."""
    return checked_names(cfg["attacks"], ATTACK_KINDS, "attack")


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair the task scores (``resolution`` is accepted for a uniform signature)."""
    return [(kind, metric) for kind in attack_settings(cfg) for metric in METRIC_NAMES]


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


def holdout_split(meta: pd.DataFrame, rng: np.random.Generator, by: str = "household") -> tuple[np.ndarray, str]:
    """``([N] bool, rule)``: True marks the calibration profiles among the evaluation profiles ``meta``.

    ``by="household"``: when there are at least 2 households the sorted households are shuffled by ``rng`` and
    the first ``n // 2`` give the calibration profiles, the rest the test profiles; with fewer households, and
    with ``by="profile"`` (the unified paper's protocol: validation and test are random parts of the pooled
    profiles), the profiles themselves are shuffled and the first ``N // 2`` calibrate.

    Raises:
        ValueError: an unknown ``by``, or fewer than 2 profiles where profiles are split (no profile would be
            left for one side).
    """
    if by not in ("household", "profile"):
        raise ValueError(f"holdout must be split by 'household' or 'profile', got {by!r}")
    series = meta["series_id"].astype(str).to_numpy()
    households = np.array(sorted(set(series)))
    if by == "household" and len(households) >= 2:
        shuffled = rng.permutation(households)
        return np.isin(series, shuffled[:len(households) // 2]), f"by household ({len(households)} households)"
    if len(series) < 2:
        raise ValueError(f"the anomaly task needs at least 2 evaluation profiles (calibration and test), got "
                         f"{len(series)}")
    out = np.zeros(len(series), dtype=bool)
    out[rng.permutation(len(series))[:len(series) // 2]] = True
    if by == "profile":
        return out, "by profile (random halves of the pooled evaluation profiles)"
    return out, "by profile (fewer than 2 households)"


def holdout_rule(cfg: dict) -> str:
    """How calibration and test profiles are separated: ``"profile"`` under the ``"pretrain"`` split (the unified
    paper's random validation / test parts), else ``"household"``."""
    return "profile" if cfg.get("split") == "pretrain" else "household"


def _check_cfg(cfg: dict) -> int:
    """Checks the task's own settings; returns ``history_days``."""
    for key in ("max_queries", "max_calibration", "max_train_examples"):
        cap = cfg.get(key)
        if cap is not None and (isinstance(cap, bool) or int(cap) != cap or int(cap) < 1):
            raise ValueError(f"{key} must be a positive integer or None, got {cap!r}")
    if not 0.0 < float(cfg["attack_fraction"]) < 1.0:
        raise ValueError(f"attack_fraction must lie strictly between 0 and 1 (both classes are needed), got "
                         f"{cfg['attack_fraction']!r}")
    days = cfg["history_days"]
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 0:
        raise ValueError(f"history_days must be a non-negative integer (0 = no history), got {days!r}")
    return int(days)


def _cap(rows: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    """A sorted seeded subset of ``cap`` of ``rows`` (all of them when there are no more)."""
    if cap and len(rows) > int(cap):
        return np.sort(rng.choice(rows, int(cap), replace=False))
    return rows


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale, keep the profiles with ``history_days`` days of history, separate calibration from
    test households, draw the seeded caps and inject every setting's attacks (see the module docstring).

    Raises:
        ValueError: a bad setting; ``history_days > 0`` with monthly profiles; no training or no evaluation
            profile with enough history; fewer than 2 evaluation profiles.
    """
    kinds = attack_settings(cfg)
    history_days = _check_cfg(cfg)
    if history_days and profiles.period != "day":
        raise ValueError(f"history_days = {history_days} needs daily profiles, got period {profiles.period!r} "
                         f"(use history_days = 0)")
    split = split_and_scale(profiles, cfg, seed)
    index = HistoryIndex.build(profiles, history_days) if history_days else None

    def usable(part: ProfileSet, side: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows of ``part`` with history and their entries in ``index``."""
        if index is None:
            return np.arange(len(part)), None
        entries = index.locate(part)
        rows = np.flatnonzero(entries >= 0)
        if len(rows) == 0:
            raise ValueError(f"no {side} profile has {history_days} days of history: with history_days = "
                             f"{history_days} a profile must be the last of {history_days + 1} consecutive "
                             f"complete days of one household; use longer series, a smaller history_days, or 0 "
                             f"(no history)")
        return rows, entries

    train_rows, train_entries = usable(split.train, "training")
    eval_rows, eval_entries = usable(split.real, "evaluation")
    is_cal, holdout = holdout_split(split.real.meta.iloc[eval_rows], seeds.rng(seed, Stream.ANOMALY_HOLDOUT),
                                    by=holdout_rule(cfg))
    example_rows = _cap(train_rows, cfg.get("max_train_examples"), seeds.rng(seed, Stream.ANOMALY_EXAMPLES))
    cal_rows = _cap(eval_rows[is_cal], cfg.get("max_calibration"), seeds.rng(seed, Stream.ANOMALY_CALIBRATION))
    query_rows = _cap(eval_rows[~is_cal], cfg.get("max_queries"), seeds.rng(seed, Stream.ANOMALY_QUERIES))

    def history(entries: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
        """``[n, D * T]`` scaled preceding days of the profiles ``rows`` (same arithmetic as the split's
        scaling, so a history day equals that day in the scaled split bit for bit)."""
        if index is None:
            return None
        days = index.rows[entries[rows]]  # [n, D] rows of the full set
        scaled = split.scaler.transform(profiles.values[days.reshape(-1)])
        return scaled.reshape(len(rows), history_days * profiles.length)

    groups = {"examples": split.train.subset(example_rows), "calibration": split.real.subset(cal_rows),
              "queries": split.real.subset(query_rows)}
    attacked: dict[str, tuple[list, list]] = {name: ([], []) for name in groups}
    for kind in kinds:
        k = ATTACK_KINDS.index(kind)
        for name, part in groups.items():
            values, labels = attack_scaled(part.values, part.mask, split.scaler, kind, cfg, profiles.resolution,
                                           seeds.rng(seed, Stream.ANOMALY_ATTACKS, k, _GROUPS[name]))
            attacked[name][0].append(values)
            attacked[name][1].append(labels)

    def stack(name: str) -> tuple[np.ndarray, np.ndarray]:
        values, labels = attacked[name]
        n = len(groups[name])
        if not values:
            return np.zeros((0, n, profiles.length), np.float32), np.zeros((0, n), bool)
        return np.stack(values), np.stack(labels)

    example_values, example_labels = stack("examples")
    cal_values, cal_labels = stack("calibration")
    query_values, query_labels = stack("queries")
    return TaskData(train=split.train, real=groups["queries"], scaler=split.scaler, split_rule=split.split_rule,
                    settings=kinds, history_days=history_days, holdout_rule=holdout,
                    examples=groups["examples"], example_history=history(train_entries, example_rows),
                    example_values=example_values, example_labels=example_labels,
                    calibration=groups["calibration"], calibration_history=history(eval_entries, cal_rows),
                    calibration_values=cal_values, calibration_labels=cal_labels,
                    query_history=history(eval_entries, query_rows), query_values=query_values,
                    query_labels=query_labels, pretrain=split.pretrain)


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


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` on :func:`~bench.tasks.common.fitting_set` (the pre-training set for pre-training models
    under the ``"pretrain"`` rule, else the clean training profiles), then per setting fit the detector on every
    labelled training example (``fit_detector``, a no-op unless the model overrides it), calibrate the threshold on
    the scores of the held-out calibration profiles and score the test queries.

    ``extra["scores"]`` holds the test scores ``[n_settings, N]`` float64 and ``extra["thresholds"]``
    ``[n_settings]``; there are no ``samples``. A :class:`ModelFitError`, scores of the wrong shape or non-finite
    scores give a ``failed`` outcome with the reason.
    """
    outcome = Outcome()
    scores, thresholds = [], []
    try:
        start = time.perf_counter()
        model.fit(fitting_set(model, data), ctx)
        outcome.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        for index, setting in enumerate(data.settings):
            model.fit_detector(data.fit_examples(index), ctx)
            calibration = data.calibration_examples(index)
            cal, note = _check_scores(model.anomaly_score(calibration.query, ctx), len(calibration.labels),
                                      f"{setting} calibration")
            if cal is None:
                return outcome.fail(note)
            test, note = _check_scores(model.anomaly_score(data.query(index), ctx), len(data.real), setting)
            if test is None:
                return outcome.fail(note)
            thresholds.append(calibrate_threshold(cal, calibration.labels))
            scores.append(test)
        outcome.sample_seconds = time.perf_counter() - start
    except ModelFitError as err:
        return outcome.fail(str(err))
    outcome.extra = {"scores": np.stack(scores) if scores else np.zeros((0, len(data.real))),
                     "thresholds": np.array(thresholds, dtype=np.float64)}
    return outcome


def _metric(name: str, labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray):
    """``rows -> value`` of the registered metric ``name`` on the test profiles ``rows``: label metrics score the
    thresholded labels, score metrics the raw scores."""
    from metrics import METRICS

    if name not in METRIC_NAMES:
        raise ValueError(f"unknown anomaly metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    spec = METRICS[name]
    pred = {"labels": predicted, "scores": scores}[spec.needs]
    return lambda r: spec.fn(labels[r], pred[r])


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Per setting and metric, the paired-bootstrap mean ± std over the test profiles (reads ``status``, ``note``
    and ``extra["scores"]`` / ``extra["thresholds"]``)."""
    pairs = [(s, m) for s in data.settings for m in METRIC_NAMES]
    if outcome.status != "ok":
        return failed_rows(pairs, outcome.status, outcome.note)
    rows = []
    for index, setting in enumerate(data.settings):
        labels = data.query_labels[index]
        scores = outcome.extra["scores"][index]
        predicted = scores > outcome.extra["thresholds"][index]
        # AUROC alone is undefined on a subset holding one class: a failed row, not an error
        rows += [bootstrap_row(setting, metric, _metric(metric, labels, scores, predicted), len(labels), cfg, seed,
                               may_be_undefined=metric == "AUROC") for metric in METRIC_NAMES]
    return rows


TASK = register_task(Task(name="anomaly", capability="detect", defaults=DEFAULTS, prepare=prepare, run=run,
                          score=score, expected_rows=expected_rows, protocol_notes=PROTOCOL_NOTES,
                          paper_layout=PAPER_LAYOUT, source=__file__))
