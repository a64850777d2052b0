"""Service keys at rest: one JSON file per service, ``<workspace>/keys/<service>.json``
(``{"primaryKey": str, "secondaryKey": str, ...}``, mode 0600, in a 0700 folder), never in the
metadata database.

The metadata database is meant to be readable by whoever may list the workspace (a shared
folder, a team's PostgreSQL); keys are the service owner's secret, like the local target's
``run/keys.json`` (0600). The ``services.keys`` column stays in the schema (0.1.0 compatible)
and is always ``{}`` since revision 0003, which moved the keys of existing services here.
The targets need the keys themselves (they write them into the container's keys file or the
Kubernetes Secret), so they are kept as they are, not hashed. A team sharing one PostgreSQL
database from several workspace folders has each service's keys in the folder that deployed it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from mlmanage_jupyter.core.errors import ValidationError

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
