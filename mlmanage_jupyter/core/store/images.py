"""Repository of images: every SQL statement on ``images`` and ``image_models``.

Functions take a :class:`~mlmanage_jupyter.core.store.db.MetadataDB` (a Workspace) and
return :class:`~mlmanage_jupyter.core.entities.records.ImageRecord` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from mlmanage_jupyter.core.entities.records import ImageRecord, ModelRecord
from mlmanage_jupyter.core.errors import InUseError, NotFoundError
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.db import MetadataDB, record_from_row, resolved_path, stored_path


def to_record(db: MetadataDB, row: Any) -> ImageRecord:
    return record_from_row(ImageRecord, row, context_path=resolved_path(db, row.context_path))


def get(db: MetadataDB, name: str, version: int | None) -> ImageRecord:
    """Version ``version`` of image ``name`` (latest when None); raises NotFoundError."""
    q = select(md.images).where(md.images.c.name == name)
    q = q.where(md.images.c.version == version) if version is not None else q.order_by(md.images.c.version.desc()).limit(1)
    with db.read() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFoundError(f"no image {name}{':' + str(version) if version else ''} in workspace {db.path}")
    return to_record(db, row)


def get_by_pk(db: MetadataDB, pk: int) -> ImageRecord | None:
    with db.read() as conn:
        row = conn.execute(select(md.images).where(md.images.c.id == pk)).first()
    return to_record(db, row) if row is not None else None


def find_by_hash(db: MetadataDB, name: str, content_hash: str) -> ImageRecord | None:
    """The newest version of ``name`` with this content hash, if any."""
    with db.read() as conn:
        row = conn.execute(
            select(md.images)
            .where(md.images.c.name == name, md.images.c.content_hash == content_hash)
            .order_by(md.images.c.version.desc())
        ).first()
    return to_record(db, row) if row is not None else None


def insert_version(
    db: MetadataDB,
    *,
    name: str,
    content_hash: str,
    description: str | None,
    tags: dict[str, str],
    spec: dict[str, Any],
    context_path: Path,
    models: Sequence[ModelRecord],
) -> ImageRecord:
    """Allocate the next version of ``name`` (written into ``spec["version"]``) and record it
    with its models, in one transaction."""
    with db.write() as conn:
        version = (conn.execute(select(func.max(md.images.c.version)).where(md.images.c.name == name)).scalar() or 0) + 1
        spec = {**spec, "version": version}
        image_id = conn.execute(
            insert(md.images).values(
                name=name,
                version=version,
                content_hash=content_hash,
                description=description,
                tags=dict(tags),
                spec=spec,
                context_path=stored_path(db, context_path),
                created_time=md.utcnow(),
            )
        ).inserted_primary_key[0]
        if models:  # an empty executemany would insert one row of defaults
            conn.execute(insert(md.image_models), [{"image_id": image_id, "model_id": m.pk} for m in models])
        db.log_event(conn, "image.create", f"{name}:{version}", content_hash=content_hash, models=[m.id for m in models])
        row = conn.execute(select(md.images).where(md.images.c.id == image_id)).one()
    return to_record(db, row)


def list_records(db: MetadataDB, name: str | None = None) -> list[ImageRecord]:
    """Images by name, then version descending."""
    q = select(md.images)
    if name:
        q = q.where(md.images.c.name == name)
    with db.read() as conn:
        return [to_record(db, r) for r in conn.execute(q.order_by(md.images.c.name, md.images.c.version.desc())).all()]


def service_names(db: MetadataDB, image: ImageRecord) -> list[str]:
    """Names of the services running this image."""
    with db.read() as conn:
        return [n for (n,) in conn.execute(select(md.services.c.name).where(md.services.c.image_id == image.pk))]


def set_fields(db: MetadataDB, image: ImageRecord, **values: Any) -> None:
    """Update columns (``tags``, ``docker_image``) of one image version."""
    with db.write() as conn:
        conn.execute(update(md.images).where(md.images.c.id == image.pk).values(**values))


def delete_version(db: MetadataDB, image: ImageRecord) -> bool:
    """Delete the version's rows; True when no other version shares its content hash (its
    context folder can go). Raises InUseError while a service runs it."""
    with db.write() as conn:
        users = [n for (n,) in conn.execute(select(md.services.c.name).where(md.services.c.image_id == image.pk))]
        if users:
            raise InUseError(f"image {image.id} is used by service {', '.join(users)}; delete or update it first")
        conn.execute(delete(md.image_models).where(md.image_models.c.image_id == image.pk))
        conn.execute(delete(md.images).where(md.images.c.id == image.pk))
        others = conn.execute(select(func.count()).where(md.images.c.content_hash == image.content_hash)).scalar()
        db.log_event(conn, "image.delete", image.id)
    return not others
