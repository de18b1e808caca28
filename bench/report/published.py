"""The source papers' published numbers (``published.csv``) and a side-by-side comparison with meterbench.

``published.csv`` holds one row per number printed in the result tables of the EnergyDiff paper (Tables
II-VII, unconditional generation; Tables VIII-IX, computation cost) and of the unified-model paper (Table II,
forecasting and anomaly detection), and per number its text states for a figure (table ``"Fig. 5 (text)"``:
imputation, Figs. 6-7: ablation and sensitivity) or restates from a table (``"Table II (text)"``), transcribed
as printed, with meterbench's names for task, dataset, setting, model and metric. The SmartMeterFM summary
prints no result table, so that paper has no rows yet. Columns:

``paper, table, page, task, dataset, resolution, setting, model, paper_model, metric, value, std, unit, note``

* ``page`` is a section (``"Sec. V-A1"``) where the text rendering of the paper prints no page number (the
  ``note`` says so);
* ``model`` is the meterbench model name (a registry name, with a post-processing suffix such as
  ``energydiff+C``) when the paper's model is one of ours, else empty; ``paper_model`` is the printed name
  (EnergyDiff's ``GAN`` is ``gan``, trained without a gradient penalty as in its code; ``wgan-gp`` has no
  published counterpart);
* ``value`` is empty where the paper prints no number (``***``: the model did not converge); the ``note``
  then says why; ``std`` is the printed ± (empty where none is printed);
* MAPE is stored as a fraction (the papers print percent; ``unit`` says so), the EnergyDiff MMD under the
  metric name ``MMD_paper`` (the estimator of its code, see :mod:`metrics.registry`);
* cost numbers, which meterbench records per cell but does not score, use the names of :data:`EXTRA_METRICS`
  (times in seconds whatever the printed unit, which ``unit`` gives); no result row carries these names, so
  :func:`compare` never matches them;
* a bound (the text's "within 0.3 kW", the table's "<10 s") is stored as the number, and the ``note`` says
  that it is a bound; there is no column for it.

Typical use on the tidy rows of a run::

    published = published_for(load_published(), "wpuq", kind="heatpump")
    print(comparison_markdown(compare(rows, published)))
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PUBLISHED_CSV = Path(__file__).with_name("published.csv")

COLUMNS = ("paper", "table", "page", "task", "dataset", "resolution", "setting", "model", "paper_model",
           "metric", "value", "std", "unit", "note")
PAPERS = ("energydiff", "smartmeterfm", "unified")
PAPER_TITLES = {
    "energydiff": "EnergyDiff: Universal Time-Series Energy Data Generation using Diffusion Models (Lin et al.)",
    "smartmeterfm": "SmartMeterFM: Unifying Smart Meter Data Generative Tasks Using Flow Matching Models",
    "unified": "A Unified Model for Smart Meter Data Applications (Wang et al.)",
}
# datasets the papers used that meterbench has no loader for under one name (EnergyDiff's Table VIII pools every
# dataset of its Tables II-VII at a resolution: WPuQ and CoSSMic at 1 min, LCL as well at 1 h)
EXTRA_DATASETS = ("cer+lcl", "wpuq+cossmic", "wpuq+lcl+cossmic")
EXTRA_METRICS: dict[str, str] = {
    "fit_seconds": "wall time of training (fitting) one model, in seconds",
    "sample_seconds": "wall time of generating the samples (EnergyDiff: 4000 profiles), in seconds",
    "converged_fraction": "share of the pooled datasets on which the model converged, a fraction",
    "forward_ms": "one forward pass of a training batch, in milliseconds",
    "backward_ms": "one backward pass of a training batch, in milliseconds",
    "total_ms": "one forward and one backward pass of a training batch, in milliseconds",
    "peak_gpu_gib": "peak GPU memory of a training step, in GiB",
    "train_seconds_per_100": "training time of one round per 100 samples (the unified paper's Fig. 7), in seconds",
}
"""Names for the papers' computation-cost numbers, which are no scored metric of :mod:`metrics.registry`."""
KEY = ("paper", "table", "task", "dataset", "resolution", "setting", "paper_model", "metric")
"""The columns that identify one published number."""
JOIN_KEY = ("task", "dataset", "resolution", "setting", "model", "metric")
"""The columns on which meterbench's result rows meet the published ones."""
ROW_COLUMNS = ("task", "dataset", "resolution", "setting", "model", "metric", "value", "std", "status")
_TEXT_COLUMNS = ("paper", "table", "page", "task", "dataset", "setting", "model", "paper_model", "metric", "unit",
                 "note")

# Why a comparison is not a reproduction, per paper (the caption of comparison_markdown repeats these).
PROTOCOL_NOTES = {
    "energydiff": (
        "EnergyDiff trained paper-size models (e.g. 100k steps for the diffusion model), fitted its min-max "
        "scaling on all splits (max = 1.1 x data max), pooled the households and split the days of each month "
        "50/25/25, generated 4000 profiles per model and scored 10 bootstrap halves in the scaled [-1, 1] space; "
        "its MMD is the estimator of its code (MMD_paper)"),
    "unified": (
        "the unified paper pre-trained on about 3 million CER + LCL days, fine-tuned on a 6:2:2 split of the "
        "rest, reports the mean of 5 runs without ±, and prints MAE > RMSE in every forecasting row (its RMSE "
        "column has the size of the MSE in kW², which meterbench reports as MSE)"),
    "smartmeterfm": ("SmartMeterFM used monthly profiles (15 min in its summary, LCL at 30 min in its public "
                     "code), split each month's profiles 50/25/25 with households pooled, and its own guidance "
                     "settings"),
}


@dataclass(frozen=True)
class TableSource:
    """What data one published table comes from.

    Attributes:
        description: one line naming the data.
        loader_options: the meterbench loader options that read these data (``{}`` when the dataset name alone
            says it), or None when no meterbench loader setting reads them.
    """

    description: str
    loader_options: dict | None = field(default_factory=dict)


TABLE_SOURCES: dict[tuple[str, str], TableSource] = {
    ("energydiff", "Table II"): TableSource("WPuQ household heat pumps", {"kind": "heatpump"}),
    # LCL: the EnergyDiff code keeps only the Std-tariff households. This is the only LCL table, so no loader
    # option is needed to tell tables apart; the description says what the paper used, not what a run reads.
    ("energydiff", "Table III"): TableSource("LCL households (the paper's code keeps only the Std tariff)", {}),
    ("energydiff", "Table IV"): TableSource("CoSSMic residential electricity",
                                            {"feed": "grid_import", "kind": "residential"}),
    ("energydiff", "Table V"): TableSource("CoSSMic residential PV", {"feed": "pv", "kind": "residential"}),
    ("energydiff", "Table VI"): TableSource("WPuQ transformer-level electricity", {"kind": "transformer"}),
    ("energydiff", "Table VII"): TableSource("WPuQ transformer-level PV", {"kind": "pv"}),
    # Table VIII pools every dataset of Tables II-VII at 1 min and 1 h (dataset wpuq+cossmic / wpuq+lcl+cossmic)
    ("energydiff", "Table VIII"): TableSource("all EnergyDiff datasets at 1 min and 1 h (computation cost)", None),
    ("energydiff", "Table IX"): TableSource("WPuQ household heat pumps at 1 min (one EnergyDiff training step)",
                                            {"kind": "heatpump"}),
    ("unified", "Table II"): TableSource("CER + LCL daily profiles (30 min)", {}),
}


def _known_tasks() -> tuple[str, ...]:
    from bench.tasks import TASKS

    return tuple(TASKS.names())


def _known_metrics() -> tuple[str, ...]:
    from metrics.registry import METRICS

    return (*METRICS.names(), *EXTRA_METRICS)


def _known_datasets() -> tuple[str, ...]:
    from bench.data.loaders import DATASETS

    return (*DATASETS, *EXTRA_DATASETS)


def _bad(where: str, index, column: str, value, expected: str) -> ValueError:
    return ValueError(f"{where}, row {index}: column {column!r} has {value!r}; expected {expected}")


def _as_number(where: str, index, column: str, value, *, allow_empty: bool) -> float:
    """A finite float from a CSV cell or a number; NaN for an empty cell when ``allow_empty``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                              and not value.strip()):
        if allow_empty:
            return math.nan
        raise _bad(where, index, column, value, "a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(where, index, column, value, "a number") from None
    if not math.isfinite(number):
        raise _bad(where, index, column, value, "a finite number")
    return number


def validate_published(frame: pd.DataFrame, where: str = "published numbers") -> pd.DataFrame:
    """Check a frame of published numbers and return a typed copy (``resolution`` int, ``value``/``std``
    float with NaN where empty, text columns str with ``""`` where empty).

    Raises:
        ValueError: naming ``where``, the row and the column: a missing column, an unknown paper, task, dataset
            (meterbench's or :data:`EXTRA_DATASETS`) or metric (meterbench's or :data:`EXTRA_METRICS`), a
            non-numeric value or std, a negative std, a resolution that is not a positive whole
            number of minutes, an empty value without a note saying why, an empty table or page, or two rows
            with the same :data:`KEY`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; required: {list(COLUMNS)}")
    out = frame.copy()
    for column in _TEXT_COLUMNS:
        out[column] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                       for v in out[column]]
    allowed = {"paper": PAPERS, "task": _known_tasks(), "dataset": _known_datasets(), "metric": _known_metrics()}
    for column, known in allowed.items():
        bad = ~out[column].isin(known)
        if bad.any():
            index = out.index[bad][0]
            raise _bad(where, index, column, out.at[index, column], f"one of {sorted(known)}")
    for column in ("table", "page", "paper_model", "unit"):
        empty = out[column].str.strip() == ""
        if empty.any():
            raise _bad(where, out.index[empty][0], column, "", "a non-empty text")
    resolutions, values, stds = [], [], []
    for index, row in out.iterrows():
        res = _as_number(where, index, "resolution", row["resolution"], allow_empty=False)
        if res <= 0 or res != int(res):
            raise _bad(where, index, "resolution", row["resolution"], "a positive whole number of minutes")
        value = _as_number(where, index, "value", row["value"], allow_empty=True)
        if math.isnan(value) and not row["note"].strip():
            raise _bad(where, index, "value", row["value"], "a number, or a note saying why there is none")
        std = _as_number(where, index, "std", row["std"], allow_empty=True)
        if std < 0:
            raise _bad(where, index, "std", row["std"], "a non-negative number")
        resolutions.append(int(res))
        values.append(value)
        stds.append(std)
    out["resolution"] = np.array(resolutions, dtype=int)
    out["value"] = np.array(values, dtype=float)
    out["std"] = np.array(stds, dtype=float)
    duplicated = out.duplicated(list(KEY), keep=False)
    if duplicated.any():
        first = out[duplicated].iloc[0]
        rows = list(out.index[duplicated & (out[list(KEY)] == first[list(KEY)]).all(axis=1)])
        raise ValueError(f"{where}: rows {rows} repeat the same published number "
                         f"{dict(zip(KEY, first[list(KEY)].tolist()))}")
    return out.reset_index(drop=True)


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """The published numbers (default: the ``published.csv`` next to this module), validated and typed.

    Row labels in error messages are CSV line numbers (the header is line 1).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: see :func:`validate_published`.
    """
    path = Path(PUBLISHED_CSV if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"published numbers file not found: {path}")
    # everything as text first: empty cells must stay "" (not NaN) and numbers must not be guessed
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.index = frame.index + 2  # CSV line numbers in error messages
    return validate_published(frame, where=str(path))


def _loader_defaults(dataset: str) -> dict:
    from bench.data.loaders import DATASETS

    if dataset not in DATASETS:
        return {}
    params = inspect.signature(DATASETS[dataset].loader).parameters.values()
    return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}


def published_for(published: pd.DataFrame, dataset: str, **options) -> pd.DataFrame:
    """``published`` without the tables of ``dataset`` whose data the loader options ``options`` do not read.

    Several published tables can share a meterbench dataset name (the WPuQ heat-pump and transformer tables
    are both ``wpuq``); a run's rows carry only the name, so :func:`compare` needs the published rows narrowed
    to the matching table first. Options not given take the loader's defaults, e.g.
    ``published_for(p, "wpuq", kind="heatpump")`` keeps EnergyDiff's Table II and drops Tables VI and VII,
    ``published_for(p, "wpuq", kind="pv")`` keeps only Table VII, and ``published_for(p, "wpuq")``
    (households, the loader default) drops all three. A table with no
    meterbench loader setting (:data:`TABLE_SOURCES` entry None) is dropped; rows of other datasets and
    tables without a :data:`TABLE_SOURCES` entry are kept.

    Raises:
        ValueError: an option that the dataset's loader does not take.
    """
    defaults = _loader_defaults(dataset)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"options: {unknown} are not options of the {dataset!r} loader; known: "
                         f"{sorted(defaults) or 'none'}")
    chosen = {**defaults, **options}

    def keep(paper: str, table: str) -> bool:
        source = TABLE_SOURCES.get((paper, table))
        if source is None:
            return True
        if source.loader_options is None:
            return False
        return all(chosen.get(k) == v for k, v in source.loader_options.items())

    mask = [d != dataset or keep(p, t) for d, p, t in zip(published["dataset"], published["paper"],
                                                          published["table"])]
    return published[np.array(mask, dtype=bool)].reset_index(drop=True)


def _prepare_rows(rows: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"rows must be a pandas DataFrame, got {type(rows).__name__}")
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"rows: missing column(s) {missing}; required: {list(ROW_COLUMNS)}")
    out = rows.copy()
    out["setting"] = out["setting"].fillna("").astype(str)  # a CSV read with defaults turns "" into NaN
    out["status"] = out["status"].fillna("n/a").astype(str)  # ... and the status "n/a" into NaN
    if "note" not in out.columns:
        out["note"] = ""
    out["note"] = out["note"].fillna("").astype(str)
    try:
        out["resolution"] = out["resolution"].astype(int)
    except (TypeError, ValueError):
        raise ValueError(f"rows: column 'resolution' must hold whole minutes, got "
                         f"{sorted(set(rows['resolution'].astype(str)))[:5]}") from None
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    out["std"] = pd.to_numeric(out["std"], errors="coerce")
    return out


def _aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per :data:`JOIN_KEY`, over seeds with the convention of :mod:`bench.report.tables`: the mean of
    the per-seed values; ± the bootstrap std for one seed and the sample std of the per-seed values for
    several; failed when any seed failed."""
    per_seed = [*JOIN_KEY, "seed"] if "seed" in rows.columns else list(JOIN_KEY)
    repeated = rows.duplicated(per_seed, keep=False)
    if repeated.any():
        first = rows[repeated].iloc[0]
        raise ValueError(f"rows: several result rows for {dict(zip(per_seed, first[per_seed].tolist()))} "
                         "(rows of several suites or runs?); pass the rows of one run")
    records = []
    for key, group in rows.groupby(list(JOIN_KEY), sort=False):
        status = group["status"]
        notes = "; ".join(dict.fromkeys(n for n in group["note"] if n.strip()))
        n = len(group)
        if (status == "ok").all():
            values = group["value"].to_numpy(dtype=float)
            value = float(values.mean())
            std = float(group["std"].iloc[0]) if n == 1 else float(values.std(ddof=1))
            state = "ok"
        else:
            value, std = math.nan, math.nan
            state = "failed" if (status == "failed").any() else "n/a"
        records.append({**dict(zip(JOIN_KEY, key)), "ours": value, "ours_std": std, "n_seeds": n,
                        "status": state, "ours_note": notes})
    return pd.DataFrame.from_records(records, columns=[*JOIN_KEY, "ours", "ours_std", "n_seeds", "status",
                                                      "ours_note"])


COMPARE_COLUMNS = ("source", "table", "page", "task", "dataset", "paper_dataset", "resolution", "setting", "model",
                   "paper_model", "metric", "unit", "ours", "ours_std", "n_seeds", "status", "paper", "paper_std",
                   "diff", "rel_diff", "ours_note", "paper_note")


def compare(rows: pd.DataFrame, published: pd.DataFrame, *, datasets: Mapping[str, str] | None = None
            ) -> pd.DataFrame:
    """meterbench's result rows side by side with the published numbers of the same cell.

    Args:
        rows: tidy result rows (columns ``task, dataset, resolution, setting, model, metric, value, std,
            status``; ``seed`` and ``note`` optional), e.g. a run's ``results.csv``. Several seeds of a cell
            are combined as in :mod:`bench.report.tables`.
        published: published numbers (:func:`load_published`, narrowed with :func:`published_for` where
            several tables share a dataset name).
        datasets: our dataset name -> the published dataset name to compare with, for data that differ
            knowingly, e.g. ``{"lcl": "cer+lcl"}`` to set an LCL run beside the unified paper's CER + LCL
            numbers. Unmapped names compare with the same name.

    Returns:
        One line per published number of a meterbench model that has a matching result row (other rows on
        either side are left out), columns :data:`COMPARE_COLUMNS`: the source (``source`` = paper, ``table``,
        ``page``), the cell, ``ours``/``ours_std`` (NaN unless ``status`` is ``ok``), ``paper``/``paper_std``,
        ``diff = ours - paper`` and ``rel_diff = diff / |paper|`` (NaN where the paper value is 0 or missing),
        in the order of ``published``.

    Raises:
        ValueError: missing columns, repeated result rows, or a result row that matches numbers of more than
            one published table (narrow ``published`` with :func:`published_for`).
    """
    ours = _aggregate(_prepare_rows(rows))
    pub = validate_published(published)
    pub = pub[pub["model"] != ""].reset_index(drop=True)
    mapping = dict(datasets or {})
    ours["paper_dataset"] = [mapping.get(d, d) for d in ours["dataset"]]
    pub = pub.assign(_order=np.arange(len(pub))).rename(columns={
        "paper": "source", "dataset": "paper_dataset", "value": "paper", "std": "paper_std", "note": "paper_note"})
    on = ["task", "paper_dataset", "resolution", "setting", "model", "metric"]
    merged = ours.merge(pub, on=on, how="inner")
    for key, group in merged.groupby(list(JOIN_KEY), sort=False):
        sources = sorted(set(zip(group["source"], group["table"])))
        if len(sources) > 1:
            raise ValueError(f"the result row {dict(zip(JOIN_KEY, key))} matches numbers of several published "
                             f"tables {sources}: narrow the published rows to the data of the run with "
                             f"published_for(published, {key[1]!r}, **loader_options)")
    merged = merged.sort_values("_order", kind="stable").reset_index(drop=True)
    merged["diff"] = merged["ours"] - merged["paper"]
    scale = merged["paper"].abs().where(merged["paper"] != 0)
    merged["rel_diff"] = merged["diff"] / scale
    return merged[list(COMPARE_COLUMNS)]


def _fmt(value: float, std: float, digits: int) -> str:
    from bench.report.tables import format_mean_std

    if value is None or not math.isfinite(float(value)):
        return "–"
    return format_mean_std(value, std, digits=digits)


def _printed(value: float, std: float) -> str:
    # published numbers keep all their printed digits (".10g" drops only trailing zeros)
    text = f"{value:.10g}"
    return text if not math.isfinite(float(std)) else f"{text} ± {std:.10g}"


def _fmt_rel(x: float) -> str:
    return "–" if not math.isfinite(float(x)) else f"{100 * x:+.1f}%"


def _check_compare_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in COMPARE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing column(s) {missing}; pass the output of compare()")


def comparison_markdown(frame: pd.DataFrame, digits: int = 4, note: str = "") -> str:
    """A GitHub markdown table of :func:`compare`'s output, one line per number, under a caption that says
    where the published numbers come from and how the setups differ (data, size, protocol); ``note`` is
    appended to the caption (e.g. the model profile of the run). Our values have ``digits`` significant
    digits, published ones all their printed digits."""
    from tabulate import tabulate

    from bench.report.tables import format_value

    _check_compare_frame(frame)
    parts = ["Published numbers beside meterbench's."]
    for source, group in frame.groupby("source", sort=False):
        where = ", ".join(f"{t} ({p})" for t, p in dict.fromkeys(zip(group["table"], group["page"])))
        percent = " (MAPE as a fraction, printed in percent)" if (group["metric"] == "MAPE").any() else ""
        parts.append(f"Paper: {PAPER_TITLES.get(source, source)}, {where}, values as printed{percent}.")
        if source in PROTOCOL_NOTES:
            parts.append(f"Not a reproduction: {PROTOCOL_NOTES[source]}.")
    other = frame[frame["dataset"] != frame["paper_dataset"]]
    for ours_name, paper_name in dict.fromkeys(zip(other["dataset"], other["paper_dataset"])):
        parts.append(f"Different data: ours on {ours_name}, the paper on {paper_name}.")
    parts.append("Ours come from meterbench's household split, its data caps (max_train / max_eval) and the "
                 "run's model profile, so data size and training budget differ as well.")
    parts.append("diff = ours - paper; rel. diff = diff / |paper|; ± is a bootstrap std (ours with one seed, "
                 "EnergyDiff) or the std over seeds.")
    if note:
        parts.append(note.strip())
    caption = " ".join(parts)
    if frame.empty:
        return caption + "\n\nNo published number matches these results.\n"
    lines = []
    for _, r in frame.iterrows():
        ours = _fmt(r["ours"], r["ours_std"], digits) if r["status"] == "ok" else r["status"]
        if math.isfinite(r["paper"]):
            paper = _printed(r["paper"], r["paper_std"])
        else:  # the paper printed no number; its note says why
            paper = "not converged" if "not converged" in r["paper_note"] else "none printed"
        diff = format_value(r["diff"], digits) if math.isfinite(r["diff"]) else "–"
        lines.append([f"{r['source']} {r['table']}", r["task"], r["dataset"], str(r["resolution"]), r["setting"],
                      r["model"], r["metric"], ours, paper, diff, _fmt_rel(r["rel_diff"])])
    headers = ["source", "task", "dataset", "res. (min)", "setting", "model", "metric", "ours", "paper", "diff",
               "rel. diff"]
    escaped = [[str(c).replace("|", "\\|") for c in line] for line in lines]
    grid = tabulate(escaped, headers=headers, tablefmt="github", disable_numparse=True,
                    colalign=("left",) * 7 + ("right",) * 4)
    return f"{caption}\n\n{grid}\n"


def side_by_side_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """:func:`compare`'s output in the papers' layout: one markdown table per published table, a row per
    (dataset, resolution, setting, model) as the paper orders them, a column per metric reading
    ``ours / paper (rel. diff)`` (means only; the ± are in :func:`comparison_markdown`'s table)."""
    from tabulate import tabulate

    from bench.report.tables import format_value

    _check_compare_frame(frame)
    parts = []
    for (source, table), group in frame.groupby(["source", "table"], sort=False):
        metrics = list(dict.fromkeys(group["metric"]))
        keys = ["dataset", "resolution", "setting", "model"]
        with_setting = group["setting"].fillna("").astype(str).str.len().gt(0).any()
        shown = keys if with_setting else [k for k in keys if k != "setting"]
        lines = []
        for key, rows in group.groupby(keys, sort=False):
            by_metric = {r["metric"]: r for _, r in rows.iterrows()}
            cells = []
            for metric in metrics:
                r = by_metric.get(metric)
                if r is None:
                    cells.append("")
                    continue
                ours = format_value(r["ours"], digits) if r["status"] == "ok" else r["status"]
                paper = _printed(r["paper"], math.nan) if math.isfinite(r["paper"]) else "–"
                rel = f" ({_fmt_rel(r['rel_diff'])})" if math.isfinite(r["rel_diff"]) else ""
                cells.append(f"{ours} / {paper}{rel}")
            lines.append([str(v) for k, v in zip(keys, key) if k in shown] + cells)
        headers = ["res. (min)" if k == "resolution" else k for k in shown] + metrics
        grid = tabulate([[c.replace("|", "\\|") for c in line] for line in lines], headers=headers,
                        tablefmt="github", disable_numparse=True,
                        colalign=("left",) * len(shown) + ("right",) * len(metrics))
        title = f"{PAPER_TITLES.get(source, source)}, {table}"
        parts.append(f"{title}: each cell reads ours / paper (rel. diff = (ours - paper) / |paper|).\n\n{grid}\n")
    return "\n".join(parts) if parts else "No published number matches these results.\n"
