"""The planted-bug list stays in step with the code: every mutant's text occurs exactly once where it points."""

from __future__ import annotations

from bench.mutation_check import MUTANTS, REPO_ROOT


def test_every_planted_bug_still_finds_its_text_once():
    stale = [(m.name, (REPO_ROOT / m.path).read_text().count(m.old)) for m in MUTANTS
             if (REPO_ROOT / m.path).read_text().count(m.old) != 1]
    assert not stale, f"mutants whose text moved (update bench/mutation_check.py): {stale}"
    assert len({m.name for m in MUTANTS}) == len(MUTANTS) >= 35
    for mutant in MUTANTS:
        assert mutant.old != mutant.new and mutant.tests, mutant.name
        assert all((REPO_ROOT / t).is_file() for t in mutant.tests), mutant.name
