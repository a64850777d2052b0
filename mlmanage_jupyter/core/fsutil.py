"""Small file-system helpers the core shares: atomic folders and files, JSON config files.

Nothing here knows about models or services; ``server/`` keeps its own copies (it imports
nothing from ``core/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core.errors import ValidationError


@contextlib.contextmanager
def atomic_dir(final: Path, prefix: str = ".tmp-") -> Iterator[Path]:
    """Build a folder in a temporary sibling of ``final`` and rename it into place on success.

    Yields the temporary folder. If another process renamed its own copy into place first,
    ours is discarded (both were built from the same inputs). On any error the temporary
    folder is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:  # made meanwhile by another process
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write ``data`` as JSON to ``path`` through a uniquely named temporary file and a rename,
    so readers see the old or the new content, never a part; the file gets ``mode``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def read_json_object(source: str | os.PathLike[str] | dict[str, Any], what: str) -> tuple[dict[str, Any], Path | None]:
    """``(the JSON object, the file's path or None)`` from a path or an already parsed dict.

    Raises ValidationError naming ``what`` (e.g. "deployment config") for a missing file,
    invalid JSON, or JSON that is not an object.
    """
    if isinstance(source, dict):
        return source, None
    p = Path(source)
    if not p.is_file():
        raise ValidationError(f"{what} file not found: {p}")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValidationError(f"{p} is not valid JSON: {e}") from e
    if not isinstance(d, dict):
        raise ValidationError(f"{p}: a {what} must be a JSON object")
    return d, p


def crashpoint(name: str) -> None:
    """Test hook: ``MLMANAGE_TEST_CRASH_AT=<name>`` kills the process here (crash tests)."""
    if os.environ.get("MLMANAGE_TEST_CRASH_AT") == name:
        os._exit(137)
