"""Import one module of a paper's public code from a user's checkout, for side-by-side measurements.

The papers' repositories are packages whose ``__init__`` files pull in training, logging and configuration
dependencies that a timing or a value check does not need. :func:`load_public_module` loads a single file under
a private package name (so its relative imports resolve beside it) and, for third-party modules that are not
installed and that the file only needs at import time (base classes of objects a measurement never builds),
puts empty stand-ins in their place. The functions that are measured run unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


def load_public_module(path: str | Path, package: str, absent_imports: dict[str, dict] | None = None
                       ) -> types.ModuleType:
    """The module at ``path``, imported as ``<package>.<file stem>``.

    ``absent_imports`` maps module names to the attributes of their stand-ins (e.g. ``{"torchmetrics":
    {"Metric": object}}``); a stand-in is used only where the real module cannot be found, so an installed
    module always wins.

    Raises:
        FileNotFoundError: ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file of the public code: {path}")
    for name, attributes in (absent_imports or {}).items():
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            stand_in = types.ModuleType(name)
            stand_in.__dict__.update(attributes)
            sys.modules[name] = stand_in
    existing = sys.modules.get(package)
    if existing is not None and list(getattr(existing, "__path__", [])) != [str(path.parent)]:
        # the same private name for another checkout: forget the modules loaded from the old one
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(path.parent)]  # relative imports resolve beside the file
        sys.modules[package] = pkg
    spec = importlib.util.spec_from_file_location(f"{package}.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def find_file(root: str | Path, *candidates: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists, or ``root`` itself when it is a
    file; a ``FileNotFoundError`` naming what was looked for otherwise."""
    root = Path(root)
    if root.is_file():
        return root
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise FileNotFoundError(f"none of {', '.join(candidates)} under {root}")
