"""Reports built from tidy result rows: summary tables (:mod:`bench.report.tables`) and figures
(:mod:`bench.report.plots`).

The submodules are imported on demand (``from bench.report import tables``) so that building a table does
not pay for importing matplotlib.
"""

from __future__ import annotations

__all__ = ["plots", "tables"]
