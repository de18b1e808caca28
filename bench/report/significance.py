"""Is a win beyond the noise across cells? Friedman's test and the Nemenyi critical-difference diagram per task.

The tables mark, cell by cell, which differences exceed the bootstrap noise. Across the cells of a task the
question is whether the models' ranks differ at all, and which pairs do: Friedman's test over the blocks
(dataset, resolution, setting, metric) with each model's mean ``value`` (a metric whose goal is ``higher`` is
negated, ``ignore`` metrics are left out), then Nemenyi's post-hoc critical difference, as Demšar (2006)
recommends for comparing several models over several data sets; ``autorank`` computes both and draws the
diagram (models whose mean ranks differ by less than the CD are joined by a bar). Blocks that share a data set
are not independent (the metrics of one cell move together), so the p-value is optimistic; the tables say so.
Blocks where a model has no value are dropped; models missing from more than half of the blocks are left out.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MIN_BLOCKS = 5  # autorank refuses fewer blocks ("performance estimations")
MIN_MODELS = 3


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's p-value, the Nemenyi critical difference and each model's mean rank (1 = best)."""

    task: str
    pvalue: float
    cd: float
    mean_ranks: pd.Series
    n_blocks: int
    alpha: float


def block_matrix(task_rows: pd.DataFrame, goals: dict[str, str]) -> pd.DataFrame:
    """Blocks x models of mean values, oriented so that lower is better, complete (no NaN)."""
    ok = task_rows[(task_rows["status"] == "ok") & task_rows["metric"].map(lambda m: goals.get(m) != "ignore")]
    if ok.empty:
        return pd.DataFrame()
    sign = ok["metric"].map(lambda m: -1.0 if goals.get(m) == "higher" else 1.0)
    ok = ok.assign(oriented=ok["value"].astype(float) * sign, setting=ok["setting"].fillna("").astype(str))
    wide = ok.pivot_table(index=["dataset", "resolution", "setting", "metric"], columns="model", values="oriented",
                          aggfunc="mean", sort=False)
    keep = wide.columns[wide.notna().mean() > 0.5]
    wide = wide[keep].dropna()
    return wide.loc[:, np.isfinite(wide).all()]


def friedman(task: str, task_rows: pd.DataFrame, goals: dict[str, str], alpha: float = 0.05
             ) -> tuple[FriedmanResult, object] | None:
    """``(result, autorank result)`` for ``task``, or None with fewer than :data:`MIN_BLOCKS` blocks or
    :data:`MIN_MODELS` models."""
    from autorank import autorank

    wide = block_matrix(task_rows, goals)
    if wide.shape[0] < MIN_BLOCKS or wide.shape[1] < MIN_MODELS:
        return None
    # autorank prints its test selection (and plot_stats its table) even with verbose=False: keep the run's
    # output to the run's own lines
    with contextlib.redirect_stdout(io.StringIO()):
        ranked = autorank(wide.reset_index(drop=True), alpha=alpha, verbose=False, order="ascending",
                          force_mode="nonparametric")
    return FriedmanResult(task=task, pvalue=float(ranked.pvalue), cd=float(ranked.cd or np.nan),
                          mean_ranks=ranked.rankdf["meanrank"].astype(float), n_blocks=int(wide.shape[0]),
                          alpha=alpha), ranked


def plot_cd(ranked, path: str | Path, title: str) -> Path | None:
    """The critical-difference diagram of an autorank result; None where autorank cannot draw one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from autorank import plot_stats

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ax = plot_stats(ranked, allow_insignificant=True)
    except (ValueError, TypeError):
        return None
    ax.set_title(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    return path


def friedman_markdown(result: FriedmanResult, figure: str | None) -> str:
    """One paragraph: the test, its p-value and CD, the mean ranks, and the diagram's file."""
    verdict = ("the models' ranks differ" if result.pvalue < result.alpha
               else "no difference between the models' ranks can be told from these cells")
    ranks = ", ".join(f"`{m}` {r:.2f}" for m, r in result.mean_ranks.sort_values().items())
    where = f" Critical-difference diagram: `{figure}`." if figure else ""
    return (f"Friedman test over {result.n_blocks} blocks (dataset / resolution / setting / metric; blocks of one "
            f"cell are correlated, so the p-value is optimistic): p = {result.pvalue:.3g}, {verdict} at "
            f"alpha = {result.alpha:g}; Nemenyi critical difference {result.cd:.2f} ranks. Mean ranks (1 = best): "
            f"{ranks}.{where}")
