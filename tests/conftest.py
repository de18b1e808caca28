"""Shared fixtures: synthetic readings and the location of the real LCL sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.profileset import META_COLUMNS, MINUTES_PER_DAY, ProfileSet, steps_per_day
from bench.data.readings import Readings

REPO_ROOT = Path(__file__).resolve().parents[1]
LCL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "lcl_sample"


def make_readings(n_series: int = 2, days: int = 3, resolution: int = 30, start: str = "2013-01-01",
                  seed: int = 0, name: str = "toy") -> Readings:
    """Regular readings with a daily shape plus noise, one row per interval."""
    rng = np.random.default_rng(seed)
    spd = steps_per_day(resolution)
    ts = pd.date_range(start, periods=days * spd, freq=f"{resolution}min")
    frames = []
    for i in range(n_series):
        hour = ts.hour + ts.minute / 60
        kw = 0.3 + 0.2 * np.sin(2 * np.pi * (hour - 6) / 24) ** 2 + 0.05 * rng.random(len(ts)) + 0.1 * i
        frames.append(pd.DataFrame({"series_id": f"S{i:02d}", "timestamp": ts, "kw": kw}))
    frame = pd.concat(frames, ignore_index=True)
    info = pd.DataFrame({"category": ["Std"] * n_series}, index=[f"S{i:02d}" for i in range(n_series)])
    return Readings(frame=frame, resolution=resolution, info=info, name=name)


@pytest.fixture
def lcl_sample_dir() -> Path:
    if not LCL_SAMPLE.is_dir():
        pytest.skip(f"real LCL sample not found at {LCL_SAMPLE}")
    return LCL_SAMPLE


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch code on one thread: two OpenMP threads on a shared, oversubscribed 2-core machine
    spin-wait and run tiny networks 10-50x slower than one; results do not depend on it. Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- helpers shared by the model and task tests (import them: ``from tests.conftest import sine_days``) --------
def sine_days(n: int, rng: np.random.Generator, length: int = 24, amplitude: tuple[float, float] = (0.3, 0.8),
              max_shift: float = 0.25, noise: float = 0.02) -> np.ndarray:
    """``[n, length]`` float32 sine-shaped days with a random amplitude and phase plus a little noise: strong
    dependence between steps, values inside [-1, 1] (the scaled space models work in)."""
    t = np.arange(length) / length
    amp = rng.uniform(*amplitude, (n, 1))
    shift = rng.uniform(-max_shift, max_shift, (n, 1))
    return (amp * np.sin(2 * np.pi * (t - shift)) + noise * rng.standard_normal((n, length))).astype(np.float32)


def daily_set(values: np.ndarray, mask: np.ndarray | None = None, resolution: int | None = None,
              name: str = "toy") -> ProfileSet:
    """A daily ProfileSet around ``values`` (unobserved steps zeroed; resolution = one day over the length
    unless given; meta columns present, all zero)."""
    mask = np.ones(values.shape, dtype=bool) if mask is None else mask
    meta = pd.DataFrame({c: np.zeros(len(values), dtype=int) for c in META_COLUMNS})
    return ProfileSet(values=np.where(mask, values, 0.0).astype(values.dtype), mask=mask, meta=meta,
                      resolution=resolution or steps_per_day_inverse(values.shape[1]), period="day", name=name)


def steps_per_day_inverse(length: int) -> int:
    """The resolution (minutes) at which a day has ``length`` steps."""
    if MINUTES_PER_DAY % length:
        raise ValueError(f"{length} steps do not divide a day")
    return MINUTES_PER_DAY // length


def rows_by_key(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """A task's score rows by ``(setting, metric)``."""
    return {(r.get("setting", ""), r["metric"]): r for r in rows}
