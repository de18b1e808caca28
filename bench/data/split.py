"""Seeded train / validation / test splits: by household, or by profile when there are too few households."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.profileset import ProfileSet
from bench.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Split:
    """The three parts of a split and the rule that made them (shown in tables)."""

    train: ProfileSet
    val: ProfileSet
    test: ProfileSet
    rule: str

    def evaluation(self) -> ProfileSet:
        """Validation and test together: the 'real' side of generation metrics, as in the EnergyDiff code."""
        return concat([self.val, self.test])


def concat(parts: list[ProfileSet]) -> ProfileSet:
    """Stack profile sets of the same resolution and period."""
    import pandas as pd
    from dataclasses import replace

    first = parts[0]
    if any(p.resolution != first.resolution or p.period != first.period or p.length != first.length
           for p in parts):
        raise DataError("cannot concatenate profile sets of different resolution, period or length",
                        path=first.name)
    return replace(first, values=np.concatenate([p.values for p in parts]),
                   mask=np.concatenate([p.mask for p in parts]),
                   meta=pd.concat([p.meta for p in parts], ignore_index=True), notes=dict(first.notes))


def split_profiles(profiles: ProfileSet, fractions: tuple[float, float, float] = (0.5, 0.25, 0.25), seed: int = 0,
                   min_households: int = 6, min_profiles: int = 10) -> Split:
    """Split ``profiles`` into train / val / test.

    With at least ``min_households`` distinct ``series_id`` the split is by household: every household lands in
    exactly one part, households shuffled with ``seed`` and assigned greedily so each part gets close to its
    fraction of *profiles*. With fewer households (e.g. the one-household default) profiles are shuffled and
    split by day instead, and :attr:`Split.rule` says so. Raises :class:`DataError` when any part would hold
    fewer than ``min_profiles`` profiles.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    households = np.array(sorted(profiles.meta["series_id"].unique()))
    n = len(profiles)
    if len(households) >= min_households:
        rng.shuffle(households)
        counts = profiles.meta["series_id"].value_counts()
        targets = np.cumsum(fractions) * n
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
        assignment = profiles.meta["series_id"].map(part_of).to_numpy()
        used = {p for p in part_of.values()}
        if len(used) < 3:
            raise DataError(f"too few households ({len(households)}) to fill train/val/test with fractions "
                            f"{fractions}", path=profiles.name)
        rule = f"by household ({len(households)} households, seed {seed})"
    else:
        order = rng.permutation(n)
        bounds = np.round(np.cumsum(fractions)[:2] * n).astype(int)
        assignment = np.empty(n, dtype=int)
        assignment[order[:bounds[0]]] = 0
        assignment[order[bounds[0]:bounds[1]]] = 1
        assignment[order[bounds[1]:]] = 2
        rule = (f"by {profiles.period} ({len(households)} household{'s' if len(households) != 1 else ''} "
                f"< {min_households}, seed {seed})")
    parts = [profiles.subset(assignment == k) for k in range(3)]
    for name, p in zip(SPLIT_NAMES, parts):
        if len(p) < min_profiles:
            raise DataError(f"too little data: the {name} split has {len(p)} profiles, need at least "
                            f"{min_profiles} ({n} profiles in all; split {rule})", path=profiles.name)
    return Split(*parts, rule=rule)
