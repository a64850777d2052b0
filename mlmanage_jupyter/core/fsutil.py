"""Small file-system helpers the core shares: atomic folders and files, JSON config files.

Nothing here knows about models or services; ``server/`` keeps its own copies (it imports
nothing from ``core/``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import psutil
import yaml

from mlmanage_jupyter.core.errors import ValidationError


@contextlib.contextmanager
def atomic_dir(final: Path, prefix: str = ".tmp-") -> Iterator[Path]:
    """Build a folder in a temporary sibling of ``final`` and rename it into place on success.

    Yields the temporary folder (named ``<prefix><owner marker>…``, so :func:`collect_temp`
    can remove it when this process dies before the rename). If another process renamed its own copy into place first,
    ours is discarded (both were built from the same inputs). On any error the temporary
    folder is removed and ``final`` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix + owner_marker(), dir=final.parent))
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


def claim_json_version(folder: Path, version: int, record: dict[str, Any]) -> bool:
    """Write ``record`` as ``folder/<version>.json`` only if no other writer has taken that
    version: written to a temporary file, then hard-linked into place (``os.link`` is atomic and
    fails when the name exists), so two concurrent registrations never share a version.
    Returns False when the version was taken (re-read the versions and try the next one)."""
    tmp = folder / f".{version}.{uuid.uuid4().hex}.tmp"
    write_json_atomic(tmp, record)
    try:
        os.link(tmp, folder / f"{version}.json")
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


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


# ---------------------------------------------------------------- walking user files
#: The one rule for files the core reads from a user's folders (a model folder, a source
#: directory, an image build context), applied by :func:`walk_files` and
#: :func:`check_regular_file`:
SYMLINK_RULE = (
    "symbolic links are followed when they resolve to a regular file or a folder (the entry "
    "keeps the link's name and holds the target's content); broken links, link loops (a "
    "folder link back to one of its own parents) and links to special files are refused, as "
    "are special files themselves (FIFOs, sockets, character and block devices)"
)


def file_kind(mode: int) -> str:
    """A readable name of the file type in ``mode`` (``st_mode``): "regular file", "folder",
    "FIFO (named pipe)", "socket", "character device", "block device" or "special file"."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _stat_followed(path: Path, what: str) -> os.stat_result:
    """``os.stat`` (links followed) with one ValidationError for a broken link or a link loop."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ValidationError(f"{what}: broken symbolic link {path} (it points to {os.readlink(path)!r}, which does not exist)") from None
        raise ValidationError(f"{what}: {path} does not exist") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValidationError(f"{what}: symbolic link loop at {path}") from None
        raise ValidationError(f"{what}: cannot read {path}: {e.strerror}") from None


def _refuse_special(path: Path, st: os.stat_result, what: str) -> None:
    kind = file_kind(st.st_mode)
    via = f" (a symbolic link to {os.path.realpath(path)})" if os.path.islink(path) else ""
    raise ValidationError(
        f"{what}: {path}{via} is a {kind}, not a regular file or folder; remove it (or replace it "
        f"with a copy of the data) and try again. Rule: {SYMLINK_RULE}"
    )


def check_regular_file(path: str | os.PathLike[str], what: str) -> os.stat_result:
    """The stat (links followed) of ``path`` when it is a regular file, per :data:`SYMLINK_RULE`.

    Raises ValidationError naming ``path`` and ``what`` (e.g. "model folder") when it is
    missing, a broken link, a link loop, a folder or a special file; nothing is read."""
    p = Path(path)
    st = _stat_followed(p, what)
    if not stat.S_ISREG(st.st_mode):
        _refuse_special(p, st, what)
    return st


def walk_files(
    root: str | os.PathLike[str],
    what: str,
    *,
    exclude_dirs: Collection[str] = (),
    skip_dir: Callable[[Path], bool] | None = None,
    skip_file: Callable[[str], bool] | None = None,
) -> list[tuple[str, Path]]:
    """``(posix path relative to root, path)`` of every regular file below the folder ``root``,
    sorted by relative path, following :data:`SYMLINK_RULE` (symlinked files and folders are
    included under the link's name).

    The whole tree is checked before the caller reads any byte: a FIFO, socket, device, broken
    link or link loop anywhere raises one ValidationError naming that path and ``what`` (e.g.
    "model folder"). ``exclude_dirs``: folder names never entered; ``skip_dir(path)``: True to
    leave a folder out; ``skip_file(name)``: True to leave a file out. Memory: one entry per file.
    """
    top = Path(root)
    out: list[tuple[str, Path]] = []

    def visit(folder: Path, rel: str, ancestors: frozenset[str]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise ValidationError(f"{what}: cannot list {folder}: {e.strerror}") from None
        for entry in entries:
            p = Path(entry.path)
            st = _stat_followed(p, what)
            r = f"{rel}{entry.name}"
            if stat.S_ISDIR(st.st_mode):
                if entry.name in exclude_dirs or (skip_dir is not None and skip_dir(p)):
                    continue
                real = os.path.realpath(p)
                if real in ancestors:
                    raise ValidationError(f"{what}: symbolic link loop at {p} (it points back to {real}). Rule: {SYMLINK_RULE}")
                visit(p, r + "/", ancestors | {real})
            elif stat.S_ISREG(st.st_mode):
                if skip_file is None or not skip_file(entry.name):
                    out.append((r, p))
            else:
                _refuse_special(p, st, what)

    st = _stat_followed(top, what)
    if not stat.S_ISDIR(st.st_mode):
        raise ValidationError(f"{what}: {top} is not a folder")
    visit(top, "", frozenset({os.path.realpath(top)}))
    return out


# ---------------------------------------------------------------- stored relative paths
def check_relative_path(rel: str, what: str) -> str:
    """``rel`` when it is a safe relative posix path: not empty, not absolute, no ``..`` or
    ``.`` segment, no empty segment, no backslash or NUL. Raises ValidationError naming
    ``what`` (e.g. "file path of model m:1 in the metadata") otherwise."""
    if (
        not isinstance(rel, str)
        or not rel
        or rel.startswith("/")
        or "\\" in rel
        or "\0" in rel
        or any(seg in ("", ".", "..") for seg in rel.split("/"))
    ):
        raise ValidationError(
            f"{what} is {rel!r}, not a safe relative path (absolute, '..', '.', empty segments, "
            f"backslashes and NUL are refused); the metadata was altered: restore it from a backup "
            f"or delete this version and register it again"
        )
    return rel


def join_inside(root: Path, rel: str, what: str) -> Path:
    """``root / rel`` after :func:`check_relative_path`, also refused (ValidationError) when an
    existing symbolic link on the way resolves it outside ``root``."""
    dest = root / check_relative_path(rel, what)
    base = root.resolve()
    if not dest.resolve().is_relative_to(base):
        raise ValidationError(f"{what} {rel!r} resolves to {dest.resolve()}, outside {base} (a symbolic link on the way); refusing to write there")
    return dest


# ---------------------------------------------------------------- YAML without aliases
class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing anchors and aliases (an alias bomb of a few hundred bytes
    expands to gigabytes once the data is copied or dumped)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise ValidationError(
                f"{self.name}: line {mark.line + 1}, column {mark.column + 1}: YAML anchors and aliases "
                f"('&name' / '*name') are not accepted here; write the values out in full"
            )
        return super().compose_node(parent, index)


#: the largest YAML file :func:`load_yaml_file` reads (conda specifications are a few KiB)
MAX_YAML_BYTES = 1 << 20


def load_yaml_file(path: str | os.PathLike[str], what: str) -> Any:
    """The data of a small YAML file (a conda specification), with anchors and aliases refused.

    Raises ValidationError naming the file for: not a regular file, more than
    :data:`MAX_YAML_BYTES`, invalid YAML, anchors/aliases, nesting deeper than Python can
    follow. Source of the format: YAML 1.1 as PyYAML's ``SafeLoader`` reads it."""
    p = Path(path)
    st = check_regular_file(p, what)
    if st.st_size > MAX_YAML_BYTES:
        raise ValidationError(f"{what} {p} is {st.st_size} bytes; the limit is {MAX_YAML_BYTES} bytes")
    with open(p, "rb") as f:
        text = f.read(MAX_YAML_BYTES + 1)
    return load_yaml_text(text, str(p))


def load_yaml_text(text: str | bytes, source: str) -> Any:
    """:func:`load_yaml_file` for YAML already in memory (e.g. ``conda env export``'s output);
    ``source`` names it in errors. Same limits: size, anchors/aliases, nesting."""
    if len(text) > MAX_YAML_BYTES:
        raise ValidationError(f"{source} is {len(text)} bytes; the limit is {MAX_YAML_BYTES} bytes")
    loader = _NoAliasLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise ValidationError(f"{source} is not valid YAML: {e}") from None
    except RecursionError:
        raise ValidationError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------- temporary entries and their owners
#: temporary files and folders the core makes carry their owner in their name: ``@<host>.<pid>.<start>@``
#: (host: 8 hex digits of sha256(hostname); start: the process's start time in ms, so a
#: reused pid is not mistaken for the owner). :func:`collect_temp` removes those whose owner
#: is gone.
_OWNER_RE = re.compile(r"@([0-9a-f]{8})\.(\d+)\.(\d+)@")
#: unmarked temporary entries (made before owner markers, or by another host) are removed by
#: opportunistic collection only when older than this (seconds)
TEMP_MAX_AGE_S = 24 * 3600


def _host_id() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _start_ms(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


@functools.cache
def _marker_of(pid: int) -> str:
    return f"@{_host_id()}.{pid}.{_start_ms(pid) or 0}@"


def owner_marker() -> str:
    """This process's owner marker, to put in the name of a temporary file or folder."""
    return _marker_of(os.getpid())


def temp_owner_alive(name: str) -> bool | None:
    """For a temporary entry's name: True when its owner process runs (on this host), False
    when it is gone, None when the name has no marker or names another host."""
    m = _OWNER_RE.search(name)
    if m is None or m.group(1) != _host_id():
        return None
    pid, start = int(m.group(2)), int(m.group(3))
    now = _start_ms(pid)
    return now is not None and abs(now - start) <= 1000  # create_time is exact to the clock tick


def _size(p: Path) -> int:
    if p.is_symlink() or not p.is_dir():
        try:
            return p.lstat().st_size
        except OSError:
            return 0
    total = 0
    for dirpath, _dirs, files in os.walk(p):
        for fn in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, fn)).st_size
    return total


def collect_temp(folder: Path, prefixes: tuple[str, ...], *, unmarked_max_age_s: float | None = TEMP_MAX_AGE_S) -> tuple[int, int]:
    """Remove the temporary entries of ``folder`` (names starting with one of ``prefixes``)
    whose owner is gone: marked ones (:func:`owner_marker`) whose process no longer runs,
    another host's older than :data:`TEMP_MAX_AGE_S`, and unmarked ones older than
    ``unmarked_max_age_s`` seconds (None: all of them, for an explicit garbage collection). Entries of a live process are never touched.
    Returns ``(entries removed, bytes freed)``; entries that vanish meanwhile are skipped."""
    n = freed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0, 0
    now = time.time()
    for e in entries:
        if not e.name.startswith(prefixes):
            continue
        alive = temp_owner_alive(e.name)
        if alive:
            continue
        # another host's entry (a shared folder): its owner can't be checked from here, so only
        # its age counts, even for an explicit collection
        max_age = TEMP_MAX_AGE_S if alive is None and _OWNER_RE.search(e.name) else unmarked_max_age_s
        if alive is None and max_age is not None:
            try:
                if now - e.stat(follow_symlinks=False).st_mtime < max_age:
                    continue
            except OSError:
                continue
        p = Path(e.path)
        size = _size(p)
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:  # vanished meanwhile, or not ours to remove
            continue
        n += 1
        freed += size
    return n, freed


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
