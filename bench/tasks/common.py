"""The split and scaling every task shares, so that one model trained on a (dataset, resolution, seed)
serves every task: all tasks see the same training profiles, scaled the same way, and the runner keys the
training checkpoint on their fingerprint (a model fitted for one task is reused by the next)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench import seeds
from bench.api import Model, Outcome
from bench.data.profileset import ProfileSet
from bench.data.scaling import MinMaxScaler
from bench.data.split import concat, split_profiles
from bench.errors import ModelFitError
from bench.seeds import Stream

SPLIT_DEFAULTS = {
    # the protocol: a rule of bench.data.split.SPLIT_RULES, the train/val/test fractions and, for the
    # "pretrain" rule, the share of all profiles kept for pre-training; suites set them in their [protocol]
    "split": "household",
    "fractions": [0.5, 0.25, 0.25],
    "pretrain_fraction": 0.8,
    "max_train": None,  # cap on training profiles (random subset), None = all
    "max_eval": 2000,  # cap on evaluation profiles, None = all (the paper suites evaluate on every profile)
}


@dataclass
class SplitData:
    """Scaled training and evaluation profiles of one (dataset, resolution, seed).

    ``pretrain`` holds the scaled pre-training profiles of the ``"pretrain"`` rule (None otherwise).
    """

    train: ProfileSet
    real: ProfileSet
    scaler: MinMaxScaler
    split_rule: str
    pretrain: ProfileSet | None = None


def split_and_scale(profiles: ProfileSet, cfg: dict, seed: int) -> SplitData:
    """Seeded split under the protocol's rule (``cfg["split"]``, see :mod:`bench.data.split`), caps on the
    training and evaluation sizes (``max_train``, ``max_eval``; random subsets drawn from the seed's split-caps
    stream, :mod:`bench.seeds`), and [-1, 1] scaling fitted on the profiles the models learn from (the training
    part, and the pre-training set where the rule has one). ``real`` is validation + test together. A cap is
    stated in ``split_rule``."""
    split = split_profiles(profiles, tuple(cfg["fractions"]), seed=seed, rule=cfg.get("split", "household"),
                           pretrain_fraction=cfg.get("pretrain_fraction", 0.8))
    train, real, rule = split.train, split.evaluation(), split.rule
    rng = seeds.rng(seed, Stream.SPLIT_CAPS)
    if cfg.get("max_train") and len(train) > cfg["max_train"]:
        train = train.subset(np.sort(rng.choice(len(train), cfg["max_train"], replace=False)))
        rule += f"; training capped at {cfg['max_train']} (random subset)"
    if cfg.get("max_eval") and len(real) > cfg["max_eval"]:
        rule += f"; evaluation capped at {cfg['max_eval']} of {len(real)} (random subset)"
        real = real.subset(np.sort(rng.choice(len(real), cfg["max_eval"], replace=False)))
    learned = train if split.pretrain is None else concat([split.pretrain, train])
    scaler = MinMaxScaler.fit(learned)
    pretrain = None if split.pretrain is None else scaler.apply(split.pretrain)
    return SplitData(scaler.apply(train), scaler.apply(real), scaler, rule, pretrain)


def fitting_set(model: Model | type[Model], data) -> ProfileSet:
    """The profiles ``model.fit`` learns from: the pre-training set for models that pre-train (their class sets
    ``pretrains = True``) where the protocol has one, else the task's training part.

    ``model`` is a :class:`bench.api.Model` or its class (the runner keys a training run on the class before it
    builds the model). ``data`` is any task data with ``train`` and optionally ``pretrain``."""
    cls = model if isinstance(model, type) else type(model)
    if not issubclass(cls, Model):
        raise TypeError(f"fitting_set needs a bench.api.Model or its class, got {cls.__name__}")
    pretrain = getattr(data, "pretrain", None)
    return pretrain if pretrain is not None and cls.pretrains else data.train


def ensemble_queries(profiles: ProfileSet, cfg: dict, seed: int) -> tuple[SplitData, ProfileSet]:
    """The shared split plus the evaluation profiles an ensemble task queries: at most ``max_queries`` of them
    (a seeded subset, from the seed's query stream). Checks ``n_samples >= 2`` (the fair CRPS needs two members)
    and ``max_queries``."""
    if int(cfg["n_samples"]) < 2:
        raise ValueError(f"n_samples must be >= 2 (the fair CRPS needs two members), got {cfg['n_samples']}")
    cap = cfg.get("max_queries")
    if cap is not None and int(cap) < 1:
        raise ValueError(f"max_queries must be a positive integer or None, got {cap}")
    split = split_and_scale(profiles, cfg, seed)
    real = split.real
    if cap and len(real) > int(cap):
        rng = seeds.rng(seed, Stream.QUERIES)
        real = real.subset(np.sort(rng.choice(len(real), int(cap), replace=False)))
    return split, real


def checked_names(names: Sequence[str], known: Sequence[str], key: str) -> list[str]:
    """``names`` (a task config's list of settings under ``key``) as a list, after checking that each is one
    of ``known`` and none repeats; a ``ValueError`` names the key otherwise."""
    names = list(names)
    if not names:
        raise ValueError(f"{key} must name at least one of {', '.join(known)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {key} {unknown}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{key} lists an entry twice: {names}")
    return names


def paired_bootstrap_values(fn: Callable[[np.ndarray], float], n_profiles: int, n_repeats: int, frac: float,
                            seed: int) -> np.ndarray:
    """``fn(rows)`` on each of ``n_repeats`` subsets of ``floor(frac * n_profiles)`` profile indices drawn without
    replacement (sorted) from the cell seed ``seed``'s paired-bootstrap stream (:mod:`bench.seeds`); with
    ``frac == 1`` (or one repeat) the one value of the metric on every profile. Paired: ``fn`` scores the same
    rows of truth and prediction, and every call with one seed draws the same subsets, so a task's metrics,
    settings and models are compared on the same profiles, repeat by repeat."""
    if not 0.0 < float(frac) <= 1.0:
        raise ValueError(f"bootstrap_frac must lie in (0, 1], got {frac}")
    if int(n_repeats) < 1:
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_repeats}")
    size = int(frac * n_profiles)
    if size < 1:
        raise ValueError(f"bootstrap_frac={frac} leaves no profile of {n_profiles}")
    if size == n_profiles or int(n_repeats) == 1:
        return np.array([float(fn(np.arange(n_profiles)))])
    rng = seeds.rng(seed, Stream.PAIRED_BOOTSTRAP)
    return np.array([fn(np.sort(rng.choice(n_profiles, size=size, replace=False))) for _ in range(int(n_repeats))],
                    dtype=np.float64)


def paired_row(setting: str, metric: str, values: np.ndarray, note: str = "") -> dict:
    """The tidy row of one (setting, metric) from :func:`paired_bootstrap_values`: mean, sample std (``ddof = 1``,
    as the papers' ``torch.std()``; 0 for a single value) and ``repeats``, every repeat's value (None for a single
    value: nothing to pair)."""
    return {"setting": setting, "metric": metric, "value": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "status": "ok", "note": note,
            "repeats": [float(v) for v in values] if len(values) > 1 else None}


def failed_rows(pairs: list[tuple[str, str]], status: str, note: str) -> list[dict]:
    """One row per ``(setting, metric)`` with no value and the given status and note."""
    return [{"setting": s, "metric": m, "value": np.nan, "std": np.nan, "status": status, "note": note}
            for s, m in pairs]


def bootstrap_row(setting: str, metric: str, fn: Callable[[np.ndarray], float], n_items: int, cfg: dict,
                  seed: int, may_be_undefined: bool = False) -> dict:
    """The tidy row of one (setting, metric) (:func:`paired_row`): the paired-bootstrap mean ± std of ``fn`` over
    ``n_items`` items with ``cfg``'s ``n_bootstrap`` and ``bootstrap_frac``. A metric that can be undefined on
    real data (``may_be_undefined``: MAPE when every true load is ~0, AUROC on a subset of one class) gives a
    ``failed`` row with the reason instead of raising."""
    try:
        values = paired_bootstrap_values(fn, n_items, cfg["n_bootstrap"], cfg["bootstrap_frac"], seed)
    except ValueError as err:
        if not may_be_undefined:
            raise
        return failed_rows([(setting, metric)], "failed", str(err))[0]
    return paired_row(setting, metric, values)


def run_ensemble_settings(model: Model, train: ProfileSet, real: ProfileSet, settings: Sequence[str],
                          n_samples: int, ctx, ask: Callable[[int], np.ndarray], what: str) -> Outcome:
    """Fit ``model`` on ``train``, then ``ask(index)`` it for each setting's ``[S, N, T]`` ensemble of the
    ``real`` profiles (imputation, super-resolution).

    Returns the task's :class:`bench.api.Outcome`: ``samples [n_settings, S, N, T]`` float32 with padding set to
    0, ``fit_seconds`` and ``sample_seconds``. A :class:`ModelFitError`, or non-finite ``what`` values on valid
    steps, give a ``failed`` outcome with the reason; an ensemble of the wrong shape is a ``RuntimeError`` (a
    model bug).
    """
    outcome = Outcome()
    n, length = real.values.shape
    try:
        start = time.perf_counter()
        model.fit(train, ctx)
        outcome.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        results = []
        for index, setting in enumerate(settings):
            ens = np.asarray(ask(index), dtype=np.float32)
            if ens.shape != (n_samples, n, length):
                raise RuntimeError(f"model returned {what} values of shape {ens.shape} for {setting}, expected "
                                   f"{(n_samples, n, length)}")
            if not np.isfinite(ens[:, real.mask]).all():
                return outcome.fail(f"non-finite {what} values ({setting})")
            results.append(np.where(real.mask, ens, 0.0).astype(np.float32))
        outcome.sample_seconds = time.perf_counter() - start
    except ModelFitError as err:
        return outcome.fail(str(err))
    outcome.samples = (np.stack(results) if results
                       else np.zeros((0, n_samples, n, length), dtype=np.float32))
    return outcome
