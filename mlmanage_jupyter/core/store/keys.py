"""Service keys at rest: where they live depends on the metadata database.

- **SQLite workspace** (the default, one user's folder): one JSON file per service,
  ``<workspace>/keys/<service>.json`` (``{"primaryKey": str, "secondaryKey": str}``, or ``{"tokenSecret": str}`` for token auth, mode
  0600, in a 0700 folder), never in the metadata database: a copied ``metadata.db`` (or its
  WAL) must not leak them (revision 0003 moved them out).
- **Any other database** (a team's PostgreSQL shared by several workspace folders): the
  ``service_keys`` table (revision 0004), one row per service with auth. Every member's folder
  then finds a service's keys (``get_keys()``, ``regen_key()``), whichever folder deployed it;
  access is the database's credentials (a role without ``SELECT`` on ``service_keys`` still
  lists services, and sees no keys). Keys a folder holds in files from before 0004 are moved
  into the table the first time that folder reads them (:func:`load`).

The ``services.keys`` column stays in the schema (0.1.0 compatible) and is always ``{}``.
The targets need the keys themselves (they write them into the container's keys file or the
Kubernetes Secret), so they are kept as they are, not hashed.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select, update

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.db import MetadataDB

KEYS_DIRNAME = "keys"


def keys_dir(root: str | os.PathLike[str]) -> Path:
    """The keys folder of the workspace rooted at ``root`` (not created)."""
    return Path(root) / KEYS_DIRNAME


def key_file(root: str | os.PathLike[str], service: str) -> Path:
    """The keys file of ``service``. Raises ValidationError for a name that is not a plain
    file name (service names are DNS labels; this guards the path)."""
    if not service or "/" in service or "\\" in service or service in (".", "..") or "\0" in service:
        raise ValidationError(f"service name {service!r} cannot name a keys file")
    return keys_dir(root) / f"{service}.json"


def read_keys(root: str | os.PathLike[str], service: str) -> dict[str, str]:
    """The keys of ``service``; ``{}`` when it has none (no auth, or deployed elsewhere).
    Raises ValidationError naming the file when it exists but is not a JSON object."""
    path = key_file(root, service)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ValidationError(f"the keys file {path} is not valid JSON ({e}): regenerate the keys with regen_key()") from None
    if not isinstance(data, dict):
        raise ValidationError(f"the keys file {path} must hold a JSON object: regenerate the keys with regen_key()")
    return {str(k): str(v) for k, v in data.items()}


def write_keys(root: str | os.PathLike[str], service: str, keys: Mapping[str, str]) -> None:
    """Store ``keys`` for ``service`` (atomically: a 0600 temporary file renamed into place;
    the folder is made 0700). An empty mapping removes the file. Raises OSError when the disk
    refuses (full, read-only)."""
    path = key_file(root, service)
    if not keys:
        delete_keys(root, service)
        return
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(keys), f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def delete_keys(root: str | os.PathLike[str], service: str) -> None:
    """Remove ``service``'s keys file (nothing when there is none)."""
    with contextlib.suppress(FileNotFoundError):
        key_file(root, service).unlink()


# ------------------------------------------------------------- per workspace: file or table
def in_database(db: MetadataDB) -> bool:
    """True when ``db`` keeps keys in its ``service_keys`` table (a database that is not
    SQLite, shared by several workspace folders); False for the 0600 files of a SQLite one."""
    return not str(db.metadata_url).startswith("sqlite")


def _row(conn: Connection, service: str) -> dict[str, str] | None:
    row = conn.execute(select(md.service_keys.c["keys"]).where(md.service_keys.c.service_name == service)).first()
    if row is None:
        return None
    keys = row[0]
    if isinstance(keys, str):  # a JSON column read as text by some drivers
        keys = json.loads(keys)
    return {str(k): str(v) for k, v in dict(keys or {}).items()}


def load(db: MetadataDB, conn: Connection, service: str) -> tuple[dict[str, str], bool]:
    """``(keys, from_file)``: the keys of ``service`` (``{}`` when it has none), read in
    ``conn``'s transaction, and whether they came from this folder's keys file although the
    workspace keeps keys in its table (a file from before revision 0004: the caller moves it
    into the table: ``store/services.py``). Raises ValidationError for a damaged keys file, OSError when the
    file can't be read."""
    if not in_database(db):
        return read_keys(db.path, service), False
    keys = _row(conn, service)
    if keys is not None:
        return keys, False
    keys = read_keys(db.path, service)
    return keys, bool(keys)


def save(db: MetadataDB, conn: Connection, service: str, keys: Mapping[str, str]) -> None:
    """Store ``keys`` for ``service`` in ``conn``'s (write) transaction; the service's row must
    exist already (table). An empty mapping removes them. Raises OSError when the disk refuses
    (files)."""
    if not in_database(db):
        write_keys(db.path, service, keys)
        return
    if not keys:
        conn.execute(delete(md.service_keys).where(md.service_keys.c.service_name == service))
        return
    values = {"keys": dict(keys), "updated_time": md.utcnow()}
    if _row(conn, service) is None:
        conn.execute(insert(md.service_keys).values(service_name=service, **values))
    else:
        conn.execute(update(md.service_keys).where(md.service_keys.c.service_name == service).values(**values))


def forget(db: MetadataDB, conn: Connection, service: str) -> None:
    """Remove ``service``'s keys in ``conn``'s transaction (its row; a keys file is removed by
    :func:`forget_file` after the commit)."""
    if in_database(db):
        conn.execute(delete(md.service_keys).where(md.service_keys.c.service_name == service))


def forget_file(db: MetadataDB, service: str) -> None:
    """Remove ``service``'s keys file in this folder, if any (also a table-keeping workspace's
    leftover from before revision 0004)."""
    delete_keys(db.path, service)
