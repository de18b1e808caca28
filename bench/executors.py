"""Run a suite's cells as independent jobs: sequentially, in a local process pool, or through submitit (SLURM).

A job is the group of cells that share one training run: same dataset entry, resolution, seed and base model
(``gmm+C`` goes with ``gmm``), in the order the sequential runner visits them. Running a job's cells in order in
one process trains a deep model once; the job's later tasks resume from the checkpoint the runner keys on
``fit_key``. The training key holds the base model, its config, the seed and the training profiles, so two jobs
share one only if two dataset entries of a suite load identical profiles; entries with the same name, folder,
period and options are therefore one group. Jobs thus never write the same checkpoint or cell (writes are
atomic renames) and can run anywhere that sees the cache directory. They leave the real evaluation arrays the
plots use to the runner's normal sequential pass, which runs once every job has finished, finds every cell in
the cache and writes the run directory as usual.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from bench.suite import DatasetSpec, toml_value

EXECUTORS = ("local", "process", "submitit")
SUBMITIT_CLUSTERS = ("local", "slurm", "debug")
# submitit's local executor kills a job after 2 minutes unless told otherwise; off SLURM a job may train a
# deep model for hours, so the default there is a day (``--slurm timeout_min=N`` sets it everywhere)
LOCAL_TIMEOUT_MIN = 24 * 60


@dataclass(frozen=True)
class ExecutorConfig:
    """Where a suite's jobs run.

    Attributes:
        kind: ``"local"`` (sequential, in this process), ``"process"`` (a pool of spawned processes) or
            ``"submitit"`` (submitit's AutoExecutor: SLURM job arrays, or local subprocesses).
        workers: processes of the ``"process"`` pool; None = one per CPU.
        folder: submitit's folder for pickled jobs and logs; None = ``<run dir>/submitit``.
        cluster: submitit cluster: None = SLURM when available, else local; or "local", "slurm", or "debug"
            (jobs run one by one in this process and a failing one opens the debugger).
        slurm: SLURM parameters, passed to submitit as ``slurm_KEY=VALUE`` (e.g. partition, gpus_per_node,
            timeout_min, cpus_per_task, mem_gb, array_parallelism).
    """

    kind: str = "local"
    workers: int | None = None
    folder: str | None = None
    cluster: str | None = None
    slurm: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor: unknown kind {self.kind!r}; choose one of {', '.join(EXECUTORS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        if self.cluster is not None and self.cluster not in SUBMITIT_CLUSTERS:
            raise ValueError(f"cluster must be one of {', '.join(SUBMITIT_CLUSTERS)} (or None for auto), "
                             f"got {self.cluster!r}")
        for key in self.slurm:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"slurm: parameter names must be identifiers, got {key!r}")


@dataclass(frozen=True)
class Job:
    """A picklable description of one job: the suite (as ``Suite.to_dict()``), its cells, the cache and device.

    ``threads`` (torch threads in the job's process; None = leave torch's default) is set by the executor.
    """

    suite: dict
    cells: tuple  # of bench.api.Cell
    cache_dir: str
    device: str = "cpu"
    use_cache: bool = True
    threads: int | None = None

    @property
    def profile(self) -> str:
        """The config profile the job's models are built with."""
        return self.suite["profile"]

    @property
    def label(self) -> str:
        """``model on dataset@resolution seed S`` (the base model, as the job's checkpoint is keyed on it)."""
        first = self.cells[0]
        dataset = self.suite["datasets"][first.dataset]["name"]
        return f"{_base_model(first.model)} on {dataset}@{first.resolution}min seed {first.seed}"

    def describe_cells(self) -> str:
        """The job's cells as ``task/model`` names, for error messages."""
        return ", ".join(f"{c.task_name}/{c.model}" for c in self.cells)


@dataclass
class JobReport:
    """What a finished job did: cells computed and found in the cache (counted as a sequential run counts
    them; a ``+C`` cell also counts its base model's cell), cells skipped as n/a, and wall seconds."""

    label: str
    cells: int
    computed: int
    cached: int
    skipped: int
    seconds: float


class JobsFailedError(RuntimeError):
    """One or more jobs raised; ``failures`` holds ``(job, exception text)`` for each."""

    def __init__(self, failures: list[tuple[Job, str]], n_jobs: int) -> None:
        self.failures = failures
        lines = [f"{len(failures)} of {n_jobs} jobs failed (every cell that finished is in the cache; fix the "
                 f"cause and rerun):"]
        for job, text in failures:
            lines.append(f"  job {job.label} [cells: {job.describe_cells()}]: {text}")
        super().__init__("\n".join(lines))


def _base_model(model: str) -> str:
    from bench.postprocess import split_model_name

    return split_model_name(model)[0]


def dataset_identity(ds: DatasetSpec) -> str:
    # two entries of one dataset with the same folder, period and options load the same profiles: one group
    return json.dumps({"name": ds.name, "data_dir": ds.data_dir, "period": ds.period, "options": ds.options},
                      sort_keys=True, default=str)


def _error_text(err: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(err), err)).strip()


# each runner returns {job index: report} and {job index: exception text}
Outcomes = tuple[dict[int, JobReport], dict[int, str]]
RunJob = Callable[[Job], JobReport]


def _run_local(jobs: list[Job], run_job: RunJob, log) -> Outcomes:
    reports, failures = {}, {}
    for i, job in enumerate(jobs):
        try:
            reports[i] = run_job(job)
        except Exception as err:  # noqa: BLE001 - reported with the job, the run then exits with an error
            failures[i] = _error_text(err)
        _log_done(log, i, jobs, reports, failures)
    return reports, failures


def _init_worker(threads: int) -> None:
    """Give a pool worker its share of the cores (several workers would otherwise each use all of them)."""
    # runs in the fresh spawned process before numpy or torch is imported, so the BLAS pools also take the
    # share, unless the user set these variables
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    import torch

    torch.set_num_threads(threads)


def _run_process(jobs: list[Job], run_job: RunJob, workers: int | None, log) -> Outcomes:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cpus = os.cpu_count() or 1
    workers = workers or cpus
    threads = max(1, cpus // workers)
    reports, failures = {}, {}
    # spawn, not fork: a forked child would inherit torch's thread pools and any CUDA state of this process
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                reports[i] = future.result()
            except Exception as err:  # noqa: BLE001 - includes a worker that died (BrokenProcessPool)
                failures[i] = _error_text(err)
            _log_done(log, i, jobs, reports, failures)
    return reports, failures


def _submitit_error_text(err: BaseException, sjob) -> str:
    from submitit.core.utils import FailedJobError

    if isinstance(err, FailedJobError):
        # the message holds the job's whole traceback between dashed lines; its last line names the exception
        lines = [line.strip() for line in str(err).splitlines()
                 if line.strip() and not set(line.strip()) <= {"-"} and not line.startswith(" ")
                 and not line.startswith(("You can check", "Job (task"))]
        text = lines[-1] if lines else _error_text(err)
    else:  # the debug cluster raises the job's own exception; timeouts and cancels are UncompletedJobError
        text = _error_text(err)
    try:
        return f"{text} (log: {sjob.paths.stderr})"
    except Exception:  # noqa: BLE001 - a log path is a courtesy
        return text


def submitit_executor(config: ExecutorConfig, folder: str | Path):
    """A ``submitit.AutoExecutor`` in ``folder`` for ``config.cluster`` with the SLURM parameters of ``config``
    (as ``slurm_KEY``, so they apply on SLURM only; elsewhere the job timeout is ``timeout_min`` or a day)."""
    try:
        import submitit
    except ImportError as err:
        raise ValueError("the submitit executor needs the submitit package: pip install 'meterbench[cluster]'"
                         ) from err
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=config.cluster)
    except RuntimeError as err:  # e.g. cluster "slurm" on a machine without srun
        raise ValueError(f"submitit cluster {config.cluster or 'auto'}: {err}") from err
    params: dict = {"name": "meterbench"}
    params.update({f"slurm_{key}": value for key, value in config.slurm.items()})
    if executor.cluster != "slurm":
        params["timeout_min"] = int(config.slurm.get("timeout_min", LOCAL_TIMEOUT_MIN))
    try:
        executor.update_parameters(**params)
    except (NameError, AssertionError) as err:
        raise ValueError(f"--slurm: {err}") from err
    return executor


def _run_submitit(jobs: list[Job], run_job: RunJob, config: ExecutorConfig, folder: Path, log) -> Outcomes:
    executor = submitit_executor(config, folder)
    if config.slurm.get("cpus_per_task"):
        threads = int(config.slurm["cpus_per_task"])
    elif executor.cluster != "slurm":
        # local subprocesses all start at once and share this machine's cores
        threads = max(1, (os.cpu_count() or 1) // len(jobs))
    else:
        threads = None
    submitted = executor.map_array(run_job, [replace(job, threads=threads) for job in jobs])
    if log:
        ids = sorted({str(s.job_id).split("_")[0] for s in submitted})
        log(f"submitted {len(jobs)} jobs to submitit ({executor.cluster}; id {', '.join(ids)}; folder {folder})")
    reports, failures = {}, {}
    for i, sjob in enumerate(submitted):
        try:
            reports[i] = sjob.result()
        except Exception as err:  # noqa: BLE001 - FailedJobError, UncompletedJobError (timeout, cancel)
            failures[i] = _submitit_error_text(err, sjob)
        _log_done(log, i, jobs, reports, failures)
    return reports, failures


def _log_done(log, i: int, jobs: list[Job], reports: dict, failures: dict) -> None:
    if not log:
        return
    head = f"job {len(reports) + len(failures)}/{len(jobs)} {jobs[i].label}"
    if i in failures:
        log(f"{head}: FAILED: {failures[i]}")
    else:
        r = reports[i]
        log(f"{head}: {r.computed} computed, {r.cached} from cache, {r.seconds:.1f} s")


def execute(jobs: list[Job], config: ExecutorConfig, run_job: RunJob, *, out_dir: str | Path,
            log=print) -> list[JobReport]:
    """Run ``run_job(job)`` for every job on the executor ``config`` names and wait for all of them.

    ``run_job`` (``bench.runner.run_job``) must be a module-level function so that process pools and submitit
    can send it to other processes by reference.

    Returns one report per job (in the order of ``jobs``); raises :class:`JobsFailedError` after every job
    has ended if any raised. ``out_dir`` is the run directory (the default home of submitit's folder).
    """
    if not jobs:
        return []
    if config.kind == "local":
        reports, failures = _run_local(jobs, run_job, log)
    elif config.kind == "process":
        reports, failures = _run_process(jobs, run_job, config.workers, log)
    else:
        folder = Path(config.folder) if config.folder else Path(out_dir) / "submitit"
        reports, failures = _run_submitit(jobs, run_job, config, folder, log)
    if failures:
        raise JobsFailedError([(jobs[i], failures[i]) for i in sorted(failures)], len(jobs))
    return [reports[i] for i in range(len(jobs))]


def parse_slurm_setting(text: str) -> tuple[str, object]:
    """``"partition=gpu"`` -> ``("partition", "gpu")``, ``"timeout_min=240"`` -> ``("timeout_min", 240)``; the
    value is a TOML literal (numbers, booleans, quoted strings), or a bare string when it is not one."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier() or not raw.strip():
        raise ValueError(f"--slurm expects KEY=VALUE (e.g. partition=gpu), got {text!r}")
    return key, toml_value(raw)
