"""The split and scaling every task shares, so that one model trained on a (dataset, resolution, seed)
serves every task: all tasks see the same training profiles, scaled the same way, and the runner keys the
training checkpoint on their fingerprint (a model fitted for one task is reused by the next)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.data.split import split_profiles

SPLIT_DEFAULTS = {
    "fractions": [0.5, 0.25, 0.25],
    "max_train": None,  # cap on training profiles (random subset), None = all
    "max_eval": 2000,  # cap on evaluation profiles
}


@dataclass
class SplitData:
    """Scaled training and evaluation profiles of one (dataset, resolution, seed)."""

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str


def split_and_scale(profiles: ProfileSet, cfg: dict, seed: int) -> SplitData:
    """Seeded split (by household, or by profile with too few households), caps on the training and
    evaluation sizes (``max_train``, ``max_eval``; random subsets drawn from ``seed``), and [-1, 1] scaling
    fitted on the training profiles. ``real`` is validation + test together."""
    split = split_profiles(profiles, tuple(cfg["fractions"]), seed=seed)
    train, real = split.train, split.evaluation()
    rng = np.random.default_rng([seed, 1])
    if cfg.get("max_train") and len(train) > cfg["max_train"]:
        train = train.subset(np.sort(rng.choice(len(train), cfg["max_train"], replace=False)))
    if cfg.get("max_eval") and len(real) > cfg["max_eval"]:
        real = real.subset(np.sort(rng.choice(len(real), cfg["max_eval"], replace=False)))
    scaler = MinMaxScaler.fit(train)
    return SplitData(scaler.apply(train), scaler.apply(real), scaler, split.rule)


QUERY_STREAM = 3  # rng stream (``[seed, QUERY_STREAM]``) that picks the query profiles of the ensemble tasks


def ensemble_queries(profiles: ProfileSet, cfg: dict, seed: int) -> tuple[SplitData, ProfileSet]:
    """The shared split plus the evaluation profiles an ensemble task queries: at most ``max_queries`` of them
    (a seeded subset). Checks ``n_samples >= 2`` (the fair CRPS needs two members) and ``max_queries``."""
    if int(cfg["n_samples"]) < 2:
        raise ValueError(f"n_samples must be >= 2 (the fair CRPS needs two members), got {cfg['n_samples']}")
    cap = cfg.get("max_queries")
    if cap is not None and int(cap) < 1:
        raise ValueError(f"max_queries must be a positive integer or None, got {cap}")
    split = split_and_scale(profiles, cfg, seed)
    real = split.real
    if cap and len(real) > int(cap):
        rng = np.random.default_rng([seed, QUERY_STREAM])
        real = real.subset(np.sort(rng.choice(len(real), int(cap), replace=False)))
    return split, real
