"""The part ``Model`` and ``Image`` share: a versioned, registered record seen through a workspace.

Both are Azure ML v1 objects found as ``Cls(workspace, name, version=None)`` (latest version
when omitted) or ``Cls(workspace, id="name:version")`` (Azure's ``Model``/``Image``
constructors), equal when they name the same stored row of the same workspace, and expose the
record's identity fields read-only. Subclasses set ``_kind`` (used in error messages) and
``_get`` (the orchestration function that looks a version up).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from mlmanage_jupyter.core.entities.names import split_id
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace

WorkspaceLike = Workspace | str | os.PathLike[str] | None


class VersionedRecord(Protocol):
    """What a versioned record (ModelRecord, ImageRecord) has in common."""

    pk: int
    name: str
    version: int
    description: str | None
    tags: dict[str, str]
    created_time: str

    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=VersionedRecord)


class Versioned(Generic[R]):
    """A registered version of ``_kind``, wrapping its record (``self.record``).

    Raises what ``_get`` raises (a NotFoundError subclass) when there is no such name or version,
    and ValidationError (from :func:`~mlmanage_jupyter.core.entities.names.split_id`) for a
    malformed ``id`` or one given together with ``name``/``version``.
    """

    _kind: ClassVar[str]
    # (workspace, name, version or None for the latest) -> record
    _get: ClassVar[Callable[[Workspace, str, int | None], Any]]

    def __init__(
        self,
        workspace: WorkspaceLike,
        name: str | None = None,
        version: int | None = None,
        *,
        id: str | None = None,
        _record: R | None = None,
    ) -> None:
        self.workspace = resolve_workspace(workspace)
        if _record is None:
            name, version = split_id(self._kind, name, version, id)
            _record = type(self)._get(self.workspace, name, version)
        self.record: R = _record

    # the record's identity fields, read-only
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version

    @property
    def description(self) -> str | None:
        return self.record.description

    @property
    def tags(self) -> dict[str, str]:
        return self.record.tags

    @property
    def created_time(self) -> str:
        return self.record.created_time

    @property
    def id(self) -> str:
        return self.record.id

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, type(self))
            and other.workspace.path == self.workspace.path
            and other.record.pk == self.record.pk
        )

    def __hash__(self) -> int:
        return hash((str(self.workspace.path), self.record.pk))
