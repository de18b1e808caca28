"""The papers' headline claims as machine-checkable statements, checked on a run's rows.

``claims.csv`` (next to this module) holds one claim per line: the paper, the claim in words, the paper's
evidence, and the check: in every (dataset, resolution, setting) group of ``task`` whose setting matches
``setting`` (a glob; ``*`` = any), the ``left`` model's mean ``metric`` must stand in relation ``op`` to
``factor`` x ``right``, where ``right`` is a model, a number, or ``best-other`` (the best mean of every other
model, by the metric's goal); ``op`` ``best`` asks ``left`` to have the best mean of the group. ``exclude``
(optional; space-separated globs) names models left out of ``best`` / ``best-other``: references that meet a
target by construction, such as a projection, are not competitors. A claim holds
when the check passes in every group where it could be evaluated, does not hold when it fails in one (the
groups are named), and is "not run" when the run has no group with the models it names. Means are compared as
the papers compare them; where the decision is inside the bootstrap noise (\\|a - b\\| <= sqrt(s^2 + t^2)) the
verdict says so.
"""

from __future__ import annotations

import fnmatch
import math
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CLAIMS_CSV = Path(__file__).with_name("claims.csv")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
COLUMNS = ("id", "paper", "claim", "evidence", "task", "metric", "setting", "left", "op", "right", "factor")
OPTIONAL_COLUMNS = {"exclude": ""}


@dataclass(frozen=True)
class Verdict:
    """One claim checked on a run: ``status`` holds / does not hold / not run, our numbers, and whether a
    decision was inside the noise."""

    id: str
    paper: str
    claim: str
    evidence: str
    status: str
    numbers: str
    within_noise: bool


def load_claims(path: str | Path | None = None) -> pd.DataFrame:
    """The claims table, checked: known operators and metrics, numeric factors, unique ids."""
    from metrics import METRICS

    path = Path(path or CLAIMS_CSV)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = default
    for line, row in zip(frame.index + 2, frame.itertuples(index=False)):
        where = f"{path}, line {line} ({row.id})"
        if row.op not in (*OPS, "best"):
            raise ValueError(f"{where}: op must be one of {', '.join((*OPS, 'best'))}, got {row.op!r}")
        if row.metric not in METRICS:
            raise ValueError(f"{where}: unknown metric {row.metric!r}")
        try:
            float(row.factor)
        except ValueError:
            raise ValueError(f"{where}: factor must be a number, got {row.factor!r}") from None
        if row.op != "best" and not row.right:
            raise ValueError(f"{where}: op {row.op!r} needs a right-hand side")
    if frame["id"].duplicated().any():
        raise ValueError(f"{path}: duplicate claim ids {sorted(frame['id'][frame['id'].duplicated()])}")
    return frame


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def check_claim(claim, rows: pd.DataFrame) -> Verdict:
    """``claim`` (a row of :func:`load_claims`) on a run's tidy rows."""
    from metrics import METRICS

    goal = METRICS[claim.metric].goal
    sign = -1.0 if goal == "higher" else 1.0
    ok = rows[(rows["task"] == claim.task) & (rows["metric"] == claim.metric) & (rows["status"] == "ok")]
    # a boolean array, so that an empty selection stays a frame with its columns
    matches = [fnmatch.fnmatchcase(s, claim.setting or "*") for s in ok["setting"].fillna("").astype(str)]
    ok = ok[np.array(matches, dtype=bool)]
    factor = float(claim.factor)
    checked, failed, noisy = [], [], False
    for (dataset, resolution, setting), group in ok.groupby(["dataset", "resolution", "setting"], sort=False,
                                                           dropna=False):
        by_model = group.groupby("model")[["value", "std"]].mean()
        if claim.left not in by_model.index:
            continue
        a, s = by_model.loc[claim.left, "value"], by_model.loc[claim.left, "std"]
        others = by_model.drop(index=claim.left)
        excluded = (getattr(claim, "exclude", "") or "").split()
        others = others[[not any(fnmatch.fnmatchcase(m, g) for g in excluded) for m in others.index]]
        if claim.op == "best" or claim.right == "best-other":
            if others.empty:
                continue
            best = others.loc[(sign * others["value"]).idxmin()]
            b, t, name = best["value"], best["std"], best.name
        elif _number(claim.right) is not None:
            b, t, name = _number(claim.right), 0.0, claim.right
        elif claim.right in by_model.index:
            b, t, name = by_model.loc[claim.right, "value"], by_model.loc[claim.right, "std"], claim.right
        else:
            continue
        if claim.op == "best":
            passed = sign * a < sign * b
        else:
            passed = OPS[claim.op](a, factor * b)
        noise = math.hypot(0.0 if pd.isna(s) else s, 0.0 if pd.isna(t) else factor * t)
        noisy |= abs(a - factor * b) <= noise
        label = f"{dataset} @ {resolution} min" + (f" {setting}" if setting else "")
        text = f"{label}: {a:.4g} vs {'' if factor == 1 else f'{factor:g} x '}{b:.4g} ({name})"
        checked.append(text)
        if not passed:
            failed.append(text)
    if not checked:
        status = "not run"
    else:
        status = "holds" if not failed else f"does not hold in {len(failed)} of {len(checked)}"
    numbers = "; ".join(failed or checked[:4]) + ("; ..." if len(failed or checked) > 4 else "")
    return Verdict(claim.id, claim.paper, claim.claim, claim.evidence, status, numbers, noisy)


def check_claims(rows: pd.DataFrame, claims: pd.DataFrame | None = None) -> list[Verdict]:
    """Every claim whose task the run has, checked on its rows."""
    claims = load_claims() if claims is None else claims
    tasks = set(rows["task"])
    return [check_claim(c, rows) for c in claims.itertuples(index=False) if c.task in tasks]


def claims_markdown(verdicts: list[Verdict]) -> str:
    """The report's "Claims" table: claim, the paper's evidence, our numbers, verdict."""
    from tabulate import tabulate

    table = [(v.id, v.claim, v.evidence, v.numbers or "-",
              v.status + (" (a decision within noise)" if v.within_noise and v.status != "not run" else ""))
             for v in verdicts]
    return tabulate(table, headers=["id", "claim", "paper's evidence", "our numbers", "verdict"], tablefmt="pipe")
