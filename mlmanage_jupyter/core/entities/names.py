"""Name rules and small validators shared by models, images and services.

The name rules are Azure ML v1's (model: 1-255 characters; image: a Docker repository name;
service: a DNS label of 3-32 characters). Every function raises
:class:`~mlmanage_jupyter.core.errors.ValidationError` with one message naming what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mlmanage_jupyter.core.errors import ValidationError

_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_IMAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")

#: a filter as :func:`parse_filter` returns it: ``(key, value or None for "has the key")``
Filter = list[tuple[str, "str | None"]]


def validate_model_name(name: Any) -> str:
    """Azure's rule: 1-255 characters, letters, digits, ``-``, ``_`` and ``.``, starting with
    a letter or digit. ``..``, ``/`` and control characters are refused (they would escape
    folders when the model is materialized or packed into an image)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"model name must be a non-empty string, got {name!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError(f"model name {name!r} contains control characters")
    if "/" in name or "\\" in name or ".." in name or not _MODEL_NAME_RE.match(name):
        raise ValidationError(
            f"invalid model name {name!r}: use 1-255 letters, digits, '-', '_' or '.', starting with a "
            f"letter or digit (no '/', '\\' or '..')"
        )
    return name


def validate_image_name(name: Any) -> str:
    """1-63 lowercase letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit
    (a Docker repository name component)."""
    if not isinstance(name, str) or not _IMAGE_NAME_RE.match(name) or ".." in name:
        raise ValidationError(
            f"invalid image name {name!r}: 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def validate_service_name(name: Any) -> str:
    """Azure's rule: 3-32 characters, lowercase letters, digits and '-', starting with a
    letter and ending with a letter or digit (it becomes a DNS label on Kubernetes)."""
    if not isinstance(name, str) or not _SERVICE_NAME_RE.match(name):
        raise ValidationError(
            f"invalid service name {name!r}: 3-32 lowercase letters, digits or '-', starting with a letter "
            f"and ending with a letter or digit"
        )
    return name


def validate_version(version: Any) -> int | None:
    """``None`` or a version number as an int (``"3"`` is accepted); raises ValidationError."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        try:
            return int(version)
        except (TypeError, ValueError):
            raise ValidationError(f"version must be an integer, got {version!r}") from None
    return version


def split_id(kind: str, name: str | None, version: int | None, id: str | None) -> tuple[str, int | None]:
    """``(name, version)`` from ``name``/``version`` or an Azure-style ``id="name:version"``
    (version optional). Raises ValidationError naming ``kind`` ("Model", "Image") when
    neither is given or the version is not a positive integer."""
    if id is not None:
        name, sep, v = str(id).partition(":")
        if sep and (not v.isdigit() or int(v) < 1):
            raise ValidationError(f"{kind} {id!r}: the version after ':' must be a positive integer (name:version)")
        version = int(v) if sep else None
    if not name:
        raise ValidationError(f"{kind}(...) needs a name (or id='name:version')")
    return name, version


def check_str_dict(d: Any, what: str) -> dict[str, str]:
    """A copy of ``d`` (``None`` -> ``{}``) after checking it maps non-empty strings without
    control characters to strings (Azure's tags and properties)."""
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValidationError(f"{what} must be a dict of strings, got {type(d).__name__}")
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValidationError(
                f"{what} must map strings to strings; {k!r}: {v!r} is {type(k).__name__} -> {type(v).__name__} "
                f"(convert the value with str())"
            )
        if not k or any(ord(c) < 32 for c in k):
            raise ValidationError(f"{what} key {k!r} must be non-empty with no control characters")
    return dict(d)


def parse_filter(f: Sequence[Any] | None, what: str) -> Filter:
    """Azure's tag/property filter forms: ``["key"]`` (has the key) or ``[["key", "value"]]``
    (has it with that value); ``"key"`` and ``{"k": "v"}`` are accepted too."""
    if f is None:
        return []
    if isinstance(f, (str, dict)):
        f = [f] if isinstance(f, str) else [[k, v] for k, v in f.items()]
    out: Filter = []
    for item in f:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            out.append((item[0], item[1]))
        else:
            raise ValidationError(f"{what} filter items must be 'key' or ['key', 'value'], got {item!r}")
    return out


def match_filter(d: dict[str, str], filters: Filter) -> bool:
    """True when ``d`` passes every filter of :func:`parse_filter`."""
    return all(k in d and (v is None or d[k] == v) for k, v in filters)
