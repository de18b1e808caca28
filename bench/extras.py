"""Optional dependencies: library-backed baselines import their library through :func:`require`, so that the
registry loads without them and a missing one is a one-line error naming the extra that installs it."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


class MissingExtraError(ImportError):
    """A model needs a package of an optional extra that is not installed."""


def require(module: str, *, extra: str = "baselines", model: str | None = None) -> ModuleType:
    """``import_module(module)``, or a :class:`MissingExtraError` saying ``pip install 'meterbench[extra]'``."""
    try:
        return import_module(module)
    except ImportError as err:
        who = f"{model} needs" if model else "this needs"
        raise MissingExtraError(f"{who} the {module.split('.')[0]} package ({err}); install it with "
                                f"pip install 'meterbench[{extra}]'") from None
