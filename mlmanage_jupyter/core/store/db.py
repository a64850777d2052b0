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
    the event feed in the caller's transaction; ``path`` is the workspace root (messages,
    folder paths); ``metadata_url`` the SQLAlchemy URL of the metadata database."""

    path: Path
    metadata_url: str

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


def _metadata_in_folder(db: MetadataDB) -> bool:
    """True when the metadata is a SQLite file inside the workspace folder (it moves with it)."""
    url = str(getattr(db, "metadata_url", ""))
    if not url.startswith("sqlite:///"):
        return False
    return Path(url[len("sqlite:///"):]).resolve().is_relative_to(Path(db.path).resolve())


def stored_path(db: MetadataDB, path: Path) -> str:
    """How a folder of the workspace is written in a row: relative to the workspace root when
    it is inside it and the metadata is the folder's own SQLite file (a copied or moved
    workspace then still finds it), else absolute (a team's shared database: other members'
    workspace folders are elsewhere, so a path relative to theirs would be wrong)."""
    path = Path(path).resolve()
    if _metadata_in_folder(db) and path.is_relative_to(Path(db.path).resolve()):
        return path.relative_to(Path(db.path).resolve()).as_posix()
    return str(path)


def resolved_path(db: MetadataDB, stored: str) -> Path:
    """The folder a row names (:func:`stored_path`'s inverse): a relative path is under the
    workspace root; an absolute one (rows written before paths were stored relative) as is."""
    p = Path(stored)
    return p if p.is_absolute() else Path(db.path) / p
