"""Summary tables built from tidy result rows, and their markdown, LaTeX and CSV renderings.

Input rows have the columns ``suite, task, dataset, resolution, model, seed, metric, value, std, status,
note``: one row per (cell, seed, metric), ``value``/``std`` the bootstrap mean and std, ``status`` one of
``ok``, ``failed`` (value NaN, ``note`` says why) or ``n/a`` (the model lacks the capability). An optional
column ``repeats`` holds the metric's value on each bootstrap repeat, in repeat order (a sequence of floats,
or the space-separated text of :func:`repeats_text` as ``results.csv`` stores it; empty / None where a row has
none). Within one (task, dataset, resolution, setting, seed) every model's repeat ``r`` is scored on the same
resample of the real profiles, so two models can be compared repeat by repeat.

Conventions, stated again in every rendered caption:

* **Seeds.** A cell's value is the mean over seeds of the per-seed bootstrap means. Its ± is the bootstrap
  std when the cell has one seed, and the sample std (ddof = 1) of the per-seed bootstrap means when it has
  several. The two are not pooled: the bootstrap std only measures evaluation-subsample noise, while the
  spread across seeds also carries the randomness of splitting and training, which is what a reader who
  re-runs the benchmark with another seed would see. With several seeds the tables also print the mean over
  seeds of the bootstrap std, in parentheses after the ±, so both noises are visible.
* **Failures.** A cell that failed on any of its seeds is shown as failed (the note says on how many seeds):
  averaging only the surviving seeds would flatter an unstable model.
* **Noise.** Two entries of a column are *tied within noise* when their values differ by no more than the
  noise of their difference. Where both carry per-repeat values for the same seeds and the same number of
  repeats, the difference is *paired* (:func:`tied_paired`): per seed ``s`` and repeat ``r``,
  ``d[s, r] = a[s, r] - b[s, r]`` over the same resample; ``D`` = the mean over seeds of ``mean_r d[s, .]``, and
  ``noise**2`` = the mean over seeds of ``var_r d[s, .]`` (ddof = 1: the evaluation noise of the difference,
  from which the resample noise the two share cancels) plus, with two or more seeds, the variance over seeds
  of ``mean_r d[s, .]`` (ddof = 1: the seed variance of the difference); tied when ``|D| <= noise``. Otherwise
  (either side lacks repeats, or the seeds or repeat counts differ) the rule is *unpaired*
  (:func:`tied_within_noise`): ``|a - b| <= sqrt(std_a**2 + std_b**2)``, with the ± the table shows as the
  std (the bootstrap std, or the std across seeds); a NaN std, e.g. a single deterministic value, counts as
  0, so two such values compare exactly. In both, the boundary counts as a tie (compared to 12 significant
  digits) and values equal to 12 significant digits always tie. :func:`tied_cells` picks the rule; nothing
  else is special-cased, e.g. an unbiased MMD below zero is better than 0 only where the rule says so.
* **Best.** Within each group (every index level except ``model``, by default one (dataset, resolution)),
  per metric, the ``ok`` cell with the best value in the metric's goal is the leader. If no other
  ``ok`` cell of the group is tied with it within noise, it is *best* (bold); otherwise the leader and every
  cell tied with it are *tied for best* (marked ≈, not bold). A lone ``ok`` cell is best.
* **Ranks.** Within each group and metric, ``ok`` cells are ranked by tie groups: the first group is the
  leader and every cell tied with it within noise (exactly the best / tied-for-best cells), the next group
  is built the same way from the best remaining cell, and so on. A group takes the next positions and each
  of its cells gets the mean of those positions (1 = best; two cells tied for best both rank 1.5), so the
  ranks of a group still sum to what they would without ties. Failed cells rank after every ``ok`` cell,
  sharing the mean of the last positions; ``n/a`` and missing cells are not ranked. A row's average rank
  is the mean of its ranks over the metrics where it is ranked.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

REQUIRED_COLUMNS = ("model", "seed", "metric", "value", "std", "status", "note")
STATUSES = ("ok", "failed", "n/a")
MISSING = "missing"  # status of a (row, metric) pair that has no input row at all
ARROWS = {"lower": "↓", "higher": "↑", "ignore": ""}
LATEX_ARROWS = {"lower": r" $\downarrow$", "higher": r" $\uparrow$", "ignore": ""}
# "ignore": reported but neither best-marked nor ranked (e.g. an interval coverage, best at its nominal level)
GOALS = ("lower", "higher", "ignore")
PAPER_METRICS = ("MMD", "GFD", "KL", "WD", "KS")
DEFAULT_INDEX = ("dataset", "resolution", "model")
REPEATS_COLUMN = "repeats"  # optional: the metric's value on each bootstrap repeat (module docstring)


@dataclass
class TableData:
    """One summary table: rows are the index combinations (model last or anywhere), columns the metrics.

    ``means``/``stds`` are float (NaN where not ``ok``), ``status`` holds ``ok``/``failed``/``n/a``/``missing``,
    ``notes`` the reason of failed and n/a cells (``""`` otherwise), ``best`` the cells best beyond noise,
    ``tied`` the cells tied for best within noise (see the module docstring), ``ranks`` the per-metric ranks
    (NaN where unranked), ``avg_rank`` the mean rank of each row and ``n_seeds`` how many seeds each cell
    aggregates. ``goals`` maps each metric to ``lower``/``higher``. ``boot_stds`` is the mean over seeds of
    the per-seed bootstrap std (equal to ``stds`` for a single seed; NaN where not ``ok``), ``has_repeats``
    whether an ``ok`` cell carries per-repeat values on all its seeds, so that its comparisons can be paired.
    """

    means: pd.DataFrame
    stds: pd.DataFrame
    status: pd.DataFrame
    notes: pd.DataFrame
    best: pd.DataFrame
    tied: pd.DataFrame
    ranks: pd.DataFrame
    avg_rank: pd.Series
    n_seeds: pd.DataFrame
    goals: dict[str, str]
    boot_stds: pd.DataFrame | None = None
    has_repeats: pd.DataFrame | None = None

    @property
    def metrics(self) -> list[str]:
        """The metric columns, in table order."""
        return list(self.means.columns)

    @property
    def index_names(self) -> list[str]:
        """The row index levels, in table order."""
        return list(self.means.index.names)

    @property
    def group_levels(self) -> list[str]:
        """The index levels that define a comparison group (all but ``model``)."""
        return [name for name in self.index_names if name != "model"]


# ----------------------------------------------------------------------------------------------------------
# building


def _check_rows(rows: pd.DataFrame, index: tuple[str, ...]) -> None:
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"rows must be a pandas DataFrame, got {type(rows).__name__}")
    missing = [c for c in (*REQUIRED_COLUMNS, *index) if c not in rows.columns]
    if missing:
        raise ValueError(f"result rows lack the column(s) {missing}; they have {list(rows.columns)}")
    if "model" not in index:
        raise ValueError(f"the table index must contain 'model' (best and ranks compare models), got {index}")
    if len(set(index)) != len(index):
        raise ValueError(f"the table index repeats a level: {index}")
    reserved = {"seed", "metric", "value", "std", "status", "note", REPEATS_COLUMN} & set(index)
    if reserved:
        raise ValueError(f"{sorted(reserved)} cannot be index levels of a summary table")
    if rows.empty:
        raise ValueError("no result rows to tabulate")
    bad_status = sorted(set(rows["status"]) - set(STATUSES), key=str)
    if bad_status:
        hint = ("; a CSV read with pandas defaults turns 'n/a' into NaN: pass keep_default_na=False"
                if rows["status"].isna().any() else "")
        raise ValueError(f"unknown status value(s) {bad_status}; expected one of {list(STATUSES)}{hint}")
    ok_nan = rows[(rows["status"] == "ok") & rows["value"].isna()]
    if not ok_nan.empty:
        first = ok_nan.iloc[0]
        raise ValueError(f"row with status 'ok' but no value: model {first['model']!r}, metric "
                         f"{first['metric']!r} ({len(ok_nan)} such row(s)); mark it 'failed' with a note")
    # the tie rule compares values by their stds: an infinite value or a negative std has no meaning there
    ok_rows = rows[rows["status"] == "ok"]
    bad = ok_rows[~np.isfinite(ok_rows["value"].to_numpy(dtype=float))
                  | (ok_rows["std"].to_numpy(dtype=float) < 0)]
    if not bad.empty:
        first = bad.iloc[0]
        raise ValueError(f"row with status 'ok' has an infinite value or a negative std: model {first['model']!r}, "
                         f"metric {first['metric']!r}, value {first['value']!r}, std {first['std']!r} "
                         f"({len(bad)} such row(s))")
    for level in index:
        if rows[level].isna().any():
            raise ValueError(f"index column {level!r} has missing values")


def _check_goals(metrics: Sequence[str], goals: dict[str, str]) -> dict[str, str]:
    unknown = [m for m in metrics if m not in goals]
    if unknown:
        raise ValueError(f"no goal given for metric(s) {unknown}; pass {{metric: 'lower'|'higher'}}")
    bad = {m: goals[m] for m in metrics if goals[m] not in GOALS}
    if bad:
        raise ValueError(f"goal must be 'lower', 'higher' or 'ignore', got {bad}")
    return {m: goals[m] for m in metrics}


def _notes(group: pd.DataFrame) -> list[str]:
    notes = [str(n).strip() for n in group["note"] if isinstance(n, str) and n.strip()]
    return list(dict.fromkeys(notes))


def _aggregate_cell(group: pd.DataFrame) -> tuple[float, float, str, str, int, float]:
    """(value, std, status, note, n_seeds, mean bootstrap std) of one (row, metric) cell over its seeds; see
    the module doc."""
    status = group["status"]
    n = len(group)
    if (status == "n/a").any():
        if not (status == "n/a").all():
            first = group.iloc[0]
            raise ValueError(f"model {first['model']!r}, metric {first['metric']!r} is 'n/a' on some seeds "
                             f"and not on others ({sorted(set(status))})")
        return math.nan, math.nan, "n/a", "; ".join(_notes(group)), n, math.nan
    failed = status == "failed"
    if failed.any():
        k = int(failed.sum())
        reason = "; ".join(_notes(group[failed])) or "no reason given"
        if k < n:
            reason = f"failed on {k} of {n} seeds: {reason}"
        return math.nan, math.nan, "failed", reason, n, math.nan
    values = group["value"].to_numpy(dtype=float)
    if n == 1:
        std = float(group["std"].iloc[0])
        return float(values[0]), std, "ok", "", 1, std
    boots = group["std"].to_numpy(dtype=float)
    boots = boots[~np.isnan(boots)]  # a seed without a bootstrap std has none to average
    boot = float(boots.mean()) if boots.size else math.nan
    return float(values.mean()), float(values.std(ddof=1)), "ok", "", n, boot


def parse_repeats(value: object) -> tuple[float, ...] | None:
    """The per-repeat values of one row as a tuple of floats, or None where the row has none.

    Accepts None, NaN or an empty string (none: old cache entries, failed rows, published numbers), the
    space-separated text that ``results.csv`` stores (:func:`repeats_text`), or a 1-D sequence / array.
    Raises ``ValueError`` for text that is not numbers or a nested sequence.
    """
    if value is None or value is pd.NA:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return tuple(float(x) for x in text.split())
        except ValueError:
            raise ValueError(f"repeats must be space-separated numbers, got {value!r}") from None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):  # pandas' missing value in an object column
            return None
        raise ValueError(f"repeats must be a sequence of numbers, got the single number {value!r}")
    array = np.asarray(value, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"repeats must be a flat sequence of numbers, got shape {array.shape}")
    return tuple(float(x) for x in array) if array.size else None


def repeats_text(value: object) -> str:
    """Per-repeat values as ``results.csv`` stores them: space-separated ``repr`` floats (they read back
    exactly with :func:`parse_repeats`), ``""`` where the row has none."""
    repeats = parse_repeats(value)
    return "" if repeats is None else " ".join(repr(x) for x in repeats)


def _cell_repeats(group: pd.DataFrame) -> dict | None:
    """``{seed: per-repeat values}`` of an ``ok`` cell, or None unless every seed has at least two finite ones
    (a variance over repeats needs two; an undefined repeat has no paired difference)."""
    if REPEATS_COLUMN not in group.columns:
        return None
    out = {}
    for seed, value, raw in zip(group["seed"], group["value"], group[REPEATS_COLUMN]):
        repeats = parse_repeats(raw)
        if repeats is None or len(repeats) < 2 or not all(math.isfinite(x) for x in repeats):
            return None
        array = np.asarray(repeats)
        # the value is the mean over the repeats; repeats of anything else would pair the wrong numbers (the
        # tolerance admits a mean taken in single precision)
        if not math.isclose(float(array.mean()), float(value), rel_tol=1e-6, abs_tol=1e-9):
            first = group.iloc[0]
            raise ValueError(f"model {first['model']!r}, metric {first['metric']!r}, seed {seed!r}: the repeats "
                             f"average to {float(array.mean())!r} but the value is {float(value)!r}")
        out[seed] = array
    return out


def tie_key(x: float) -> float:
    """``x`` to 12 significant digits: values that agree that far are the same result up to float noise, so
    best flags and ranks treat them as ties."""
    return float(f"{x:.12g}")


def _noise_std(std: float) -> float:
    # a missing std (one deterministic value, or a paper that prints none) adds no noise
    std = float(std)
    return 0.0 if math.isnan(std) else std


def tied_within_noise(a: float, std_a: float, b: float, std_b: float) -> bool:
    """Whether values ``a`` and ``b`` (with the stds shown after their ±) are tied within noise.

    The unpaired rule, used by the "same best model" of the report and by the tables wherever a comparison
    cannot be paired over the same resamples (:func:`tied_cells`): ``|a - b| <= sqrt(std_a**2 + std_b**2)``
    — the difference is within one std of the difference of two independent estimates. The boundary is a tie
    (non-strict ``<=``; both sides are compared to 12 significant digits, so float rounding of the difference
    does not move it). A NaN std counts as 0 (a single
    deterministic value has no noise to hide behind), so two such values compare exactly; values equal to 12
    significant digits (:func:`tie_key`) always tie, as float noise.

    Raises ``ValueError`` for a non-finite value or a negative std.
    """
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"tie rule needs finite values, got {a!r} and {b!r}")
    sa, sb = _noise_std(std_a), _noise_std(std_b)
    if sa < 0 or sb < 0:
        raise ValueError(f"a std cannot be negative, got {std_a!r} and {std_b!r}")
    if tie_key(a) == tie_key(b):
        return True
    # hypot: no rounding loss from squaring tiny stds; both sides to 12 significant digits so that float
    # rounding never decides the boundary (1.1 - 1.0 is 0.10000000000000009, yet a tie at ± 0.1)
    return tie_key(abs(a - b)) <= tie_key(math.hypot(sa, sb))


PerSeedRepeats = Mapping[object, Sequence[float]] | Sequence[Sequence[float]]


def _by_seed(repeats: PerSeedRepeats) -> dict:
    return dict(repeats) if isinstance(repeats, Mapping) else dict(enumerate(repeats))


def paired_difference(a: PerSeedRepeats, b: PerSeedRepeats) -> tuple[float, float] | None:
    """``(D, noise)`` of the paired difference ``a - b``, or None where the two cannot be paired.

    ``a`` and ``b`` hold per-repeat values per seed (``{seed: values}``, or a list in seed order), repeat ``r``
    of a seed scored on the same resample on both sides. Per seed ``s``, ``d[s, r] = a[s, r] - b[s, r]``;
    ``D`` is the mean over seeds of ``mean_r d[s, .]``; ``noise**2`` is the mean over seeds of
    ``var_r d[s, .]`` (ddof = 1) plus, with at least two seeds, the variance over seeds of ``mean_r d[s, .]``
    (ddof = 1). None when the seeds differ, a seed's repeat counts differ or it has fewer than two repeats.
    """
    a, b = _by_seed(a), _by_seed(b)
    if not a or set(a) != set(b):
        return None
    means, variances = [], []
    for seed in a:
        x, y = np.asarray(a[seed], dtype=float), np.asarray(b[seed], dtype=float)
        if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
            return None
        d = x - y
        means.append(d.mean())
        variances.append(d.var(ddof=1))
    noise2 = float(np.mean(variances))
    if len(means) >= 2:
        noise2 += float(np.var(means, ddof=1))
    return float(np.mean(means)), math.sqrt(noise2)


def tied_paired(a: PerSeedRepeats, b: PerSeedRepeats) -> bool | None:
    """Whether two cells given by their per-repeat values per seed are tied within the noise of their paired
    difference (:func:`paired_difference`): ``|D| <= noise``, boundary included, both sides to 12 significant
    digits, and means equal to 12 significant digits always tie, as in :func:`tied_within_noise`. None when
    they cannot be paired (the caller falls back to the unpaired rule)."""
    out = paired_difference(a, b)
    if out is None:
        return None
    d, noise = out
    mean_a = float(np.mean([np.mean(v) for v in _by_seed(a).values()]))
    mean_b = float(np.mean([np.mean(v) for v in _by_seed(b).values()]))
    if tie_key(mean_a) == tie_key(mean_b):
        return True
    return tie_key(abs(d)) <= tie_key(noise)


def tied_cells(a: float, std_a: float, repeats_a: PerSeedRepeats | None, b: float, std_b: float,
               repeats_b: PerSeedRepeats | None) -> bool:
    """The tie rule of the tables between two cells (module docstring, **Noise**): paired
    (:func:`tied_paired`) where both carry per-repeat values that pair up, else unpaired on the shown values
    and stds (:func:`tied_within_noise`)."""
    if repeats_a is not None and repeats_b is not None:
        verdict = tied_paired(repeats_a, repeats_b)
        if verdict is not None:
            return verdict
    return tied_within_noise(a, std_a, b, std_b)


def tie_groups(values: Sequence[float], stds: Sequence[float], goal: str,
               tied: Callable[[int, int], bool] | None = None) -> list[list[int]]:
    """Positions of ``values`` in tie groups, best group first (see the module docstring, **Ranks**).

    The first group is the best value in ``goal`` (``"lower"`` or ``"higher"`` is better) and every
    value tied with it; each further group is formed the same way from the best value not yet grouped.
    Several values equal to the best (by :func:`tie_key`) share the lead: a value tied with any of them joins.
    Within a group positions keep their input order. ``tied(i, k)`` says whether positions ``i`` and ``k``
    are tied (e.g. the paired rule of :func:`tied_cells`); by default :func:`tied_within_noise` on
    ``values`` and ``stds``. A leader always belongs to its own group.
    """
    if goal not in ("lower", "higher"):
        raise ValueError(f"tie groups need goal 'lower' or 'higher', got {goal!r}")
    values = [float(v) for v in values]
    stds = [float(s) for s in stds]
    if len(values) != len(stds):
        raise ValueError(f"{len(values)} values but {len(stds)} stds")
    if tied is None:
        def tied(i: int, k: int) -> bool:
            return tied_within_noise(values[i], stds[i], values[k], stds[k])
    sign = 1.0 if goal == "lower" else -1.0
    keys = [tie_key(sign * v) for v in values]
    left = list(range(len(values)))
    groups = []
    while left:
        top = min(keys[i] for i in left)
        leaders = [i for i in left if keys[i] == top]
        group = [i for i in left if i in leaders or any(tied(i, k) for k in leaders)]
        groups.append(group)
        left = [i for i in left if i not in group]
    return groups


def _best_and_ranks(means: np.ndarray, stds: np.ndarray, status: np.ndarray, groups: Iterable[list[int]],
                    metrics: list[str], goals: dict[str, str], repeats: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    best = np.zeros(means.shape, dtype=bool)
    tied = np.zeros(means.shape, dtype=bool)
    ranks = np.full(means.shape, np.nan)
    if repeats is None:
        repeats = np.full(means.shape, None, dtype=object)
    for members in groups:
        for j, metric in enumerate(metrics):
            if goals[metric] == "ignore":
                continue
            ok = [i for i in members if status[i, j] == "ok"]
            failed = [i for i in members if status[i, j] == "failed"]
            if ok:
                def pair(p: int, q: int, ok: list[int] = ok, j: int = j) -> bool:
                    i, k = ok[p], ok[q]
                    return tied_cells(means[i, j], stds[i, j], repeats[i, j], means[k, j], stds[k, j],
                                      repeats[k, j])

                ties = tie_groups(means[ok, j], stds[ok, j], goals[metric], tied=pair)
                first = [ok[k] for k in ties[0]]
                (best if len(first) == 1 else tied)[first, j] = True
                start = 0
                for group in ties:
                    ranks[[ok[k] for k in group], j] = start + (len(group) + 1) / 2
                    start += len(group)
            if failed:
                ranks[failed, j] = len(ok) + (len(failed) + 1) / 2
    return best, tied, ranks


def summary_table(rows: pd.DataFrame, goals: dict[str, str], metrics: list[str] | None = None,
                  index: Sequence[str] = DEFAULT_INDEX) -> TableData:
    """Aggregate tidy result rows into a :class:`TableData` with best flags and average ranks.

    ``goals`` maps every tabulated metric to ``"lower"`` or ``"higher"`` (is better). ``metrics``
    selects and orders the columns (default: every metric, in order of first appearance). Rows keep the
    order in which their index combination first appears. Aggregation over seeds, the best and tied-for-best
    flags (within each group of all index levels but ``model``, by the noise rule of :func:`tied_cells`:
    paired over the same resamples where the rows carry ``repeats``, else :func:`tied_within_noise`) and the
    ranks (1 = best, cells tied within noise share a rank, failed cells last, n/a unranked) follow the
    conventions of the module docstring.

    Raises ``ValueError`` for missing columns, unknown statuses or goals, an ``ok`` row without a value,
    ``repeats`` that do not average to their row's value, or two rows for the same (index, seed, metric) —
    e.g. rows of several tasks: tabulate one task at a time.
    """
    index = tuple(index)
    _check_rows(rows, index)
    present = list(dict.fromkeys(rows["metric"]))
    if metrics is None:
        metrics = present
    else:
        metrics = list(metrics)
        absent = [m for m in metrics if m not in present]
        if absent:
            raise ValueError(f"metric(s) {absent} not in the result rows (they have {present})")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metrics repeat a name: {metrics}")
    goals = _check_goals(metrics, goals)
    rows = rows[rows["metric"].isin(metrics)]
    keys_cols = [*index, "seed", "metric"]
    dup = rows.duplicated(subset=keys_cols, keep=False)
    if dup.any():
        first = rows[dup].iloc[0]
        where = ", ".join(f"{c}={first[c]!r}" for c in keys_cols)
        raise ValueError(f"{int(dup.sum())} result rows share their (index, seed, metric), e.g. {where}; "
                         "tabulate one task (and suite) at a time or add the distinguishing column to the index")

    row_keys = list(rows[list(index)].drop_duplicates().itertuples(index=False, name=None))
    row_pos = {key: i for i, key in enumerate(row_keys)}
    col_pos = {m: j for j, m in enumerate(metrics)}
    shape = (len(row_keys), len(metrics))
    means, stds, boots = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    status = np.full(shape, MISSING, dtype=object)
    notes = np.full(shape, "", dtype=object)
    n_seeds = np.zeros(shape, dtype=int)
    repeats = np.full(shape, None, dtype=object)
    for key, group in rows.groupby([*index, "metric"], sort=False):
        i, j = row_pos[tuple(key[:-1])], col_pos[key[-1]]
        means[i, j], stds[i, j], status[i, j], notes[i, j], n_seeds[i, j], boots[i, j] = _aggregate_cell(group)
        if status[i, j] == "ok":
            repeats[i, j] = _cell_repeats(group)

    groups: dict[tuple, list[int]] = {}
    for key, i in row_pos.items():
        group_key = tuple(v for name, v in zip(index, key) if name != "model")
        groups.setdefault(group_key, []).append(i)
    best, tied, ranks = _best_and_ranks(means, stds, status, groups.values(), metrics, goals, repeats)
    counts = (~np.isnan(ranks)).sum(axis=1)
    avg = np.where(counts > 0, np.nansum(ranks, axis=1) / np.maximum(counts, 1), np.nan)

    row_index = pd.MultiIndex.from_tuples(row_keys, names=list(index))

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=row_index, columns=metrics)

    return TableData(means=frame(means), stds=frame(stds), status=frame(status), notes=frame(notes),
                     best=frame(best), tied=frame(tied), ranks=frame(ranks), avg_rank=pd.Series(avg, index=row_index,
                                                                              name="avg. rank"),
                     n_seeds=frame(n_seeds), goals=goals, boot_stds=frame(boots),
                     has_repeats=frame(np.array([[r is not None for r in line] for line in repeats], dtype=bool)
                                         .reshape(shape)))


def paper_layout_table(rows: pd.DataFrame, goals: dict[str, str], dataset: str,
                       metrics: Sequence[str] = PAPER_METRICS, task: str | None = "generation") -> TableData:
    """The EnergyDiff Tables II-VII layout for one dataset: rows by resolution (ascending) then model.

    Columns are MMD, GFD, KL, WD, KS by default; best flags and ranks compare the models of one
    resolution. ``task`` keeps only that task's rows (``None`` keeps all). Otherwise identical to
    :func:`summary_table` with ``index=("resolution", "model")``.
    """
    if "dataset" not in rows.columns:
        raise ValueError("result rows lack the column 'dataset'")
    subset = rows[rows["dataset"] == dataset]
    if subset.empty:
        raise ValueError(f"no result rows for dataset {dataset!r}; have {sorted(set(rows['dataset']), key=str)}")
    if task is not None and "task" in subset.columns:
        subset = subset[subset["task"] == task]
        if subset.empty:
            raise ValueError(f"no result rows for task {task!r} on dataset {dataset!r}")
    subset = subset.sort_values("resolution", kind="mergesort")  # stable: models keep their order
    return summary_table(subset, goals, metrics=list(metrics), index=("resolution", "model"))


SETTING_SEPARATOR = " · "


def settings_as_columns(rows: pd.DataFrame, goals: dict[str, str], metrics: Sequence[str],
                        settings: Sequence[str] | None = None,
                        index: Sequence[str] = DEFAULT_INDEX) -> TableData:
    """A table with one row per model and the settings as column groups: column ``"<setting> · <metric>"``
    for every setting (default: in order of appearance) and metric, e.g. the unified-model paper's Table II
    (day-ahead and hour-ahead MAE / RMSE / MAPE side by side). Best flags and ranks compare the models of one
    (dataset, resolution) per column; the average rank runs over every column. Otherwise as
    :func:`summary_table`.
    """
    if "setting" not in rows.columns:
        raise ValueError("result rows lack the column 'setting'")
    metrics = list(metrics)
    present = list(dict.fromkeys(rows["setting"].fillna("").astype(str)))
    settings = present if settings is None else [s for s in settings if s in present]
    if not settings:
        raise ValueError(f"none of the settings {settings} is in the result rows (they have {present})")
    subset = rows[rows["setting"].isin(settings) & rows["metric"].isin(metrics)].copy()
    if subset.empty:
        raise ValueError(f"no result rows for metrics {metrics} in settings {settings}")
    subset["metric"] = subset["setting"].astype(str) + SETTING_SEPARATOR + subset["metric"].astype(str)
    columns = [f"{s}{SETTING_SEPARATOR}{m}" for s in settings for m in metrics]
    columns = [c for c in columns if c in set(subset["metric"])]
    wide_goals = {c: goals[c.split(SETTING_SEPARATOR, 1)[1]] for c in columns}
    return summary_table(subset.drop(columns="setting"), wide_goals, metrics=columns, index=index)


# ----------------------------------------------------------------------------------------------------------
# formatting


def format_value(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits; scientific notation when ``0 < |x| < 1e-3`` or ``|x| >= 1e6``.

    Fixed notation keeps trailing zeros so that a column reads at a constant precision (0.01230, 6.444);
    tiny values such as 8e-4 stay readable as ``8.000e-04`` instead of rounding to zero.
    """
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits}g}")  # rounding first keeps 9.99996 from printing as 10.000
    if abs(rounded) < 1e-3 or abs(rounded) >= 1e6:
        return f"{x:.{digits - 1}e}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:.{decimals}f}"


def _std_text(mean_text: str, std: float) -> str:
    if "e" in mean_text or "." not in mean_text:
        return format_value(std, 2)
    text = f"{std:.{len(mean_text.split('.')[1])}f}"
    return format_value(std, 2) if std != 0 and float(text) == 0 else text


def format_mean_std(mean: float, std: float, digits: int = 4, pm: str = "±", boot: float | None = None) -> str:
    """``mean ± std``: the mean via :func:`format_value`, the std at the mean's decimals when that shows it,
    else to two significant digits (so a std far below the mean's precision never prints as 0). A finite
    ``boot`` (the mean bootstrap std of a cell with several seeds) follows in parentheses, formatted like the
    std: ``mean ± std (boot)``."""
    text = format_value(mean, digits)
    if std is None or not math.isfinite(float(std)):
        return text
    out = f"{text} {pm} {_std_text(text, float(std))}"
    if boot is not None and math.isfinite(float(boot)):
        out += f" ({_std_text(text, float(boot))})"
    return out


def seed_note(table: TableData) -> str:
    """One sentence saying what the values and the ± of ``table`` are (depends on the seed counts)."""
    counts = sorted(set(table.n_seeds.to_numpy()[table.status.to_numpy() == "ok"].tolist()))
    if not counts or counts == [1]:
        return "Values are bootstrap means ± bootstrap std (one seed per cell)."
    boot = ("the number in parentheses is the mean over seeds of the bootstrap std (the evaluation noise "
            "alone)")
    if 1 not in counts:
        n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        return (f"Values are means over {n} seeds of the bootstrap means; ± is the std across seeds "
                f"(ddof = 1) and {boot}.")
    return ("Values are means over seeds of the bootstrap means; where a cell has several seeds, ± is the std "
            f"across seeds (ddof = 1) and {boot}; a cell with one seed shows the bootstrap std of that seed.")


TIE_MARK = "≈"  # after a cell tied for best within noise, in every rendering


def rank_note(table: TableData) -> str:
    """The sentences saying how best marks, ties within noise and average ranks are computed."""
    group = f"within each ({', '.join(table.group_levels)}) group" if table.group_levels else "in the table"
    unpaired = ("a ± s and b ± t are within noise when |a - b| <= sqrt(s² + t²), with the ± shown (a value "
                "without ± compares exactly)")
    paired = table.has_repeats is not None and bool(table.has_repeats.to_numpy().any())
    if paired:
        noise = ("Two values a and b are within noise when |D| <= sqrt(V), paired over the same bootstrap "
                 "resamples: per seed, d = a - b repeat by repeat, D = the mean of d over repeats and seeds, V = "
                 "the mean over seeds of the variance of d across repeats + the variance across seeds of the "
                 "per-seed mean of d (ddof = 1; no seed term with one seed), so the resample noise both share "
                 "cancels and the seed variance of the difference counts. Where a value has no per-repeat values "
                 f"(or the seeds or repeat counts differ), {unpaired}.")
    else:
        noise = (f"Two values {unpaired}; no per-repeat values are stored for this table, so the comparison is "
                 "unpaired.")
    return (f"Per metric {group}: bold = best beyond noise (the best value, and no other value within noise of "
            f"it); {TIE_MARK} = tied for best within noise (the best value and every value within noise of it, "
            f"none in bold). {noise} avg. rank = mean rank over the metrics within "
            "the same group (1 = best; values within noise of the best remaining value share the mean of their "
            "positions; failed cells rank last, n/a cells are not ranked).")


def _row_label(table: TableData, key: tuple) -> str:
    named = dict(zip(table.index_names, key))
    rest = ", ".join(f"{k}={v}" for k, v in named.items() if k != "model")
    return f"{named['model']} ({rest})" if rest else str(named["model"])


def _cells(table: TableData, pm: str, bold: Callable[[str], str], tie: Callable[[str], str],
           failed: Callable[[int], str], missing: str) -> tuple[list[list[str]], list[tuple[str, list[str]]]]:
    """Metric and avg. rank cell texts per row, plus footnotes (reason, affected rows) numbered from 1."""
    footnotes: dict[str, list[str]] = {}
    body = []
    means, stds = table.means.to_numpy(), table.stds.to_numpy()
    status, notes, best = table.status.to_numpy(), table.notes.to_numpy(), table.best.to_numpy()
    tied, n_seeds = table.tied.to_numpy(), table.n_seeds.to_numpy()
    # several seeds: the ± is the seed std, the mean bootstrap std follows in parentheses (seed_note)
    boots = table.boot_stds.to_numpy() if table.boot_stds is not None else np.full(means.shape, np.nan)
    for i, key in enumerate(table.means.index):
        key = key if isinstance(key, tuple) else (key,)
        line = []
        for j in range(len(table.metrics)):
            if status[i, j] == "ok":
                text = format_mean_std(means[i, j], stds[i, j], pm=pm,
                                       boot=boots[i, j] if n_seeds[i, j] > 1 else None)
                line.append(bold(text) if best[i, j] else tie(text) if tied[i, j] else text)
            elif status[i, j] == "failed":
                reason = notes[i, j] or "no reason given"
                labels = footnotes.setdefault(reason, [])
                label = _row_label(table, key)
                if label not in labels:
                    labels.append(label)
                line.append(failed(list(footnotes).index(reason) + 1))
            elif status[i, j] == "n/a":
                line.append("n/a")
            else:
                line.append(missing)
        rank = table.avg_rank.iloc[i]
        line.append(missing if math.isnan(rank) else f"{rank:.2f}")
        body.append(line)
    return body, list(footnotes.items())


def _index_texts(table: TableData, escape: Callable[[str], str]) -> list[list[str]]:
    out = []
    for key in table.means.index:
        key = key if isinstance(key, tuple) else (key,)
        out.append([escape(str(v)) for v in key])
    return out


def _caption_text(table: TableData, caption: str) -> str:
    caption = caption.strip()
    if caption and not caption.endswith((".", "!", "?")):
        caption += "."
    return " ".join(part for part in (caption, seed_note(table), rank_note(table)) if part)


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|")  # a bare pipe would split the cell


def to_markdown(table: TableData, caption: str) -> str:
    """GitHub-flavoured markdown: caption (with the seed and rank conventions), the table, footnotes.

    Cells read ``mean ± std`` (``mean ± seed std (mean bootstrap std)`` for a cell with several seeds); a
    cell best beyond noise is in ``**bold**``, cells tied for best within noise
    end in `` ≈`` (:data:`TIE_MARK`; the caption states the rule); failed cells read
    ``failed [k]`` with footnote ``[k]`` giving the reason and the affected rows; n/a cells read ``n/a``.
    """
    body, footnotes = _cells(table, pm="±", bold=lambda t: f"**{t}**", tie=lambda t: f"{t} {TIE_MARK}",
                             failed=lambda k: f"failed [{k}]", missing="–")
    headers = [*table.index_names,
               *[f"{m} {ARROWS[table.goals[m]]}".rstrip() for m in table.metrics], "avg. rank"]
    n_index = len(table.index_names)
    grid = tabulate([idx + line for idx, line in zip(_index_texts(table, _markdown_escape), body)], headers=headers,
                    tablefmt="github", disable_numparse=True,
                    colalign=("left",) * n_index + ("right",) * (len(headers) - n_index))
    parts = [_caption_text(table, caption), "", grid]
    if footnotes:
        parts.append("")
        parts += [f"- [{k}] failed: {reason} — {'; '.join(labels)}"
                  for k, (reason, labels) in enumerate(footnotes, start=1)]
    return "\n".join(parts) + "\n"


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   # in LaTeX's default text font encoding these print as other glyphs (¡, ¿, —)
                   "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in plain text; ``±`` becomes ``$\\pm$``, ``≈`` ``$\\approx$``, ``²``
    ``\\textsuperscript{2}`` and `` `code` `` becomes ``\\texttt{code}``."""
    text = _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], str(text))
    text = text.replace("±", r"$\pm$").replace("≈", r"$\approx$").replace("²", r"\textsuperscript{2}")
    text = text.replace("–", "--").replace("—", "---")
    return re.sub(r"`([^`]*)`", r"\\texttt{\1}", text)


def to_latex(table: TableData, caption: str) -> str:
    """A LaTeX ``table`` environment (tabulate ``latex_raw``): cells best beyond noise in ``\\textbf{...}``,
    cells tied for best within noise followed by ``$\\approx$``, ± as ``$\\pm$`` (the mean bootstrap std in
    parentheses after it for a cell with several seeds, as in :func:`to_markdown`), failed cells as
    ``failed$^{k}$`` with the reasons below the tabular."""
    body, footnotes = _cells(table, pm=r"$\pm$", bold=lambda t: rf"\textbf{{{t}}}", tie=lambda t: rf"{t} $\approx$",
                             failed=lambda k: rf"failed$^{{{k}}}$", missing="--")
    headers = [*(latex_escape(n) for n in table.index_names),
               *[latex_escape(m) + LATEX_ARROWS[table.goals[m]]
                 for m in table.metrics], "avg. rank"]
    n_index = len(table.index_names)
    grid = tabulate([idx + line for idx, line in zip(_index_texts(table, latex_escape), body)], headers=headers,
                    tablefmt="latex_raw", disable_numparse=True,
                    colalign=("left",) * n_index + ("right",) * (len(headers) - n_index))
    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(_caption_text(table, caption))}}}",
             grid]
    if footnotes:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [rf"$^{{{k}}}$ failed: {latex_escape(reason)} --- {latex_escape('; '.join(labels))}\\"
                  for k, (reason, labels) in enumerate(footnotes, start=1)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: TableData, path: str | Path) -> Path:
    """Write a wide CSV: the index columns, ``<metric>_mean``, ``<metric>_std`` and ``<metric>_boot_std`` (the
    mean bootstrap std over seeds, equal to the std for one seed) per metric (numeric, empty where not ``ok``),
    ``avg_rank``, then ``<metric>_status`` per metric. Returns the path.

    Read it back with ``pd.read_csv(path, keep_default_na=False, na_values=[""])`` so that the status
    ``n/a`` stays a string rather than becoming NaN.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = table.means.index.to_frame(index=False)
    for metric in table.metrics:
        frame[f"{metric}_mean"] = table.means[metric].to_numpy(dtype=float)
        frame[f"{metric}_std"] = table.stds[metric].to_numpy(dtype=float)
        boots = table.boot_stds[metric] if table.boot_stds is not None else table.stds[metric].where(
            table.n_seeds[metric] == 1)
        frame[f"{metric}_boot_std"] = boots.to_numpy(dtype=float)
    frame["avg_rank"] = table.avg_rank.to_numpy(dtype=float)
    for metric in table.metrics:
        frame[f"{metric}_status"] = table.status[metric].to_numpy()
    frame.to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------------------------------------
# across tables


def normalised_ranks(table: TableData) -> pd.DataFrame:
    """Each rank of ``table`` mapped to [0, 1] within its (group, metric): ``(rank - 1) / (n - 1)`` with ``n`` the
    number of ranked cells there (0 = best, 1 = worst; NaN where unranked or where only one cell is ranked), so
    that groups of different sizes (9 models here, 3 there) weigh alike."""
    ranks = table.ranks
    levels = table.group_levels
    if levels:
        counts = ranks.notna().groupby(level=levels, sort=False).transform("sum")
    else:
        counts = pd.DataFrame(np.broadcast_to(ranks.notna().sum().to_numpy(), ranks.shape), index=ranks.index,
                              columns=ranks.columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ranks - 1) / (counts - 1)
    return out.where(counts > 1)


def rank_summary(tables_by_task: dict[str, TableData]) -> pd.DataFrame:
    """One row per model over several task tables: per task the mean rank of :func:`normalised_ranks` (0 = best
    in every ranked cell, 1 = worst), then ``overall`` (the mean over the tasks where the model is ranked, so
    each task weighs alike), ``best`` (how many cells it is best in beyond noise), ``tied`` (how many cells it is
    tied for best in within noise) and ``ranked`` (how many cells rank it). The ranks are the tables' own, so
    cells tied within noise share a rank here too (module docstring, **Ranks**).

    Models keep their order of first appearance; ``overall`` sorts nothing, a reader sorts as they need.
    """
    per_task: dict[str, pd.Series] = {}
    best: dict[str, pd.Series] = {}
    tied: dict[str, pd.Series] = {}
    ranked: dict[str, pd.Series] = {}
    for task, table in tables_by_task.items():
        norm = normalised_ranks(table)
        model = norm.index.get_level_values("model")
        per_task[task] = norm.stack().groupby(level="model", sort=False).mean() if norm.notna().any().any() \
            else pd.Series(np.nan, index=pd.Index(dict.fromkeys(model), name="model"))
        best[task] = table.best.astype(int).sum(axis=1).groupby(level="model", sort=False).sum()
        tied[task] = table.tied.astype(int).sum(axis=1).groupby(level="model", sort=False).sum()
        ranked[task] = table.ranks.notna().sum(axis=1).groupby(level="model", sort=False).sum()
    models = list(dict.fromkeys(m for s in [*per_task.values(), *ranked.values()] for m in s.index))
    frame = pd.DataFrame({task: s.reindex(models) for task, s in per_task.items()}, index=pd.Index(models,
                                                                                                name="model"))
    frame["overall"] = frame.mean(axis=1, skipna=True)
    frame["best"] = sum(s.reindex(models, fill_value=0) for s in best.values()).astype(int)
    frame["tied"] = sum(s.reindex(models, fill_value=0) for s in tied.values()).astype(int)
    frame["ranked"] = sum(s.reindex(models, fill_value=0) for s in ranked.values()).astype(int)
    return frame


def rank_summary_markdown(summary: pd.DataFrame) -> str:
    """The :func:`rank_summary` frame as a GitHub markdown table under a caption saying how to read it."""
    counts = ("best", "tied", "ranked")
    tasks = [c for c in summary.columns if c not in ("overall", *counts)]
    rows = [[str(model), *("–" if math.isnan(v) else f"{v:.2f}" for v in summary.loc[model, [*tasks, "overall"]]),
             *(str(summary.loc[model, c]) for c in counts)] for model in summary.index]
    best_overall = summary["overall"].min()
    rows = [[f"**{r[0]}**" if summary.loc[m, "overall"] == best_overall else r[0], *r[1:]]
            for r, m in zip(rows, summary.index)]
    caption = ("Rank summary across metrics: per task, the mean normalised rank of each model over every ranked "
               "cell of the task's table ((rank - 1) / (n - 1) within a dataset / resolution / setting group and "
               "metric: 0 = best everywhere, 1 = worst; values tied within noise share a rank, as in the tables); "
               "overall = mean over the tasks where the model is ranked; best = cells where it is best "
               "beyond noise (bold in the tables); tied = cells where it is tied for best within noise (≈); "
               "ranked = cells where it is ranked. Lowest overall in bold.")
    grid = tabulate(rows, headers=["model", *tasks, "overall", *counts], tablefmt="github",
                    disable_numparse=True, colalign=("left",) + ("right",) * (len(tasks) + 1 + len(counts)))
    return f"{caption}\n\n{grid}\n"
