"""Suites: TOML files listing datasets x resolutions x tasks x models x seeds and a config profile."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

SUITE_DIR = Path(__file__).resolve().parent / "suites"
REPO_ROOT = SUITE_DIR.parents[1]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a suite: the resolutions to cut it at and options for its loader."""

    name: str
    resolutions: tuple[int, ...]
    period: str = "day"
    data_dir: str | None = None
    options: dict = field(default_factory=dict)
    # what tables call the dataset when one suite reads several parts of one source (WPuQ heat pumps and the
    # WPuQ transformer are both loader "wpuq"); None = the loader's name
    label: str | None = None
    # protocol keys that differ for this dataset from the suite's [protocol] (e.g. {"split": "household"})
    protocol: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The dataset's name in result rows and tables: ``label``, else the loader's name."""
        return self.label or self.name


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite: the models it runs and overrides of the task's default config."""

    name: str
    models: tuple[str, ...]
    config: dict = field(default_factory=dict)
    model_overrides: dict = field(default_factory=dict)
    # prefixed to every setting of the task's rows (e.g. "N_e=8"): one task listed several times with different
    # model parameters (a sensitivity sweep) then gives rows that tables keep apart; not part of any cache key
    label: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    profile: str
    seeds: tuple[int, ...]
    datasets: tuple[DatasetSpec, ...]
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    source: str = ""
    # our dataset name -> the published dataset it is set beside in the comparison with the papers' numbers
    # (e.g. {"lcl": "cer+lcl"}: the unified paper pools CER and LCL); unlisted names compare with themselves
    compare: dict = field(default_factory=dict)
    # the experiment's protocol (see PROTOCOL_KEYS): split rule, fractions, caps, generated sample count, and
    # the deliberate deviations from the paper it reproduces, printed with every table
    protocol: dict = field(default_factory=dict)
    deviations: tuple[str, ...] = ()

    def protocol_for(self, dataset: DatasetSpec) -> dict:
        """The protocol of ``dataset``: the suite's ``[protocol]`` with the dataset's own keys over it."""
        return {**self.protocol, **dataset.protocol}

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


PROTOCOL_KEYS = {
    "split": "split rule: household | pooled | pretrain (bench.data.split)",
    "fractions": "train / validation / test fractions",
    "pretrain_fraction": "share of all profiles kept for pre-training (rule pretrain)",
    "max_train": "cap on training profiles (random subset); \"all\" = no cap",
    "max_eval": "cap on evaluation profiles (random subset); \"all\" = no cap",
    "n_generate": "profiles generated per generation cell; \"all\" = as many as evaluation profiles",
}
"""Keys a suite's ``[protocol]`` table (or a dataset's ``protocol``) may set; each reaches every task whose
defaults have it, and so the cache key of its cells."""


def parse_protocol(table: dict, where: str) -> dict:
    """A ``[protocol]`` table as task-config values: unknown keys are an error naming the known ones, and
    ``"all"`` (no cap) becomes None. ``deviations`` is not part of it (see :func:`load_suite`)."""
    from bench.data.split import SPLIT_RULES

    unknown = sorted(set(table) - set(PROTOCOL_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown protocol keys {unknown}; known: {', '.join(PROTOCOL_KEYS)}")
    out = {k: (None if v == "all" else v) for k, v in table.items()}
    if "split" in out and out["split"] not in SPLIT_RULES:
        raise ValueError(f"{where}: protocol split {out['split']!r} is not one of {', '.join(SPLIT_RULES)}")
    for key in ("max_train", "max_eval", "n_generate"):
        value = out.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{where}: protocol {key} must be a positive integer or \"all\", got {value!r}")
    return out


def describe_protocol(protocol: dict) -> str:
    """One line naming a protocol's settings, e.g. ``split pooled, fractions 0.5/0.25/0.25, max_eval all``."""
    parts = []
    for key, value in protocol.items():
        if isinstance(value, (list, tuple)):
            value = "/".join(f"{v:g}" for v in value)
        parts.append(f"{key} {'all' if value is None else value}")
    return ", ".join(parts)


def _require(table: dict, key: str, where: str):
    if key not in table:
        raise ValueError(f"{where}: missing required key {key!r}")
    return table[key]


def load_suite(name_or_path: str) -> Suite:
    """Read a suite by name (``bench/suites/NAME.toml``) or by path; errors name the file and the key."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(list_suites())
        raise FileNotFoundError(f"suite {name_or_path!r} not found (looked for {path}); known suites: {known}")
    with open(path, "rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: {err}") from err
    where = str(path)
    datasets = tuple(
        DatasetSpec(name=_require(d, "name", where), resolutions=tuple(_require(d, "resolutions", where)),
                    period=d.get("period", "day"), data_dir=suite_data_dir(d.get("data_dir")),
                    options=d.get("options", {}), label=d.get("label"),
                    protocol=parse_protocol(d.get("protocol", {}), f"{where}: dataset {d.get('name')!r}"))
        for d in _require(raw, "datasets", where))
    tasks = tuple(
        TaskSpec(name=_require(t, "name", where), models=tuple(_require(t, "models", where)),
                 config=t.get("config", {}), model_overrides=t.get("model_overrides", {}),
                 label=str(t.get("label", "")))
        for t in _require(raw, "tasks", where))
    protocol = dict(raw.get("protocol", {}))
    deviations = protocol.pop("deviations", [])
    if isinstance(deviations, str) or not all(isinstance(d, str) for d in deviations):
        raise ValueError(f"{where}: protocol deviations must be a list of strings")
    return Suite(name=raw.get("name", path.stem), profile=raw.get("profile", "quick"),
                 seeds=tuple(raw.get("seeds", [0])), datasets=datasets, tasks=tasks,
                 description=raw.get("description", ""), source=str(path), compare=dict(raw.get("compare", {})),
                 protocol=parse_protocol(protocol, where), deviations=tuple(deviations))


def suite_data_dir(data_dir: str | None) -> str | None:
    """A suite file's ``data_dir``: a relative path is resolved against the repository root (the folder of
    ``run_bench.py``), so that a suite finds its data from any working directory; ``~`` is expanded."""
    if data_dir is None:
        return None
    path = Path(data_dir).expanduser()
    return str(path if path.is_absolute() else (REPO_ROOT / path).resolve())


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.toml"))


def override(suite: Suite, *, dataset: str | None = None, data_dir: str | None = None,
             resolutions: list[int] | None = None, models: list[str] | None = None, seeds: list[int] | None = None,
             profile: str | None = None, options: dict | None = None,
             model_settings: dict[str, dict] | None = None) -> Suite:
    """``suite`` with command-line overrides applied (a new dataset replaces the suite's datasets).

    ``model_settings`` maps a model name to parameter values layered over every task's overrides for it,
    e.g. ``{"energydiff": {"train_steps": 200}}``.
    """
    datasets = suite.datasets
    if dataset is not None:
        base = next((d for d in datasets if d.name == dataset), None)
        datasets = (DatasetSpec(name=dataset,
                                resolutions=tuple(resolutions or (base.resolutions if base else (30,))),
                                # a dataset the suite does not list takes the suite's period (month stays month)
                                period=base.period if base else (datasets[0].period if datasets else "day"),
                                data_dir=data_dir or (base.data_dir if base else None),
                                options={**(base.options if base else {}), **(options or {})},
                                label=base.label if base else None,
                                protocol=base.protocol if base else {}),)
    elif resolutions or data_dir or options:
        datasets = tuple(replace(d, resolutions=tuple(resolutions or d.resolutions),
                                 data_dir=data_dir or d.data_dir, options={**d.options, **(options or {})})
                         for d in datasets)
    tasks = suite.tasks
    if models:
        tasks = tuple(replace(t, models=tuple(models)) for t in tasks)
    if model_settings:
        from bench.registry import MODELS

        in_run = {m.split("+")[0] for t in tasks for m in t.models}
        for m in model_settings:
            if m not in MODELS:
                raise ValueError(f"--set {m}.*: unknown model {m!r}; known: {', '.join(MODELS.names())}")
            if m not in in_run:
                raise ValueError(f"--set {m}.*: model {m!r} is not in this run; its models: "
                                 f"{', '.join(sorted(in_run))}")
        tasks = tuple(replace(t, model_overrides={
            **t.model_overrides,
            **{m: {**t.model_overrides.get(m, {}), **values} for m, values in model_settings.items()}})
            for t in tasks)
    name = suite.name if dataset is None else f"{suite.name}-{dataset}"
    return replace(suite, name=name, datasets=datasets, tasks=tasks, seeds=tuple(seeds or suite.seeds),
                   profile=profile or suite.profile)


def check_suite(suite: Suite) -> None:
    """Check every name and model parameter of ``suite`` before any cell runs: unknown tasks, models,
    post-processing suffixes, profiles and parameters, and values of the wrong type, are one-line
    ``ValueError``s listing the valid choices."""
    from bench.api import ParamError
    from bench.postprocess import split_model_name
    from bench.registry import PROFILES, get_model
    from bench.tasks import get_task

    if suite.profile not in PROFILES:
        raise ValueError(f"unknown profile {suite.profile!r}; profiles: {', '.join(PROFILES)}")
    for task in suite.tasks:
        try:
            get_task(task.name)
            bases = {split_model_name(m)[0] for m in task.models}
            specs = {b: get_model(b) for b in bases}
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        for model, values in task.model_overrides.items():
            base = split_model_name(model)[0]
            if base not in specs:
                raise ValueError(f"task {task.name!r}: parameters given for {model!r}, which it does not run; "
                                 f"its models: {', '.join(sorted(specs))}")
            try:
                specs[base].config(suite.profile, values)
            except ParamError as err:
                raise ValueError(str(err)) from None
        for base, spec in specs.items():
            try:
                spec.config(suite.profile)
            except ParamError as err:
                raise ValueError(str(err)) from None


def parse_model_setting(text: str) -> tuple[str, str, object]:
    """``"energydiff.train_steps=200"`` -> ``("energydiff", "train_steps", 200)``; the value is a TOML literal
    (numbers, booleans, quoted strings, arrays), or a bare string when it is not one."""
    target, sep, raw = text.partition("=")
    model, dot, param = target.strip().partition(".")
    if not sep or not dot or not model or not param:
        raise ValueError(f"--set expects MODEL.PARAM=VALUE, got {text!r}")
    return model, param, toml_value(raw)


def toml_value(raw: str) -> object:
    """A command-line value as a TOML literal (numbers, booleans, quoted strings, arrays), or the stripped text
    itself when it is not one (``gpu`` -> ``"gpu"``, ``240`` -> ``240``)."""
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()


def suite_from_dict(data: dict) -> Suite:
    """Rebuild a :class:`Suite` from ``Suite.to_dict()``."""
    datasets = tuple(DatasetSpec(**{**d, "resolutions": tuple(d["resolutions"])}) for d in data["datasets"])
    tasks = tuple(TaskSpec(**{**t, "models": tuple(t["models"])}) for t in data["tasks"])
    return Suite(**{**data, "seeds": tuple(data["seeds"]), "datasets": datasets, "tasks": tasks})
