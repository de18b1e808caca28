"""Shared fixtures: synthetic readings and the location of the real LCL sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data.readings import Readings

REPO_ROOT = Path(__file__).resolve().parents[1]
LCL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "lcl_sample"


def make_readings(n_series: int = 2, days: int = 3, resolution: int = 30, start: str = "2013-01-01",
                  seed: int = 0, name: str = "toy") -> Readings:
    """Regular readings with a daily shape plus noise, one row per interval."""
    rng = np.random.default_rng(seed)
    spd = 1440 // resolution
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
