"""The cell cache as a contract: every entry carries checksums, a damaged entry is detected and named,
never served, moved aside intact for inspection, and a fresh save serves the cell again."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest

from bench.cache import CHECKSUM_NAME, CacheEntryError, CellCache

KEY = "0123456789abcdef0123"
RESULT = {"rows": [{"metric": "MMD", "value": 0.25}], "status": "ok", "note": ""}


def _samples():
    return np.arange(48, dtype=np.float32).reshape(4, 12)


def _saved(tmp_path):
    cache = CellCache(tmp_path)
    cache.save(KEY, RESULT, _samples())
    return cache, cache.path(KEY)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _rewrite_checksum(folder):
    """Make checksum.json agree with the files as they are now (damage the checksum cannot see)."""
    files = {n: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in _files(folder).items()
             if n != CHECKSUM_NAME}
    (folder / CHECKSUM_NAME).write_text(json.dumps({"format": 1, "files": files}))


def test_entry_layout_and_checksums(tmp_path):
    cache, folder = _saved(tmp_path)
    files = _files(folder)
    assert sorted(files) == [CHECKSUM_NAME, "result.json", "samples.npy"]
    listed = json.loads(files[CHECKSUM_NAME])["files"]
    for name in ("result.json", "samples.npy"):
        assert listed[name] == {"sha256": hashlib.sha256(files[name]).hexdigest(), "bytes": len(files[name])}
    assert cache.has(KEY) and cache.problem(KEY) is None
    assert cache.load(KEY) == RESULT
    np.testing.assert_array_equal(cache.load_samples(KEY), _samples())
    # nothing else is left in cells/ (no temporary directory, no .damaged/)
    assert [p.name for p in folder.parent.iterdir()] == [KEY]


def test_cell_without_samples_and_absent_cells(tmp_path):
    cache = CellCache(tmp_path)
    assert not cache.has(KEY) and cache.problem(KEY) is None
    with pytest.raises(FileNotFoundError, match=KEY):
        cache.load(KEY)
    with pytest.raises(FileNotFoundError, match="no cache entry"):
        cache.quarantine(KEY)
    cache.save(KEY, RESULT)
    assert cache.has(KEY) and cache.load_samples(KEY) is None
    assert sorted(_files(cache.path(KEY))) == [CHECKSUM_NAME, "result.json"]


def _random_bytes(folder):  # same length, other bytes
    f = folder / "samples.npy"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, f.stat().st_size, dtype=np.uint8).tobytes())


def _truncate_npy(folder):
    f = folder / "samples.npy"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _no_checksum(folder):  # interrupted before the checksum was written, or written before checksums
    (folder / CHECKSUM_NAME).unlink()


def _json_cut(folder):
    f = folder / "result.json"
    f.write_bytes(f.read_bytes()[:20])


def _json_cut_no_checksum(folder):
    _json_cut(folder)
    _no_checksum(folder)


def _json_cut_checksum_agrees(folder):
    _json_cut(folder)
    _rewrite_checksum(folder)


def _npy_cut_checksum_agrees(folder):
    _truncate_npy(folder)
    _rewrite_checksum(folder)


def _npy_of_objects_checksum_agrees(folder):
    # a pickled object array: it must be refused, never unpickled
    np.save(folder / "samples.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _rewrite_checksum(folder)


def _checksum_garbled(folder):
    (folder / CHECKSUM_NAME).write_text("{not json")


def _samples_missing(folder):
    (folder / "samples.npy").unlink()


def _samples_unlisted(folder):
    (folder / "samples.npy").unlink()
    _rewrite_checksum(folder)  # lists result.json only
    np.save(folder / "samples.npy", np.zeros(3))


DAMAGE = {
    "random-bytes-in-samples": (_random_bytes, r"samples\.npy does not match its checksum \(corrupted"),
    "samples-cut-in-half": (_truncate_npy, r"samples\.npy does not match its checksum \(truncated"),
    "half-written-no-checksum": (_no_checksum, r"no checksum\.json: half-written"),
    "result-json-cut": (_json_cut, r"result\.json does not match its checksum \(truncated"),
    "result-json-cut-no-checksum": (_json_cut_no_checksum, r"no checksum\.json: half-written"),
    "unparsable-json": (_json_cut_checksum_agrees, r"result\.json is not valid JSON"),
    "truncated-npy": (_npy_cut_checksum_agrees, r"samples\.npy does not load as an array"),
    "object-npy": (_npy_of_objects_checksum_agrees, r"samples\.npy does not load as an array"),
    "garbled-checksum": (_checksum_garbled, r"checksum\.json is unreadable"),
    "samples-missing": (_samples_missing, r"samples\.npy is missing"),
    "samples-unlisted": (_samples_unlisted, r"samples\.npy is present but checksum\.json does not list it"),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_damaged_entry_is_named_never_served_quarantined_and_recomputed(tmp_path, damage):
    cache, folder = _saved(tmp_path)
    harm, what = DAMAGE[damage]
    harm(folder)
    damaged_files = _files(folder)

    assert not cache.has(KEY)
    problem = cache.problem(KEY)
    assert problem is not None and "\n" not in problem
    assert str(folder) in problem
    assert re.search(what, problem), problem
    for load in (cache.load, cache.load_samples):
        with pytest.raises(CacheEntryError, match=re.escape(str(folder))):
            load(KEY)

    aside = cache.quarantine(KEY)
    assert aside.parent == tmp_path / "cells" / ".damaged" and aside.name.startswith(f"{KEY}-")
    assert _files(aside) == damaged_files  # moved, byte for byte: nothing lost
    assert not folder.exists() and not cache.has(KEY) and cache.problem(KEY) is None

    cache.save(KEY, RESULT, _samples())
    assert cache.has(KEY) and cache.load(KEY) == RESULT
    np.testing.assert_array_equal(cache.load_samples(KEY), _samples())


def test_legacy_entry_without_checksum_counts_as_damaged(tmp_path):
    folder = tmp_path / "cells" / KEY
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(RESULT))
    np.save(folder / "samples.npy", _samples())
    cache = CellCache(tmp_path)
    assert not cache.has(KEY) and "no checksum.json" in cache.problem(KEY)


def test_save_over_a_damaged_entry_keeps_it_aside_and_replaces_an_intact_one(tmp_path):
    cache, folder = _saved(tmp_path)
    _random_bytes(folder)
    cache.save(KEY, {**RESULT, "note": "again"}, _samples())
    assert cache.load(KEY)["note"] == "again"
    [aside] = (tmp_path / "cells" / ".damaged").iterdir()
    assert sorted(_files(aside)) == [CHECKSUM_NAME, "result.json", "samples.npy"]
    cache.save(KEY, RESULT)  # an intact entry is simply replaced (no samples any more)
    assert cache.load(KEY) == RESULT and cache.load_samples(KEY) is None
    assert len(list((tmp_path / "cells" / ".damaged").iterdir())) == 1
    assert sorted(p.name for p in (tmp_path / "cells").iterdir()) == [".damaged", KEY]


def test_bad_names_and_object_arrays_are_refused(tmp_path):
    cache = CellCache(tmp_path)
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="invalid cache key"):
            cache.has(bad)
        with pytest.raises(ValueError, match="invalid cache array name"):
            cache.load_array(bad)
    with pytest.raises(TypeError, match="plain arrays"):
        cache.save(KEY, RESULT, np.array([None, 1], dtype=object))
    assert not cache.path(KEY).exists()
    assert issubclass(CacheEntryError, RuntimeError)


# -- arrays -------------------------------------------------------------------------------------------------
NAME = "real-abc123"


def _array_cut(cache):
    f = cache.array_path(NAME)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _array_random(cache):
    f = cache.array_path(NAME)
    f.write_bytes(np.random.default_rng(1).integers(0, 256, f.stat().st_size, dtype=np.uint8).tobytes())


def _array_no_checksum(cache):
    (cache.array_path(NAME).parent / f"{NAME}.checksum.json").unlink()


def _array_missing(cache):
    cache.array_path(NAME).unlink()


ARRAY_DAMAGE = {"cut-in-half": (_array_cut, "truncated"), "random-bytes": (_array_random, "corrupted"),
                "no-checksum": (_array_no_checksum, "no real-abc123.checksum.json: half-written"),
                "npy-missing": (_array_missing, "real-abc123.npy is missing")}


def test_array_roundtrip_and_layout(tmp_path):
    cache = CellCache(tmp_path)
    assert cache.load_array(NAME) is None and cache.array_problem(NAME) is None
    cache.save_array(NAME, _samples())
    np.testing.assert_array_equal(cache.load_array(NAME), _samples())
    files = _files(tmp_path / "arrays")
    assert sorted(files) == [f"{NAME}.checksum.json", f"{NAME}.npy"]
    record = json.loads(files[f"{NAME}.checksum.json"])["files"][f"{NAME}.npy"]
    assert record["sha256"] == hashlib.sha256(files[f"{NAME}.npy"]).hexdigest()


@pytest.mark.parametrize("damage", list(ARRAY_DAMAGE), ids=list(ARRAY_DAMAGE))
def test_damaged_array_is_named_quarantined_and_rewritten(tmp_path, damage):
    cache = CellCache(tmp_path)
    cache.save_array(NAME, _samples())
    harm, what = ARRAY_DAMAGE[damage]
    harm(cache)
    before = _files(tmp_path / "arrays")
    problem = cache.array_problem(NAME)
    assert problem is not None and str(cache.array_path(NAME)) in problem and what in problem, problem
    with pytest.raises(CacheEntryError, match=what):
        cache.load_array(NAME)
    aside = cache.quarantine_array(NAME)
    assert aside.parent == tmp_path / "arrays" / ".damaged" and aside.name.startswith(f"{NAME}-")
    assert _files(aside) == before  # both files (or the one left) moved, byte for byte
    assert cache.load_array(NAME) is None and cache.array_problem(NAME) is None
    cache.save_array(NAME, _samples())
    np.testing.assert_array_equal(cache.load_array(NAME), _samples())


def test_save_array_over_a_damaged_array_keeps_it_aside(tmp_path):
    cache = CellCache(tmp_path)
    cache.save_array(NAME, _samples())
    _array_cut(cache)
    cache.save_array(NAME, _samples() + 1)
    np.testing.assert_array_equal(cache.load_array(NAME), _samples() + 1)
    assert len(list((tmp_path / "arrays" / ".damaged").iterdir())) == 1


# -- a run meeting damaged entries --------------------------------------------------------------------------
def test_runner_names_damaged_entries_sets_them_aside_and_recomputes(lcl_sample_dir, tmp_path):
    from bench.runner import CellMemo, run_cell, suite_cells
    from bench.suite import load_suite, override

    suite = override(load_suite("quick"), dataset="lcl", data_dir=str(lcl_sample_dir), resolutions=[60],
                     models=["resample-train", "independent-marginals"], options={"households": 8})
    # cheap scoring: the test is about the cache, not the metrics
    suite = replace(suite, tasks=tuple(replace(t, config={**t.config, "metrics": ["KS"], "n_bootstrap": 2})
                                       for t in suite.tasks))
    cache = CellCache(tmp_path / "cache")

    def run(log):
        counts, memo = {"computed": 0, "cached": 0}, CellMemo()
        cells = [run_cell(suite, ref, cache, memo, counts, log=log) for ref in suite_cells(suite)]
        return cells, counts

    cells, counts = run(None)
    assert counts == {"computed": 2, "cached": 0}
    first = cache.load(cells[0]["key"])
    damaged_cell, real = cache.path(cells[0]["key"]), cells[0]["real_array"]
    _truncate_npy(damaged_cell)
    _array_cut_named(cache, real)

    lines: list[str] = []
    cells, counts = run(lines.append)
    assert counts == {"computed": 1, "cached": 1}  # only the damaged cell is computed again
    text = "\n".join(lines)
    assert str(damaged_cell) in text and "truncated" in text and str(cache.array_path(real)) in text
    assert cache.has(cells[0]["key"]) and cache.load_array(real) is not None
    assert cache.load(cells[0]["key"])["rows"] == first["rows"]  # recomputed: the same numbers
    assert len(list((tmp_path / "cache" / "cells" / ".damaged").iterdir())) == 1
    assert len(list((tmp_path / "cache" / "arrays" / ".damaged").iterdir())) == 1


def _array_cut_named(cache, name):
    f = cache.array_path(name)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
