"""Model registry: ``@register_model`` for built-ins and the ``meterbench.models`` entry-point group.

A model is a class with:

* ``capabilities``: a frozenset drawn from :data:`CAPABILITIES`;
* ``configs``: ``{profile: {param: value}}`` with at least a ``"quick"`` profile (``"paper"`` falls back to
  ``"quick"`` when absent, and the table notes the profile used);
* ``__init__(**config)`` taking the profile's parameters as keywords;
* the methods of its capabilities: ``fit(train, ctx)``; ``sample(n, cond, ctx) -> [n, T]`` for
  ``generate``; ``impute``, ``super_resolve``, ``forecast``, ``anomaly_score`` for the others.

Third-party packages register models by exposing an entry point ``meterbench.models`` whose value is a
module or a model class; importing it runs their ``@register_model`` decorators.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Callable

CAPABILITIES = frozenset({"generate", "conditional", "constrained", "impute", "super_resolve", "forecast", "detect"})
ENTRY_POINT_GROUP = "meterbench.models"

# Built-in model modules, imported lazily so that ``run_bench.py list`` stays fast.
BUILTIN_MODULES = (
    "baselines.naive",
    "baselines.gmm",
    "baselines.tcopula",
    "baselines.energydiff",
    "baselines.vae",
    "baselines.wgan",
    "baselines.gan",
    "baselines.naive_tasks",
    "baselines.smartmeterfm",
    "baselines.loadpin",
    "baselines.profilesr",
    "baselines.detectors",
    "baselines.forecasters",
    "baselines.unified",
)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, class, capabilities and per-profile configs."""

    name: str
    cls: type
    capabilities: frozenset
    configs: dict
    description: str

    def config(self, profile: str, overrides: dict | None = None) -> dict:
        """The parameters for ``profile`` (falling back to ``quick``), updated with ``overrides``."""
        base = self.configs.get(profile, self.configs["quick"])
        unknown = set(overrides or {}) - set(base)
        if unknown:
            raise KeyError(f"model {self.name!r} has no parameters {sorted(unknown)}; known: {sorted(base)}")
        return {**base, **(overrides or {})}

    def build(self, profile: str = "quick", overrides: dict | None = None) -> Any:
        """A fresh, unfitted instance configured for ``profile``."""
        return self.cls(**self.config(profile, overrides))


_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


def register_model(name: str, *, variant_of: str | None = None, **fixed: Any) -> Callable[[type], type]:
    """Class decorator adding a model to the registry under ``name``.

    ``fixed`` parameters make a registered *variant*: the same class with some parameters pinned, e.g.
    ``@register_model("gmm-pca", n_pca=50)`` stacked on the GMM class. Variants are one line, not copies.
    """

    def decorate(cls: type) -> type:
        caps = frozenset(getattr(cls, "capabilities", ()))
        unknown = caps - CAPABILITIES
        if unknown:
            raise ValueError(f"model {name!r} declares unknown capabilities {sorted(unknown)}")
        configs = getattr(cls, "configs", None)
        if not configs or "quick" not in configs:
            raise ValueError(f"model {name!r} must define configs with a 'quick' profile")
        configs = {p: {**c, **fixed} for p, c in configs.items()}
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} already registered by {_REGISTRY[name].cls.__module__}")
        doc = (cls.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelSpec(name, cls, caps, configs, doc[0] if doc else "")
        return cls

    return decorate


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN_MODULES:
        import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name``; a clear error lists the known names otherwise."""
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_models() -> list[ModelSpec]:
    """All registered models, sorted by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]
