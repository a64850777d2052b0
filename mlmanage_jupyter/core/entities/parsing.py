"""Parsing of command-line style text shared by the CLI and the magics: ``key=value``
items, tag/property filters and ``name[:version]`` model references. Errors are
ValidationError naming the item to fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlmanage_jupyter.core.entities.names import split_id
from mlmanage_jupyter.core.errors import ValidationError


def parse_kv(items: Iterable[str], what: str = "tag") -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``. Raises ValidationError for an item without ``=``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"--{what} {item!r}: write it as key=value")
        out[key] = value
    return out


def parse_filter(items: Iterable[str]) -> list[Any] | None:
    """``["k", "k2=v"]`` -> Azure's filter form ``["k", ["k2", "v"]]`` (None when empty)."""
    out: list[Any] = []
    for item in items or ():
        key, sep, value = item.partition("=")
        if not key:
            raise ValidationError(f"filter {item!r}: write it as key or key=value")
        out.append([key, value] if sep else key)
    return out or None


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``"name"`` or ``"name:version"`` -> (name, version or None).

    Raises ValidationError when the version is not a positive integer.
    """
    return split_id("model", None, None, ref)
