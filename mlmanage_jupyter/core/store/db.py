"""``MetadataDB``: what the repositories (``store/models.py``, ``images.py``, ``services.py``)
need from a workspace: transactions and the event log. ``core.workspace.Workspace``
satisfies it; the repositories never import the workspace (it sits above the stores)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection


class MetadataDB(Protocol):
    """``read()``/``write()`` give a SQLAlchemy Connection inside a transaction (``write``
    commits at the end of the block, or rolls back on an error); ``log_event`` adds a row to
    the event feed in the caller's transaction; ``path`` is the workspace root (messages)."""

    path: Path

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def log_event(self, conn: Connection, kind: str, subject: str, **detail: Any) -> None: ...
