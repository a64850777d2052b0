"""Repository of registered models: every SQL statement on ``models`` and ``model_files``.

Functions take a :class:`~mlmanage_jupyter.core.store.db.MetadataDB` (a Workspace) and
return :class:`~mlmanage_jupyter.core.entities.records.ModelRecord` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update

from mlmanage_jupyter.core.entities.records import ModelFile, ModelRecord
from mlmanage_jupyter.core.errors import InUseError, ModelNotFoundError
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.db import MetadataDB, record_from_row


def to_record(row: Any) -> ModelRecord:
    return record_from_row(ModelRecord, row)


def get(db: MetadataDB, name: str, version: int | None) -> ModelRecord:
    """Version ``version`` of ``name`` (the latest when None).

    Raises ModelNotFoundError listing the versions that exist, or saying how to register."""
    q = select(md.models).where(md.models.c.name == name)
    q = q.where(md.models.c.version == version) if version is not None else q.order_by(md.models.c.version.desc()).limit(1)
    with db.read() as conn:
        row = conn.execute(q).first()
        if row is None:
            versions = [
                v for (v,) in conn.execute(select(md.models.c.version).where(md.models.c.name == name).order_by(md.models.c.version))
            ]
    if row is None:
        if versions:
            raise ModelNotFoundError(f"model {name!r} has no version {version}; versions: {', '.join(map(str, versions))}")
        raise ModelNotFoundError(f"no model named {name!r} in workspace {db.path}; register it with Model.register(...)")
    return to_record(row)


def list_records(db: MetadataDB, name: str | None = None, latest: bool = False) -> list[ModelRecord]:
    """Models by name, then version descending; ``latest`` keeps each name's highest version."""
    q = select(md.models)
    if name is not None:
        q = q.where(md.models.c.name == name)
    if latest:
        latest_v = select(md.models.c.name, func.max(md.models.c.version).label("v")).group_by(md.models.c.name).subquery()
        q = q.join(latest_v, and_(md.models.c.name == latest_v.c.name, md.models.c.version == latest_v.c.v))
    q = q.order_by(md.models.c.name, md.models.c.version.desc())
    with db.read() as conn:
        return [to_record(r) for r in conn.execute(q).all()]


def insert_version(
    db: MetadataDB,
    *,
    name: str,
    description: str | None,
    model_framework: str | None,
    model_framework_version: str | None,
    tags: dict[str, str],
    properties: dict[str, str],
    root_name: str,
    is_folder: bool,
    sha256: str,
    files: Sequence[tuple[str, str, int]],
    before_commit: Callable[[], None] | None = None,
) -> ModelRecord:
    """Allocate the next version of ``name`` and write the model and its ``(path, sha256,
    size)`` file rows in ONE transaction (so concurrent registrations get dense, unique
    versions and a crash leaves a whole version or none). ``before_commit`` runs inside it."""
    size = sum(s for _, _, s in files)
    with db.write() as conn:
        version = (conn.execute(select(func.max(md.models.c.version)).where(md.models.c.name == name)).scalar() or 0) + 1
        model_id = conn.execute(
            insert(md.models).values(
                name=name,
                version=version,
                description=description,
                model_framework=model_framework,
                model_framework_version=model_framework_version,
                tags=tags,
                properties=properties,
                root_name=root_name,
                is_folder=is_folder,
                sha256=sha256,
                size=size,
                file_count=len(files),
                created_time=md.utcnow(),
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(md.model_files),
            [{"model_id": model_id, "path": rel, "sha256": sha, "size": sz} for rel, sha, sz in files],
        )
        if before_commit is not None:
            before_commit()
        db.log_event(conn, "model.register", f"{name}:{version}", files=len(files), size=size)
        row = conn.execute(select(md.models).where(md.models.c.id == model_id)).one()
    return to_record(row)


def files(db: MetadataDB, model: ModelRecord) -> list[ModelFile]:
    """The files of a version, by path."""
    q = select(md.model_files).where(md.model_files.c.model_id == model.pk).order_by(md.model_files.c.path)
    with db.read() as conn:
        return [ModelFile(f.path, f.sha256, f.size) for f in conn.execute(q).all()]


def set_fields(db: MetadataDB, model: ModelRecord, event: str | None = None, **values: Any) -> None:
    """Update columns (``tags``, ``properties``, ``description``) of one version; ``event``
    names an event to log with the new values."""
    with db.write() as conn:
        conn.execute(update(md.models).where(md.models.c.id == model.pk).values(**values))
        if event:
            db.log_event(conn, event, model.id, **values)


def _users(conn: Any, model: ModelRecord) -> tuple[list[str], list[str]]:
    imgs = conn.execute(
        select(md.images.c.name, md.images.c.version)
        .join(md.image_models, md.image_models.c.image_id == md.images.c.id)
        .where(md.image_models.c.model_id == model.pk)
    ).all()
    svcs = conn.execute(select(md.service_models.c.service_name).where(md.service_models.c.model_id == model.pk)).all()
    return [f"{n}:{v}" for n, v in imgs], [s for (s,) in svcs]


def users(db: MetadataDB, model: ModelRecord) -> dict[str, list[str]]:
    """``{"images": ["name:version"], "services": ["name"]}`` using this version."""
    with db.read() as conn:
        imgs, svcs = _users(conn, model)
    return {"images": imgs, "services": svcs}


def delete_version(db: MetadataDB, model: ModelRecord) -> None:
    """Delete the version's rows. Raises InUseError naming the images and services using it."""
    with db.write() as conn:
        imgs, svcs = _users(conn, model)
        if imgs or svcs:
            names = [f"image {i}" for i in imgs] + [f"service {s}" for s in svcs]
            raise InUseError(f"model {model.id} is used by {', '.join(names)}; delete those first")
        conn.execute(delete(md.model_files).where(md.model_files.c.model_id == model.pk))
        conn.execute(delete(md.models).where(md.models.c.id == model.pk))
        db.log_event(conn, "model.delete", model.id)


def referenced_objects(db: MetadataDB) -> set[str]:
    """sha256 of every artifact object some model version references."""
    with db.read() as conn:
        return {s for (s,) in conn.execute(select(md.model_files.c.sha256).distinct())}
