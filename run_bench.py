#!/usr/bin/env python
"""meterbench command line.

    python run_bench.py                          # the quick suite on the embedded default data
    python run_bench.py --dataset lcl --data-dir ../shared/data/lcl_sample --resolution 30
    python run_bench.py --suite quick --models gmm,t-copula --seeds 0,1
    python run_bench.py list models|datasets|tasks|suites
    python run_bench.py report                   # rebuild every run in results/ (tables, plots, HTML) from the cache
    python run_bench.py report results/quick     # ... or one run
    python run_bench.py --executor process --workers 4                     # jobs in 4 local processes
    python run_bench.py --executor submitit --slurm partition=gpu --slurm gpus_per_node=1 --device cuda
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_RESULTS = REPO_ROOT / "results"
COMMANDS = ("run", "list", "report")


def _csv(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_bench.py", description="meterbench: benchmark generative models "
                                     "of smart-meter load data.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a suite (the default command)")
    run.add_argument("--suite", default="quick", help="suite name in bench/suites or a TOML path (default quick)")
    run.add_argument("--dataset", help="replace the suite's datasets with this one (see `list datasets`)")
    run.add_argument("--data-dir", help="folder with the dataset's files (default $METERBENCH_DATA/<dataset>)")
    run.add_argument("--resolution", type=_csv(int), help="resolution(s) in minutes, e.g. 30 or 60,15")
    run.add_argument("--households", type=int, help="load only the first N households (LCL, CER, WPuQ)")
    run.add_argument("--models", type=_csv(str), help="comma-separated model names (see `list models`)")
    run.add_argument("--seeds", type=_csv(int), help="comma-separated seeds")
    run.add_argument("--profile", choices=("test", "quick", "paper"),
                     help="model config profile: test (tiny), quick (CPU, minutes) or paper (GPU)")
    run.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                     help="override a model parameter, e.g. energydiff.train_steps=200 (repeatable)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or auto (deep models)")
    run.add_argument("--out", help="run directory (default results/<suite name>)")
    run.add_argument("--cache", default=str(DEFAULT_RESULTS / "cache"), help="cell cache directory")
    run.add_argument("--no-cache", action="store_true", help="recompute every cell (results still stored)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--executor", choices=("local", "process", "submitit"), default="local",
                     help="where the cells run: local (sequential, the default), process (a local process "
                     "pool) or submitit (SLURM job arrays, or local subprocesses); one job per training run")
    run.add_argument("--workers", type=int, help="processes of --executor process (default: one per CPU)")
    run.add_argument("--submitit-folder", help="submitit's folder for jobs and logs (default <out>/submitit)")
    run.add_argument("--submitit-cluster", choices=("local", "slurm", "debug"),
                     help="submitit cluster (default: SLURM when available, else local)")
    run.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                     help="a SLURM parameter for --executor submitit, e.g. partition=gpu, gpus_per_node=1, "
                     "timeout_min=240, cpus_per_task=8 (repeatable)")
    lst = sub.add_parser("list", help="list models, datasets, tasks or suites")
    lst.add_argument("what", choices=("models", "datasets", "tasks", "suites"))
    rep = sub.add_parser("report", help="rebuild runs' tables, plots and HTML reports from the cache")
    rep.add_argument("run_dir", nargs="?", help="a run directory (holding config.json); default: every run "
                     "directory under --results, then its overview page (README.md, index.html)")
    rep.add_argument("--results", default=str(DEFAULT_RESULTS), help="results folder (default results/)")
    rep.add_argument("--cache", default=str(DEFAULT_RESULTS / "cache"), help="cell cache directory")
    return parser


def cmd_list(what: str) -> None:
    from tabulate import tabulate

    if what == "models":
        from dataclasses import fields

        from bench.registry import list_models

        rows = [(m.name, ", ".join(sorted(m.capabilities)), ", ".join(f.name for f in fields(m.params)) or "-",
                 m.description) for m in list_models()]
        print(tabulate(rows, headers=["model", "capabilities", "parameters (--set model.param=value)", "description"],
                       maxcolwidths=[None, 24, 48, 60]))
    elif what == "datasets":
        from bench.data.loaders import DATASETS

        rows = [(d.name, f"{d.resolution} min", d.description) for d in DATASETS.values()]
        print(tabulate(rows, headers=["dataset", "native resolution", "description"]))
    elif what == "tasks":
        import sys

        from bench.tasks import list_tasks

        rows = [(t.name, t.capability, (sys.modules[t.run.__module__].__doc__ or "").strip().splitlines()[0])
                for t in list_tasks()]
        print(tabulate(rows, headers=["task", "needs capability", "description"]))
    else:
        from bench.suite import describe_protocol, list_suites, load_suite

        rows = []
        for name in list_suites():
            s = load_suite(name)
            protocol = describe_protocol(s.protocol) or "task defaults"
            protocol += "".join(f"; {d.title}: {describe_protocol(d.protocol)}" for d in s.datasets if d.protocol)
            rows.append((name, s.profile, protocol, s.description))
        print(tabulate(rows, headers=["suite", "profile", "protocol", "description"], maxcolwidths=[None, None, 48, 60]))


def executor_config(args):
    """The ``ExecutorConfig`` of the run flags; flags of another executor than the chosen one are an error."""
    from bench.executors import ExecutorConfig, parse_slurm_setting

    if args.workers is not None and args.executor != "process":
        raise ValueError("--workers applies to --executor process only")
    if (args.slurm or args.submitit_folder or args.submitit_cluster) and args.executor != "submitit":
        raise ValueError("--slurm, --submitit-folder and --submitit-cluster apply to --executor submitit only")
    slurm = dict(parse_slurm_setting(text) for text in args.slurm)
    return ExecutorConfig(kind=args.executor, workers=args.workers, folder=args.submitit_folder,
                          cluster=args.submitit_cluster, slurm=slurm)


def cmd_run(args, argv: list[str]) -> int:
    from bench.executors import JobsFailedError
    from bench.runner import run_suite
    from bench.suite import check_suite, load_suite, override, parse_model_setting

    suite = load_suite(args.suite)
    if args.households is not None and args.households < 1:
        raise ValueError(f"--households must be a positive number of households, got {args.households}")
    options = {"households": args.households} if args.households is not None else None
    settings: dict[str, dict] = {}
    for text in args.set:
        model, param, value = parse_model_setting(text)
        settings.setdefault(model, {})[param] = value
    suite = override(suite, dataset=args.dataset, data_dir=args.data_dir, resolutions=args.resolution,
                     models=args.models, seeds=args.seeds, profile=args.profile, options=options,
                     model_settings=settings)
    check_suite(suite)
    executor = executor_config(args)
    out_dir = Path(args.out) if args.out else DEFAULT_RESULTS / suite.name
    try:
        summary = run_suite(suite, out_dir, args.cache, device=args.device, progress=not args.quiet,
                            use_cache=not args.no_cache, command=shlex.join(["python", "run_bench.py", *argv]),
                            executor=None if executor.kind == "local" else executor)
    except JobsFailedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if out_dir.resolve().parent == DEFAULT_RESULTS.resolve():
        from bench.report.index import write_index

        write_index(DEFAULT_RESULTS)  # the overview page lists this run too
    from bench.report.render import terminal_text

    print(terminal_text(out_dir))
    print(f"{summary.computed} cells computed, {summary.cached} from cache, {summary.seconds:.1f} s; "
          f"results in {out_dir}")
    return 0


def cmd_report(args) -> int:
    """Re-render one run directory, or every run directory of the results folder plus its overview page. A run
    whose cells are not all in the cache is left as it is, with the command that recomputes it."""
    from bench.cache import CellCache
    from bench.report.render import missing_cells, render_run, terminal_text
    from bench.report.index import run_directories, write_index

    cache = CellCache(args.cache)
    if args.run_dir is not None:
        run_dirs = [Path(args.run_dir)]
        if not (run_dirs[0] / "config.json").is_file():
            print(f"error: {run_dirs[0]} holds no config.json; give a run directory written by `run_bench.py run`",
                  file=sys.stderr)
            return 2
    else:
        run_dirs = run_directories(args.results)
        if not run_dirs:
            print(f"error: no run directory (a folder with config.json) under {args.results}", file=sys.stderr)
            return 2
    incomplete = 0
    for run_dir in run_dirs:
        config = json.loads((run_dir / "config.json").read_text())
        missing = missing_cells(config, cache)
        if missing:
            incomplete += 1
            print(f"error: {run_dir}: {len(missing)} of {len(config['cells'])} cells are not in the cache "
                  f"{cache.root}, so it was left unchanged; recompute them (cached cells are reused) with\n"
                  f"    {config.get('command') or 'python run_bench.py --suite ' + config['suite']['name']}",
                  file=sys.stderr)
            continue
        render_run(run_dir, cache)
        if args.run_dir is not None:
            print(terminal_text(run_dir))
        else:
            print(f"{run_dir}: {len(config['cells'])} cells from the cache -> tables.md, report.html")
    if args.run_dir is None:
        md, page = write_index(args.results)
        print(f"overview: {md}, {page}")
    return 1 if incomplete else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    original = list(argv)
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    from bench.errors import DataError

    try:
        if args.command == "list":
            cmd_list(args.what)
            return 0
        if args.command == "report":
            return cmd_report(args)
        return cmd_run(args, original)
    except (DataError, FileNotFoundError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
