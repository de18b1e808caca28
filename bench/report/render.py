"""Turn a run directory's config plus the cell cache into tables, plots and a tidy CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.cache import CellCache
from bench.data.scaling import MinMaxScaler
from bench.tasks import expected_rows

# ``setting`` distinguishes rows of one cell that a task scores under several conditions (a missing rate, an
# up-sampling factor, a condition group); it is empty for tasks with a single setting. ``repeats`` is the metric's
# value on each bootstrap repeat (a tuple of floats; None where a row has none), which lets the tables compare two
# models repeat by repeat over the same resamples; results.csv stores it as space-separated floats.
ROW_COLUMNS = ["suite", "task", "dataset", "resolution", "setting", "model", "seed", "metric", "value", "std",
               "status", "note", "repeats"]


def _provenance_lines(config: dict, environment: dict | None) -> list[str]:
    suite = config["suite"]
    cells = config["cells"]
    fps = sorted({f"{c['dataset']}@{c['resolution']}min={c['data_fingerprint']}" for c in cells})
    lines = [f"- command: `{config.get('command') or 'unknown'}`",
             f"- suite `{suite['name']}`, profile `{suite['profile']}`, seeds {list(suite['seeds'])}, "
             f"device `{config.get('device', 'cpu')}`",
             *protocol_lines(config),
             f"- data fingerprints: {', '.join(fps)}"]
    if environment:
        git = environment.get("git") or {}
        commit = git.get("commit") or "unknown"
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        pk = environment.get("packages", {})
        lines.append(f"- code: commit `{commit[:12]}`{dirty}; python {environment.get('python')}, "
                     + ", ".join(f"{k} {v}" for k, v in pk.items() if v))
        lines.append(f"- hardware: {environment.get('platform')}, {environment.get('cpu_count')} CPUs, "
                     f"accelerator: {environment.get('cuda') or 'none'}")
    return lines


def protocol_lines(config: dict) -> list[str]:
    """The run's protocol as the tables print it: the suite's declared protocol, each dataset's split as
    carried out (rule, sizes, caps), what the loaders filtered, each task's statement of what the paper
    states and what is assumed, and the suite's deliberate deviations from the paper."""
    from bench.suite import describe_protocol
    from bench.tasks import get_task

    suite, cells = config["suite"], config["cells"]
    declared = suite.get("protocol") or {}
    lines = [f"- protocol: {describe_protocol(declared) if declared else 'task defaults'}"]
    for dataset in suite.get("datasets", []):
        if dataset.get("protocol"):
            title = dataset.get("label") or dataset["name"]
            lines.append(f"  - {title}: {describe_protocol(dataset['protocol'])}")
    splits = dict.fromkeys(f"{c['dataset']} @ {c['resolution']} min ({c['task']}): {c['split_rule']}"
                           for c in cells if c.get("split_rule"))
    lines += ["- splits:", *(f"  - {s}" for s in splits)]
    data_notes = dict.fromkeys(f"{c['dataset']}: {key} = {value}" for c in cells
                               for key, value in (c.get("data_notes") or {}).items())
    if data_notes:
        lines += ["- data:", *(f"  - {n}" for n in data_notes)]
    task_notes = dict.fromkeys(f"{c['task']}: {note}" for c in cells
                               for note in get_task(c["task"]).protocol_notes)
    if task_notes:
        lines += ["- task protocol (paper = stated in the paper, assumed = not stated there):",
                  *(f"  - {n}" for n in task_notes)]
    deviations = suite.get("deviations") or ()
    if deviations:
        lines += ["- deviations from the paper:", *(f"  - {d}" for d in deviations)]
    return lines


def metric_goals(metric_names) -> dict[str, str]:
    """``{metric: goal}`` (lower / higher / ignore) from the metric registry, for the metrics a table shows;
    an unregistered metric is an error naming it."""
    from metrics import METRICS

    return {m: METRICS.get(m).goal for m in metric_names}


def missing_cells(config: dict, cache: CellCache) -> list[dict]:
    """The cells of a run's ``config`` that have a cache key but no finished entry in ``cache``."""
    return [cell for cell in config["cells"] if cell.get("key") is not None and not cache.has(cell["key"])]


def render_run(run_dir: str | Path, cache: CellCache) -> pd.DataFrame:
    """Rebuild ``results.csv``, the tables and the plots of ``run_dir`` from its ``config.json`` and the cache.

    Returns the tidy rows.
    """
    from bench.report import plots, tables

    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    env_file = run_dir / "environment.json"
    environment = json.loads(env_file.read_text()) if env_file.is_file() else None
    rows = collect_rows(config["cells"], cache)
    write_results_csv(rows, run_dir / "results.csv")

    md = [f"# meterbench results: suite `{config['suite']['name']}`", "", *_provenance_lines(config, environment),
          ""]
    tex = []
    task_tables, extra_figures = {}, []  # the CD diagrams and the Pareto plot
    # a labelled task (a sweep point) renames its settings, so the paper's column groups no longer apply
    labelled = {cell["task"] for cell in config.get("cells", []) if cell.get("task_label")}
    for task, task_rows in rows.groupby("task", sort=False):
        task_rows, duplicates = drop_identical_models(task_rows)
        metrics = list(dict.fromkeys(task_rows["metric"]))
        goals = metric_goals(metrics)
        with_setting = task_rows["setting"].fillna("").astype(str).str.len().gt(0).any()
        index = ("dataset", "resolution", "setting", "model") if with_setting else tables.DEFAULT_INDEX
        if with_setting:
            # rows arrive model by model; a reader compares models within a setting, so group by setting
            order = {c: {v: i for i, v in enumerate(dict.fromkeys(task_rows[c]))} for c in index}
            keys = np.column_stack([task_rows[c].map(order[c]).to_numpy() for c in index])
            task_rows = task_rows.iloc[np.lexsort(keys.T[::-1])]
        table = tables.summary_table(task_rows, goals, metrics=metrics, index=index)
        task_tables[task] = table
        caption = f"Task `{task}`"
        for word in ("lower", "higher"):
            named = [m for m in metrics if goals[m] == word]
            caption += f"; {word} is better for {', '.join(named)}" if named else ""
        unranked = [m for m in metrics if goals[m] == "ignore"]
        caption += f"; {', '.join(unranked)} not ranked" if unranked else ""
        caption += "".join(f"; `{copy}` is identical to `{kept}` in every cell and shown once (as `{kept}`)"
                           for copy, kept in duplicates.items())
        md += [f"## {task}", "", tables.to_markdown(table, caption), ""]
        if task == "generation":
            md += _memorisation_lines(task_rows)
            privacy = plots.plot_privacy(task_rows, run_dir / "plots" / "privacy.png")
            if privacy is not None:
                extra_figures.append(("privacy", [("memorisation rate against the DCR ratio per model; red = "
                                                   "flagged as memorising its training set", privacy)]))
        significance = _significance(task, task_rows, goals, run_dir)
        if significance is not None:
            md += [significance[0], ""]
            extra_figures += significance[1]
        tex.append(tables.to_latex(table, caption))
        tables.to_csv(table, run_dir / f"table_{task}.csv")
        wide = None if task in labelled else paper_layout(task, task_rows, goals)
        if wide is not None:
            wide_table, wide_caption = wide
            md += [f"### {task} in the paper's layout", "", tables.to_markdown(wide_table, wide_caption), ""]
            tex.append(tables.to_latex(wide_table, wide_caption))
            tables.to_csv(wide_table, run_dir / f"table_{task}_paper.csv")
    if task_tables:
        summary = tables.rank_summary(task_tables)
        summary.to_csv(run_dir / "rank_summary.csv")
        md += ["## rank summary", "", tables.rank_summary_markdown(summary), ""]
        cost_lines, cost_figures = _cost_section(config["cells"], cache, summary, run_dir)
        md += cost_lines
        extra_figures += cost_figures
    from bench.report.claims import check_claims, claims_markdown

    verdicts = check_claims(rows)
    if verdicts:
        pd.DataFrame([v.__dict__ for v in verdicts]).to_csv(run_dir / "claims.csv", index=False)
        md += ["## claims of the papers, checked on this run", "",
               "Each headline claim (`bench/report/claims.csv`) as a check on this run's means, in every "
               "dataset / resolution / setting group that has the models it names.", "",
               claims_markdown(verdicts), ""]
    comparison = published_comparison(config, rows)
    if not comparison.empty:
        from bench.report.agreement import agreement_markdown, rank_agreement
        from bench.report.published import comparison_markdown, side_by_side_markdown

        comparison.to_csv(run_dir / "comparison.csv", index=False)
        agreement = rank_agreement(comparison, metric_goals(set(comparison["metric"])))
        agreement.to_csv(run_dir / "agreement.csv", index=False)
        md += ["## compared with the papers' published numbers", "", "### side by side, in the papers' layout", "",
               side_by_side_markdown(comparison), "", "### every number", "", comparison_markdown(comparison), "",
               "### model order: ours vs the paper's", "", agreement_markdown(agreement), ""]
    diagnostics = diagnostics_frame(config["cells"], cache)
    if not diagnostics.empty:
        diagnostics.to_csv(run_dir / "diagnostics.csv", index=False)
        md += ["## model diagnostics", "", *diagnostics_markdown(diagnostics), ""]
    figures = _render_plots(config["cells"], cache, run_dir / "plots", plots) + extra_figures
    if figures:
        md += [FIGURES_HEADING, ""]
        for heading, items in figures:
            md += [f"### {heading}", ""]
            md += [f"![{caption}]({path.relative_to(run_dir).as_posix()})\n\n*{caption}*\n" for caption, path in items]
    (run_dir / "tables.md").write_text("\n".join(md))
    # the LaTeX tables travel into papers without tables.md: they carry the provenance as comments
    header = "\n".join(f"% {line.removeprefix('- ')}" for line in _provenance_lines(config, environment))
    (run_dir / "tables.tex").write_text(f"% meterbench results: suite {config['suite']['name']}\n{header}\n\n"
                                        + "\n\n".join(tex))
    from bench.report.html import write_html

    write_html("\n".join(md), run_dir / "report.html", title=f"meterbench: suite {config['suite']['name']}")
    return rows


def drop_identical_models(task_rows: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """``task_rows`` without models whose every row (setting, metric, value, std, status) equals an earlier
    model's, e.g. ``gmm-pca`` when the profile has no more steps than its PCA keeps, so that one result is not
    ranked twice; and ``{dropped: kept}``. Models with a single row are never merged (too little to tell)."""
    fields = ["dataset", "resolution", "setting", "seed", "metric", "value", "std", "status"]
    signature = {}
    for model, part in task_rows.groupby("model", sort=False):
        if len(part) < 2:
            continue
        frame = part[fields].astype(str).sort_values(fields[:5])
        signature.setdefault(tuple(map(tuple, frame.to_numpy())), []).append(model)
    duplicates = {copy: models[0] for models in signature.values() for copy in models[1:]}
    return task_rows[~task_rows["model"].isin(duplicates)], duplicates


def _memorisation_lines(task_rows: pd.DataFrame) -> list[str]:
    """One line naming the models the memorisation test flags (see :mod:`bench.tasks.generation`), if any
    model was tested."""
    tested = task_rows[(task_rows["metric"] == "Memorised") & (task_rows["status"] == "ok")]
    if tested.empty:
        return []
    flagged = tested[tested["note"].fillna("").str.startswith("memorising")]
    names = ", ".join(f"`{m}` ({d} @ {r} min)" for m, d, r in
                      flagged[["model", "dataset", "resolution"]].drop_duplicates().itertuples(index=False))
    return [f"Memorisation (distance to the closest training profile against held-out real profiles, one-sided "
            f"binomial test): {'flagged as memorising: ' + names if names else 'no model flagged'}.", ""]


def _significance(task: str, task_rows: pd.DataFrame, goals: dict[str, str], run_dir: Path
                  ) -> tuple[str, list[tuple[str, list]]] | None:
    """Friedman's test and the CD diagram of ``task`` (:mod:`bench.report.significance`): a paragraph and the
    diagram as a figures-section entry; None when the task has too few blocks or models."""
    from bench.report.significance import friedman, friedman_markdown, plot_cd

    tested = friedman(task, task_rows, goals)
    if tested is None:
        return None
    result, ranked = tested
    figure = plot_cd(ranked, run_dir / "plots" / f"cd-{task}.png", f"{task}: mean ranks, Nemenyi CD {result.cd:.2f}")
    shown = figure.relative_to(run_dir).as_posix() if figure else None
    caption = f"critical-difference diagram of {task} (Friedman p = {result.pvalue:.3g})"
    return friedman_markdown(result, shown), ([(task, [(caption, figure)])] if figure else [])


def _cost_section(cells: list[dict], cache: CellCache, ranks: pd.DataFrame, run_dir: Path
                  ) -> tuple[list[str], list[tuple[str, list]]]:
    """The "cost" section (:mod:`bench.report.cost`): its markdown lines (also ``cost.csv``) and the Pareto
    figure as a figures-section entry."""
    from bench.report.cost import collect_costs, cost_markdown, cost_summary, plot_pareto

    summary = cost_summary(collect_costs(cells, cache), ranks)
    if summary.empty:
        return [], []
    summary.to_csv(run_dir / "cost.csv", index=False)
    figure = plot_pareto(summary, run_dir / "plots" / "pareto.png")
    caption = "quality (mean normalised rank) against seconds (fit + sample) per task; the Pareto front in blue"
    return ["## cost", "", cost_markdown(summary), ""], ([("cost", [(caption, figure)])] if figure else [])


def paper_layout(task: str, task_rows: pd.DataFrame, goals: dict[str, str]):
    """``(table, caption)`` of ``task`` in its paper's layout (settings as column groups), when the task declares
    ``paper_layout = {"caption": ..., "metrics": [...], "settings": [...] | None}``; else None."""
    from bench.report import tables
    from bench.tasks import get_task

    layout = get_task(task).paper_layout
    if not layout:
        return None
    metrics = [m for m in layout["metrics"] if m in set(task_rows["metric"])]
    if not metrics:
        return None
    table = tables.settings_as_columns(task_rows, goals, metrics, settings=layout.get("settings"))
    return table, f"{layout['caption']}: settings as column groups, the same values as the table above"


def published_comparison(config: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """The run's rows beside the papers' published numbers of the same cells
    (:func:`bench.report.published.compare`), dataset by dataset so that the loader options pick the right
    published table; the suite's ``compare`` mapping pairs datasets that differ knowingly. Empty when nothing
    matches."""
    from bench.report.published import compare, load_published, published_for

    published = load_published()
    frames = []
    pairs = config["suite"].get("compare") or {}
    for spec in config["suite"]["datasets"]:
        # rows carry the dataset's label (two entries of one loader under other protocols stay apart); the
        # published numbers carry the loader's name, unless the suite's compare mapping names another
        title = spec.get("label") or spec["name"]
        ours = rows[rows["dataset"] == title]
        if ours.empty:
            continue
        theirs = published_for(published, spec["name"], **(spec.get("options") or {}))
        frame = compare(ours, theirs, datasets={title: pairs.get(title, spec["name"])})
        if not frame.empty:
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


DIAGNOSTIC_KEYS = ("dataset", "resolution", "model", "seed")
FIGURES_HEADING = "## figures"


def terminal_text(run_dir: str | Path) -> str:
    """``tables.md`` of ``run_dir`` for a terminal: everything up to the figures, then where they are (image
    links mean nothing there)."""
    run_dir = Path(run_dir)
    text = (run_dir / "tables.md").read_text()
    head, found, _ = text.partition(f"\n{FIGURES_HEADING}\n")
    if not found:
        return text
    count = len(list((run_dir / "plots").glob("*.png")))
    return f"{head.rstrip()}\n\n{count} figures in {run_dir / 'plots'}; all of it in {run_dir / 'report.html'}\n"


def diagnostics_frame(cells: list[dict], cache: CellCache) -> pd.DataFrame:
    """Tidy ``dataset, resolution, model, seed, name, value`` rows of the models' diagnostics (one copy per
    fitted model: the tasks of a run share a model's training, so they report the same numbers)."""
    records, seen = [], set()
    for cell in cells:
        if cell.get("key") is None or not cache.has(cell["key"]):
            continue
        values = cache.load(cell["key"]).get("diagnostics") or {}
        key = tuple(cell[k] for k in DIAGNOSTIC_KEYS)
        if not values or key in seen:
            continue
        seen.add(key)
        records += [{**dict(zip(DIAGNOSTIC_KEYS, key)), "name": name, "value": value}
                    for name, value in values.items()]
    return pd.DataFrame.from_records(records, columns=[*DIAGNOSTIC_KEYS, "name", "value"])


def diagnostics_markdown(frame: pd.DataFrame) -> list[str]:
    """Markdown lines: the expert-utilisation grid (fraction of routed tokens per expert and layer) of each
    mixture-of-experts model, then every other diagnostic as ``model: name = value``."""
    from tabulate import tabulate

    lines = []
    util = frame[frame["name"].str.startswith("expert_util/")]
    for key, group in util.groupby(list(DIAGNOSTIC_KEYS), sort=False):
        parts = group["name"].str.split("/", expand=True)
        grid = pd.DataFrame({"layer": parts[1], "expert": parts[2], "value": group["value"].to_numpy()})
        grid = grid.pivot(index="layer", columns="expert", values="value")
        grid = grid.reindex(index=sorted(grid.index, key=lambda x: int(x.lstrip("L"))),
                            columns=sorted(grid.columns, key=lambda x: int(x.lstrip("E"))))
        label = ", ".join(f"{k}={v}" for k, v in zip(DIAGNOSTIC_KEYS, key))
        lines += [f"Expert utilisation of `{key[2]}` ({label}): fraction of routed tokens per expert and layer "
                  f"(balanced = {1 / grid.shape[1]:.3f}).", "",
                  tabulate(grid.reset_index().values.tolist(), headers=["layer", *grid.columns], tablefmt="github",
                           floatfmt=".3f"), ""]
    other = frame[~frame["name"].str.startswith("expert_util/")]
    lines += [f"- `{r.model}` ({r.dataset} @ {r.resolution} min, seed {r.seed}): {r.name} = {r.value:.4g}"
              for r in other.itertuples()]
    return lines


def _task_groups(cells: list[dict], task: str) -> dict[tuple, list[dict]]:
    """Cached cells of ``task`` per (dataset, resolution), of the first seed listed for that pair."""
    groups: dict[tuple, dict] = {}
    for cell in cells:
        if cell["task"] != task or cell["key"] is None:
            continue
        group = groups.setdefault((cell["dataset"], cell["resolution"]), {"seed": cell["seed"], "cells": []})
        if cell["seed"] == group["seed"]:
            group["cells"].append(cell)
    return {key: group["cells"] for key, group in groups.items()}


def _cached_outputs(group: list[dict], cache: CellCache) -> tuple[dict[str, np.ndarray | None], dict[str, str]]:
    """Each cell's cached samples in kW by model (None when it has none), and the reason of every model
    without samples."""
    outputs: dict[str, np.ndarray | None] = {}
    failures: dict[str, str] = {}
    for cell in group:
        result, samples = cache.load(cell["key"]), cache.load_samples(cell["key"])
        # cached samples are in the model's scaled space; figures show kW like the real profiles
        outputs[cell["model"]] = None if samples is None else MinMaxScaler(**result["scaler"]).inverse(samples)
        if samples is None:
            failures[cell["model"]] = result["note"] or "no samples"
    return outputs, failures


def _render_plots(cells: list[dict], cache: CellCache, plot_dir: Path, plots) -> list[tuple[str, list]]:
    """Per (dataset, resolution) of the generation task, first seed: sample curves, marginal histograms,
    correlation heatmaps, a 2-D PCA embedding of real vs generated profiles (and a UMAP one when umap-learn is
    installed) and, for every model scored before and after a post-processing step (``m`` and ``m+C``), a
    before/after calibration figure. Returns ``[(heading, [(caption, path), ...]), ...]`` for the report."""
    from bench.postprocess import split_model_name

    plot_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for (dataset, resolution), group in _task_groups(cells, "generation").items():
        real = cache.load_array(group[0]["real_array"])
        if real is None:
            continue
        generated, failures = _cached_outputs(group, cache)
        stem = plot_dir / f"{dataset}-{resolution}min"
        where = f"{dataset}, {resolution}-minute daily profiles"
        items = [
            (f"{where}: 100 real and generated profiles per model (kW)",
             plots.plot_samples(real, generated, f"{stem}-samples.png", resolution=resolution,
                                title=f"{where} (kW)", failures=failures)),
            (f"{where}: pooled marginal distribution, generated over real",
             plots.plot_marginal_histograms(real, generated, f"{stem}-histograms.png", failures=failures)),
            (f"{where}: Pearson correlation between time steps",
             plots.plot_covariance(real, generated, f"{stem}-correlation.png", resolution=resolution,
                                   failures=failures)),
            (f"{where}: 2-D PCA embedding (fitted on the real test profiles) of real and generated profiles",
             plots.plot_embedding(real, generated, f"{stem}-pca.png", method="pca", failures=failures,
                                  title=f"{where}: PCA of real (grey) and generated (blue) profiles")),
        ]
        if plots.umap_available():
            items.append((f"{where}: 2-D UMAP embedding (fitted on the real test profiles)",
                          plots.plot_embedding(real, generated, f"{stem}-umap.png", method="umap",
                                               failures=failures,
                                               title=f"{where}: UMAP of real (grey) and generated (blue)")))
        for name, after in generated.items():
            base, suffixes = split_model_name(name)
            before = generated.get(base)
            if not suffixes or before is None or after is None:
                continue
            items.append((f"{where}: `{base}` before and after {'+'.join(suffixes)} (marginal calibration)",
                          plots.plot_calibration(real, before, after, f"{stem}-calibration-{base}.png",
                                                 resolution=resolution, model=base,
                                                 title=f"{where}: {base} before / after +{'+'.join(suffixes)}")))
        figures.append((f"{dataset} @ {resolution} min", items))
    return figures + _ensemble_figures(cells, cache, plot_dir, plots)


def _ensemble_settings(task: str, cell: dict, truth: np.ndarray, cache: CellCache) -> list[dict] | None:
    """What an ensemble figure of ``task`` needs per setting: its name, a file tag and the ``observed`` mask or
    the ``coarse`` input the model was given; None when the cache lacks it (imputation masks of runs from before
    the runner stored them)."""
    if task == "imputation":
        from bench.tasks.imputation import setting_specs

        observed = cache.load_array(cell["observed_array"]) if "observed_array" in cell else None
        if observed is None:
            return None
        return [{"name": f"{name} missing", "tag": name.replace("%", "pct"), "observed": observed[i]}
                for i, (name, _, _) in enumerate(setting_specs(cell["task_config"]))]
    from bench.tasks.super_resolution import block_means, setting_specs

    # block means commute with the affine kW scaling: the model's coarse input, in kW, from the true profiles
    return [{"name": name, "tag": f"x{factor}",
             "coarse": np.repeat(block_means(truth, np.ones(truth.shape, dtype=bool), factor), factor, axis=1)}
            for name, factor in setting_specs(cell["task_config"], cell["resolution"])]


def _ensemble_figures(cells: list[dict], cache: CellCache, plot_dir: Path, plots) -> list[tuple[str, list]]:
    """Per (dataset, resolution) of the imputation and super-resolution tasks, first seed: example profiles
    with each model's ensemble (median and 5-95 % band) beside the truth and what the model was given, for the
    first, middle and last setting."""
    figures = []
    for task in ("imputation", "super_resolution"):
        for (dataset, resolution), group in _task_groups(cells, task).items():
            truth = cache.load_array(group[0]["real_array"])
            settings = None if truth is None else _ensemble_settings(task, group[0], truth, cache)
            if not settings:
                continue
            ensembles, failures = _cached_outputs(group, cache)
            given = "observed (dots)" if task == "imputation" else "given coarse profile (black steps)"
            items = []
            for index in sorted({0, len(settings) // 2, len(settings) - 1}):
                setting = settings[index]
                where = f"{dataset}, {resolution}-minute profiles, {task.replace('_', '-')} {setting['name']}"
                path = plots.plot_ensemble_examples(
                    truth, {m: None if e is None else e[index] for m, e in ensembles.items()},
                    plot_dir / f"{dataset}-{resolution}min-{task.replace('_', '-')}-{setting['tag']}.png",
                    observed=setting.get("observed"), coarse=setting.get("coarse"), resolution=resolution,
                    failures=failures, title=f"{where}: true (grey), {given}, ensemble median and 5-95 % band")
                items.append((f"{where}: three example profiles with each model's ensemble", path))
            figures.append((f"{dataset} @ {resolution} min, {task.replace('_', '-')}", items))
    return figures


def write_results_csv(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write tidy rows as ``results.csv``: ``repeats`` as space-separated floats (exact on reading back, empty
    where a row has none), every other column as pandas writes it. Returns the path."""
    from bench.report.tables import repeats_text

    path = Path(path)
    out = rows.copy()
    if "repeats" in out.columns:
        out["repeats"] = [repeats_text(v) for v in out["repeats"]]
    out.to_csv(path, index=False)
    return path


def read_results_csv(path: str | Path) -> pd.DataFrame:
    """Tidy rows from a ``results.csv`` as :func:`collect_rows` returns them: ``repeats`` back to tuples of
    floats (None where empty; a file written before the column existed gets None throughout), the status
    ``n/a`` and empty settings and notes kept as strings, values and stds exact."""
    from bench.report.tables import parse_repeats

    frame = pd.read_csv(path, keep_default_na=False, na_values={"value": [""], "std": [""]},
                        dtype={"setting": str, "note": str, "repeats": str}, float_precision="round_trip")
    column = frame["repeats"] if "repeats" in frame.columns else [None] * len(frame)
    frame["repeats"] = pd.Series([parse_repeats(v) for v in column], index=frame.index, dtype=object)
    return frame


def collect_rows(cells_meta: list[dict], cache: CellCache) -> pd.DataFrame:
    """Tidy rows of every cell listed in a run's config, read from the cache alone; ``repeats`` is a tuple of
    floats where a cached row has per-repeat values and None otherwise (old cache entries, failed and n/a
    rows)."""
    from bench.report.tables import parse_repeats

    records = []
    for cell in cells_meta:
        base = {k: cell[k] for k in ("suite", "task", "dataset", "resolution", "model", "seed")}
        label = cell.get("task_label", "")

        def setting(name: str) -> str:
            return f"{label}, {name}" if label and name else (label or name)

        if cell["key"] is None:
            records += [{**base, "setting": setting(name), "metric": m, "value": np.nan, "std": np.nan,
                         "status": "n/a", "note": "model lacks this capability"}
                        for name, m in expected_rows(cell["task"], cell["task_config"], cell["resolution"])]
            continue
        if not cache.has(cell["key"]):
            raise FileNotFoundError(f"cell {cell['key']} ({cell['model']} on {cell['dataset']} @ "
                                    f"{cell['resolution']} min) is not in the cache {cache.root}; rerun the suite")
        for row in cache.load(cell["key"])["rows"]:
            records.append({**base, **row, "setting": setting(row.get("setting", ""))})
    frame = pd.DataFrame.from_records(records, columns=ROW_COLUMNS)
    # a tuple keeps the column hashable (drop_duplicates, groupby); absent repeats arrive as NaN
    frame["repeats"] = pd.Series([parse_repeats(v) for v in frame["repeats"]], index=frame.index, dtype=object)
    return frame
