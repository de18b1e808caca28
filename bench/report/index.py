"""The overview page of a results folder: one line per run directory, with links to its report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.report.html import write_html


def run_directories(results_dir: str | Path) -> list[Path]:
    """Every direct sub-folder of ``results_dir`` holding a ``config.json`` (a run directory), sorted by name."""
    return sorted(p.parent for p in Path(results_dir).glob("*/config.json"))


def _leader(run_dir: Path) -> str:
    """The model with the lowest overall normalised rank of the run (ties: all of them), or "–"."""
    path = run_dir / "rank_summary.csv"
    if not path.is_file():
        return "–"
    summary = pd.read_csv(path, index_col="model")
    if summary["overall"].isna().all():
        return "–"
    best = summary["overall"].min()
    names = [m for m, v in summary["overall"].items() if v == best]
    return ", ".join(f"`{m}`" for m in names) + f" ({best:.2f})"


def _published(run_dir: Path) -> str:
    """How many of the run's numbers have a published counterpart, and from which tables."""
    path = run_dir / "comparison.csv"
    if not path.is_file():
        return "–"
    frame = pd.read_csv(path, keep_default_na=False)
    tables = ", ".join(dict.fromkeys(f"{s} {t}" for s, t in zip(frame["source"], frame["table"])))
    return f"{len(frame)} ({tables})" if len(frame) else "–"


def _description(suite: dict) -> str:
    """The suite's description, flagged when the run replaced the suite's datasets (``--dataset``), since the
    description names the shipped data."""
    from bench.suite import list_suites, load_suite

    shipped_name = Path(suite.get("source") or suite["name"]).stem
    text = f"`{shipped_name}`: {suite.get('description', '')}"
    if shipped_name not in list_suites():
        return text
    shipped = [d.name for d in load_suite(shipped_name).datasets]
    ran = [d["name"] for d in suite["datasets"]]
    return text if shipped == ran else f"{text} Run here on other data (see data)."


def index_markdown(results_dir: str | Path) -> str:
    """Markdown overview of every run directory in ``results_dir``: suite, profile, seeds, data, cells, the
    command that produced it, the leading model of its rank summary, its published comparisons, and links."""
    results_dir = Path(results_dir)
    rows = []
    for run_dir in run_directories(results_dir):
        config = json.loads((run_dir / "config.json").read_text())
        suite = config["suite"]
        data = "; ".join(f"{d.get('label') or d['name']} @ {', '.join(map(str, d['resolutions']))} min"
                         for d in suite["datasets"])
        name = run_dir.name
        links = f"[tables]({name}/tables.md), [html]({name}/report.html)"
        rows.append([f"`{name}`", _description(suite), suite["profile"], ", ".join(map(str, suite["seeds"])),
                     data, str(len(config["cells"])), f"`{config.get('command') or 'unknown'}`", _leader(run_dir),
                     _published(run_dir), links])
    grid = tabulate(rows, headers=["run", "suite", "profile", "seeds", "data", "cells", "command",
                                   "lowest overall rank", "published numbers compared", "report"],
                    tablefmt="github", disable_numparse=True)
    return "\n".join([
        "# meterbench results", "",
        "Each run directory holds `results.csv` (tidy rows), `tables.md` / `report.html` (tables in the suite's "
        "and the papers' layouts, rank summary, comparison with the papers' published numbers, figures), "
        "`tables.tex`, per-table CSVs, `config.json` (every cell with its cache key) and `environment.json` "
        "(commit, packages, hardware). `python run_bench.py report` rebuilds all of them, and this page, from "
        "the cell cache; the command in each line recomputes a run (cells already cached are reused).", "",
        grid, "", *_perf_lines(results_dir)])


def _perf_lines(results_dir: Path) -> list[str]:
    """A pointer to the speed and memory figures of ``python -m bench.perf``, when the folder holds them."""
    found = sorted(p.relative_to(results_dir).as_posix() for p in results_dir.glob("perf/**/*.md"))
    if not found:
        return []
    links = ", ".join(f"[{p}]({p})" for p in found)
    return [f"Speed and memory of the deep models (training steps/s, samples/s, peak memory), measured by "
            f"`python -m bench.perf`: {links}.", ""]


def write_index(results_dir: str | Path) -> tuple[Path, Path]:
    """Write ``README.md`` and ``index.html`` of :func:`index_markdown` into ``results_dir``."""
    results_dir = Path(results_dir)
    text = index_markdown(results_dir)
    md = results_dir / "README.md"
    md.write_text(text)
    return md, write_html(text, results_dir / "index.html", title="meterbench results")
