"""Registry, suite files and the cell cache."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench.cache import REPO_ROOT, CellCache, cell_key, code_version, project_imports
from bench.registry import get_model, list_models, register_model
from bench.suite import list_suites, load_suite, override, parse_model_setting


def test_builtin_models_registered_with_capabilities():
    names = {m.name for m in list_models()}
    assert {"gmm", "gmm-pca", "t-copula", "resample-train", "independent-marginals", "smartmeterfm", "loadpin",
            "profilesr", "linear-interp"} <= names
    from bench.api import CAPABILITIES
    from bench.tasks import list_tasks

    for spec in list_models():
        assert spec.capabilities and spec.capabilities <= set(CAPABILITIES)
    # every task has at least one model able to run it
    for task in list_tasks():
        assert any(task.capability in spec.capabilities for spec in list_models()), task.name


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="unknown model 'no-such-model'; known: .*gmm"):
        get_model("no-such-model")


def test_register_variant_pins_parameters():
    from dataclasses import dataclass

    from bench.api import Generator, Model, ParamError, Params
    from bench.registry import MODELS

    @dataclass(frozen=True)
    class ToyParams(Params):
        size: int = 1

    @register_model("test-toy")
    @register_model("test-toy-big", size=9)
    class Toy(Model, Generator):
        """A toy."""

        Params = ToyParams
        profiles = {"paper": {"size": 2}}

        def fit(self, train, ctx):
            pass

        def sample(self, n, cond, ctx):
            return None

    try:
        assert get_model("test-toy").build().size == 1
        assert get_model("test-toy").build("paper").size == 2
        assert get_model("test-toy-big").build("paper").size == 9
        assert get_model("test-toy").description == "A toy."
        with pytest.raises(ParamError, match="test-toy has no parameter colour; its parameters: size"):
            get_model("test-toy").config("quick", {"colour": 3})
        with pytest.raises(KeyError, match="unknown profile 'huge'"):
            get_model("test-toy").config("huge")
        with pytest.raises(ValueError, match="already registered"):
            register_model("gmm")(Toy)
    finally:
        MODELS.unregister("test-toy")
        MODELS.unregister("test-toy-big")


def test_quick_suite_loads_and_overrides():
    assert "quick" in list_suites()
    suite = load_suite("quick")
    assert suite.datasets[0].name == "uci" and suite.profile == "quick"
    lcl = override(suite, dataset="lcl", data_dir="/x", resolutions=[30], models=["gmm"], seeds=[1, 2])
    assert lcl.name == "quick-lcl"
    assert lcl.datasets[0].resolutions == (30,) and lcl.datasets[0].data_dir == "/x"
    assert lcl.tasks[0].models == ("gmm",) and lcl.seeds == (1, 2)


def test_suite_data_dir_resolves_against_repository_root(tmp_path):
    from bench.suite import REPO_ROOT

    path = tmp_path / "s.toml"
    path.write_text('name = "s"\n[[datasets]]\nname = "lcl"\nresolutions = [30]\ndata_dir = "../data/x"\n'
                    '[[tasks]]\nname = "imputation"\nmodels = ["linear-interp"]\n')
    suite = load_suite(str(path))
    assert suite.datasets[0].data_dir == str((REPO_ROOT / "../data/x").resolve())
    # naming the suite's own dataset again keeps its folder unless --data-dir replaces it
    assert override(suite, dataset="lcl").datasets[0].data_dir == suite.datasets[0].data_dir
    assert override(suite, dataset="lcl", data_dir="/y").datasets[0].data_dir == "/y"
    assert override(suite, dataset="cer").datasets[0].data_dir is None


def test_model_settings_parse_and_layer_over_suite_overrides():
    assert parse_model_setting("energydiff.train_steps=200") == ("energydiff", "train_steps", 200)
    assert parse_model_setting("vae.kl_weight = 0.5") == ("vae", "kl_weight", 0.5)
    assert parse_model_setting("energydiff.fold=auto") == ("energydiff", "fold", "auto")
    assert parse_model_setting("wgan-gp.betas=[0.5, 0.9]") == ("wgan-gp", "betas", [0.5, 0.9])
    for bad in ("energydiff=3", "train_steps", ".x=1"):
        with pytest.raises(ValueError, match="MODEL.PARAM=VALUE"):
            parse_model_setting(bad)
    suite = load_suite("quick")
    suite = replace(suite, tasks=(replace(suite.tasks[0], model_overrides={"gmm": {"n_components": 3}}),))
    out = override(suite, model_settings={"gmm": {"max_iter": 5}, "vae": {"train_steps": 7}})
    assert out.tasks[0].model_overrides == {"gmm": {"n_components": 3, "max_iter": 5}, "vae": {"train_steps": 7}}


def test_suite_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="known suites"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[tasks]]\nname = "generation"\nmodels = ["gmm"]\n')
    with pytest.raises(ValueError, match="bad.toml.*datasets"):
        load_suite(str(bad))


def test_cache_roundtrip_and_key_stability(tmp_path):
    cache = CellCache(tmp_path)
    key = cell_key({"b": 1, "a": [1, 2]})
    assert key == cell_key({"a": [1, 2], "b": 1})
    assert key != cell_key({"a": [1, 2], "b": 2})
    assert not cache.has(key)
    samples = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.save(key, {"rows": [{"metric": "MMD", "value": 0.5}]}, samples)
    assert cache.has(key)
    assert cache.load(key)["rows"][0]["value"] == 0.5
    np.testing.assert_array_equal(cache.load_samples(key), samples)
    # no temporary directories are left behind
    assert [p.name for p in (tmp_path / "cells").iterdir()] == [key]


def test_code_version_follows_project_imports():
    import baselines.energydiff
    import baselines.gmm

    deps = {p.relative_to(REPO_ROOT).as_posix() for p in project_imports(REPO_ROOT / "baselines/energydiff.py")}
    # the shared training loop and the network blocks decide EnergyDiff's numbers, so they are in its key
    assert {"baselines/energydiff.py", "bench/train.py", "baselines/nn/transformer.py"} <= deps
    # another model's file is not: editing it must not invalidate EnergyDiff's cells
    assert "baselines/gmm.py" not in deps
    assert code_version(baselines.energydiff.EnergyDiff) != code_version(baselines.gmm.GMM)
    assert code_version(baselines.energydiff.EnergyDiff) == code_version(baselines.energydiff.EnergyDiff)


def test_an_entry_point_naming_a_bare_class_registers_it_under_the_entry_point_name(monkeypatch, tmp_path):
    import sys
    from importlib.metadata import EntryPoint

    import bench.registry as registry

    plugin = tmp_path / "meterbench_test_plugin.py"
    plugin.write_text(
        "from bench.api import Generator, Model\n"
        "class Plugin(Model, Generator):\n"
        "    \"\"\"A plugin.\"\"\"\n"
        "    def fit(self, train, ctx):\n"
        "        pass\n"
        "    def sample(self, n, cond, ctx):\n"
        "        return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="test-plugin-model", value="meterbench_test_plugin:Plugin",
                    group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry.MODELS, "_loaded", False)
    try:
        assert registry.get_model("test-plugin-model").capabilities == frozenset({"generate"})
        assert registry.get_model("test-plugin-model").description == "A plugin."
    finally:
        registry.MODELS.unregister("test-plugin-model")
        sys.modules.pop("meterbench_test_plugin", None)


def test_every_shipped_suite_names_known_tasks_and_models():
    from bench.postprocess import split_model_name
    from bench.tasks import get_task

    for name in list_suites():
        suite = load_suite(name)
        assert suite.datasets and suite.tasks, name
        for task in suite.tasks:
            get_task(task.name)
            for model in task.models:
                get_model(split_model_name(model)[0])


def test_dataset_labels_name_the_rows_and_keep_the_loader(tmp_path):
    from bench.report.render import published_comparison

    suite = load_suite("energydiff_paper")
    titles = [d.title for d in suite.datasets]
    assert titles == ["wpuq-heatpump", "lcl", "cossmic-load", "cossmic-pv", "wpuq-transformer",
                      "wpuq-pv"]
    assert [d.name for d in suite.datasets] == ["wpuq", "lcl", "cossmic", "cossmic", "wpuq", "wpuq"]
    assert override(suite, dataset="wpuq").datasets[0].label == "wpuq-heatpump"
    # a labelled dataset's rows are compared with the table its loader options read (heat pumps: Table II)
    row = {"suite": "s", "task": "generation", "dataset": "wpuq-heatpump", "resolution": 60, "setting": "",
           "model": "gmm", "seed": 0, "metric": "KS", "value": 0.1, "std": 0.0, "status": "ok", "note": ""}
    frame = published_comparison({"suite": suite.to_dict()}, pd.DataFrame([row]))
    assert len(frame) == 1 and frame["table"].iloc[0] == "Table II"


def test_sensitivity_suite_varies_one_parameter_at_a_time():
    from bench.suite import check_suite

    suite = load_suite("unified_sensitivity")
    check_suite(suite)
    labels = [t.label for t in suite.tasks]
    assert len(labels) == len(set(labels)) == 16
    defaults = {"n_experts": 4, "k": 2, "n_patches": 12, "beta": 0.001}
    for task in suite.tasks:
        (changed,) = task.model_overrides["unified"].items()
        name, value = changed
        assert name in defaults and task.models == ("unified",), task
        # the label names the swept value (the patch dimension of a 48-step day for n_patches)
        shown = 48 // value if name == "n_patches" else value
        assert task.label.split("=")[1] == f"{shown:g}", task.label
