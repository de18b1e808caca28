"""The contracts every model, task and metric of meterbench plugs into, in one file.

A **model** is a subclass of :class:`Model` that also subclasses the capability Protocols it implements:

    class MyModel(Model, Generator):          # capability "generate"
        Params = MyParams                     # a dataclass: every hyper-parameter once, typed, with defaults
        profiles = {"test": {"hidden": 4}, "paper": {"hidden": 512}}   # only what differs from the defaults

        def fit(self, train, ctx): ...
        def sample(self, n, cond, ctx): ...   # -> [n, T] float32

Its capabilities are the Protocols it subclasses; registration (:func:`bench.registry.register_model`)
checks once that every method of each is implemented. Tasks call only those methods: a task skips a model
without its capability and the table shows "n/a".

Profiles: the ``Params`` defaults are the ``quick`` profile (CPU, minutes); ``paper`` holds the papers'
hyper-parameters (GPU) and ``test`` tiny sizes for the contract test (``tests/test_model_contract.py``).

A **task** is a :class:`Task`: ``prepare(profiles, cfg, seed) -> data``, ``run(model, data, ctx) -> Outcome``,
``score(outcome, data, cfg, seed) -> rows``. A **cell** (:class:`Cell`) is one (dataset, resolution, task,
seed, model) of a suite. **Metrics** are described by :class:`metrics.registry.Metric` (function
``fn(real, pred, *, mask=None, ...)``, goal, range, what it needs).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from bench.context import RunContext

if typing.TYPE_CHECKING:
    import pandas as pd

    from bench.data.profileset import ProfileSet


# -- model capabilities ------------------------------------------------------------------------------------
class Generator(Protocol):
    """Capability ``generate``: unconditional daily profiles."""

    @abstractmethod
    def sample(self, n: int, cond: "pd.DataFrame | None", ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32 profiles in the scaled space the model was fitted in (``cond`` is None here)."""


class ConditionalGenerator(Protocol):
    """Capability ``conditional``: profiles under per-row conditions (``cond``: one row per profile with the
    task's condition columns, e.g. ``month``, ``category``)."""

    @abstractmethod
    def sample(self, n: int, cond: "pd.DataFrame | None", ctx: RunContext) -> np.ndarray:
        """``[n, T]`` float32; row ``i`` follows ``cond.iloc[i]`` (``cond`` None = unconditional)."""


class ConstrainedGenerator(ConditionalGenerator, Protocol):
    """Capability ``constrained``: a conditional generator that also honours the ``peak`` / ``mean`` targets
    the conditional task adds to ``cond`` in its constrained setting."""


class Imputer(Protocol):
    """Capability ``impute``: fill the unobserved steps of partly observed profiles."""

    @abstractmethod
    def impute(self, query: Any, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 samples for a :class:`bench.tasks.queries.ImputationQuery`."""


class SuperResolver(Protocol):
    """Capability ``super_resolve``: high-resolution profiles from block means."""

    @abstractmethod
    def super_resolve(self, query: Any, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, T]`` float32 for a :class:`bench.tasks.queries.SuperResolutionQuery`."""


class Forecaster(Protocol):
    """Capability ``forecast``: the next horizon of a load history."""

    @abstractmethod
    def forecast(self, query: Any, n_samples: int, ctx: RunContext) -> np.ndarray:
        """``[S, N, H]`` float32 for a :class:`bench.tasks.queries.ForecastQuery`."""

    def fit_forecast(self, examples: Any, ctx: RunContext) -> None:
        """Learn from the task's (history, target) windows after :meth:`Model.fit`; nothing by default."""


class Detector(Protocol):
    """Capability ``detect``: anomaly scores, higher = more anomalous."""

    @abstractmethod
    def anomaly_score(self, query: Any, ctx: RunContext) -> np.ndarray:
        """``[N]`` float scores for a :class:`bench.tasks.queries.DetectionQuery`."""

    def fit_detector(self, examples: Any, ctx: RunContext) -> None:
        """Learn from labelled training examples after :meth:`Model.fit`; nothing by default."""


CAPABILITY_PROTOCOLS: dict[str, type] = {
    "generate": Generator,
    "conditional": ConditionalGenerator,
    "constrained": ConstrainedGenerator,
    "impute": Imputer,
    "super_resolve": SuperResolver,
    "forecast": Forecaster,
    "detect": Detector,
}
CAPABILITIES = tuple(CAPABILITY_PROTOCOLS)


def capabilities_of(cls: type) -> frozenset[str]:
    """The capabilities a model class declares by subclassing their Protocols (explicitly: two capabilities
    share the method ``sample``, so structure alone cannot tell them apart)."""
    mro = cls.__mro__
    return frozenset(name for name, proto in CAPABILITY_PROTOCOLS.items() if proto in mro)


# -- hyper-parameters --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    """Base of a model's hyper-parameter dataclass: subclass it with typed fields and defaults (the ``quick``
    profile). Value checks (ranges, choices) go in the subclass's ``__post_init__``."""


class ParamError(ValueError):
    """A hyper-parameter value of the wrong type or outside its range; the message is one line."""


_UNIONS = (typing.Union, types.UnionType)  # Optional[int] and int | None


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        return " | ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (tuple, list):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(hint))}]"
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` checked against the annotation ``hint`` (an int is accepted for a float)."""
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if origin in _UNIONS:
        for arg in typing.get_args(hint):
            ok, coerced = _coerce(value, arg)
            if ok:
                return True, coerced
        return False, value
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False, value
        args = typing.get_args(hint)
        items = []
        for i, item in enumerate(value):
            arg = args[0] if (origin is list or (len(args) == 2 and args[1] is Ellipsis)) else \
                (args[i] if i < len(args) else None)
            if arg is None:
                return False, value
            ok, coerced = _coerce(item, arg)
            if not ok:
                return False, value
            items.append(coerced)
        return True, origin(items)
    if hint is bool:
        return isinstance(value, (bool, np.bool_)), bool(value) if isinstance(value, (bool, np.bool_)) else value
    if hint is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        return ok, int(value) if ok else value
    if hint is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value


def param_types(params_cls: type) -> dict[str, Any]:
    """``{field: annotation}`` of a :class:`Params` dataclass, annotations resolved (each in the module of the
    class that declared it, so an inherited field resolves where it was written)."""
    hints = typing.get_type_hints(params_cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(params_cls)}


def make_params(params_cls: type, values: dict, *, owner: str = "model") -> Params:
    """``params_cls(**values)`` after checking names and types; any problem is a one-line :class:`ParamError`
    naming the parameter, the expected type and the valid names."""
    types = param_types(params_cls)
    unknown = sorted(set(values) - set(types))
    if unknown:
        known = ", ".join(sorted(types)) or "(none)"
        raise ParamError(f"{owner} has no parameter {', '.join(unknown)}; its parameters: {known}")
    checked = {}
    for name, value in values.items():
        ok, coerced = _coerce(value, types[name])
        if not ok:
            raise ParamError(f"{owner}.{name} expects {_type_name(types[name])}, got {value!r}")
        checked[name] = coerced
    try:
        return params_cls(**checked)
    except (ValueError, TypeError) as err:
        raise ParamError(f"{owner}: {err}") from None


# -- the model base ------------------------------------------------------------------------------------------
class Model(metaclass=ABCMeta):
    """Base of every model: hyper-parameters, profiles, ``fit``, optional diagnostics and save / load.

    Class attributes:
        Params: the hyper-parameter dataclass (defaults = the ``quick`` profile).
        profiles: ``{"test": {...}, "paper": {...}}``, each only the parameters that differ from the defaults.
        pretrains: True for a model that learns from the protocol's pre-training set when there is one.
        learns: False for a reference that learns nothing beyond copying or interpolating its input (the
            contract test then does not ask it to beat a trivial baseline).

    ``__init__(**params)`` checks the parameters, keeps them in ``self.params`` and also as attributes
    (``self.n_components``), so that model code reads them directly.
    """

    Params: ClassVar[type] = Params
    profiles: ClassVar[dict[str, dict]] = {}
    pretrains: ClassVar[bool] = False
    learns: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params = make_params(self.Params, params, owner=type(self).__name__)
        for f in dataclasses.fields(self.params):
            setattr(self, f.name, getattr(self.params, f.name))

    @abstractmethod
    def fit(self, train: "ProfileSet", ctx: RunContext) -> None:
        """Learn from ``train`` (scaled to [-1, 1]); raise :class:`bench.errors.ModelFitError` on a failed fit."""

    def diagnostics(self) -> dict[str, float]:
        """Numbers about the fitted model (EM iterations, expert utilisation, ...), stored with each cell."""
        return {}

    # -- persistence: tensors, arrays and plain values only, loaded with torch's safe loader ----------------
    def get_state(self) -> dict:
        """The fitted state as tensors / arrays / plain values (see :func:`bench.persist.to_safe`): by default
        every instance attribute except the hyper-parameters. Override for state the default cannot express."""
        from bench.persist import to_safe

        names = {f.name for f in dataclasses.fields(self.params)} | {"params"}
        return {k: to_safe(v, f"{type(self).__name__}.{k}") for k, v in vars(self).items() if k not in names}

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state`'s output on a freshly built instance (modules load into the attributes
        of the same name, so a model with networks builds them first, then calls this)."""
        from bench.persist import from_safe

        for name, value in state.items():
            setattr(self, name, from_safe(value, getattr(self, name, None)))

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (one ``.pt`` file: class, parameters and state)."""
        from bench.persist import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        """A model written by :meth:`save`, read with ``torch.load(weights_only=True)``."""
        from bench.persist import load_model

        return load_model(cls, path)


# -- metrics ---------------------------------------------------------------------------------------------------
GOALS = ("lower", "higher", "ignore")
"""Which values are better: ``lower``, ``higher``, or ``ignore`` (reported, never ranked nor marked best)."""

NEEDS = ("samples", "ensemble", "point", "labels", "scores")
"""What a metric's ``pred`` argument is (see the module docstring)."""


@dataclass(frozen=True)
class Metric:
    """A metric as tabulated.

    Attributes:
        name: its column name.
        fn: ``fn(real, pred, *, mask=None, ...) -> float``.
        goal: one of :data:`GOALS`.
        description: one line for the tables' notes.
        range: ``(low, high)`` of possible values (either may be infinite).
        needs: what ``pred`` is, one of :data:`NEEDS`: ``"samples"`` (a set of profiles), ``"ensemble"``
            ([S, N, T] draws per real profile), ``"point"`` (one prediction per real value), ``"labels"`` or
            ``"scores"``.
    """

    name: str
    fn: Callable[..., float]
    goal: str
    description: str
    range: tuple[float, float] = (0.0, math.inf)
    needs: str = "samples"

    def __post_init__(self) -> None:
        if self.goal not in GOALS:
            raise ValueError(f"metric {self.name!r}: goal must be one of {', '.join(GOALS)}, got {self.goal!r}")
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r}: needs must be one of {', '.join(NEEDS)}, got {self.needs!r}")
        low, high = self.range
        if not low < high:
            raise ValueError(f"metric {self.name!r}: range must be (low, high) with low < high, got {self.range}")


# -- tasks, cells, outcomes -----------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What :meth:`Task.run` returns for one model: ``status`` ("ok" or "failed") with a ``note``, the model's
    output (``samples``, cached with the cell), timings, the model's diagnostics and task-specific ``extra``."""

    status: str = "ok"
    note: str = ""
    samples: np.ndarray | None = None
    fit_seconds: float | None = None
    sample_seconds: float | None = None
    diagnostics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def fail(self, note: str) -> "Outcome":
        """This outcome marked failed with ``note`` (its samples dropped)."""
        self.status, self.note, self.samples = "failed", note, None
        return self


def _default_expected_rows(cfg: dict, resolution: int | None = None) -> list[tuple[str, str]]:
    return [("", m) for m in cfg.get("metrics", [])]


@dataclass(frozen=True)
class Task:
    """A benchmark task.

    Attributes:
        name: registry name (``generation``, ``imputation``, ...).
        capability: the model capability it needs (a key of :data:`CAPABILITY_PROTOCOLS`).
        defaults: its config keys with default values (a suite's ``[protocol]`` and task table override them).
        prepare: ``(profiles, cfg, seed) -> data``: split, scale and build queries, shared by every model.
        run: ``(model, data, ctx) -> Outcome``.
        score: ``(outcome, data, cfg, seed) -> [row]``; a row is ``{metric, value, std, status, note}`` (and
            ``setting`` for a task scored under several settings).
        expected_rows: ``(cfg, resolution) -> [(setting, metric)]``: the rows a model without the capability
            gets as n/a.
        protocol_notes: lines printed with every table ("paper: ..." / "assumed: ...").
        paper_layout: ``{"caption", "metrics", "settings"}`` of a second table in the paper's layout, or None.
        source: the module defining the task (its code is part of each cell's cache key).
    """

    name: str
    capability: str
    defaults: dict
    prepare: Callable[..., Any]
    run: Callable[..., Outcome]
    score: Callable[..., list]
    expected_rows: Callable[..., list] = _default_expected_rows
    protocol_notes: tuple[str, ...] = ()
    paper_layout: dict | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.capability not in CAPABILITY_PROTOCOLS:
            raise ValueError(f"task {self.name!r}: unknown capability {self.capability!r}; "
                             f"known: {', '.join(CAPABILITIES)}")


@dataclass(frozen=True)
class Cell:
    """One cell of a suite by position: the dataset's index in ``suite.datasets``, a resolution, the task's
    index in ``suite.tasks`` (and its name, for messages), a seed and a model name (``+C`` suffixes included).
    Plain values only, so a list of them travels to other processes and machines."""

    dataset: int
    resolution: int
    task: int
    task_name: str
    seed: int
    model: str
