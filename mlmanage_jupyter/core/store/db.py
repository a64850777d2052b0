"""``MetadataDB``: what the repositories (``store/models.py``, ``images.py``, ``services.py``)
need from a workspace: transactions and the event log. ``core.workspace.Workspace``
satisfies it; the repositories never import the workspace (it sits above the stores)."""

from __future__ import annotations

import dataclasses
import typing
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection


class MetadataDB(Protocol):
    """``read()``/``write()`` give a SQLAlchemy Connection inside a transaction (``write``
    commits at the end of the block, or rolls back on an error); ``log_event`` adds a row to
    the event feed in the caller's transaction; ``path`` is the workspace root (messages)."""

    path: Path

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def log_event(self, conn: Connection, kind: str, subject: str, **detail: Any) -> None: ...


_Record = TypeVar("_Record")


def record_from_row(cls: type[_Record], row: Any, **overrides: Any) -> _Record:
    """The record dataclass ``cls`` (``entities/records.py``) of one table row: each field
    from the column of its name (``pk`` from ``id``); a ``dict`` field (a JSON column) as a
    fresh dict, ``{}`` for NULL; a ``bool`` field as ``bool``. ``overrides`` give the fields
    whose column differs (paths, joined values). Raises AttributeError for a field with
    neither a column nor an override (a programming error)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in overrides or not f.init:
            continue
        v = getattr(row, "id" if f.name == "pk" else f.name)
        if typing.get_origin(hints[f.name]) is dict:
            v = dict(v or {})
        elif hints[f.name] is bool:
            v = bool(v)
        values[f.name] = v
    return cls(**values, **overrides)


def stored_path(db: MetadataDB, path: Path) -> str:
    """How a folder of the workspace is written in a row: relative to the workspace root
    when inside it (a copied or moved workspace still finds it), else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(Path(db.path).resolve()).as_posix()
    except ValueError:
        return str(path)


def resolved_path(db: MetadataDB, stored: str) -> Path:
    """The folder a row names (:func:`stored_path`'s inverse): a relative path is under the
    workspace root; an absolute one (rows written before paths were stored relative) as is."""
    p = Path(stored)
    return p if p.is_absolute() else Path(db.path) / p
