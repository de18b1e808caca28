"""Do our results order the models as a paper's table does?

Absolute numbers rarely carry over between setups (data size, split, model budget and estimator bias all move
them), while the question a benchmark reader asks is usually "which model is better": whether meterbench
reproduces a paper's ranking is the comparison that survives a different setup. For every published group
(one table, dataset, resolution, setting and metric) with at least two models that both sides score, this
module gives Kendall's tau-b between our values and the paper's, and whether both name the same best model.
"Best" follows the tables' noise rule (:func:`bench.report.tables.tied_within_noise`): on each side, the best
value and every value tied with it within that side's printed ± are best together, so a difference the noise
cannot resolve never decides which model is best.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from tabulate import tabulate

GROUP = ("source", "table", "dataset", "resolution", "setting", "metric")
COLUMNS = (*GROUP, "n_models", "kendall_tau", "same_best", "ours_best", "paper_best")


REQUIRED = (*GROUP, "model", "status", "ours", "ours_std", "paper", "paper_std")


def _best(values: pd.Series, stds: pd.Series, goal: str) -> set:
    """The models best in ``goal``: the best value and every value tied with it within noise, exactly the
    cells a summary table marks best or tied for best (:func:`bench.report.tables.tie_groups`)."""
    from bench.report.tables import tie_groups

    first = tie_groups(values.to_numpy(), stds.to_numpy(), goal)[0]
    return {values.index[i] for i in first}


def rank_agreement(comparison: pd.DataFrame, goals: dict[str, str]) -> pd.DataFrame:
    """One row per group of :data:`GROUP` in ``comparison`` (the output of
    :func:`bench.report.published.compare`) with ``n_models`` >= 2 models scored ``ok`` by us and printed by the
    paper (groups with fewer are left out), ``kendall_tau`` (tau-b of ours vs the paper's values; NaN when one
    side is constant, computed from the values alone) and ``same_best`` (1.0 when some model is best on both
    sides, 0.0 when none is; NaN for unranked metrics), by the metric's ``goals`` entry. Each side's best
    models are the best value and all values tied with it within noise (``ours_std``, ``paper_std``; a NaN std,
    e.g. a paper that prints no ±, compares exactly), listed in ``ours_best`` / ``paper_best``.

    Raises ``ValueError`` when ``comparison`` lacks a column of :data:`REQUIRED`.
    """
    if comparison.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    missing = [c for c in REQUIRED if c not in comparison.columns]
    if missing:
        raise ValueError(f"the comparison frame lacks the column(s) {missing}; build it with "
                         "bench.report.published.compare")
    usable = comparison[(comparison["status"] == "ok") & np.isfinite(comparison["ours"].astype(float))
                        & np.isfinite(comparison["paper"].astype(float))].copy()
    usable["setting"] = usable["setting"].fillna("").astype(str)
    records = []
    for key, group in usable.groupby(list(GROUP), sort=False):
        group = group.drop_duplicates("model")
        if len(group) < 2:  # one model has no order to compare
            continue
        ours = pd.Series(group["ours"].astype(float).to_numpy(), index=group["model"])
        paper = pd.Series(group["paper"].astype(float).to_numpy(), index=group["model"])
        ours_std = pd.Series(group["ours_std"].astype(float).to_numpy(), index=group["model"])
        paper_std = pd.Series(group["paper_std"].astype(float).to_numpy(), index=group["model"])
        tau = math.nan
        if ours.nunique() > 1 and paper.nunique() > 1:
            tau = float(kendalltau(ours.to_numpy(), paper.to_numpy()).statistic)
        goal = goals.get(key[-1], "ignore")
        same, ours_best, paper_best = math.nan, "", ""
        if goal in ("lower", "higher"):
            ob, pb = _best(ours, ours_std, goal), _best(paper, paper_std, goal)
            same = float(bool(ob & pb))
            ours_best, paper_best = ", ".join(sorted(ob)), ", ".join(sorted(pb))
        records.append({**dict(zip(GROUP, key)), "n_models": len(group), "kendall_tau": tau, "same_best": same,
                        "ours_best": ours_best, "paper_best": paper_best})
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def agreement_markdown(agreement: pd.DataFrame) -> str:
    """A markdown table of :func:`rank_agreement`, one line per group, under a caption saying how to read it."""
    caption = ("Do we order the models as the paper does? Per published table, resolution, setting and metric: "
               "Kendall's tau-b between our values and the paper's over the models both score (1 = same order, "
               "-1 = reversed, 0 = unrelated), and the best model on each side: the best value and every value within "
               "noise of it (|a - b| <= sqrt(s² + t²) with the ± of each side, as in the tables; all are listed). "
               "Same best = some model is best on both sides.")
    if agreement.empty:
        return caption + "\n\nNo group has two models scored on both sides.\n"
    rows = [[f"{r.source} {r.table}", r.dataset, str(r.resolution), r.setting, r.metric, str(r.n_models),
             "–" if math.isnan(r.kendall_tau) else f"{r.kendall_tau:+.2f}", r.ours_best or "–",
             r.paper_best or "–", "–" if math.isnan(r.same_best) else ("yes" if r.same_best else "no")]
            for r in agreement.itertuples()]
    taus = agreement["kendall_tau"].dropna()
    same = agreement["same_best"].dropna()
    summary = (f"Mean tau over {len(taus)} groups: {taus.mean():+.2f}; same best model in {int(same.sum())} of "
               f"{len(same)}." if len(taus) else "")
    grid = tabulate(rows, headers=["table", "dataset", "res. (min)", "setting", "metric", "models", "tau",
                                   "our best", "paper's best", "same best"], tablefmt="github",
                    disable_numparse=True)
    return f"{caption} {summary}\n\n{grid}\n"
