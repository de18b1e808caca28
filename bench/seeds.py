"""Every random stream of a run, named once.

A cell's seed is the root; each use of randomness draws from its own stream ``[seed, stream, *sub]``
(a NumPy ``SeedSequence`` entropy list), so that two uses never share random numbers (the split caps
and a model's sampling, say) and adding randomness to one use never shifts another's.

Harness streams (data splits, queries, masks, attacks, bootstraps) are each used in one module; model
streams are used by models (``ctx.rng(Stream.MODEL_SAMPLE)``) and the shared training loop.
``tests/test_seeds.py`` fails when a value repeats, when a harness stream is used in two modules, or when
code seeds a generator without going through this table.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np


@unique
class Stream(IntEnum):
    """Stream numbers (values are part of the results: change one and its numbers change)."""

    # -- harness: data -----------------------------------------------------------------------------------
    SPLIT = 1  # bench.data.split: which households / days go to train, validation, test, pre-training
    SPLIT_CAPS = 2  # bench.tasks.common: random subsets under max_train / max_eval
    QUERIES = 3  # bench.tasks.common: the query profiles of the ensemble tasks (imputation, super-resolution)
    IMPUTATION_MASKS = 4  # bench.tasks.imputation: missing-data masks, [seed, 4, setting]
    CONDITION_GROUPS = 5  # bench.tasks.conditional: the MMD permutation test of each condition group, [.., g]
    FORECAST_TRAIN_WINDOWS = 6  # bench.tasks.forecasting: the seeded subset of training windows
    FORECAST_QUERY_WINDOWS = 7  # bench.tasks.forecasting: the seeded subset of query windows
    FORECAST_ORIGINS = 8  # bench.tasks.forecasting: hour-ahead origins, [.., 0 training | 1 query]
    ANOMALY_QUERIES = 9  # bench.tasks.anomaly: which test profiles are queried
    ANOMALY_EXAMPLES = 10  # bench.tasks.anomaly: which training profiles become labelled examples
    ANOMALY_HOLDOUT = 11  # bench.tasks.anomaly: calibration / test split of the evaluation profiles
    ANOMALY_ATTACKS = 12  # bench.tasks.anomaly: attack draws, [.., kind index, group]
    ANOMALY_CALIBRATION = 13  # bench.tasks.anomaly: which calibration profiles are used
    # -- harness: scoring --------------------------------------------------------------------------------
    GENERATION_BOOTSTRAP = 20  # bench.tasks.generation: bootstrap resamples of generated and real profiles
    PAIRED_BOOTSTRAP = 21  # bench.tasks.common: paired bootstrap over query profiles (ensemble tasks)
    # -- harness: reports and measurements ----------------------------------------------------------------
    REPORT_FIGURES = 30  # bench.report.plots: which profiles a figure draws, subsamples of scatter plots
    PERF_INPUTS = 31  # bench.perf: the synthetic inputs and network initialisation of speed measurements
    METRIC_SPEED_INPUTS = 32  # bench.metric_speed: the synthetic profile sets the metrics are timed on
    # -- models ------------------------------------------------------------------------------------------
    MODEL_FIT = 100  # randomness of a classical fit (EM initialisation, PCA solver)
    MODEL_INIT = 101  # torch global seed before building networks (weight initialisation), [.., part]
    MODEL_FINETUNE = 102  # torch global seed before a fine-tuning stage (heads, adapters)
    TRAIN_BATCHES = 103  # bench.train: minibatch order and per-step noise of the training loop
    TRAIN_DROPOUT = 104  # bench.train: torch global seed at the first step (dropout, global-RNG draws)
    MODEL_SAMPLE = 110  # unconditional / conditional sampling
    MODEL_SAMPLE_ROWS = 111  # training rows picked to pair with conditions (SmartMeterFM's unconditioned draws)
    MODEL_IMPUTE = 112  # imputation sampling
    MODEL_SUPER_RESOLVE = 113  # super-resolution sampling
    MODEL_FORECAST = 114  # forecast sampling
    MODEL_DIAGNOSTICS = 115  # subsets and masks a model draws for its diagnostics


HARNESS_STREAMS = frozenset(s for s in Stream if s < 100)
MODEL_STREAMS = frozenset(s for s in Stream if s >= 100)


def rng(seed: int, stream: Stream, *sub: int) -> np.random.Generator:
    """A fresh NumPy generator for ``stream`` (and optional sub-stream indices) of the cell seed ``seed``."""
    if not isinstance(stream, Stream):
        raise TypeError(f"stream must be a bench.seeds.Stream, got {stream!r}")
    return np.random.default_rng([int(seed), int(stream), *map(int, sub)])


def int_seed(seed: int, stream: Stream, *sub: int, bits: int = 62) -> int:
    """An integer seed for libraries that take one (torch, scikit-learn), drawn from ``stream``."""
    return int(rng(seed, stream, *sub).integers(2**bits))
