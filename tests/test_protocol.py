"""Protocols: the split rules, the suite's [protocol] table, and how both reach cells, cache keys and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.cache import cell_key
from bench.data.segment import segment
from bench.data.split import calendar_months, split_profiles
from bench.api import Generator, Model
from bench.report.render import protocol_lines
from bench.runner import task_config
from bench.suite import load_suite, parse_protocol
from bench.tasks import generation, get_task
from bench.tasks.common import fitting_set, split_and_scale
from tests.conftest import REPO_ROOT, make_readings


def _profiles(n_series: int = 8, days: int = 70):
    return segment(make_readings(n_series=n_series, days=days, start="2013-01-01"), "day")


def _keys(ps) -> set:
    return set(zip(ps.meta["series_id"], ps.meta["start"].astype(str)))


def test_pooled_split_cuts_every_month_by_floor_and_pools_households():
    # 3 households: 93 January days, whose 75 % cut (69.75) rounds otherwise than it floors
    ps = _profiles(n_series=3)
    split = split_profiles(ps, (0.5, 0.25, 0.25), seed=1, rule="pooled")
    months = calendar_months(ps)
    for month in sorted(set(months)):
        n = int((months == month).sum())
        got = [int((calendar_months(part) == month).sum()) for part in (split.train, split.val, split.test)]
        # the papers' code cuts at floor(n * 0.5) and floor(n * 0.75)
        assert got == [n // 2, (3 * n) // 4 - n // 2, n - (3 * n) // 4], month
    # every household is trained on and scored: days, not households, are the samples
    for part in (split.train, split.val, split.test):
        assert set(part.meta["series_id"]) == set(ps.meta["series_id"])
    parts = [_keys(p) for p in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(parts[0] | parts[1] | parts[2]) == len(ps)
    assert split.pretrain is None and split.rule.startswith("pooled")


def test_pooled_split_is_seeded():
    ps = _profiles()
    a, b, c = (split_profiles(ps, seed=s, rule="pooled") for s in (4, 4, 5))
    assert _keys(a.train) == _keys(b.train) and _keys(a.train) != _keys(c.train)


def test_pretrain_split_keeps_80_percent_and_splits_the_rest_622():
    ps = _profiles()
    split = split_profiles(ps, (0.6, 0.2, 0.2), seed=0, rule="pretrain", pretrain_fraction=0.8)
    n = len(ps)
    n_pre = round(0.8 * n)
    assert len(split.pretrain) == n_pre
    rest = n - n_pre
    assert [len(split.train), len(split.val), len(split.test)] == [
        round(0.6 * rest), round(0.8 * rest) - round(0.6 * rest), rest - round(0.8 * rest)]
    sets = [_keys(p) for p in (split.pretrain, split.train, split.val, split.test)]
    assert sum(len(s) for s in sets) == len(set().union(*sets)) == n
    assert "pre-train" in split.rule and "80%" in split.rule


def test_household_rule_unchanged_and_unknown_rule_rejected():
    ps = _profiles()
    split = split_profiles(ps, seed=3, rule="household")
    ids = [set(p.meta["series_id"]) for p in (split.train, split.val, split.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    with pytest.raises(ValueError, match="unknown split rule 'day'"):
        split_profiles(ps, rule="day")
    with pytest.raises(ValueError, match="pretrain_fraction"):
        split_profiles(ps, rule="pretrain", pretrain_fraction=1.0)


def test_split_and_scale_fits_scaler_on_what_models_learn_and_says_its_caps():
    ps = _profiles()
    cfg = {"split": "pretrain", "fractions": [0.6, 0.2, 0.2], "pretrain_fraction": 0.8, "max_train": None,
           "max_eval": 5}
    data = split_and_scale(ps, cfg, seed=0)
    assert data.pretrain is not None and len(data.real) == 5
    assert "evaluation capped at 5 of" in data.split_rule
    learned = np.concatenate([data.pretrain.values, data.train.values])
    # the scaler maps the learned profiles' max to 1 / 1.1 of the headroom and their min (>= 0 here) to -1 at 0 kW
    assert learned.max() == pytest.approx(2 / 1.1 - 1, abs=1e-5)

    class Plain(Model, Generator):
        def fit(self, train, ctx):
            pass

        def sample(self, n, cond, ctx):
            return np.zeros((n, 48), np.float32)

    class Pretrains(Plain):
        pretrains = True

    # a model or its class (the runner keys a training run on the class)
    assert fitting_set(Pretrains(), data) is data.pretrain and fitting_set(Pretrains, data) is data.pretrain
    assert fitting_set(Plain(), data) is data.train and fitting_set(Plain, data) is data.train
    with pytest.raises(TypeError, match="bench.api.Model"):
        fitting_set(object(), data)
    without = split_and_scale(ps, {**cfg, "split": "household", "fractions": [0.5, 0.25, 0.25]}, seed=0)
    assert without.pretrain is None and fitting_set(Pretrains(), without) is without.train


def test_suite_protocol_parsed_validated_and_merged_into_task_config(tmp_path):
    assert parse_protocol({"split": "pooled", "max_eval": "all"}, "x") == {"split": "pooled", "max_eval": None}
    with pytest.raises(ValueError, match="unknown protocol keys \\['splitt'\\]"):
        parse_protocol({"splitt": "pooled"}, "x")
    with pytest.raises(ValueError, match="not one of"):
        parse_protocol({"split": "random"}, "x")
    with pytest.raises(ValueError, match="max_eval must be a positive integer"):
        parse_protocol({"max_eval": 0}, "x")
    suite = load_suite("energydiff_quick")
    assert suite.protocol["split"] == "pooled" and suite.deviations
    household = next(d for d in suite.datasets if d.label == "lcl-household")
    task = get_task("generation")
    assert task is generation.TASK
    cfg_pooled = task_config(task, suite.protocol_for(suite.datasets[0]), {})
    cfg_household = task_config(task, suite.protocol_for(household), {})
    assert cfg_pooled["split"] == "pooled" and cfg_household["split"] == "household"
    # the protocol is part of every cell's cache key
    assert cell_key({"task_config": cfg_pooled}) != cell_key({"task_config": cfg_household})
    paper = load_suite("energydiff_paper")
    cfg = task_config(task, paper.protocol, {})
    assert cfg["n_generate"] == 4000 and cfg["max_eval"] is None
    # keys a task does not have stay out of its config (and out of its cache key)
    assert "n_generate" not in task_config(get_task("imputation"), paper.protocol, {})


def test_generation_draws_n_generate_profiles():
    ps = _profiles()
    cfg = {**generation.DEFAULTS, "split": "pooled", "n_generate": 37}
    data = generation.prepare(ps, cfg, seed=0)
    assert data.n_generate == 37 and "37 profiles generated" in data.split_rule
    default = generation.prepare(ps, {**generation.DEFAULTS, "split": "pooled"}, seed=0)
    assert default.n_generate == len(default.real)


def test_protocol_lines_print_protocol_splits_data_notes_and_deviations():
    config = {"suite": {"protocol": {"split": "pooled", "max_eval": None}, "deviations": ["models: smaller"],
                        "datasets": [{"name": "lcl", "label": "lcl-household", "protocol": {"split": "household"}}]},
              "cells": [{"dataset": "lcl", "resolution": 30, "task": "generation", "split_rule": "pooled: days",
                         "data_notes": {"filter": "all tariffs"}}]}
    text = "\n".join(protocol_lines(config))
    assert "- protocol: split pooled, max_eval all" in text
    assert "lcl-household: split household" in text
    assert "lcl @ 30 min (generation): pooled: days" in text
    assert "lcl: filter = all tariffs" in text
    assert "- deviations from the paper:\n  - models: smaller" in text


def test_pooled_datasets_stack_parts_with_prefixed_ids(tmp_path, lcl_sample_dir):
    import shutil

    from bench.data.pipeline import load_profiles

    (tmp_path / "lcl").mkdir()
    for name in ("MAC000002.csv", "MAC000003.csv"):
        shutil.copy(lcl_sample_dir / name, tmp_path / "lcl" / name)
    shutil.copytree(REPO_ROOT / "tests/fixtures/loaders/cer", tmp_path / "cer")
    lcl = load_profiles("lcl", 30, "day", tmp_path / "lcl")
    cer = load_profiles("cer", 30, "day", tmp_path / "cer")
    pooled = load_profiles("cer+lcl", 30, "day", tmp_path)
    assert len(pooled) == len(cer) + len(lcl)
    ids = set(pooled.meta["series_id"])
    assert ids == {f"cer:{s}" for s in cer.meta["series_id"]} | {f"lcl:{s}" for s in lcl.meta["series_id"]}
    np.testing.assert_array_equal(pooled.values[len(cer):], lcl.values)
    assert pooled.notes["pooled"] == f"cer {len(cer)} days, lcl {len(lcl)} days"
    with pytest.raises(ValueError, match="per part"):
        load_profiles("cer+lcl", 30, "day", tmp_path, households=2)
    with pytest.raises(ValueError, match="two or more different"):
        load_profiles("lcl+lcl", 30, "day", tmp_path)


def test_loader_notes_reach_the_profiles_and_the_tables(lcl_sample_dir):
    from bench.data.pipeline import load_profiles

    profiles = load_profiles("lcl", 60, "day", lcl_sample_dir)
    # the sample has no tariff column: the Std filter of the EnergyDiff code cannot be applied, and it says so
    assert profiles.notes["filter"].startswith("all tariffs (30 households; tariff unknown")
    assert profiles.notes["completeness"].startswith("kept ")


def test_scaler_fitted_on_training_profiles_only():
    ps = _profiles()
    cfg = {"split": "household", "fractions": [0.5, 0.25, 0.25], "max_train": None, "max_eval": None}
    for seed in range(20):
        data = split_and_scale(ps, cfg, seed=seed)
        train_max = float(data.scaler.inverse(data.train.values).max())
        real_max = float(data.scaler.inverse(data.real.values).max())
        if real_max > train_max * 1.01:  # a seed whose largest loads are evaluation households
            break
    else:
        pytest.fail("no seed put the largest household in evaluation")
    assert data.scaler.high == pytest.approx(1.1 * train_max, rel=1e-5)


def test_two_protocols_of_one_dataset_stay_apart_beside_the_paper():
    """energydiff_quick runs LCL under the paper's split and under the household split: each label gets its
    own comparison (and model-order agreement) against the paper's LCL table."""
    from bench.report.render import published_comparison
    from bench.report.agreement import rank_agreement

    base = {"suite": "s", "task": "generation", "resolution": 30, "setting": "", "seed": 0, "metric": "GFD",
            "std": 0.001, "status": "ok", "note": ""}
    rows = pd.DataFrame([{**base, "dataset": label, "model": model, "value": value}
                         for label, scale in (("lcl", 1.0), ("lcl-household", -1.0))
                         for model, value in (("gmm", 1 + scale * 0.5), ("vae", 1.0), ("energydiff", 1 - scale * 0.3))])
    config = {"suite": {"datasets": [{"name": "lcl"}, {"name": "lcl", "label": "lcl-household"}]}}
    frame = published_comparison(config, rows)
    assert set(frame["dataset"]) == {"lcl", "lcl-household"} and set(frame["paper_dataset"]) == {"lcl"}
    agreement = rank_agreement(frame, {"GFD": "lower"})
    taus = dict(zip(agreement["dataset"], agreement["kendall_tau"]))
    # the two orders are reversed, so their agreement with the one published order has opposite signs
    assert set(taus) == {"lcl", "lcl-household"} and taus["lcl"] == pytest.approx(-taus["lcl-household"])
