"""Repository of services: every SQL statement on ``services`` and ``service_models``.

Functions take a :class:`~mlmanage_jupyter.core.store.db.MetadataDB` (a Workspace) and
return :class:`~mlmanage_jupyter.core.entities.records.ServiceRecord` objects.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from mlmanage_jupyter.core.entities.records import ModelRecord, ServiceRecord
from mlmanage_jupyter.core.errors import ReadOnlyWorkspaceError, ServiceNotFoundError, ValidationError
from mlmanage_jupyter.core.store import keys as key_files
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.db import MetadataDB, record_from_row

log = logging.getLogger("mlmanage.store")


def get(db: MetadataDB, name: str) -> ServiceRecord:
    """The service ``name`` with its models; raises ServiceNotFoundError."""
    with db.read() as conn:
        row = conn.execute(select(md.services).where(md.services.c.name == name)).first()
        if row is None:
            raise ServiceNotFoundError(f"no service named {name!r} in workspace {db.path}; see Webservice.list(ws)")
        models = [
            f"{n}:{v}"
            for n, v in conn.execute(
                select(md.models.c.name, md.models.c.version)
                .join(md.service_models, md.service_models.c.model_id == md.models.c.id)
                .where(md.service_models.c.service_name == name)
                .order_by(md.models.c.name)
            )
        ]
        keys, from_file = _keys(db, conn, name)
    if from_file:
        _adopt_keys(db, name, keys)
    elif keys and key_files.in_database(db):
        with contextlib.suppress(OSError):  # a leftover of revision 0004's copy: the table has them
            key_files.forget_file(db, name)
    return record_from_row(ServiceRecord, row, image_pk=row.image_id, keys=keys or dict(row.keys or {}), models=models)


def _keys(db: MetadataDB, conn: Connection, name: str) -> tuple[dict[str, str], bool]:
    """The service's keys (``store/keys.py``: its 0600 file, or the ``service_keys`` table) and
    whether they came from a file the table should hold; ``({}, False)`` (logged) when this user
    can't read them (someone else's workspace, shared read-only; a role without access to the
    table) or they are damaged: listing and reading a service never fail because of its keys."""
    try:
        return key_files.load(db, conn, name)
    except (OSError, ValidationError, DBAPIError) as e:
        log.warning("the keys of service %s are unavailable: %s", name, str(e).splitlines()[0])
        return {}, False


def _adopt_keys(db: MetadataDB, name: str, keys: dict[str, str]) -> None:
    """Move keys this folder kept in a file (from before revision 0004) into the shared table,
    then remove the file. Best effort: a workspace that can't be written keeps the file."""
    try:
        with db.write() as conn:
            if conn.execute(select(md.services.c.name).where(md.services.c.name == name)).first() is None:
                return  # deleted meanwhile
            key_files.save(db, conn, name, keys)
    except (ReadOnlyWorkspaceError, DBAPIError) as e:
        log.warning("could not move the keys of service %s into the service_keys table: %s", name, str(e).splitlines()[0])
        return
    with contextlib.suppress(OSError):
        key_files.forget_file(db, name)


def exists(db: MetadataDB, name: str) -> bool:
    with db.read() as conn:
        return conn.execute(select(md.services.c.name).where(md.services.c.name == name)).first() is not None


def names(db: MetadataDB) -> list[str]:
    """Every service name, sorted."""
    with db.read() as conn:
        return [n for (n,) in conn.execute(select(md.services.c.name).order_by(md.services.c.name))]


def insert_service(
    db: MetadataDB,
    *,
    name: str,
    compute_type: str,
    state: str,
    image_pk: int,
    config: dict[str, Any],
    keys: dict[str, str],
    models: Sequence[ModelRecord],
) -> None:
    """Record a service being deployed (before its target starts it). Its ``keys`` go where
    the workspace keeps keys (``store/keys.py``), never into the ``services`` table."""
    now = md.utcnow()
    with db.write() as conn:
        conn.execute(
            insert(md.services).values(
                name=name,
                compute_type=compute_type,
                state=state,
                image_id=image_pk,
                config=config,
                runtime={},
                keys={},
                created_time=now,
                updated_time=now,
            )
        )
        if models:  # an image without models (Azure allows it): an empty executemany would insert defaults
            conn.execute(insert(md.service_models), [{"service_name": name, "model_id": m.pk} for m in models])
        key_files.save(db, conn, name, keys)


def delete_service(db: MetadataDB, name: str, event: bool = True) -> None:
    """Forget a service (its rows); logs ``service.delete`` when ``event``."""
    with db.write() as conn:
        key_files.forget(db, conn, name)
        conn.execute(delete(md.service_models).where(md.service_models.c.service_name == name))
        conn.execute(delete(md.services).where(md.services.c.name == name))
        if event:
            db.log_event(conn, "service.delete", name)
    key_files.forget_file(db, name)


def set_deployed(db: MetadataDB, name: str, *, runtime: dict[str, Any], scoring_uri: str, swagger_uri: str, **event: Any) -> None:
    """Record where a newly started service is; logs ``service.deploy`` with ``event``."""
    with db.write() as conn:
        conn.execute(
            update(md.services)
            .where(md.services.c.name == name)
            .values(runtime=runtime, scoring_uri=scoring_uri, swagger_uri=swagger_uri)
        )
        db.log_event(conn, "service.deploy", name, **event)


def replace_service(
    db: MetadataDB,
    name: str,
    *,
    compute_type: str,
    image_pk: int,
    config: dict[str, Any],
    keys: dict[str, str],
    served: Sequence[ModelRecord],
    runtime: dict[str, Any],
    scoring_uri: str,
    swagger_uri: str,
    **event: Any,
) -> None:
    """Record that a new service now runs under ``name`` in place of the old one
    (``deploy(..., overwrite=True)`` once the new one has started): everything but the name is
    replaced in one transaction (keys too); logs ``service.deploy`` with ``event``."""
    now = md.utcnow()
    with db.write() as conn:
        conn.execute(
            update(md.services)
            .where(md.services.c.name == name)
            .values(
                compute_type=compute_type, state="Transitioning", error=None, image_id=image_pk, config=config,
                runtime=runtime, keys={}, scoring_uri=scoring_uri, swagger_uri=swagger_uri,
                created_time=now, updated_time=now,
            )
        )  # fmt: skip
        conn.execute(delete(md.service_models).where(md.service_models.c.service_name == name))
        if served:  # an image without models: an empty executemany would insert defaults
            conn.execute(insert(md.service_models), [{"service_name": name, "model_id": m.pk} for m in served])
        key_files.save(db, conn, name, keys)
        db.log_event(conn, "service.deploy", name, **event)


def set_restored(db: MetadataDB, name: str, *, runtime: dict[str, Any], scoring_uri: str, swagger_uri: str, **event: Any) -> None:
    """Record where the old service runs again after its replacement failed to start; logs
    ``service.replace_failed`` with ``event``."""
    with db.write() as conn:
        conn.execute(
            update(md.services)
            .where(md.services.c.name == name)
            .values(state="Transitioning", error=None, runtime=runtime, scoring_uri=scoring_uri, swagger_uri=swagger_uri)
        )
        db.log_event(conn, "service.replace_failed", name, **event)


def set_updated(
    db: MetadataDB,
    name: str,
    *,
    image_pk: int,
    config: dict[str, Any],
    runtime: dict[str, Any],
    scoring_uri: str,
    swagger_uri: str,
    served: Sequence[ModelRecord],
    **event: Any,
) -> None:
    """Record a finished rolling update (new image, config, ``served`` models); logs ``service.update``."""
    with db.write() as conn:
        conn.execute(
            update(md.services)
            .where(md.services.c.name == name)
            .values(
                image_id=image_pk,
                config=config,
                runtime=runtime,
                scoring_uri=scoring_uri,
                swagger_uri=swagger_uri,
                updated_time=md.utcnow(),
            )
        )
        conn.execute(delete(md.service_models).where(md.service_models.c.service_name == name))
        if served:
            conn.execute(insert(md.service_models), [{"service_name": name, "model_id": m.pk} for m in served])
        db.log_event(conn, "service.update", name, **event)


def set_state(db: MetadataDB, name: str, state: str, error: str | None) -> bool:
    """Remember the live state read from the target (a cache: listings show the last known
    one). Best effort: a database that can't take the write (a full disk, a read-only
    workspace) leaves the old value and returns False (logged), so reading a service's
    state never fails because of it."""
    try:
        with db.write() as conn:
            conn.execute(update(md.services).where(md.services.c.name == name).values(state=state, error=error))
    except (ReadOnlyWorkspaceError, OperationalError) as e:
        log.warning("could not record the state of service %s (%s): %s", name, state, str(e).splitlines()[0])
        return False
    return True


def set_keys(db: MetadataDB, name: str, keys: dict[str, str], key_name: str) -> None:
    """Store new keys (where the workspace keeps keys: ``store/keys.py``); logs
    ``service.regen_key`` naming the key that changed."""
    with db.write() as conn:
        key_files.save(db, conn, name, keys)
        conn.execute(update(md.services).where(md.services.c.name == name).values(keys={}, updated_time=md.utcnow()))
        db.log_event(conn, "service.regen_key", name, key=key_name)


def log_event(db: MetadataDB, kind: str, subject: str, **detail: Any) -> None:
    """Log one event in its own transaction (e.g. ``service.update_failed``)."""
    with db.write() as conn:
        db.log_event(conn, kind, subject, **detail)
