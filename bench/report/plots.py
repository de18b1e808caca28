"""Figures comparing real and generated profiles: sample curves, pooled marginal histograms, correlation maps,
2-D embeddings fitted on the real profiles, and the effect of marginal calibration on one model.

Every function draws on a fresh :class:`matplotlib.figure.Figure` with an Agg canvas (never ``pyplot``, so
no window opens and no global figure stays registered), writes a PNG to ``path`` (creating its folder),
closes the figure and returns the path.

``generated`` maps a model name to its samples ``[n, T]`` or to ``None`` when the model failed; a failed
model gets an empty panel reading ``failed: <reason>``, the reason taken from ``failures`` (``"no samples"``
when not given), so that a failure is visible rather than silently dropped.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench import seeds
from bench.seeds import Stream

REAL = "real"
_REAL_COLOUR = "0.35"
_MODEL_COLOUR = "tab:blue"


def _as_profiles(values: object, name: str, length: int | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array [n, T], got shape {array.shape}")
    if length is not None and array.shape[1] != length:
        raise ValueError(f"{name}: profiles have {array.shape[1]} steps, the real ones {length}")
    return array


def _inputs(real: object, generated: Mapping[str, object | None]
            ) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
    real = _as_profiles(real, REAL)
    if REAL in generated:
        raise ValueError(f"{REAL!r} is reserved for the real panel; rename that model")
    models = {name: None if arr is None else _as_profiles(arr, f"model {name!r}", real.shape[1])
              for name, arr in generated.items()}
    return real, models


def _figure(n_panels: int, panel_size: tuple[float, float], ncols: int = 3) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, k + 1) for k in range(n_panels)]
    return fig, axes


def _failed_panel(ax, name: str, reason: str) -> None:
    ax.set_title(name)
    # wrapped by hand: matplotlib's own wrapping ignores the panel width under constrained layout
    ax.text(0.5, 0.5, textwrap.fill(f"failed: {reason}", width=42), ha="center", va="center",
            transform=ax.transAxes, color="tab:red", fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    fig.clear()  # the figure was never registered with pyplot: clearing it releases everything it holds
    return path


def _hours(length: int, resolution: float | None) -> tuple[np.ndarray, str]:
    """Interval start times in hours; a daily profile is assumed when the resolution is not given."""
    minutes = resolution if resolution is not None else 1440 / length
    if minutes <= 0:
        raise ValueError(f"resolution must be positive minutes, got {resolution}")
    label = "hour of day" if math.isclose(length * minutes, 1440) else "hours since start"
    return np.arange(length) * minutes / 60, label


def _reason(failures: Mapping[str, str] | None, name: str) -> str:
    return (failures or {}).get(name) or "no samples"


def plot_samples(real: np.ndarray, generated: Mapping[str, np.ndarray | None], path: str | Path,
                 n_curves: int = 100, resolution: float | None = None, title: str = "Real and generated profiles",
                 failures: Mapping[str, str] | None = None, seed: int = 0) -> Path:
    """Up to ``n_curves`` randomly chosen profiles (seeded) per panel: real first, then one panel per model.

    All panels share the y-limits, so that scales compare at a glance; the x-axis is in hours (of the day
    for daily profiles), from ``resolution`` minutes per step or, without it, 24 h over the profile length.
    """
    real, models = _inputs(real, generated)
    if n_curves < 1:
        raise ValueError(f"n_curves must be >= 1, got {n_curves}")
    hours, xlabel = _hours(real.shape[1], resolution)
    rng = seeds.rng(seed, Stream.REPORT_FIGURES)
    shown = {}
    for name, arr in {REAL: real, **models}.items():
        if arr is not None:
            pick = np.sort(rng.choice(len(arr), min(n_curves, len(arr)), replace=False))
            shown[name] = arr[pick]
    finite = np.concatenate([a[np.isfinite(a)] for a in shown.values()])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.03 * (high - low) or 0.5
    fig, axes = _figure(1 + len(models), (4.0, 3.0))
    for ax, name in zip(axes, [REAL, *models]):
        if name not in shown:
            _failed_panel(ax, name, _reason(failures, name))
            continue
        curves = shown[name]
        ax.plot(hours, curves.T, color=_REAL_COLOUR if name == REAL else _MODEL_COLOUR, lw=0.5, alpha=0.25)
        ax.set_title(f"{name} ({len(curves)} of {len(real if name == REAL else models[name])})")
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlim(hours[0], hours[-1] if len(hours) > 1 else hours[0] + 1)
        ax.set_xlabel(xlabel)
    fig.suptitle(title)
    return _save(fig, path)


def plot_marginal_histograms(real: np.ndarray, generated: Mapping[str, np.ndarray | None], path: str | Path,
                             bins: int = 100, failures: Mapping[str, str] | None = None,
                             title: str = "Pooled marginal distribution (all time steps)") -> Path:
    """Per model, the density histogram of all its values pooled over time steps, over the real one.

    All panels use the same bins, spanning the finite values of real and generated data together.
    Without models, a single panel shows the real histogram.
    """
    real, models = _inputs(real, generated)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    pooled = {name: arr[np.isfinite(arr)] for name, arr in {REAL: real, **models}.items() if arr is not None}
    if pooled[REAL].size == 0:
        raise ValueError("real profiles hold no finite value")
    edges = _shared_edges(pooled.values(), bins)
    names = list(models) or [REAL]
    fig, axes = _figure(len(names), (4.0, 3.0))
    for ax, name in zip(axes, names):
        if name != REAL and models[name] is None:
            _failed_panel(ax, name, _reason(failures, name))
            continue
        ax.hist(pooled[REAL], bins=edges, density=True, color=_REAL_COLOUR, alpha=0.45, label=REAL)
        if name != REAL:
            ax.hist(pooled[name], bins=edges, density=True, histtype="step", color=_MODEL_COLOUR, lw=1.2,
                    label=name)
        ax.set_title(name)
        ax.set_xlabel("value")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def _shared_edges(arrays, bins: int) -> np.ndarray:
    """``bins + 1`` histogram edges spanning the finite values of all ``arrays`` together (one unit wide around
    a single value), so that every panel or curve of a figure is binned alike."""
    every = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    every = every[np.isfinite(every)]
    low, high = float(every.min()), float(every.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def correlation_matrix(profiles: np.ndarray) -> np.ndarray:
    """Pearson correlation between time steps of ``profiles [n, T]`` (rows with a non-finite value dropped).

    A constant time step (e.g. zero PV output at night) has no defined correlation: its row and column
    are NaN rather than a warning-laden division by zero.
    """
    x = np.asarray(profiles, dtype=float)
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < 2:
        raise ValueError(f"need at least 2 complete profiles for a correlation matrix, got {len(x)}")
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (len(x) - 1)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[sd == 0, :] = np.nan
    corr[:, sd == 0] = np.nan
    return np.clip(corr, -1.0, 1.0)


def plot_covariance(real: np.ndarray, generated: Mapping[str, np.ndarray | None], path: str | Path,
                    resolution: float | None = None, failures: Mapping[str, str] | None = None,
                    title: str = "Pearson correlation between time steps") -> Path:
    """Heatmaps of the time-step correlation matrix (not the covariance, so that scales compare), real first
    then each model, on one shared colour scale [-1, 1]; undefined entries (constant steps) are grey."""
    real, models = _inputs(real, generated)
    length = real.shape[1]
    hours, label = _hours(length, resolution)
    span = hours[-1] + (hours[1] - hours[0] if length > 1 else 1.0)
    fig, axes = _figure(1 + len(models), (3.6, 3.2))
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.8")
    image = None
    for ax, name in zip(axes, [REAL, *models]):
        arr = real if name == REAL else models[name]
        if arr is None:
            _failed_panel(ax, name, _reason(failures, name))
            continue
        corr = np.ma.masked_invalid(correlation_matrix(arr))
        image = ax.imshow(corr, cmap=cmap, vmin=-1.0, vmax=1.0, extent=(0, span, span, 0),
                          interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel(label)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="correlation")
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------------- 2-D embeddings

EMBEDDING_METHODS = ("pca", "umap")


def subsample_rows(values: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows of ``values``, drawn without replacement by a generator seeded with ``seed``
    alone and kept in their original order; all rows (the same array) when there are not more than that.

    Every array gets its own generator from the same seed, so an array's subsample depends only on the seed
    and its row count, not on which other models are plotted beside it.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if len(values) <= max_points:
        return values
    pick = seeds.rng(seed, Stream.REPORT_FIGURES).choice(len(values), max_points, replace=False)
    return values[np.sort(pick)]


def _require_finite(values: np.ndarray, name: str) -> None:
    bad = int((~np.isfinite(values).all(axis=1)).sum())
    if bad:
        raise ValueError(f"{name}: {bad} of {len(values)} profiles hold non-finite values; "
                         "drop or fill them before embedding")


class PcaMap:
    """The first two principal axes of a set of profiles, fitted once and applied to any profiles of the same
    length (``transform``). Attributes: ``mean [T]``, ``components [2, T]`` (orthonormal rows, each with its
    largest-magnitude loading positive so that repeated fits draw the same picture) and ``explained [2]``,
    the fractions of the total variance the two axes carry."""

    def __init__(self, profiles: np.ndarray, name: str = REAL) -> None:
        x = np.asarray(profiles, dtype=float)
        if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
            raise ValueError(f"{name}: PCA needs at least 2 profiles of at least 2 steps, got shape {x.shape}")
        _require_finite(x, name)
        self.mean = x.mean(axis=0)
        _, singular, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        components = vt[:2]
        # SVD fixes each axis only up to sign: pin it so that the picture does not flip between runs
        largest = np.abs(components).argmax(axis=1)
        signs = np.sign(components[np.arange(2), largest])
        self.components = components * signs[:, None]
        total = float((singular ** 2).sum())
        self.explained = (singular[:2] ** 2 / total) if total > 0 else np.zeros(2)

    def transform(self, profiles: np.ndarray) -> np.ndarray:
        """Coordinates ``[n, 2]`` of ``profiles [n, T]`` on the fitted axes: ``(x - mean) @ components.T``."""
        return (np.asarray(profiles, dtype=float) - self.mean) @ self.components.T

    def labels(self) -> tuple[str, str]:
        """Axis labels naming each component and its share of the real variance, e.g. ``PC1 (62.3 % var.)``."""
        return tuple(f"PC{k + 1} ({100 * share:.1f} % var.)" for k, share in enumerate(self.explained))


def _import_umap():
    try:
        import umap
    except ImportError as err:
        raise ImportError("the UMAP embedding needs the package umap-learn: pip install umap-learn") from err
    return umap


def umap_available() -> bool:
    """Whether ``umap-learn`` can be imported, i.e. whether ``method="umap"`` works here."""
    try:
        _import_umap()
    except ImportError:
        return False
    return True


def _umap_embed(real: np.ndarray, others: Mapping[str, np.ndarray], seed: int
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    umap = _import_umap()
    # the default 15 neighbours cannot be met by a tiny real set; a seeded UMAP runs on one thread anyway, and
    # saying so avoids its warning about overriding n_jobs
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, len(real) - 1)), random_state=seeds.int_seed(seed, Stream.REPORT_FIGURES, bits=31), n_jobs=1)
    real_xy = np.asarray(reducer.fit_transform(real), dtype=float)
    return real_xy, {name: np.asarray(reducer.transform(arr), dtype=float) for name, arr in others.items()}


def embed_2d(real: np.ndarray, others: Mapping[str, np.ndarray], method: str = "pca", seed: int = 0,
             max_points: int = 2000) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[str, str]]:
    """Map profiles to 2-D with a map fitted on the real profiles only, so that every model lands in the
    real data's coordinate system (a map fitted per model, or on everything pooled, would move the axes with
    the model and make panels incomparable).

    Each array is first cut to at most ``max_points`` rows (:func:`subsample_rows`, seeded with ``seed``), so
    that 1-minute data stay fast. ``method="pca"``: the two leading principal axes of the centred real
    profiles (:class:`PcaMap`). ``method="umap"``: ``umap.UMAP`` fitted on the real profiles with
    ``random_state=seed``, the others placed with its ``transform``.

    Returns:
        real coordinates ``[n_real, 2]``, each model's coordinates ``[n_model, 2]`` by name, and the labels of
        the two axes.

    Raises:
        ValueError: an array is not 2-D, its length differs from the real one, or a row holds a non-finite
            value (the message names the array); an unknown ``method``.
        ImportError: ``method="umap"`` without ``umap-learn`` installed.
    """
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"method must be one of {EMBEDDING_METHODS}, got {method!r}")
    real = _as_profiles(real, REAL)
    _require_finite(real, REAL)
    checked = {}
    for name, arr in others.items():
        label = f"model {name!r}"
        checked[name] = _as_profiles(arr, label, real.shape[1])
        _require_finite(checked[name], label)
    real = subsample_rows(real, max_points, seed)
    checked = {name: subsample_rows(arr, max_points, seed) for name, arr in checked.items()}
    if method == "umap":
        real_xy, others_xy = _umap_embed(real, checked, seed)
        return real_xy, others_xy, ("UMAP 1", "UMAP 2")
    pca = PcaMap(real)
    return pca.transform(real), {name: pca.transform(arr) for name, arr in checked.items()}, pca.labels()


def _shared_limits(coords: list[np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]]:
    points = np.concatenate(coords)
    points = points[np.isfinite(points).all(axis=1)]
    limits = []
    for axis in range(2):
        low, high = (float(points[:, axis].min()), float(points[:, axis].max())) if len(points) else (0.0, 1.0)
        pad = 0.05 * (high - low) or 0.5
        limits.append((low - pad, high + pad))
    return limits[0], limits[1]


def plot_embedding(real: np.ndarray, generated: Mapping[str, np.ndarray | None], path: str | Path,
                   method: str = "pca", failures: Mapping[str, str] | None = None, max_points: int = 2000,
                   seed: int = 0, title: str | None = None) -> Path:
    """One panel per model: its samples (blue) over the real profiles (grey) in a 2-D map fitted on the real
    profiles only (:func:`embed_2d`), every panel on the same axis limits. Without models, a single panel
    shows the real profiles.

    A model's samples with non-finite values lose those rows (the panel title counts them) rather than
    breaking the whole figure; a model left with none gets the failed panel. Real profiles with non-finite
    values are a ``ValueError``: the map is fitted on them.
    """
    real, models = _inputs(real, generated)
    usable, dropped, reasons = {}, {}, {}
    for name, arr in models.items():
        if arr is None:
            reasons[name] = _reason(failures, name)
            continue
        keep = np.isfinite(arr).all(axis=1)
        if not keep.any():
            reasons[name] = "no sample without non-finite values"
            continue
        usable[name], dropped[name] = arr[keep], int((~keep).sum())
    real_xy, model_xy, (xlabel, ylabel) = embed_2d(real, usable, method, seed, max_points)
    xlim, ylim = _shared_limits([real_xy, *model_xy.values()])
    names = list(models) or [REAL]
    fig, axes = _figure(len(names), (3.8, 3.4))
    for ax, name in zip(axes, names):
        if name in reasons:
            _failed_panel(ax, name, reasons[name])
            continue
        ax.scatter(real_xy[:, 0], real_xy[:, 1], s=3, color=_REAL_COLOUR, alpha=0.3, linewidths=0, label=REAL)
        heading = f"{REAL} ({len(real_xy)} of {len(real)})"
        if name != REAL:
            xy = model_xy[name]
            ax.scatter(xy[:, 0], xy[:, 1], s=3, color=_MODEL_COLOUR, alpha=0.5, linewidths=0, label=name)
            heading = f"{name} ({len(xy)} of {len(models[name])}"
            heading += f", {dropped[name]} non-finite dropped)" if dropped[name] else ")"
            ax.legend(fontsize="small", markerscale=3)
        ax.set_title(heading, fontsize="medium")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.suptitle(title or f"{method.upper()} map fitted on the real profiles")
    return _save(fig, path)


# ------------------------------------------------------------------------------------ marginal calibration

_BEFORE_COLOUR = "tab:orange"


def per_step_ks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic between ``a[:, t]`` and ``b[:, t]`` for every step ``t``.

    ``a [n, T]`` and ``b [m, T]`` must be finite. Equal to ``scipy.stats.ks_2samp(a[:, t], b[:, t]).statistic``
    column by column, computed for all columns at once: sort both samples together, walk up the pooled order
    adding ``m`` for a value of ``a`` and subtracting ``n`` for one of ``b`` (integers, so no rounding builds
    up), and read ``|n m (F_a - F_b)|`` only at the last of tied values, where both ECDFs are defined.
    """
    a = _as_profiles(a, "a")
    b = _as_profiles(b, "b", a.shape[1])
    for name, arr in (("a", a), ("b", b)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: the KS statistic needs finite values")
    n, m = len(a), len(b)
    # one row per step, contiguous: sorting along rows is several times faster than down strided columns
    pooled = np.ascontiguousarray(np.concatenate([a, b]).T)
    # the order within ties does not matter (only the last of each tie is read), so no stable sort is needed
    order = np.argsort(pooled, axis=1)
    values = np.take_along_axis(pooled, order, axis=1)
    gap = np.abs(np.cumsum(np.where(order < n, m, -n), axis=1, dtype=np.int64))
    last_of_ties = np.ones(values.shape, dtype=bool)
    last_of_ties[:, :-1] = values[:, 1:] != values[:, :-1]
    return np.where(last_of_ties, gap, 0).max(axis=1) / (n * m)


def _calibration_inputs(real: object, before: object, after: object
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    real = _as_profiles(real, REAL)
    before = _as_profiles(before, "before calibration", real.shape[1])
    after = _as_profiles(after, "after calibration", real.shape[1])
    for name, arr in ((REAL, real), ("before calibration", before), ("after calibration", after)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: profiles must be finite")
    return real, before, after


def _calibration_histograms(ax, real, before, after, bins: int) -> None:
    edges = _shared_edges((real, before, after), bins)
    ax.hist(real.ravel(), bins=edges, density=True, color=_REAL_COLOUR, alpha=0.45, label=REAL)
    ax.hist(before.ravel(), bins=edges, density=True, histtype="step", color=_BEFORE_COLOUR, ls="--", lw=1.2,
            label="before")
    ax.hist(after.ravel(), bins=edges, density=True, histtype="step", color=_MODEL_COLOUR, lw=1.2, label="after")
    ax.set_title("pooled marginal (all steps)", fontsize="medium")
    ax.set_xlabel("value")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")


def _calibration_quantiles(ax, hours, xlabel, real, before, after) -> None:
    levels = [0.05, 0.5, 0.95]
    real_q, before_q, after_q = (np.quantile(arr, levels, axis=0) for arr in (real, before, after))
    ax.fill_between(hours, real_q[0], real_q[2], color=_REAL_COLOUR, alpha=0.3, lw=0, label=f"{REAL} 5-95 %")
    ax.plot(hours, real_q[1], color=_REAL_COLOUR, lw=1.2, label=f"{REAL} median")
    for q in before_q:
        ax.plot(hours, q, color=_BEFORE_COLOUR, ls="--", lw=1.0)
    for q in after_q:
        ax.plot(hours, q, color=_MODEL_COLOUR, lw=1.0)
    # one legend entry per curve family, not per quantile
    ax.plot([], [], color=_BEFORE_COLOUR, ls="--", label="before 5/50/95 %")
    ax.plot([], [], color=_MODEL_COLOUR, label="after 5/50/95 %")
    ax.set_title("quantiles per step", fontsize="medium")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="x-small")


def _calibration_ks(ax, hours, xlabel, ks_before, ks_after) -> None:
    ax.plot(hours, ks_before, color=_BEFORE_COLOUR, ls="--", lw=1.2, label=f"before (mean {ks_before.mean():.3f})")
    ax.plot(hours, ks_after, color=_MODEL_COLOUR, lw=1.2, label=f"after (mean {ks_after.mean():.3f})")
    # zoomed to the data (a KS of 0.1 vs 0.01 matters), with a margin so that a zero line stays visible
    top = min(1.0, 1.15 * max(float(ks_before.max()), float(ks_after.max()), 0.05))
    ax.set_ylim(-0.03 * top, top)
    ax.set_title("KS statistic against real, per step", fontsize="medium")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("KS")
    ax.legend(fontsize="small")


def plot_calibration(real: np.ndarray, before: np.ndarray, after: np.ndarray, path: str | Path,
                     resolution: float | None = None, model: str = "model", title: str | None = None,
                     bins: int = 100) -> Path:
    """How marginal calibration (per-step quantile mapping onto the real ECDF, ``bench.calibration``) changed
    one model's samples. Three panels: (a) pooled density histograms of real, before and after on shared
    bins; (b) the 5 %, 50 % and 95 % quantiles per time step of real (grey band and median), before (dashed)
    and after (solid); (c) the per-step KS statistic against the real column (:func:`per_step_ks`) before and
    after. All arrays are finite ``[n, T]`` with the same ``T`` (row counts may differ); x in hours as in
    :func:`plot_samples`.
    """
    real, before, after = _calibration_inputs(real, before, after)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    hours, xlabel = _hours(real.shape[1], resolution)
    fig, axes = _figure(3, (4.2, 3.3))
    _calibration_histograms(axes[0], real, before, after, bins)
    _calibration_quantiles(axes[1], hours, xlabel, real, before, after)
    _calibration_ks(axes[2], hours, xlabel, per_step_ks(before, real), per_step_ks(after, real))
    for ax in axes[1:]:
        ax.set_xlim(hours[0], hours[-1] if len(hours) > 1 else hours[0] + 1)
    fig.suptitle(title or f"Marginal calibration of {model}")
    return _save(fig, path)


def plot_ensemble_examples(truth: np.ndarray, ensembles: Mapping[str, np.ndarray | None], path: str | Path, *,
                           observed: np.ndarray | None = None, coarse: np.ndarray | None = None,
                           resolution: float | None = None, n_examples: int = 3, seed: int = 0,
                           failures: Mapping[str, str] | None = None, title: str = "Ensemble examples") -> Path:
    """A grid of models (rows) by ``n_examples`` randomly chosen (seeded) profiles (columns, one shared y-axis
    each): the true profile (grey) and each model's ensemble median (blue dots and line) with its 5-95 % band
    (bars, and a shaded area over runs of steps), drawn on the steps the model had to fill in.

    ``truth [N, T]``; each ensemble ``[S, N, T]`` (None: the model failed). Imputation passes ``observed
    [N, T]`` (bool; observed steps are black dots and get no band); super-resolution passes ``coarse [N, T]``,
    the given low-resolution values repeated over their fine steps, drawn as a black step line.
    """
    truth = _as_profiles(truth, "truth")
    observed = np.zeros(truth.shape, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    if observed.shape != truth.shape:
        raise ValueError(f"observed mask has shape {observed.shape}, the true profiles {truth.shape}")
    if coarse is not None and np.shape(coarse) != truth.shape:
        raise ValueError(f"coarse profiles have shape {np.shape(coarse)}, the true profiles {truth.shape}")
    for name, ens in ensembles.items():
        if ens is not None and (np.ndim(ens) != 3 or np.shape(ens)[1:] != truth.shape):
            raise ValueError(f"model {name!r}: ensemble of shape {np.shape(ens)}, expected [S, {truth.shape[0]}, "
                             f"{truth.shape[1]}]")
    if not ensembles:
        raise ValueError("no model to show")
    if n_examples < 1:
        raise ValueError(f"n_examples must be >= 1, got {n_examples}")
    hours, xlabel = _hours(truth.shape[1], resolution)
    rows = np.sort(seeds.rng(seed, Stream.REPORT_FIGURES).choice(len(truth), min(n_examples, len(truth)), replace=False))
    names = list(ensembles)
    fig = Figure(figsize=(4.2 * len(rows), 2.2 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    first_in_column: dict[int, object] = {}
    for r, name in enumerate(names):
        for c, row in enumerate(rows):
            position = (len(names), len(rows), r * len(rows) + c + 1)
            if ensembles[name] is None:
                # not shared: the failed panel clears its ticks, which would clear the whole column's
                _failed_panel(fig.add_subplot(*position), name, _reason(failures, name))
                continue
            ax = fig.add_subplot(*position, sharey=first_in_column.get(c))
            first_in_column.setdefault(c, ax)
            hidden = ~observed[row]
            ens = np.asarray(ensembles[name], dtype=float)[:, row]
            low, mid, high = np.quantile(ens, [0.05, 0.5, 0.95], axis=0)
            ax.plot(hours, truth[row], color=_REAL_COLOUR, lw=1.0, label="true")
            # isolated hidden steps have no area to shade: the bars show their band
            ax.fill_between(hours, np.where(hidden, low, np.nan), np.where(hidden, high, np.nan),
                            color=_MODEL_COLOUR, alpha=0.2, lw=0)
            ax.vlines(hours[hidden], low[hidden], high[hidden], color=_MODEL_COLOUR, alpha=0.5, lw=1.5,
                      label="5-95 %")
            ax.plot(hours, np.where(hidden, mid, np.nan), color=_MODEL_COLOUR, lw=1.0, marker="o", ms=2.5,
                    label="median")
            if (~hidden).any():
                ax.scatter(hours[~hidden], truth[row, ~hidden], s=5, color="black", zorder=3, label="observed")
            if coarse is not None:
                ax.step(hours, np.asarray(coarse, dtype=float)[row], where="post", color="black", lw=1.0,
                        label="given (coarse)")
            ax.set_title(f"{name}, profile {row}", fontsize="medium")
            if r == len(names) - 1:
                ax.set_xlabel(xlabel)
            if r == 0 and c == 0:
                ax.legend(fontsize="x-small")
    fig.suptitle(title)
    return _save(fig, path)



def plot_privacy(rows, path: str | Path) -> Path | None:
    """Memorisation rate against DCR ratio per model, one panel per (dataset, resolution), from a run's tidy
    ``DCR_ratio`` / ``Memorised`` rows (a DataFrame); models the binomial test flags as memorising in red, the
    point of unseen real data (ratio 1, rate 0.05) marked. None when the rows hold neither metric."""
    ok = rows[rows["metric"].isin(["DCR_ratio", "Memorised"]) & (rows["status"] == "ok")]
    if ok.empty:
        return None
    wide = ok.pivot_table(index=["dataset", "resolution", "model"], columns="metric", values="value",
                          aggfunc="mean").dropna()
    if wide.empty or not {"DCR_ratio", "Memorised"} <= set(wide.columns):
        return None
    notes = ok[ok["metric"] == "Memorised"].groupby(["dataset", "resolution", "model"])["note"].first()
    panels = list(dict.fromkeys((d, r) for d, r, _ in wide.index))
    fig, axes = _figure(len(panels), (4.4, 3.6))
    for ax, (dataset, resolution) in zip(axes, panels):
        part = wide.loc[(dataset, resolution)]
        flagged = [str(notes.get((dataset, resolution, m), "")).startswith("memorising") for m in part.index]
        ax.scatter(part["DCR_ratio"], part["Memorised"], c=["tab:red" if f else "tab:blue" for f in flagged], s=26)
        for name, x, y in zip(part.index, part["DCR_ratio"], part["Memorised"]):
            ax.annotate(str(name), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
        ax.scatter([1.0], [0.05], marker="x", color="black")
        ax.annotate("unseen real data", (1.0, 0.05), fontsize=7, xytext=(3, -9), textcoords="offset points")
        ax.set_xlabel("DCR ratio (generated / held-out)")
        ax.set_ylabel("memorisation rate (red: flagged)")
        ax.set_title(f"{dataset} @ {resolution} min", fontsize=9)
        ax.set_ylim(-0.03, 1.03)
    return _save(fig, path)
