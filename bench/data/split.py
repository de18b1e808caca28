"""Seeded train / validation / test splits under a named rule (the suite's protocol).

Rules (:data:`SPLIT_RULES`):

* ``"household"``: every household lands in exactly one part (the generalisation test: no household is seen in
  training and scored in evaluation); with fewer than ``min_households`` households (the one-household default)
  profiles are split by day instead, and :attr:`Split.rule` says so.
* ``"pooled"``: the EnergyDiff and SmartMeterFM protocol: profiles (days or months) are independent samples, all
  households pooled, and the profiles of each calendar month are shuffled and split by ``fractions`` with the
  part boundaries at ``floor(n * cumulative fraction)``, as both papers' public code does month by month, so
  every part covers every month.
* ``"pretrain"``: the unified-model paper's protocol (Section IV-A): all profiles pooled, a random
  ``pretrain_fraction`` of them is the pre-training set (:attr:`Split.pretrain`), and the rest is split at random
  by ``fractions`` (the paper's 6:2:2) into the fine-tuning train / validation / test parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench import seeds
from bench.data.profileset import ProfileSet
from bench.errors import DataError
from bench.seeds import Stream

SPLIT_NAMES = ("train", "val", "test")
SPLIT_RULES = ("household", "pooled", "pretrain")


@dataclass
class Split:
    """The parts of a split and the rule that made them (shown in tables).

    ``pretrain`` holds the pre-training profiles of the ``"pretrain"`` rule and is None otherwise.
    """

    train: ProfileSet
    val: ProfileSet
    test: ProfileSet
    rule: str
    pretrain: ProfileSet | None = None

    def evaluation(self) -> ProfileSet:
        """Validation and test together: the 'real' side of generation metrics, as in the EnergyDiff code."""
        return concat([self.val, self.test])


def concat(parts: list[ProfileSet]) -> ProfileSet:
    """Stack profile sets of the same resolution and period."""
    from dataclasses import replace

    first = parts[0]
    if any(p.resolution != first.resolution or p.period != first.period or p.length != first.length
           for p in parts):
        raise DataError("cannot concatenate profile sets of different resolution, period or length",
                        path=first.name)
    return replace(first, values=np.concatenate([p.values for p in parts]),
                   mask=np.concatenate([p.mask for p in parts]),
                   meta=pd.concat([p.meta for p in parts], ignore_index=True), notes=dict(first.notes))


def _check_fractions(fractions) -> tuple[float, float, float]:
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    return fractions


def _random_parts(n: int, fractions: tuple[float, float, float], rng: np.random.Generator,
                  floor: bool = False) -> np.ndarray:
    """Part (0, 1, 2) of each of ``n`` items: a seeded permutation cut at the cumulative fractions of ``n``,
    rounded to the nearest integer, or rounded down with ``floor`` (the papers' code)."""
    order = rng.permutation(n)
    cuts = np.cumsum(fractions)[:2] * n
    bounds = (np.floor(cuts + 1e-9) if floor else np.round(cuts)).astype(int)
    assignment = np.empty(n, dtype=int)
    assignment[order[:bounds[0]]] = 0
    assignment[order[bounds[0]:bounds[1]]] = 1
    assignment[order[bounds[1]:]] = 2
    return assignment


def _household_parts(profiles: ProfileSet, households: np.ndarray, fractions: tuple[float, float, float],
                     rng: np.random.Generator) -> np.ndarray:
    rng.shuffle(households)
    counts = profiles.meta["series_id"].value_counts()
    targets = np.cumsum(fractions) * len(profiles)
    part_of = {}
    running = 0
    part = 0
    for hh in households:
        # the household goes to the first part whose cumulative target it does not overshoot by more
        # than half its size, so small parts still receive households
        while part < 2 and running + counts[hh] / 2 > targets[part]:
            part += 1
        part_of[hh] = part
        running += counts[hh]
    if len(set(part_of.values())) < 3:
        raise DataError(f"too few households ({len(households)}) to fill train/val/test with fractions "
                        f"{fractions}", path=profiles.name)
    return profiles.meta["series_id"].map(part_of).to_numpy()


def calendar_months(profiles: ProfileSet) -> np.ndarray:
    """The calendar month (``YYYY-MM``) each profile starts in, the groups of the ``"pooled"`` rule."""
    start = pd.to_datetime(profiles.meta["start"], utc=True, errors="coerce")
    if start.isna().any():
        raise DataError("profiles without a parsable start time cannot be split by calendar month",
                        path=profiles.name)
    return start.dt.strftime("%Y-%m").to_numpy()


def _monthly_parts(profiles: ProfileSet, fractions: tuple[float, float, float],
                   rng: np.random.Generator) -> np.ndarray:
    months = calendar_months(profiles)
    assignment = np.empty(len(profiles), dtype=int)
    for month in sorted(set(months)):
        rows = np.flatnonzero(months == month)
        assignment[rows] = _random_parts(len(rows), fractions, rng, floor=True)
    return assignment


def split_profiles(profiles: ProfileSet, fractions: tuple[float, float, float] = (0.5, 0.25, 0.25), seed: int = 0,
                   rule: str = "household", pretrain_fraction: float = 0.8, min_households: int = 6,
                   min_profiles: int = 10) -> Split:
    """Split ``profiles`` into train / val / test (and a pre-training set) under ``rule`` (see the module doc).

    Every rule draws from the split stream of the cell seed ``seed`` alone (:mod:`bench.seeds`). :attr:`Split.rule` describes what was done in words (rule, sizes,
    seed) for the tables. Raises :class:`DataError` when any part would hold fewer than ``min_profiles``
    profiles, ``ValueError`` for an unknown rule or bad fractions.
    """
    fractions = _check_fractions(fractions)
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; known: {', '.join(SPLIT_RULES)}")
    rng = seeds.rng(seed, Stream.SPLIT)
    households = np.array(sorted(profiles.meta["series_id"].unique()))
    n = len(profiles)
    plural = "s" if len(households) != 1 else ""
    pretrain = None
    if rule == "household" and len(households) >= min_households:
        assignment = _household_parts(profiles, households, fractions, rng)
        description = f"by household ({len(households)} households, seed {seed})"
    elif rule == "household":
        assignment = _random_parts(n, fractions, rng)
        description = (f"by {profiles.period} ({len(households)} household{plural} < {min_households}, "
                       f"seed {seed})")
    elif rule == "pooled":
        assignment = _monthly_parts(profiles, fractions, rng)
        description = (f"pooled: {profiles.period}s of all {len(households)} household{plural} split within each "
                       f"calendar month {'/'.join(f'{f:g}' for f in fractions)} (seed {seed})")
    else:
        pretrain_fraction = float(pretrain_fraction)
        if not 0.0 < pretrain_fraction < 1.0:
            raise ValueError(f"pretrain_fraction must lie strictly between 0 and 1, got {pretrain_fraction}")
        order = rng.permutation(n)
        n_pre = int(round(pretrain_fraction * n))
        pretrain = profiles.subset(np.sort(order[:n_pre]))
        rest = np.sort(order[n_pre:])
        assignment = np.full(n, -1)
        assignment[rest] = _random_parts(len(rest), fractions, rng)
        description = (f"pooled {profiles.period}s ({len(households)} household{plural}): random "
                       f"{pretrain_fraction:.0%} pre-training, the rest split at random "
                       f"{':'.join(f'{f:g}' for f in fractions)} (seed {seed})")
    parts = [profiles.subset(assignment == k) for k in range(3)]
    sizes = "/".join(str(len(p)) for p in parts)
    description += f"; {'pre-train ' + str(len(pretrain)) + ', ' if pretrain is not None else ''}" \
                   f"train/val/test {sizes} {profiles.period}s"
    for name, p in zip(SPLIT_NAMES, parts):
        if len(p) < min_profiles:
            raise DataError(f"too little data: the {name} split has {len(p)} profiles, need at least "
                            f"{min_profiles} ({n} profiles in all; split {description})", path=profiles.name)
    if pretrain is not None and len(pretrain) < min_profiles:
        raise DataError(f"too little data: the pre-training set has {len(pretrain)} profiles, need at least "
                        f"{min_profiles}", path=profiles.name)
    return Split(*parts, rule=description, pretrain=pretrain)
