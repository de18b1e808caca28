"""Exceptions raised by meterbench with messages a user can act on."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data.

    The message always names the file (and, where known, the line and column) so that the user can find
    and fix the offending input without re-running anything.
    """

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None,
                 column: str | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.path = path
        self.line = line
        self.column = column


class ModelFitError(RuntimeError):
    """A model could not be fitted (diverged, singular matrix, ...). Reported in tables, never hidden."""
