"""What a score costs: seconds, model size and peak memory per model, beside its quality, and the Pareto front.

Every computed cell stores its fit and sample seconds (the task's own timers) and a ``cost`` record
(:mod:`bench.resources`: peak resident memory of the cell, the numbers its fitted model keeps, the GPU peak on
CUDA). Per task, a model's cost is the sum of its cells' fit + sample seconds (training shared between tasks
counts where it ran: a checkpoint reused by a later task costs that task only the loading) and its quality the
task's mean normalised rank from the rank summary (0 = best in every cell, 1 = worst). A model is on the Pareto
front of a task when no other model is at least as good on both and better on one: the models worth their
cost, for a user choosing under a budget.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

COST_COLUMNS = ("task", "dataset", "resolution", "model", "seed", "fit_seconds", "sample_seconds", "model_numbers",
                "peak_rss_mb", "peak_gpu_mb")


def collect_costs(cells: list[dict], cache) -> pd.DataFrame:
    """One row per computed cell of a run's config with its cost fields (NaN where a cell predates them)."""
    records = []
    for cell in cells:
        if cell.get("key") is None or not cache.has(cell["key"]):
            continue
        result = cache.load(cell["key"])
        cost = result.get("cost") or {}
        records.append({"task": cell["task"], "dataset": cell["dataset"], "resolution": cell["resolution"],
                        "model": cell["model"], "seed": cell["seed"],
                        "fit_seconds": result.get("fit_seconds"), "sample_seconds": result.get("sample_seconds"),
                        "model_numbers": cost.get("model_numbers"), "peak_rss_mb": cost.get("peak_rss_mb"),
                        "peak_gpu_mb": cost.get("peak_gpu_mb")})
    frame = pd.DataFrame.from_records(records, columns=list(COST_COLUMNS))
    numeric = list(COST_COLUMNS[5:])
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (lower cost and lower quality value both better;
    NaN points are never on the front)."""
    cost, quality = np.asarray(cost, dtype=float), np.asarray(quality, dtype=float)
    ok = np.isfinite(cost) & np.isfinite(quality)
    front = np.zeros(len(cost), dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        dominated = (cost[others] <= cost[i]) & (quality[others] <= quality[i]) & \
                    ((cost[others] < cost[i]) | (quality[others] < quality[i]))
        front[i] = not dominated.any()
    return front


def cost_summary(costs: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """Per (task, model): seconds (fit + sample, summed over its cells), fit and sample seconds, the largest
    model size and peak memory, the task's mean normalised rank (``ranks``: :func:`bench.report.tables.
    rank_summary`) and whether the model is on the task's Pareto front."""
    if costs.empty:
        return pd.DataFrame()
    base = costs.assign(model=costs["model"].astype(str))
    grouped = base.groupby(["task", "model"], sort=False)
    frame = pd.DataFrame({
        "fit_seconds": grouped["fit_seconds"].sum(min_count=1),
        "sample_seconds": grouped["sample_seconds"].sum(min_count=1),
        "model_numbers": grouped["model_numbers"].max(),
        "peak_rss_mb": grouped["peak_rss_mb"].max(),
    })
    frame["seconds"] = frame[["fit_seconds", "sample_seconds"]].sum(axis=1, min_count=1)
    frame["rank"] = [ranks.at[m, t] if (m in ranks.index and t in ranks.columns) else np.nan
                     for t, m in frame.index]
    frame["pareto"] = False
    for task in frame.index.get_level_values("task").unique():
        part = frame.loc[task]
        frame.loc[(task, slice(None)), "pareto"] = pareto_front(part["seconds"].to_numpy(), part["rank"].to_numpy())
    return frame.reset_index()


def _number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.{digits}g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.{digits}g}k"
    return f"{value:.{digits}g}"


def cost_markdown(summary: pd.DataFrame) -> str:
    """The cost table under a caption saying how to read it."""
    from tabulate import tabulate

    rows = [[r.task, f"**{r.model}**" if r.pareto else r.model, _number(r.rank, 2), _number(r.seconds),
             _number(r.fit_seconds), _number(r.sample_seconds), _number(r.model_numbers),
             _number(r.peak_rss_mb)] for r in summary.itertuples(index=False)]
    caption = ("Cost beside quality, per task: seconds = fit + sample seconds summed over the model's cells (training "
               "shared with an earlier task is counted there), model size = numbers the fitted model keeps, peak "
               "memory = the largest resident memory of the process while one of its cells ran (MB), rank = the "
               "task's mean normalised rank (0 = best). **Bold**: on the task's Pareto front (no other model both "
               "faster and better ranked).")
    grid = tabulate(rows, headers=["task", "model", "rank", "seconds", "fit s", "sample s", "model size",
                                   "peak MB"], tablefmt="github", disable_numparse=True)
    return f"{caption}\n\n{grid}\n"


def plot_pareto(summary: pd.DataFrame, path: str | Path) -> Path | None:
    """Quality (normalised rank) against seconds per task, one panel each, the Pareto front joined; None when
    nothing has both numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    usable = summary[np.isfinite(summary["seconds"].astype(float)) & np.isfinite(summary["rank"].astype(float))]
    tasks = list(dict.fromkeys(usable["task"]))
    if not tasks:
        return None
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        part = usable[usable["task"] == task]
        seconds = np.maximum(part["seconds"].astype(float).to_numpy(), 1e-3)
        ax.scatter(seconds, part["rank"], c=np.where(part["pareto"], "tab:blue", "tab:gray"), s=24)
        for x, y, name in zip(seconds, part["rank"], part["model"]):
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
        front = part[part["pareto"].to_numpy()].assign(s=seconds[part["pareto"].to_numpy()]).sort_values("s")
        ax.step(front["s"], front["rank"], where="post", color="tab:blue", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("seconds (fit + sample)")
        ax.set_ylabel("mean normalised rank (0 = best)")
        ax.set_title(task)
        ax.invert_yaxis()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
