"""Every random stream is named once in bench/seeds.py and no two uses share one."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from bench import seeds
from bench.seeds import HARNESS_STREAMS, MODEL_STREAMS, Stream

REPO = Path(__file__).resolve().parents[1]
# metrics are pure functions of the integer seed their caller derives from a stream
SCANNED = [p for d in ("bench", "baselines") for p in (REPO / d).rglob("*.py")] + [REPO / "run_bench.py"]
SEEDING_CALLS = {"default_rng", "manual_seed", "seed_everything", "manual_seed_all", "RandomState", "seed"}
STREAM_CALLS = {"rng", "int_seed", "torch_generator"}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _uses_stream(node: ast.AST) -> bool:
    # Stream.X, or a parameter named ``stream`` through which a helper receives one
    return any((isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Stream")
               or (isinstance(n, ast.Name) and n.id == "stream") for n in ast.walk(node))


def _derived(node: ast.AST) -> bool:
    """An expression computed from a named stream: ``Stream.X`` itself or a call of int_seed / rng."""
    return _uses_stream(node) or any(isinstance(n, ast.Call) and _name(n.func) in STREAM_CALLS
                                     for n in ast.walk(node))


def stream_uses() -> tuple[dict[Stream, set[str]], list[str]]:
    """``{stream: files using it}`` and every seeding call that does not go through the table."""
    uses: dict[Stream, set[str]] = defaultdict(set)
    bad = []
    for path in SCANNED:
        rel = path.relative_to(REPO).as_posix()
        if rel in ("bench/seeds.py", "bench/context.py"):  # the table and the context that passes streams on
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Stream":
                uses[Stream[node.attr]].add(rel)
            if not isinstance(node, ast.Call):
                continue
            name, where = _name(node.func), f"{rel}:{node.lineno}"
            args = [*node.args, *(k.value for k in node.keywords)]
            if name in STREAM_CALLS and isinstance(node.func, ast.Attribute) and args and not any(map(_uses_stream, args)):
                bad.append(f"{where}: {name}() without a named Stream")
            # seed_everything's body passes on a seed its callers drew from a stream
            if name in SEEDING_CALLS and not (rel == "bench/train.py" and name in ("manual_seed", "manual_seed_all")):
                if not args or not all(_derived(a) for a in args[:1]):
                    bad.append(f"{where}: {name}() seeded without bench.seeds")
    return uses, bad


def test_stream_values_are_unique_and_split_into_harness_and_model():
    assert len({int(s) for s in Stream}) == len(Stream)
    assert HARNESS_STREAMS | MODEL_STREAMS == set(Stream) and not HARNESS_STREAMS & MODEL_STREAMS


def test_no_two_uses_share_a_stream_and_no_seed_bypasses_the_table():
    uses, bad = stream_uses()
    assert bad == []
    shared = {s.name: sorted(files) for s, files in uses.items() if s in HARNESS_STREAMS and len(files) > 1}
    assert shared == {}, f"harness streams used in more than one module: {shared}"
    in_harness = {s.name: sorted(f for f in files if not f.startswith(("baselines/", "bench/train.py")))
                  for s, files in uses.items() if s in MODEL_STREAMS}
    assert all(not files for files in in_harness.values()), in_harness
    unused = sorted(s.name for s in Stream if s not in uses)
    assert unused == [], f"streams named but never used: {unused}"


def test_the_scan_catches_a_literal_stream(tmp_path, monkeypatch):
    planted = tmp_path / "planted.py"
    planted.write_text("import numpy as np\nrng = np.random.default_rng([seed, 1])\nctx.rng(3)\n")
    monkeypatch.setattr(f"{__name__}.SCANNED", [planted])
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    _, bad = stream_uses()
    assert len(bad) == 2


def test_streams_are_independent_and_reproducible():
    a = seeds.rng(7, Stream.SPLIT).random(5)
    np.testing.assert_array_equal(a, seeds.rng(7, Stream.SPLIT).random(5))
    assert not np.allclose(a, seeds.rng(7, Stream.SPLIT_CAPS).random(5))
    assert not np.allclose(a, seeds.rng(8, Stream.SPLIT).random(5))
    assert seeds.int_seed(0, Stream.MODEL_FIT, bits=31) < 2**31
    with pytest.raises(TypeError, match="bench.seeds.Stream"):
        seeds.rng(0, 1)
