"""The metric benchmark writes what it measured, and loads the papers' code the way it says."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from bench import metric_speed
from bench.public_code import find_file, load_public_module


def test_benchmark_writes_times_values_and_its_command(tmp_path):
    metric_speed.main(["--n", "30", "--length", "12", "--repeats", "1", "--out", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "metrics.csv")
    boot = rows[rows["measure"] == "set+bootstrap"]
    assert len(boot) == 1 and boot["seconds"].iloc[0] > 0
    values = rows[rows["measure"] == "set+bootstrap value"].set_index("metric")["value"]
    assert set(values.index) == set(metric_speed.SET_METRICS)
    single = rows[rows["measure"] == "single"].set_index("metric")
    real, pred = metric_speed.profiles(30, 12, seed=1), metric_speed.profiles(30, 12, seed=2)
    import metrics

    assert single.loc["KS", "value"] == pytest.approx(metrics.ks_pooled(real, pred))
    text = (tmp_path / "metrics.md").read_text()
    assert "python -m bench.metric_speed --n 30 --length 12" in text and "| meterbench |" in text
    # a rerun of the same configuration replaces its rows instead of appending a copy
    metric_speed.main(["--n", "30", "--length", "12", "--repeats", "1", "--no-single", "--out", str(tmp_path)])
    again = pd.read_csv(tmp_path / "metrics.csv")
    assert (again["measure"] == "set+bootstrap").sum() == 1 and (again["measure"] == "single").sum() == 0
    assert (tmp_path / "metrics.md").read_text().count("## cpu") == 1


def test_inputs_are_seeded_profiles_in_the_scaled_range():
    a, b = metric_speed.profiles(5, 48, seed=3), metric_speed.profiles(5, 48, seed=3)
    assert a.dtype == np.float32 and (a == b).all() and a.min() >= -1 and a.max() <= 1


def test_public_module_loads_with_relative_imports_and_stand_ins(tmp_path):
    (tmp_path / "config.py").write_text("VALUE = 3\n")
    (tmp_path / "evalcode.py").write_text(textwrap.dedent("""
        import surely_not_installed_package as missing
        from .config import VALUE

        class Metric(missing.Metric):
            pass

        def score(a, b):
            return VALUE * (a - b)
        """))
    module = load_public_module(tmp_path / "evalcode.py", "_test_public_pkg",
                                {"surely_not_installed_package": {"Metric": object}})
    assert module.score(5, 3) == 6
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_public_module(tmp_path / "nothing.py", "_test_public_pkg")
    assert find_file(tmp_path, "missing.py", "evalcode.py") == tmp_path / "evalcode.py"
    with pytest.raises(FileNotFoundError, match="none of"):
        find_file(tmp_path, "missing.py")
