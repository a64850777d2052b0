"""Content-addressed artifact store.

Objects are addressed by the sha256 of their bytes (64 lowercase hex digits). Writes
stream in chunks (memory stays at one chunk, whatever the file size), go to a temporary
name and are renamed into place only once complete, so a crash never leaves a partial
object under a real address. Reads can verify the hash while they copy.

Besides objects, a store holds *blobs*: keyed files (``"collected/svc/model/1/..."``) for
data that is appended over time, such as collected model data.

:class:`ArtifactStore` is the interface; :class:`LocalArtifactStore` keeps everything in a
folder. ``mlmanage_jupyter.core.store.blob.AzureBlobArtifactStore`` implements the same
interface on Azure Blob Storage.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mlmanage_jupyter.core.errors import (
    ArtifactCorruptError,
    NotFoundError,
    ReadOnlyWorkspaceError,
    ValidationError,
)
from mlmanage_jupyter.core.fsutil import collect_temp, file_kind, owner_marker

CHUNK = 1 << 20  # 1 MiB: read/hash/write unit
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_RE = re.compile(r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$")


def check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
        raise ValidationError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def check_blob_key(key: str) -> str:
    """A blob key is a relative '/'-separated path of safe segments (no '..', no '/')."""
    if not isinstance(key, str) or not _KEY_RE.match(key) or any(p in ("..", ".") for p in key.split("/")):
        raise ValidationError(f"invalid blob key {key!r}: use letters, digits, '._=-' and '/' between segments")
    return key


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Return ``(sha256 hex, size in bytes)`` of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


class ArtifactStore(ABC):
    """The extension point for where model files and collected data live.

    Contract every implementation keeps (``LocalArtifactStore``, ``AzureBlobArtifactStore``):

    - Safe for several processes (and machines, for a shared store) at once, without locks
      held by callers: two writers of the same object or blob never leave a mixture.
    - Objects are immutable and addressed by the sha256 of their bytes (64 lowercase hex
      digits, :func:`check_sha256`); an object is visible under its address only once
      complete (a crash mid-write leaves nothing there). Writing an existing object is a
      no-op that returns the same ``(sha256, size)``.
    - Blobs are keyed (``check_blob_key``: ``/``-separated safe segments), replaced whole,
      atomically; readers see the old or the new bytes.
    - Memory use is bounded by one chunk (``CHUNK``, 1 MiB), whatever the file size.
    - Errors: a bad address or key raises ValidationError, a missing one NotFoundError,
      stored bytes that no longer match their address ArtifactCorruptError (on verified
      reads), and a store that can't be reached an MlManageError subclass naming the store
      (``describe()``) and the reason. Nothing else escapes (no SDK exceptions).
    """

    #: short name shown in listings: "local" or "azure_blob"
    kind: str = "abstract"

    # --- content-addressed objects -------------------------------------------------
    @abstractmethod
    def put_file(self, src: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's bytes; return ``(sha256, size_bytes)``. Idempotent per content."""

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            return self.put_file(tmp.name)
        finally:
            os.unlink(tmp.name)

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """True when a complete object with this address is stored."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """A binary stream of the object (unverified; see :meth:`get_file`). Raises
        NotFoundError."""

    def get_file(self, sha256: str, dest: str | os.PathLike[str], *, verify: bool = True) -> int:
        """Copy an object to ``dest`` (written atomically); return its size in bytes.

        Raises ArtifactCorruptError (and leaves no ``dest``) when ``verify`` and the bytes
        read do not hash to ``sha256``.
        """
        check_sha256(sha256)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
        try:
            with self.open(sha256) as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if verify and h.hexdigest() != sha256:
                raise ArtifactCorruptError(
                    f"artifact {sha256[:12]}… is corrupt: its bytes hash to {h.hexdigest()[:12]}…; "
                    f"restore it from a backup or register the model again"
                )
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return size

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to ``sha256``."""
        h = hashlib.sha256()
        with self.open(sha256) as src:
            while chunk := src.read(CHUNK):
                h.update(chunk)
        return h.hexdigest() == sha256

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove an object; a missing one is not an error (garbage collection may race)."""

    @abstractmethod
    def iter_objects(self) -> Iterator[str]:
        """The sha256 of every complete object (any order; partial writes never appear)."""

    # --- keyed blobs ----------------------------------------------------------------
    @abstractmethod
    def write_blob(self, key: str, data: bytes) -> None:
        """Write (or replace) the blob at ``key`` atomically."""

    @abstractmethod
    def read_blob(self, key: str) -> bytes:
        """The blob's bytes. Raises NotFoundError."""

    @abstractmethod
    def list_blobs(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    @abstractmethod
    def delete_blob(self, key: str) -> None:
        """Remove a blob; a missing one is not an error."""

    def describe(self) -> str:
        """Where the store is, for messages (``local:<folder>``, ``azure_blob:<URL>``; never
        a secret)."""
        return self.kind


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local folder: ``objects/ab/cdef…`` (sha256) and ``blobs/<key>``."""

    kind = "local"
    #: set (to the message to raise) by a workspace opened read-only: writes raise
    #: ReadOnlyWorkspaceError with it, reads work
    read_only: str | None = None

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        for d in (self._objects, self._blobs, self._tmp):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError:  # a read-only folder: reading works, writes say why they can't
                pass

    def _check_writable(self) -> None:
        if self.read_only is not None:
            raise ReadOnlyWorkspaceError(self.read_only)

    def describe(self) -> str:
        return f"local:{self.root}"

    def object_path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self._objects / sha256[:2] / sha256[2:]

    def collect_temp(self, *, unmarked_max_age_s: float | None = None) -> tuple[int, int]:
        """Remove partial writes in ``tmp/`` whose writer is gone (see
        :func:`~mlmanage_jupyter.core.fsutil.collect_temp`); returns ``(files, bytes)``."""
        return collect_temp(self._tmp, ("put-",), unmarked_max_age_s=unmarked_max_age_s)

    def put_file(self, src: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a regular file's bytes (see :meth:`ArtifactStore.put_file`). The partial copy
        is ``tmp/put-<owner marker>…`` until renamed (collected once its writer is gone).

        Raises ValidationError, before reading a byte, when ``src`` is not a regular file
        (a FIFO or device would hang or never end); ReadOnlyWorkspaceError on a read-only
        workspace."""
        self._check_writable()
        h = hashlib.sha256()
        size = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it
        in_fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        mode = os.fstat(in_fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(in_fd)
            raise ValidationError(f"cannot store {os.fspath(src)!r}: it is a {file_kind(mode)}, not a regular file")
        try:
            fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"put-{owner_marker()}")
        except BaseException:
            os.close(in_fd)
            raise
        try:
            with os.fdopen(in_fd, "rb", buffering=0) as f, os.fdopen(fd, "wb", buffering=0) as out:
                while n := f.readinto(buf):
                    h.update(view[:n])
                    out.write(view[:n])
                    size += n
                os.fsync(out.fileno())
            sha = h.hexdigest()
            final = self.object_path(sha)
            if final.exists():
                os.unlink(tmp)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            return sha, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def exists(self, sha256: str) -> bool:
        return self.object_path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        p = self.object_path(sha256)
        try:
            return open(p, "rb")
        except FileNotFoundError:
            raise NotFoundError(f"artifact {sha256[:12]}… is missing from {self._objects}") from None

    def delete(self, sha256: str) -> None:
        self._check_writable()
        p = self.object_path(sha256)
        if p.exists():
            os.chmod(p, 0o644)
            p.unlink()

    def iter_objects(self) -> Iterator[str]:
        for sub in sorted(self._objects.iterdir()):
            if sub.is_dir():
                for f in sorted(sub.iterdir()):
                    yield sub.name + f.name

    def _blob_path(self, key: str) -> Path:
        return self._blobs / check_blob_key(key)

    def write_blob(self, key: str, data: bytes) -> None:
        self._check_writable()
        p = self._blob_path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".partial-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, p)

    def read_blob(self, key: str) -> bytes:
        try:
            return self._blob_path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no blob {key!r} in {self._blobs}") from None

    def list_blobs(self, prefix: str = "") -> list[str]:
        out = []
        for p in self._blobs.rglob("*"):
            if p.is_file() and not p.name.startswith(".partial-"):
                key = p.relative_to(self._blobs).as_posix()
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def delete_blob(self, key: str) -> None:
        self._check_writable()
        p = self._blob_path(key)
        if p.exists():
            p.unlink()
