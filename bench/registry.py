"""One registry mechanism for models, tasks, datasets, metrics and post-processors.

A :class:`Registry` maps names to entries; it imports its built-in modules (and, for models, the
``meterbench.models`` entry points of installed packages) the first time it is read, so that
``run_bench.py list`` stays fast. Every lookup of an unknown name is a one-line ``KeyError`` listing the
known ones.

Models register with :func:`register_model` (a class decorator). A third-party package exposes an entry point
in the group ``meterbench.models`` whose value is a module (importing it runs its decorators) or a model class
(registered under the entry point's name).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")

ENTRY_POINT_GROUP = "meterbench.models"


class Registry(Generic[T]):
    """Named entries of one kind, filled by their modules on first use."""

    def __init__(self, kind: str, modules: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
                 entry_point_group: str | None = None,
                 on_entry_point_class: Callable[[str, type], Any] | None = None) -> None:
        """``modules``: the modules that register the built-in entries (or a function listing them);
        ``entry_point_group``: where installed packages add entries; ``on_entry_point_class(name, cls)``
        registers an entry point whose value is a class rather than a module."""
        self.kind = kind
        self.modules = modules
        self.entry_point_group = entry_point_group
        self.on_entry_point_class = on_entry_point_class
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under ``name``; a name taken by another entry is an error unless ``replace``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries and not replace and not _same(self._entries[name], entry):
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def _load(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in self.modules() if callable(self.modules) else self.modules:
                import_module(module)
            if self.entry_point_group:
                for ep in entry_points(group=self.entry_point_group):
                    loaded = ep.load()
                    if isinstance(loaded, type) and self.on_entry_point_class is not None:
                        self.on_entry_point_class(ep.name, loaded)
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> T:
        """The entry registered as ``name``; a ``KeyError`` listing the known names otherwise."""
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        self._load()
        return list(self._entries.items())

    def values(self) -> list[T]:
        """Entries in registration order."""
        self._load()
        return list(self._entries.values())

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests register throw-away entries)."""
        self._entries.pop(name, None)


def _same(a: Any, b: Any) -> bool:
    # re-importing a module (reload, a second import path) registers an equal entry again: not a clash
    if isinstance(a, ModelSpec) and isinstance(b, ModelSpec):
        return a.cls.__qualname__ == b.cls.__qualname__ and a.cls.__module__ == b.cls.__module__
    return a is b or a == b


# -- models ----------------------------------------------------------------------------------------------------
def builtin_model_modules() -> tuple[str, ...]:
    """Every module of the ``baselines`` package (a new model is one new file there: nothing else to edit)."""
    import pkgutil

    import baselines

    return tuple(f"baselines.{m.name}" for m in pkgutil.iter_modules(baselines.__path__)
                 if not m.ispkg and not m.name.startswith("_"))


PROFILES = ("test", "quick", "paper")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, class, capabilities (from the Protocols it subclasses), the parameters
    a variant pins (``fixed``) and a one-line description."""

    name: str
    cls: type
    capabilities: frozenset
    fixed: dict
    description: str

    @property
    def params(self) -> type:
        """The model's hyper-parameter dataclass."""
        return self.cls.Params

    def profile_values(self, profile: str) -> dict:
        """The values ``profile`` sets (over the defaults), the variant's pinned values included."""
        if profile not in PROFILES:
            raise KeyError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        return {**self.cls.profiles.get(profile, {}), **self.fixed}

    def config(self, profile: str, overrides: dict | None = None) -> dict:
        """Every hyper-parameter's value under ``profile`` with ``overrides`` applied (checked: a
        :class:`bench.api.ParamError` names a wrong name or type)."""
        from bench.api import make_params

        params = make_params(self.params, {**self.profile_values(profile), **(overrides or {})}, owner=self.name)
        return dataclasses.asdict(params)

    def build(self, profile: str = "quick", overrides: dict | None = None) -> Any:
        """A fresh, unfitted instance configured for ``profile``."""
        return self.cls(**self.config(profile, overrides))




def model_spec(name: str, cls: type, fixed: dict | None = None) -> ModelSpec:
    """Check ``cls`` against the model contract and describe it; every problem is named here, at registration.

    Raises:
        TypeError: ``cls`` is not a :class:`bench.api.Model`, implements no capability, leaves a capability
            method unimplemented, or its ``Params`` is not a dataclass.
        bench.api.ParamError: a profile (or ``fixed``) names an unknown parameter or a value of the wrong type.
    """
    from bench.api import Model, Params, capabilities_of, make_params

    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise TypeError(f"model {name!r}: {cls!r} must subclass bench.api.Model")
    caps = capabilities_of(cls)
    if not caps:
        raise TypeError(f"model {name!r} implements no capability: subclass at least one of the Protocols in "
                        f"bench.api (Generator, ConditionalGenerator, Imputer, SuperResolver, Forecaster, Detector)")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise TypeError(f"model {name!r} does not implement {', '.join(missing)}")
    if not (dataclasses.is_dataclass(cls.Params) and issubclass(cls.Params, Params)):
        raise TypeError(f"model {name!r}: Params must be a dataclass subclassing bench.api.Params")
    fixed = dict(fixed or {})
    for profile, values in {**cls.profiles, "quick": {}}.items():
        if profile not in PROFILES:
            raise TypeError(f"model {name!r}: unknown profile {profile!r}; profiles are {', '.join(PROFILES)}")
        make_params(cls.Params, {**values, **fixed}, owner=name)
    doc = (cls.__doc__ or "").strip().splitlines()
    return ModelSpec(name, cls, caps, fixed, doc[0] if doc else "")


def register_model(name: str, **fixed: Any) -> Callable[[type], type]:
    """Class decorator adding a model to the registry under ``name``.

    ``fixed`` parameters make a registered *variant*: the same class with some parameters pinned, e.g.
    ``@register_model("gmm-pca", n_pca=50)`` stacked on the GMM class. Variants are one line, not copies.
    """

    def decorate(cls: type) -> type:
        MODELS.register(name, model_spec(name, cls, fixed))
        return cls

    return decorate


def _register_entry_point_class(name: str, cls: type) -> None:
    # a class whose module registered it with @register_model is already in; a bare class gets the ep's name
    if not any(spec.cls is cls for spec in MODELS._entries.values()):
        MODELS.register(name, model_spec(name, cls))


MODELS: Registry[ModelSpec] = Registry("model", builtin_model_modules, ENTRY_POINT_GROUP,
                                       on_entry_point_class=_register_entry_point_class)


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; a clear error lists the known names otherwise."""
    return MODELS.get(name)


def list_models() -> list[ModelSpec]:
    """All registered models, sorted by name."""
    return [MODELS.get(n) for n in MODELS.names()]
