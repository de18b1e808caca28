"""Run a suite cell by cell, through the cache, and write the run directory.

The runner owns the cells: it plans them into jobs (one per training run) and computes a job's cells with
:func:`run_job`; :mod:`bench.executors` only decides where jobs run and receives ``run_job`` as an argument.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.api import Cell, Outcome
from bench.cache import CellCache, cell_key, code_version
from bench.context import RunContext
from bench.data.pipeline import load_profiles
from bench.executors import Job, JobReport, dataset_identity
from bench.postprocess import SOURCES as POSTPROCESS_SOURCES, apply, split_model_name
from bench.provenance import environment
from bench.registry import get_model
from bench.resources import measure_peak_memory, model_size
from bench.report.render import render_run
from bench.suite import Suite, check_suite, suite_from_dict
from bench.tasks import get_task
from metrics.sets import metric_device



@dataclass
class RunSummary:
    """What a run did: its tidy rows, how many cells were computed or served from cache, and where."""

    rows: pd.DataFrame
    computed: int
    cached: int
    out_dir: Path
    seconds: float
    jobs: list = field(default_factory=list)  # bench.executors.JobReport of each job, when an executor ran


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="cell", leave=False)


def suite_cells(suite: Suite) -> list[Cell]:
    """Every cell of ``suite`` in the fixed order the sequential runner visits them."""
    return [Cell(d, res, t, task.name, seed, model)
            for d, ds in enumerate(suite.datasets)
            for res in ds.resolutions
            for t, task in enumerate(suite.tasks)
            for seed in suite.seeds
            for model in task.models]


@dataclass
class CellMemo:
    """Profiles and prepared task data loaded by earlier cells of the same pass, reused by later ones."""

    profiles: dict = field(default_factory=dict)
    prepared: dict = field(default_factory=dict)


def run_cell(suite: Suite, ref: Cell, cache: CellCache, memo: CellMemo, counts: dict, *, device: str = "cpu",
             progress: bool = False, use_cache: bool = True, log=print, save_real: bool = True) -> dict:
    """Compute one cell of ``suite`` into ``cache`` unless it is there already; returns the cell's entry of
    the run's ``config.json``.

    ``counts`` ("computed", "cached") is updated in place. ``save_real=False`` skips storing the real
    evaluation profiles the plots use: jobs running side by side leave that to the final sequential pass,
    so that no two processes ever write the same array.
    """
    ds, task_spec = suite.datasets[ref.dataset], suite.tasks[ref.task]
    d, res, seed, model_name = ref.dataset, ref.resolution, ref.seed, ref.model
    task = get_task(task_spec.name)
    base_name, suffixes = split_model_name(model_name)
    spec = get_model(base_name)
    cfg = task_config(task, suite.protocol_for(ds), task_spec.config)
    if (d, res) not in memo.profiles:
        memo.profiles[(d, res)] = load_profiles(ds.name, res, ds.period, ds.data_dir, **ds.options)
    profiles = memo.profiles[(d, res)]
    descriptor = {
        "suite": suite.name, "task": task_spec.name, "task_config": cfg, "dataset": ds.title,
        "resolution": res, "period": ds.period, "data_fingerprint": profiles.fingerprint(),
        "model": model_name, "seed": seed, "profile": suite.profile,
    }
    # the label names rows only: it stays out of the descriptor, which is part of the cell's cache key
    labelled = {"task_label": task_spec.label} if task_spec.label else {}
    if task.capability not in spec.capabilities:
        return {**descriptor, **labelled, "key": None, "status": "n/a", "data_notes": dict(profiles.notes)}
    # keyed by task position, not name: a suite may list one task twice with different configs
    memo_key = (d, res, ref.task, seed)
    if memo_key not in memo.prepared:
        data = task.prepare(profiles, cfg, seed)
        memo.prepared[memo_key] = data
        if save_real:
            _store_array(cache, f"real-{data.fingerprint()}", lambda: data.scaler.inverse(data.real.values), log)
            # a task's observed masks (imputation: [settings, N, T]) let the report draw its examples
            observed = getattr(data, "observed", None)
            if isinstance(observed, np.ndarray):
                _store_array(cache, _observed_name(data, cfg), lambda: observed, log)
    data = memo.prepared[memo_key]
    overrides = task_spec.model_overrides.get(model_name) or task_spec.model_overrides.get(base_name)
    model_cfg = spec.config(suite.profile, overrides)
    base = {**descriptor, "model": base_name, "model_config": model_cfg,
            "code_version": code_version(spec.cls, task.source)}
    # a post-processed cell (``energydiff+C``) needs its base cell's samples; the base is counted only when the
    # suite lists it as a cell of its own, so that the counts add up to the number of cells
    key = _cell(base, (), spec, overrides, task, data, cfg, cache, use_cache,
                {"computed": 0, "cached": 0} if suffixes else counts, device=device, progress=progress, log=log)
    if suffixes:
        key = _cell(base, suffixes, spec, overrides, task, data, cfg, cache, use_cache, counts,
                    device=device, progress=progress, log=log)
    entry = {**descriptor, **labelled, "model_config": model_cfg, "key": key, "real_array": f"real-{data.fingerprint()}",
             "split_rule": data.split_rule, "data_notes": dict(profiles.notes)}
    if isinstance(getattr(data, "observed", None), np.ndarray):
        entry["observed_array"] = _observed_name(data, cfg)
    return entry


def task_config(task, protocol: dict, config: dict) -> dict:
    """A task's config in a suite: its defaults, then the suite's protocol keys the task has (split rule,
    fractions, caps, ...), then the suite's own config for the task. Part of every cell's cache key."""
    return {**task.defaults, **{k: v for k, v in protocol.items() if k in task.defaults}, **config}


def _store_array(cache: CellCache, name: str, make, log) -> None:
    """Store a run-level array unless an intact copy is there; a damaged copy is named, set aside, rewritten."""
    problem = cache.array_problem(name)
    if problem:
        moved = cache.quarantine_array(name)
        if log:
            log(f"  damaged cache array: {problem}; moved to {moved} and rewritten")
    if cache.load_array(name) is None:
        cache.save_array(name, make())


def _observed_name(data, cfg: dict) -> str:
    """Cache name of a task's observed masks: they depend on the task config (its missing settings) as well as
    on the data, so two suites imputing the same profiles under other settings do not share them."""
    return f"observed-{data.fingerprint()}-{cell_key(cfg)[:12]}"


def run_suite(suite: Suite, out_dir: str | Path, cache_dir: str | Path, *, device: str = "cpu",
              progress: bool = True, use_cache: bool = True, log=print, command: str | None = None,
              executor=None) -> RunSummary:
    """Run every cell of ``suite`` not already in the cache, then write tables, plots and provenance.

    Cells finished before an interruption are reused; a cell that fails inside a model (``ModelFitError``)
    is stored as failed and shown as such in the tables.

    ``executor`` (a ``bench.executors.ExecutorConfig``, or None / "local" for the plain sequential run) first
    computes the suite's jobs elsewhere (a process pool, SLURM); the sequential pass then finds every cell in
    the cache and only writes the run directory. A job that raised ends the run with
    ``bench.executors.JobsFailedError`` before anything is written.
    """
    started = time.perf_counter()
    out_dir, cache = Path(out_dir), CellCache(cache_dir)
    jobs: list = []
    check_suite(suite)
    if executor is not None and executor != "local":
        from bench.executors import ExecutorConfig, execute

        config = executor if isinstance(executor, ExecutorConfig) else ExecutorConfig(kind=executor)
        if config.kind != "local":
            jobs = execute(plan_jobs(suite, cache_dir, device=device, use_cache=use_cache), config, run_job,
                           out_dir=out_dir, log=log)
            # the jobs computed (or recomputed) every cell: the pass below only reads them back
            use_cache = True
    cells_meta: list[dict] = []
    counts = {"computed": 0, "cached": 0}
    memo = CellMemo()
    all_cells = suite_cells(suite)
    for ref in _progress(all_cells, progress, len(all_cells), suite.name):
        cells_meta.append(run_cell(suite, ref, cache, memo, counts, device=device, progress=progress,
                                   use_cache=use_cache, log=log))

    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"command": command, "suite": suite.to_dict(), "device": device, "cells": cells_meta}
    with open(out_dir / "config.json", "w") as fh:
        json.dump(config, fh, indent=1, sort_keys=True, default=str)
    with open(out_dir / "environment.json", "w") as fh:
        json.dump(environment(), fh, indent=1, sort_keys=True, default=str)
    rows = render_run(out_dir, cache)
    if jobs:
        # report the work the jobs did, counted exactly as a sequential run counts it
        counts = {"computed": counts["computed"] + sum(j.computed for j in jobs),
                  "cached": sum(j.cached for j in jobs)}
    return RunSummary(rows=rows, computed=counts["computed"], cached=counts["cached"], out_dir=out_dir,
                      seconds=time.perf_counter() - started, jobs=jobs)


def fit_key(base: dict, spec, data) -> str:
    """Key of a model's training run: model, config, profile, seed, model code and the profiles it learns from
    (:func:`bench.tasks.common.fitting_set`: the pre-training set for pre-training models where the protocol has
    one), and nothing about the task, so every task of a (dataset, resolution, seed) that trains the same model
    on the same profiles shares one checkpoint and trains once."""
    from bench.tasks.common import fitting_set

    return cell_key({"fit": base["model"], "model_config": base["model_config"], "profile": base["profile"],
                     "seed": base["seed"], "train": fitting_set(spec.cls, data).fingerprint(),
                     "code_version": code_version(spec.cls)})


def model_diagnostics(model) -> dict[str, float]:
    """A model's ``diagnostics()`` (numbers about the fitted model, e.g. expert utilisation) as plain floats;
    stored with the cell, so reports show them from the cache."""
    return {str(k): float(v) for k, v in (model.diagnostics() or {}).items()}


def _cell(base: dict, suffixes: tuple[str, ...], spec, overrides, task, data, cfg: dict, cache: CellCache,
          use_cache: bool, counts: dict, *, device: str, progress: bool, log) -> str:
    """Compute one cell unless it is cached; returns its key.

    With ``suffixes`` the cell post-processes the base model's cached samples (computing the base cell
    first if needed) instead of training the model again.
    """
    # the suite name is a label, not an input: identical cells of different suites share results
    inputs = {k: v for k, v in base.items() if k != "suite"}
    if suffixes and base["task"] != "generation":
        raise ValueError(f"post-processing suffixes ({'+'.join(suffixes)}) apply to the generation task only, "
                         f"not to {base['task']!r}; list the base model {base['model']!r} there instead")
    if suffixes:
        inputs = {**inputs, "postprocess": list(suffixes), "postprocess_version": code_version(apply, task.source, *POSTPROCESS_SOURCES)}
    key = cell_key(inputs)
    label = base["model"] + "".join(f"+{s}" for s in suffixes)
    where = f"{label} on {base['dataset']} @ {base['resolution']} min ({base['task']}, seed {base['seed']})"
    problem = cache.problem(key)
    if problem:
        # a damaged entry (corrupt, truncated, half-written) is data lost, not a reason to stop the run
        moved = cache.quarantine(key)
        if log:
            log(f"  damaged cache entry for {where}: {problem}; moved to {moved}, recomputing")
    if use_cache and cache.has(key):
        counts["cached"] += 1
        return key
    t0 = time.perf_counter()
    if suffixes:
        base_key = cell_key({k: v for k, v in base.items() if k != "suite"})
        base_result = cache.load(base_key)
        samples = cache.load_samples(base_key)
        outcome = Outcome(status=base_result["status"], note=base_result["note"],
                          samples=None if samples is None else apply(suffixes, samples, data.train.values))
    else:
        ctx = RunContext(seed=base["seed"], device=device, profile=base["profile"], progress=progress,
                         checkpoint_dir=cache.checkpoint_dir(fit_key(base, spec, data)))
        model = spec.build(base["profile"], overrides)
        with measure_peak_memory(device) as memory:
            outcome = task.run(model, data, ctx)
        outcome.diagnostics = model_diagnostics(model)
        cost = {**memory, "model_numbers": model_size(model) if outcome.status == "ok" else None}
    # the set metrics run where the models do (values agree with the CPU's to float64 round-off)
    with metric_device(device):
        rows = task.score(outcome, data, cfg, base["seed"])
    result = {"rows": rows, "status": outcome.status, "note": outcome.note, "diagnostics": outcome.diagnostics,
              "seconds": time.perf_counter() - t0, "fit_seconds": outcome.fit_seconds,
              "sample_seconds": outcome.sample_seconds,
              "scaler": {"low": data.scaler.low, "high": data.scaler.high}}
    if not suffixes:
        result["cost"] = cost
    # samples are stored in the model's scaled space; plots map them back to kW with the scaler
    cache.save(key, result, outcome.samples)
    counts["computed"] += 1
    if log and outcome.status != "ok":
        log(f"  {where}: {outcome.status}: {outcome.note}")
    return key


def plan_jobs(suite: Suite, cache_dir: str | Path, *, device: str = "cpu", use_cache: bool = True) -> list[Job]:
    """Group ``suite``'s cells into jobs, one per training run, in the order the sequential runner meets them.

    Every cell is in exactly one job; model and task names are checked here, so a typo fails before
    anything is submitted.
    """
    check_suite(suite)
    groups: dict[tuple, list] = {}
    for ref in suite_cells(suite):
        base = split_model_name(ref.model)[0]
        key = (dataset_identity(suite.datasets[ref.dataset]), ref.resolution, ref.seed, base)
        groups.setdefault(key, []).append(ref)
    as_dict = suite.to_dict()
    # absolute, so a job finds the cache whatever directory its process starts in
    cache = os.path.abspath(cache_dir)
    return [Job(suite=as_dict, cells=tuple(cells), cache_dir=cache, device=device, use_cache=use_cache)
            for cells in groups.values()]


def run_job(job: Job) -> JobReport:
    """Compute the job's cells into the cache (skipping cells already there unless ``job.use_cache`` is False),
    in order, in this process; meant for a fresh process. Cells that fail inside a model are stored as failed
    cells; anything else (missing data, a bug) raises."""
    started = time.perf_counter()
    if job.threads is not None:
        import torch

        torch.set_num_threads(job.threads)
    suite, cache, memo = suite_from_dict(job.suite), CellCache(job.cache_dir), CellMemo()
    counts = {"computed": 0, "cached": 0}
    skipped = 0
    for ref in job.cells:
        # n/a cells need no work: skip them before loading any data for them
        if get_task(ref.task_name).capability not in get_model(split_model_name(ref.model)[0]).capabilities:
            skipped += 1
            continue
        run_cell(suite, ref, cache, memo, counts, device=job.device, progress=False, use_cache=job.use_cache,
                 save_real=False)
    return JobReport(label=job.label, cells=len(job.cells), computed=counts["computed"], cached=counts["cached"],
                     skipped=skipped, seconds=time.perf_counter() - started)
