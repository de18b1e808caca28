"""One contract test over every registered model, the registry's checks at registration, and a third-party
model (the README's example, verbatim) arriving through the ``meterbench.models`` entry-point group."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.api import Generator, Imputer, Model, ParamError, Params
from bench.extras import MissingExtraError
from bench.registry import MODELS, get_model, list_models, model_spec
from tests.model_contract import check_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_meets_the_contract(name, tmp_path):
    try:
        check_model(get_model(name), tmp_path)
    except MissingExtraError as err:  # CI installs every extra; elsewhere a missing library is named, not failed
        pytest.skip(str(err))


def test_every_model_has_a_test_profile_and_typed_parameters():
    for spec in list_models():
        assert "test" in spec.cls.profiles or not spec.cls.profiles.get("paper"), spec.name
        assert set(spec.config("test")) == set(spec.config("paper")) == set(spec.config("quick")), spec.name


# -- checks at registration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ToyParams(Params):
    width: int = 4
    rate: float = 0.5
    mode: str | None = None


class _Toy(Model, Generator):
    """A toy generator."""

    Params = _ToyParams
    profiles = {"test": {"width": 2}, "paper": {"width": 64}}

    def fit(self, train, ctx):
        self.mean_ = train.values.mean(axis=0)

    def sample(self, n, cond, ctx):
        return np.tile(self.mean_, (n, 1))


def test_registration_derives_capabilities_and_checks_the_class():
    spec = model_spec("toy", _Toy)
    assert spec.capabilities == {"generate"}
    assert spec.config("test") == {"width": 2, "rate": 0.5, "mode": None}
    assert spec.config("paper", {"rate": 1}) == {"width": 64, "rate": 1.0, "mode": None}

    class NoCapability(Model):
        def fit(self, train, ctx):
            pass

    with pytest.raises(TypeError, match="implements no capability"):
        model_spec("none", NoCapability)

    class Unfinished(Model, Generator, Imputer):
        def fit(self, train, ctx):
            pass

        def sample(self, n, cond, ctx):
            return np.zeros((n, 2))

    with pytest.raises(TypeError, match="does not implement impute"):
        model_spec("unfinished", Unfinished)
    with pytest.raises(TypeError, match="must subclass bench.api.Model"):
        model_spec("plain", object)

    class BadProfile(_Toy):
        profiles = {"paper": {"widht": 3}}

    with pytest.raises(ParamError, match="no parameter widht; its parameters: mode, rate, width"):
        model_spec("bad", BadProfile)

    class BadType(_Toy):
        profiles = {"test": {"width": "wide"}}

    with pytest.raises(ParamError, match="width expects int, got 'wide'"):
        model_spec("bad", BadType)


def test_parameter_types_are_checked_on_construction():
    with pytest.raises(ParamError, match="width expects int, got True"):
        _Toy(width=True)
    with pytest.raises(ParamError, match="mode expects str | None"):
        _Toy(mode=3)
    assert _Toy(rate=2).rate == 2.0 and isinstance(_Toy(rate=2).rate, float)


# -- the README's example as a third-party package --------------------------------------------------------------
def readme_example() -> tuple[str, str]:
    """The example model file of the README's "Adding a model" section and the name it registers."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Adding a model"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    name = re.search(r'@register_model\("([^"]+)"\)', code).group(1)
    return code, name


def install_entry_point_package(site: Path, module: str, code: str, entry: str) -> None:
    """A minimal installed distribution in ``site``: one module and a ``meterbench.models`` entry point."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[meterbench.models]\n{entry} = {module}\n")


@pytest.fixture
def example_package(tmp_path, monkeypatch):
    code, name = readme_example()
    code = code.replace(f'@register_model("{name}")', '@register_model("readme-example-ep")')
    site = tmp_path / "site"
    site.mkdir()
    install_entry_point_package(site, "meterbench_readme_example", code, "readme-example-ep")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(MODELS, "_loaded", False)
    yield site, "readme-example-ep"
    MODELS.unregister("readme-example-ep")
    sys.modules.pop("meterbench_readme_example", None)


def test_readme_example_through_an_entry_point_meets_the_contract(example_package, tmp_path):
    site, name = example_package
    spec = get_model(name)  # found through the entry point, nothing else edited
    assert spec.cls.__module__ == "meterbench_readme_example"
    check_model(spec, tmp_path)


def test_readme_example_runs_from_the_command_line(example_package, tmp_path):
    site, name = example_package
    suite = tmp_path / "tiny.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "tiny"
        seeds = [0]
        [protocol]
        split = "pooled"
        max_eval = 300
        max_train = 600
        [[datasets]]
        name = "uci"
        resolutions = [60]
        [[tasks]]
        name = "generation"
        models = ["{name}", "resample-train"]
        [tasks.config]
        n_bootstrap = 2
        n_generate = 300
        """))
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "run_bench.py", "--suite", str(suite), "--quiet", "--out",
                          str(tmp_path / "run"), "--cache", str(tmp_path / "cache")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert name in out.stdout and "2 cells computed" in out.stdout
