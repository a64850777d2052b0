"""The part ``Model`` and ``Image`` share: a versioned, registered record seen through a workspace.

Both are Azure ML v1 objects found as ``Cls(workspace, name, version=None)`` (latest version
when omitted) or ``Cls(workspace, id="name:version")`` (Azure's ``Model``/``Image``
constructors), equal when they name the same stored row of the same workspace, and expose the
record's identity fields read-only. Subclasses set ``_kind`` (used in error messages) and
``_get`` (the orchestration function that looks a version up).

The facade classes refer to each other the way Azure's do (an ``Image``'s ``models`` are
``Model`` objects, ``Model.package`` returns an ``Image``), but imports only point down
(``.importlinter``: model > webservice > image > versioned). So each subclass that sets its
own ``_kind`` is registered here when its module is imported, and a lower facade module finds
a higher one's class with :meth:`Versioned.class_of` (as Azure's ``Image`` finds the class
of an image among ``Image.__subclasses__()``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from mlmanage_jupyter.core.entities.names import split_id
from mlmanage_jupyter.core.errors import ValidationError
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

#: ``_kind`` -> the facade class that first set it (``"Model"`` -> Model, ``"Image"`` -> Image)
_CLASSES: dict[str, type[Versioned[Any]]] = {}

#: where each kind's class is defined, for the error when it is not imported yet
_MODULES = {"Model": "mlmanage_jupyter.core.model", "Image": "mlmanage_jupyter.core.image"}


class Versioned(Generic[R]):
    """A registered version of ``_kind``, wrapping its record (``self.record``).

    Raises what ``_get`` raises (a NotFoundError subclass) when there is no such name or version,
    and ValidationError (from :func:`~mlmanage_jupyter.core.entities.names.split_id`) for a
    malformed ``id`` or one given together with ``name``/``version``.
    """

    _kind: ClassVar[str]
    # (workspace, name, version or None for the latest) -> record
    _get: ClassVar[Callable[[Workspace, str, int | None], Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("_kind")
        if kind:
            _CLASSES.setdefault(kind, cls)

    @staticmethod
    def class_of(kind: str) -> type[Versioned[Any]]:
        """The facade class of ``kind`` (``"Model"``, ``"Image"``), registered when its module
        was imported. Raises ValidationError naming the import when it was not: an
        ``azureml.core``/``mlmanage_jupyter.core`` user who holds a record of that kind has
        imported it (``from mlmanage_jupyter.core.model import Model``)."""
        cls = _CLASSES.get(kind)
        if cls is None:
            where = _MODULES.get(kind, "mlmanage_jupyter.core")
            raise ValidationError(
                f"the {kind} class is not imported yet: import it first (from {where} import {kind}, "
                f"or from azureml.core import {kind} with mlmanage_jupyter.azureml_alias)"
            )
        return cls

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
