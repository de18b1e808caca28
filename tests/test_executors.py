"""Executors: jobs grouped by training run, and the process / submitit executors matching the sequential run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import run_bench
from bench.executors import (LOCAL_TIMEOUT_MIN, ExecutorConfig, JobsFailedError, execute, parse_slurm_setting,
                             submitit_executor)
from bench.runner import plan_jobs, run_job, run_suite, suite_cells
from bench.suite import load_suite, suite_from_dict

# two jobs: gmm serves two tasks (one training run), linear-interp one; tiny task configs keep cells fast
SMALL_SUITE = """
name = "small"
profile = "quick"
seeds = [0]
[[datasets]]
name = "uci"
resolutions = [30]
[[tasks]]
name = "imputation"
models = ["linear-interp", "gmm"]
config = { patterns = ["random"], fractions_missing = [0.3], max_queries = 40, n_bootstrap = 3, n_samples = 4 }
[[tasks]]
name = "super_resolution"
models = ["gmm"]
config = { factors = [2], max_queries = 40, n_bootstrap = 3, n_samples = 4 }
"""

# only planned, never run: two resolutions, two seeds, a post-processed model, a model without a capability
PLAN_SUITE = """
name = "plan"
seeds = [0, 1]
[[datasets]]
name = "uci"
resolutions = [60, 30]
[[tasks]]
name = "generation"
models = ["resample-train", "gmm", "gmm+C"]
[[tasks]]
name = "imputation"
models = ["linear-interp", "gmm", "resample-train"]
"""


def _suite(tmp_path: Path, text: str, name: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return load_suite(str(path))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small suite run sequentially once: the reference every executor must reproduce."""
    root = tmp_path_factory.mktemp("executors")
    suite = _suite(root, SMALL_SUITE, "small")
    summary = run_suite(suite, root / "local", root / "cache-local", progress=False, log=None)
    return suite, root, summary


def _results(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv")


def _tables(run_dir: Path) -> list[str]:
    """tables.md without its provenance line of the command (which names the executor flags) and without the
    cost section (seconds and peak memory are measurements of each run, not results)."""
    lines, in_cost = [], False
    for line in (run_dir / "tables.md").read_text().splitlines():
        if line.startswith("## "):
            in_cost = line == "## cost"
        if not in_cost and not line.startswith("- command"):
            lines.append(line)
    return lines


def test_plan_groups_cells_by_training_run(tmp_path):
    suite = _suite(tmp_path, PLAN_SUITE, "plan")
    jobs = plan_jobs(suite, tmp_path / "cache")
    cells = suite_cells(suite)
    # every cell exactly once
    assert Counter(c for job in jobs for c in job.cells) == Counter(cells)
    assert len(cells) == 2 * 2 * 6
    # one job per (resolution, seed, base model): resample-train, gmm, linear-interp
    assert len(jobs) == 2 * 2 * 3
    for job in jobs:
        assert len({(c.dataset, c.resolution, c.seed, c.model.split("+")[0]) for c in job.cells}) == 1
        # cells keep the sequential order, so a job trains first and later tasks resume
        assert [cells.index(c) for c in job.cells] == sorted(cells.index(c) for c in job.cells)
    gmm = next(j for j in jobs if j.cells[0].model == "gmm" and j.cells[0].resolution == 60
               and j.cells[0].seed == 1)
    assert [(c.task_name, c.model) for c in gmm.cells] == [("generation", "gmm"), ("generation", "gmm+C"),
                                                            ("imputation", "gmm")]
    assert gmm.label == "gmm on uci@60min seed 1" and gmm.profile == "quick"
    # jobs appear in the order the sequential runner meets their first cell
    firsts = [cells.index(j.cells[0]) for j in jobs]
    assert firsts == sorted(firsts)
    assert suite_from_dict(jobs[0].suite) == suite


def test_plan_merges_a_dataset_listed_twice_and_rejects_unknown_models(tmp_path):
    # the same data twice would train the same model into the same checkpoint: it must be one job
    twice = PLAN_SUITE.replace('[[tasks]]', '[[datasets]]\nname = "uci"\nresolutions = [60, 30]\n[[tasks]]', 1)
    suite = _suite(tmp_path, twice, "twice")
    assert len(suite.datasets) == 2
    jobs = plan_jobs(suite, tmp_path / "cache")
    assert len(jobs) == 12 and sum(len(j.cells) for j in jobs) == 2 * len(suite_cells(_suite(tmp_path, PLAN_SUITE,
                                                                                                "plan")))
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        plan_jobs(_suite(tmp_path, PLAN_SUITE.replace('"linear-interp"', '"no-such-model"'), "bad"), tmp_path)


def test_process_executor_matches_local_then_rerun_computes_nothing(small):
    suite, root, local = small
    assert (local.computed, local.cached) == (3, 0)
    summary = run_suite(suite, root / "process", root / "cache-process", progress=False, log=None,
                        executor=ExecutorConfig(kind="process", workers=2))
    assert [j.label for j in summary.jobs] == ["linear-interp on uci@30min seed 0", "gmm on uci@30min seed 0"]
    assert [(j.computed, j.cached) for j in summary.jobs] == [(1, 0), (2, 0)]
    assert (summary.computed, summary.cached) == (local.computed, local.cached)
    pd.testing.assert_frame_equal(_results(root / "process"), _results(root / "local"))
    assert _tables(root / "process") == _tables(root / "local")
    again = run_suite(suite, root / "process", root / "cache-process", progress=False, log=None)
    assert (again.computed, again.cached) == (0, 3)


def test_submitit_local_matches_local_and_debug_rerun_computes_nothing(small):
    suite, root, _ = small
    cfg = ExecutorConfig(kind="submitit", cluster="local", slurm={"partition": "ignored-off-slurm"})
    summary = run_suite(suite, root / "submitit", root / "cache-submitit", progress=False, log=None, executor=cfg)
    assert [(j.computed, j.cached) for j in summary.jobs] == [(1, 0), (2, 0)]
    pd.testing.assert_frame_equal(_results(root / "submitit"), _results(root / "local"))
    assert list((root / "submitit" / "submitit").glob("*_log.out"))
    # the debug cluster runs jobs in this process: every cell is found in the shared cache
    rerun = run_suite(suite, root / "submitit", root / "cache-submitit", progress=False, log=None,
                      executor=ExecutorConfig(kind="submitit", cluster="debug", folder=str(root / "dbg")))
    assert [(j.computed, j.cached) for j in rerun.jobs] == [(0, 1), (0, 2)]
    assert (rerun.computed, rerun.cached) == (0, 3)


def test_failing_job_is_reported_with_its_cells_and_error(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    text = SMALL_SUITE.replace('name = "uci"', f'name = "lcl"\ndata_dir = "{missing}"')
    suite = _suite(tmp_path, text, "broken")
    jobs = plan_jobs(suite, tmp_path / "cache")
    with pytest.raises(JobsFailedError) as err:
        execute(jobs, ExecutorConfig(kind="local"), run_job, out_dir=tmp_path / "run", log=None)
    assert len(err.value.failures) == 2
    message = str(err.value)
    assert "2 of 2 jobs failed" in message and str(missing) in message
    assert "imputation/gmm, super_resolution/gmm" in message and "DataError" in message
    # through the command line in a worker process: exit code 1, nothing written
    path = tmp_path / "broken.toml"
    code = run_bench.main(["--suite", str(path), "--out", str(tmp_path / "run"), "--cache",
                           str(tmp_path / "cache"), "--quiet", "--executor", "process", "--workers", "1"])
    assert code == 1
    stderr = capsys.readouterr().err
    assert "jobs failed" in stderr and str(missing) in stderr and "imputation/linear-interp" in stderr
    assert not (tmp_path / "run" / "config.json").exists()


def test_cli_flags_parse_into_an_executor_config(tmp_path):
    parser = run_bench.build_parser()
    args = parser.parse_args(["run", "--executor", "submitit", "--submitit-cluster", "slurm", "--submitit-folder",
                              "/x", "--slurm", "partition=gpu", "--slurm", "gpus_per_node=1", "--slurm",
                              "timeout_min=240", "--slurm", "mem_gb=32.5"])
    cfg = run_bench.executor_config(args)
    assert cfg == ExecutorConfig(kind="submitit", folder="/x", cluster="slurm",
                                 slurm={"partition": "gpu", "gpus_per_node": 1, "timeout_min": 240, "mem_gb": 32.5})
    assert run_bench.executor_config(parser.parse_args(["run"])) == ExecutorConfig()
    assert run_bench.executor_config(parser.parse_args(["run", "--executor", "process", "--workers", "3"])).workers == 3
    with pytest.raises(ValueError, match="--workers"):
        run_bench.executor_config(parser.parse_args(["run", "--workers", "3"]))
    with pytest.raises(ValueError, match="--slurm"):
        run_bench.executor_config(parser.parse_args(["run", "--executor", "process", "--slurm", "partition=gpu"]))
    for bad in ("partition", "=gpu", "two words=1", "partition="):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_slurm_setting(bad)
    with pytest.raises(ValueError, match="workers"):
        ExecutorConfig(kind="process", workers=0)
    with pytest.raises(ValueError, match="kind"):
        ExecutorConfig(kind="kubernetes")
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--executor", "threads"])


def test_executor_local_flag_leaves_the_output_unchanged(small, capsys):
    suite, root, _ = small
    args = ["--suite", suite.source, "--cache", str(root / "cache-local"), "--quiet", "--out", str(root / "cli"),
            "--executor", "local"]
    assert run_bench.main(args) == 0
    out = capsys.readouterr().out
    assert "0 cells computed, 3 from cache" in out
    assert "job " not in out  # no job lines: the plain sequential run
    pd.testing.assert_frame_equal(_results(root / "cli"), _results(root / "local"))
    strip = lambda d: {k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "command"}
    assert strip(root / "cli") == strip(root / "local")
    assert _tables(root / "cli") == _tables(root / "local")


def test_slurm_parameters_reach_submitit(tmp_path, monkeypatch):
    cfg = ExecutorConfig(kind="submitit", cluster="slurm",
                         slurm={"partition": "gpu", "gpus_per_node": 1, "timeout_min": 240, "cpus_per_task": 8})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="srun"):
        submitit_executor(cfg, tmp_path / "jobs")
    # submitit only checks that srun exists before it builds a SLURM executor; nothing is submitted here
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    slurm = submitit_executor(cfg, tmp_path / "jobs")
    assert slurm.cluster == "slurm"
    assert {k: slurm.parameters[k] for k in ("partition", "gpus_per_node", "time", "cpus_per_task")} == \
        {"partition": "gpu", "gpus_per_node": 1, "time": 240, "cpus_per_task": 8}
    with pytest.raises(ValueError, match="--slurm: .*bogus"):
        submitit_executor(ExecutorConfig(kind="submitit", cluster="slurm", slurm={"bogus": 1}), tmp_path / "jobs")
    # off SLURM the slurm parameters are ignored and the job timeout is long, not submitit's 2 minutes
    local = submitit_executor(ExecutorConfig(kind="submitit", cluster="local", slurm={"partition": "gpu"}),
                              tmp_path / "jobs")
    assert local.cluster == "local" and local.parameters["timeout_min"] == LOCAL_TIMEOUT_MIN
    assert "partition" not in local.parameters
