"""Command-line mistakes are one-line errors before any cell runs."""

from __future__ import annotations

import pytest

import bench.runner
import run_bench


@pytest.fixture
def no_cells(monkeypatch):
    """Fail the test if any cell starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("a cell ran although the command line was invalid")

    monkeypatch.setattr(bench.runner, "run_cell", refuse)


@pytest.mark.parametrize("argv, message", [
    (["--models", "gmm", "--set", "energydiff.train_steps=1"],
     "--set energydiff.*: model 'energydiff' is not in this run; its models: gmm"),
    (["--models", "gmm", "--set", "gmm.n_components=abc"], "gmm.n_components expects int, got 'abc'"),
    (["--models", "gmm", "--set", "nosuch.depth=3"], "--set nosuch.*: unknown model 'nosuch'; known: "),
    (["--models", "gmm", "--set", "gmm.depth=3"], "gmm has no parameter depth; its parameters: "),
    (["--models", "gmm", "--set", "gmm.n_init=1.5"], "gmm.n_init expects int, got 1.5"),
    (["--models", "nosuch"], "unknown model 'nosuch'; known: "),
    (["--households", "0"], "--households must be a positive number of households, got 0"),
    (["--households", "-3"], "--households must be a positive number of households, got -3"),
    (["--profile", "test", "--models", "gmm", "--set", "gmm.tol=-1"], "gmm: reg_covar must be >= 0 and tol > 0"),
])
def test_invalid_command_lines_fail_in_one_line_before_any_cell(argv, message, no_cells, capsys, tmp_path):
    code = run_bench.main([*argv, "--quiet", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {message}") or message in err, err
    assert err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
