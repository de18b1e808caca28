"""Load forecasting from past days of the same customer: day-ahead and hour-ahead.

Protocol: the shared split and scaling (:func:`bench.tasks.common.split_and_scale`, with no cap on the
training or evaluation profiles by default), the model fitted on :func:`bench.tasks.common.fitting_set` (the
pre-training set for pre-training models under the ``"pretrain"`` rule, else the training part), then per
setting:

* ``"day-ahead"``: the next day (``T`` steps) from the ``history_days`` days before it;
* ``"hour-ahead"``: the next hour (``60 / resolution`` steps) from an origin at a whole hour of the target
  day (drawn uniformly from the seed's forecast-origin stream), given the ``history_days * T`` steps right
  before the origin.

**Targets and inputs.** A window's *target day* is a profile of one split part (the training part for the
training windows handed to ``fit_forecast``, validation + test for the query windows scored), and it needs the
``history_days`` complete days before it of the same customer. Those history days are taken from the *full*
profile set wherever the split put them (:class:`bench.tasks.windows.HistoryIndex`): a history is an input known
at forecast time, never a target. Under the household split every day of a household is in one part, so this
is the same as cutting windows inside each part; under the unified paper's ``"pretrain"`` rule (profiles pooled
and split at random) the days before a target day mostly lie in the pre-training set. At most
``max_train_windows`` training and ``max_queries`` query windows are used (seeded subsets of the target days, each
from its own stream of :mod:`bench.seeds`).

Models: ``fit_forecast(ForecastExamples, ctx)`` receives the training windows (a no-op unless the model
overrides it), ``forecast(ForecastQuery, n_samples, ctx)`` returns ``[n_samples, N, horizon]`` samples (a
probabilistic forecast) or ``[N, horizon]`` (a point forecast).

Scores, in kW after ``scaler.inverse`` unless said otherwise, on every forecast step of every query window:

* ``MAE``, ``RMSE``, ``MAPE``: errors of the ensemble median, or of the point forecast; ``MSE`` (kW^2), the
  square of the errors' RMS, reported because the unified paper's "RMSE" column has the size of an MSE (see
  :data:`PROTOCOL_NOTES`);
* ``MAPE_scaled``: the MAPE of the same forecasts in the task's min-max scaled [-1, 1] space (a scale-dependent
  diagnostic: its value depends on the scaler's range; the only convention found that gives MAPEs of the size
  the unified paper prints for single-customer loads);
* ``CRPS``: fair ensemble CRPS; ``n/a`` (note "point forecast") for point forecasts.

MAPE leaves out true values below ``mape_eps`` kW (default 0.01 kW = 10 W, instead of the metric's 1 W):
the LCL data hold many half-hours of a few watts (a fridge cycling in an empty home), where a forecast off
by 50 W is a relative error of 10 to 50 and such steps alone would decide the mean. ``MAPE_scaled`` leaves out
scaled values within 1e-3 of 0 (the metric's default). Each value is the mean ± std over ``n_bootstrap``
paired subsamples of windows (a ``bootstrap_frac`` share drawn without replacement, the same windows on both
sides), as the imputation task reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import seeds
from bench.api import Model, Outcome, Task
from bench.context import RunContext
from bench.data.profileset import ProfileSet, steps_per_day
from bench.data.scaling import MinMaxScaler
from bench.errors import ModelFitError
from bench.seeds import Stream
from bench.tasks import register_task
from bench.tasks.common import (SPLIT_DEFAULTS, bootstrap_row, checked_names, failed_rows, fitting_set,
                                split_and_scale)
from bench.tasks.queries import ForecastExamples, ForecastQuery
from bench.tasks.windows import HistoryIndex, day_ahead, gather_windows, hour_ahead

METRIC_NAMES = ("MAE", "RMSE", "MAPE", "MSE", "MAPE_scaled", "CRPS")
"""The task's metrics (all in :data:`metrics.registry.METRICS`), in table order."""
SETTINGS = ("day-ahead", "hour-ahead")
DEFAULTS = {
    "settings": list(SETTINGS),
    "history_days": 7,
    "n_samples": 20,
    "max_queries": 500,
    "max_train_windows": 4000,
    "n_bootstrap": 10,
    "bootstrap_frac": 0.5,
    "mape_eps": 0.01,  # kW: see the module docstring
    **SPLIT_DEFAULTS,
    "max_eval": None,  # windows need consecutive days: no random subset of profiles
    "max_train": None,
}
PAPER_LAYOUT = {"caption": "Load forecasting in the layout of the unified-model paper's Table II (MAE and RMSE in "
                           "kW, MAPE as a fraction; MSE in kW^2 and MAPE_scaled beside them, see the protocol notes)",
                "metrics": ["MAE", "RMSE", "MAPE", "MSE", "MAPE_scaled"], "settings": ["day-ahead", "hour-ahead"]}
"""Second rendering of the task's table (see :func:`bench.report.render.paper_layout`)."""

PROTOCOL_NOTES = (
    "paper: CER + LCL pooled into complete daily 30-min profiles of single customers (no aggregation of "
    "customers); a random 80 % of all profiles pre-trains the unified model, the other 20 % are split at random "
    "6:2:2 into train / validation / test (Sec. IV-A-1): split = pretrain, fractions 0.6/0.2/0.2, "
    "pretrain_fraction 0.8",
    "paper: day-ahead and hour-ahead load forecasting scored by MAE and RMSE in kW and MAPE in percent, mean of "
    "5 runs (Sec. IV-A-2, Table II)",
    "paper: forecasting is a multi-type task: a feed-forward model maps the pre-trained model's load "
    "characteristics of the input profiles (instance-normalised, Sec. III-A-1) to the forecast (Sec. II-B)",
    "paper: the split is randomised per task (Sec. IV-A-1); assumed: one random split per seed shared by all "
    "tasks, so that one pre-trained checkpoint serves them all",
    "assumed: a target day is a profile of the task's part (train: fitting windows; validation + test: scored "
    "windows); its input is the history_days (7) complete days before it of the same customer, taken from the "
    "full data wherever the split put them; the paper gives no history length and no weather data are used",
    "assumed: hour-ahead = the next hour (2 steps at 30 min) from a whole hour of the target day drawn "
    "uniformly, given the 7 x 24 h before it",
    "assumed: MAPE (a fraction) leaves out true loads under mape_eps (10 W); the paper does not say how it "
    "treats near-zero loads, and no threshold brings a single-customer MAPE near its 7-10 %",
    "assumed: Table II prints RMSE < MAE in every forecasting row, impossible for one set of errors; its "
    "'RMSE' values (0.12-0.19) have the size of the MSE (kW^2) of single-customer errors whose MAE is the "
    "printed one, so MSE is reported beside RMSE",
    "assumed: a MAPE of the paper's size (7-10 %) comes out of single-customer loads only as the MAPE in a "
    "min-max scaled space (MAPE_scaled, in the task's [-1, 1] scaling; scale-dependent), not in kW",
)
"""What the unified-model paper states about this task's protocol and what meterbench assumes (printed with
the tables by :func:`bench.report.render.protocol_lines`)."""


@dataclass
class TaskData:
    """Scaled training and evaluation profiles plus, per setting, the training windows handed to
    ``fit_forecast`` and the query windows with their true continuations (scaled). ``pretrain`` is the scaled
    pre-training set of the ``"pretrain"`` rule (None otherwise), what pre-training models are fitted on."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str
    settings: list[str]
    examples: list[ForecastExamples]  # training windows per setting
    queries: list[ForecastQuery]  # query windows per setting
    targets: list[np.ndarray]  # [N, horizon] scaled truth of each query window, per setting
    n_samples: int  # ensemble size asked of the model
    pretrain: ProfileSet | None = None

    def fingerprint(self) -> str:
        return f"{self.train.fingerprint()}-{self.real.fingerprint()}"


def setting_names(cfg: dict) -> list[str]:
    """The settings ``cfg["settings"]`` asks for, in the order given; a clear error for unknown names."""
    return checked_names(cfg["settings"], SETTINGS, "forecasting settings")


def expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    """Every ``(setting, metric)`` pair the task scores (``resolution`` is accepted for a uniform signature)."""
    return [(name, metric) for name in setting_names(cfg) for metric in METRIC_NAMES]


def horizon_steps(setting: str, resolution: int) -> int:
    """Forecast length of ``setting`` in steps: a day, or an hour (the resolution must divide 60 minutes)."""
    if setting == "day-ahead":
        return steps_per_day(resolution)
    if setting == "hour-ahead":
        if 60 % resolution != 0:
            raise ValueError(f"the hour-ahead setting needs a resolution that divides 60 minutes, got "
                             f"{resolution} min (drop 'hour-ahead' from settings)")
        return 60 // resolution
    raise ValueError(f"unknown forecasting setting {setting!r}; known: {', '.join(SETTINGS)}")


def _positive_int(cfg: dict, key: str, allow_none: bool = False) -> int | None:
    value = cfg[key]
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{key} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _target_windows(index: HistoryIndex, part: ProfileSet, n_days: int, cap: int | None,
                    rng: np.random.Generator, side: str) -> np.ndarray:
    """``[W, n_days]`` full-set rows (history days, then the target day) of the windows whose target day is a
    profile of ``part``, a seeded subset of ``cap`` of them."""
    entries = index.locate(part)
    rows = np.flatnonzero(entries >= 0)
    if len(rows) == 0:
        raise ValueError(f"no forecasting window in the {side} profiles: a window needs {n_days} consecutive "
                         f"complete days of one household (history_days = {n_days - 1} plus the target day, "
                         f"which must be a {side} profile); use longer series or a smaller history_days")
    if cap is not None and len(rows) > cap:
        rows = np.sort(rng.choice(rows, cap, replace=False))
    return index.windows[entries[rows]]


def _windows(days: ProfileSet, rows: np.ndarray, setting: str, history_days: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """``(history, target, meta)`` of the windows ``rows`` (into ``days``) under ``setting``."""
    if setting == "day-ahead":
        return day_ahead(days, rows, history_days)
    return hour_ahead(days, rows, history_days, horizon_steps(setting, days.resolution), rng)


def prepare(profiles: ProfileSet, cfg: dict, seed: int) -> TaskData:
    """Split and scale, then cut the training and query windows of every setting (see the module docstring).

    Raises:
        ValueError: monthly profiles, a bad setting or size, a resolution that does not divide 60 minutes for
            hour-ahead, or no window (no target day of a part with ``history_days`` complete days before it).
    """
    names = setting_names(cfg)
    if profiles.period != "day":
        raise ValueError(f"forecasting needs daily profiles (period 'day'), got period {profiles.period!r}")
    for name in names:
        horizon_steps(name, profiles.resolution)  # fails early on a resolution hour-ahead cannot use
    history_days = _positive_int(cfg, "history_days")
    n_samples = _positive_int(cfg, "n_samples")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 (the fair CRPS needs two members), got {n_samples}")
    max_queries = _positive_int(cfg, "max_queries", allow_none=True)
    max_train = _positive_int(cfg, "max_train_windows", allow_none=True)
    if not float(cfg["mape_eps"]) >= 0:
        raise ValueError(f"mape_eps must be a non-negative number of kW, got {cfg['mape_eps']!r}")
    split = split_and_scale(profiles, cfg, seed)
    n_days = history_days + 1
    index = HistoryIndex.build(profiles, history_days)
    train_windows = _target_windows(index, split.train, n_days, max_train,
                                    seeds.rng(seed, Stream.FORECAST_TRAIN_WINDOWS), "training")
    query_windows = _target_windows(index, split.real, n_days, max_queries,
                                    seeds.rng(seed, Stream.FORECAST_QUERY_WINDOWS), "evaluation")
    # only the days the windows use are copied and scaled (the same arithmetic as the split's scaling)
    train_days, train_rows = gather_windows(profiles, train_windows, split.scaler.transform)
    query_days, query_rows = gather_windows(profiles, query_windows, split.scaler.transform)
    examples, queries, targets = [], [], []
    for name in names:
        setting_id = SETTINGS.index(name)
        # hour-ahead origins: sub-stream 0 for the training windows, 1 for the query windows
        history, target, meta = _windows(train_days, train_rows, name, history_days,
                                         seeds.rng(seed, Stream.FORECAST_ORIGINS, 0, setting_id))
        examples.append(ForecastExamples(
            query=ForecastQuery(history=history, horizon=target.shape[1], meta=meta,
                                resolution=profiles.resolution),
            target=target))
        history, target, meta = _windows(query_days, query_rows, name, history_days,
                                         seeds.rng(seed, Stream.FORECAST_ORIGINS, 1, setting_id))
        queries.append(ForecastQuery(history=history, horizon=target.shape[1], meta=meta,
                                     resolution=profiles.resolution))
        targets.append(target)
    return TaskData(train=split.train, real=split.real, scaler=split.scaler, split_rule=split.split_rule,
                    settings=names, examples=examples, queries=queries, targets=targets, n_samples=n_samples,
                    pretrain=split.pretrain)


def run(model: Model, data: TaskData, ctx: RunContext) -> Outcome:
    """Fit ``model`` on :func:`~bench.tasks.common.fitting_set` (the pre-training set for pre-training models
    under the ``"pretrain"`` rule, else the training profiles), then per setting fine-tune it on the training
    windows (``fit_forecast``, a no-op unless the model overrides it) and forecast the query windows.

    The outcome has no ``samples`` (horizons differ between settings); its ``extra`` holds ``forecasts``, a list
    (one per setting) of float32 arrays ``[S, N, horizon]`` or ``[N, horizon]``, ``point``, which settings got
    point forecasts, and ``finetune_seconds``. A :class:`ModelFitError`, a forecast of the wrong shape or
    non-finite forecasts give a ``failed`` outcome with the reason. ``fit_seconds`` covers ``fit`` and every
    ``fit_forecast`` (``finetune_seconds`` the latter alone), ``sample_seconds`` the ``forecast`` calls.
    """
    n_samples = data.n_samples
    outcome = Outcome()
    forecasts, point = [], []
    fit_seconds = finetune_seconds = sample_seconds = 0.0
    try:
        start = time.perf_counter()
        model.fit(fitting_set(model, data), ctx)
        fit_seconds = time.perf_counter() - start
        for index, setting in enumerate(data.settings):
            query = data.queries[index]
            start = time.perf_counter()
            model.fit_forecast(data.examples[index], ctx)
            finetune_seconds += time.perf_counter() - start
            start = time.perf_counter()
            out = np.asarray(model.forecast(query, n_samples, ctx), dtype=np.float32)
            sample_seconds += time.perf_counter() - start
            n, horizon = len(query), query.horizon
            if out.shape not in ((n, horizon), (n_samples, n, horizon)):
                return outcome.fail(f"model returned forecasts of shape {out.shape} for {setting}, expected "
                                    f"{(n, horizon)} or {(n_samples, n, horizon)}")
            if not np.isfinite(out).all():
                return outcome.fail(f"non-finite forecasts ({setting})")
            forecasts.append(out)
            point.append(out.ndim == 2)
    except ModelFitError as err:
        return outcome.fail(str(err))
    outcome.fit_seconds = fit_seconds + finetune_seconds
    outcome.sample_seconds = sample_seconds
    outcome.extra = {"forecasts": forecasts, "point": point, "finetune_seconds": finetune_seconds}
    return outcome


def _metric(name: str, truth: np.ndarray, ens: np.ndarray | None, median: np.ndarray, mape_eps: float,
            scaled_truth: np.ndarray, scaled_median: np.ndarray):
    """``rows -> value`` of the registered metric ``name`` on the windows ``rows`` (arrays in kW, ``scaled_*`` in
    the task's scaled space): ensemble metrics score the ensemble, point metrics its median (or the point
    forecast); ``MAPE`` leaves out true loads under ``mape_eps`` kW, ``MAPE_scaled`` is scored in the scaled
    space."""
    from metrics import METRICS

    if name not in METRIC_NAMES:
        raise ValueError(f"unknown forecasting metric {name!r}; known: {', '.join(METRIC_NAMES)}")
    fn = METRICS[name].fn
    if name == "CRPS":
        return lambda r: fn(truth[r], ens[:, r])
    if name == "MAPE":
        return lambda r: fn(truth[r], median[r], eps=mape_eps)
    if name == "MAPE_scaled":
        return lambda r: fn(scaled_truth[r], scaled_median[r])
    return lambda r: fn(truth[r], median[r])


def score(outcome: Outcome, data: TaskData, cfg: dict, seed: int) -> list[dict]:
    """Per setting and metric, the paired-bootstrap mean ± std over the query windows, in kW (``MSE`` in kW^2,
    ``MAPE_scaled`` in the scaled space). Reads ``status``, ``note`` and ``extra["forecasts"]`` /
    ``extra["point"]``."""
    pairs = [(s, m) for s in data.settings for m in METRIC_NAMES]
    if outcome.status != "ok":
        return failed_rows(pairs, outcome.status, outcome.note)
    rows = []
    for index, setting in enumerate(data.settings):
        scaled_truth = np.asarray(data.targets[index], dtype=np.float64)
        scaled = np.asarray(outcome.extra["forecasts"][index], dtype=np.float64)
        truth = data.scaler.inverse(data.targets[index]).astype(np.float64)
        forecast = data.scaler.inverse(outcome.extra["forecasts"][index]).astype(np.float64)
        is_point = bool(outcome.extra["point"][index])
        ens = None if is_point else forecast
        median = forecast if is_point else np.median(forecast, axis=0)
        scaled_median = scaled if is_point else np.median(scaled, axis=0)
        for metric in METRIC_NAMES:
            if metric == "CRPS" and is_point:
                rows += failed_rows([(setting, metric)], "n/a", "point forecast")
                continue
            fn = _metric(metric, truth, ens, median, float(cfg["mape_eps"]), scaled_truth, scaled_median)
            # a MAPE alone can be undefined on real data (every true value ~0): a failed row, not an error
            rows.append(bootstrap_row(setting, metric, fn, len(truth), cfg, seed,
                                      may_be_undefined=metric in ("MAPE", "MAPE_scaled")))
    return rows


TASK = register_task(Task(name="forecasting", capability="forecast", defaults=DEFAULTS, prepare=prepare, run=run,
                          score=score, expected_rows=expected_rows, protocol_notes=PROTOCOL_NOTES,
                          paper_layout=PAPER_LAYOUT, source=__file__))
