"""Figures comparing real and generated profiles: sample curves, pooled marginal histograms, correlation maps.

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
    rng = np.random.default_rng(seed)
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
    every = np.concatenate(list(pooled.values()))
    low, high = float(every.min()), float(every.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
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
