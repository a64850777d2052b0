"""Artifact store on Azure Blob Storage (or Azurite, its emulator), through ``azure-storage-blob``.

Layout inside one container::

    objects/<sha256>     content-addressed objects (64 lowercase hex digits), metadata
                         ``sha256`` and ``size`` (bytes) set at commit
    blobs/<key>          keyed blobs (collected data, ...), see ``ArtifactStore.write_blob``

Writes never leave a partial object under a real address: :meth:`put_file` hashes the file
first (a local read), skips the upload when ``objects/<sha256>`` already exists, otherwise
stages the file as uncommitted blocks of ``block_size`` bytes on ``objects/<sha256>`` while
hashing it again, and commits the block list only when that second hash still matches.
Uncommitted blocks are invisible (Azure's "Put Block" / "Put Block List"), and Azure discards
them after a week when a commit never comes. Memory stays at ``max_concurrency`` blocks.
(Staging under a temporary name and copying would need a server-side copy, which rewrites
every byte and may run asynchronously; re-reading the local file is cheaper.)

Reads stream: :meth:`open` returns a buffered binary reader that fetches the blob in ranges
of ``block_size`` bytes.

Errors: a malformed connection string, a bad container name or rejected credentials raise
:class:`~mlmanage_jupyter.core.errors.ValidationError`; a missing object or blob
:class:`~mlmanage_jupyter.core.errors.NotFoundError`; an unreachable or failing service
:class:`BlobStorageError`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
    StorageStreamDownloader,
)

from mlmanage_jupyter.core.errors import MlManageError, NotFoundError, ValidationError
from mlmanage_jupyter.core.store.artifacts import ArtifactStore, check_blob_key, check_sha256, sha256_file

__all__ = ["AzureBlobArtifactStore", "BlobStorageError"]

OBJECTS = "objects/"
BLOBS = "blobs/"
DEFAULT_BLOCK_SIZE = 4 << 20  # 4 MiB: staged block and ranged-read unit
# Azure's container naming rule: 3-63 chars, lowercase letters, digits, single hyphens inside.
_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_SHA_NAME_RE = re.compile(r"^objects/([0-9a-f]{64})$")


class BlobStorageError(MlManageError):
    """Azure Blob Storage could not be reached, or answered an unexpected error."""


class AzureBlobArtifactStore(ArtifactStore):
    """An :class:`ArtifactStore` in one Azure Blob Storage container.

    Args:
        connection_string: an Azure Storage connection string (the form of
            ``AZURE_STORAGE_CONNECTION_STRING``; Azurite's ``devstoreaccount1`` works).
        container: the container name (Azure's rule: 3-63 characters, lowercase letters,
            digits and single hyphens). Created when missing.
        block_size: bytes per staged block on upload and per ranged GET on download
            (default 4 MiB; Azure allows up to 4000 MiB per block, 50,000 blocks per blob).
        max_concurrency: blocks uploaded in parallel by :meth:`put_file` (memory: this many
            blocks).

    Raises:
        ValidationError: the connection string is malformed, the container name breaks
            Azure's rule, or the account rejects the credentials.
        BlobStorageError: the service cannot be reached (after the SDK's retries).
    """

    kind = "azure_blob"

    def __init__(
        self,
        connection_string: str,
        container: str,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_concurrency: int = 4,
    ) -> None:
        if not isinstance(container, str) or not _CONTAINER_RE.match(container):
            raise ValidationError(
                f"invalid Azure Blob container name {container!r}: use 3-63 lowercase letters, digits "
                f"and single hyphens, starting and ending with a letter or digit"
            )
        if block_size < 1 or max_concurrency < 1:
            raise ValidationError("block_size and max_concurrency must be positive integers")
        self.container = container
        self.block_size = int(block_size)
        self.max_concurrency = int(max_concurrency)
        try:
            self._service = BlobServiceClient.from_connection_string(
                connection_string,
                max_single_get_size=self.block_size,
                max_chunk_get_size=self.block_size,
                connection_timeout=10,
                # the SDK's default backs off 15 s, 60 s, ... : an unreachable endpoint would take
                # minutes to report. Here: at most 3 retries (2 for connecting), 1 s then 3 s apart.
                retry_policy=ExponentialRetry(
                    initial_backoff=1, increment_base=2, retry_total=3, retry_connect=2, random_jitter_range=1
                ),
            )
        except (ValueError, AttributeError, TypeError) as e:
            raise ValidationError(
                f"malformed Azure Storage connection string ({e}); expected "
                f"'DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;BlobEndpoint=...'"
            ) from e
        self._container = self._service.get_container_client(container)
        with self._errors(f"creating container {container!r}"):
            try:
                self._container.create_container()
            except ResourceExistsError:
                pass

    # ------------------------------------------------------------------ helpers
    def describe(self) -> str:
        """``azure_blob:<container URL>`` (never includes the account key)."""
        return f"azure_blob:{self._container.url}"

    @contextlib.contextmanager
    def _errors(self, what: str, missing: str | None = None) -> Iterator[None]:
        """Translate azure-core exceptions into this package's errors."""
        try:
            yield
        except ResourceNotFoundError:
            if missing is None:
                raise BlobStorageError(f"{what} failed in {self.describe()}: not found") from None
            raise NotFoundError(missing) from None
        except ClientAuthenticationError as e:
            raise ValidationError(
                f"{what}: the storage account rejected the credentials ({_reason(e)}); "
                f"check AccountName/AccountKey in AZURE_STORAGE_CONNECTION_STRING"
            ) from e
        except (ServiceRequestError, ServiceResponseError) as e:
            raise BlobStorageError(
                f"{what}: cannot reach Azure Blob Storage at {self._service.url} ({e}); "
                f"start Azurite or check BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING"
            ) from e
        except HttpResponseError as e:
            if e.status_code == 403 and _code(e) in _AUTH_CODES:
                raise ValidationError(
                    f"{what}: the storage account rejected the credentials ({_reason(e)}); "
                    f"check AccountName/AccountKey in AZURE_STORAGE_CONNECTION_STRING"
                ) from e
            raise BlobStorageError(f"{what} failed in {self.describe()}: {_reason(e)}") from e
        except AzureError as e:
            raise BlobStorageError(f"{what} failed in {self.describe()}: {e}") from e

    def _object_name(self, sha256: str) -> str:
        return OBJECTS + check_sha256(sha256)

    # ------------------------------------------------------------------ objects
    def put_file(self, src: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's bytes at ``objects/<sha256>``; return ``(sha256, size_bytes)``.

        Idempotent: nothing is uploaded when the object exists. Raises ValidationError when
        ``src`` is not a readable file, or when it changes while it is uploaded (nothing is
        committed then).
        """
        if not os.path.isfile(src):
            raise ValidationError(f"cannot store {os.fspath(src)!r}: not a file")
        sha, size = sha256_file(src)
        if self.exists(sha):
            return sha, size
        name = OBJECTS + sha
        blob = self._container.get_blob_client(name)
        upload_id = uuid.uuid4().hex  # block ids of this upload only: concurrent writers never mix
        h = hashlib.sha256()
        staged = 0
        block_ids: list[str] = []
        pending: deque[Future[Any]] = deque()
        with self._errors(f"uploading {os.fspath(src)!r} to {name}"):
            with open(src, "rb") as f, ThreadPoolExecutor(self.max_concurrency) as pool:
                try:
                    while data := f.read(self.block_size):
                        h.update(data)
                        staged += len(data)
                        block_id = base64.b64encode(f"{upload_id}-{len(block_ids):06d}".encode()).decode()
                        block_ids.append(block_id)
                        if len(pending) >= self.max_concurrency:
                            pending.popleft().result()
                        pending.append(pool.submit(blob.stage_block, block_id, data, length=len(data)))
                    while pending:
                        pending.popleft().result()
                finally:
                    for fut in pending:
                        fut.cancel()
            if h.hexdigest() != sha or staged != size:
                raise ValidationError(
                    f"{os.fspath(src)!r} changed while it was uploaded (sha256 {sha[:12]}… then "
                    f"{h.hexdigest()[:12]}…); nothing was stored, try again once it is written"
                )
            try:
                blob.commit_block_list(
                    [BlobBlock(block_id=b) for b in block_ids],
                    content_settings=ContentSettings(content_type="application/octet-stream"),
                    metadata={"sha256": sha, "size": str(size)},
                )
            except HttpResponseError:
                # a concurrent writer of the same bytes committed first (its commit drops our
                # uncommitted blocks): the object is there, which is all we wanted
                if not self.exists(sha):
                    raise
        return sha, size

    def exists(self, sha256: str) -> bool:
        name = self._object_name(sha256)
        with self._errors(f"checking {name}"):
            return bool(self._container.get_blob_client(name).exists())

    def open(self, sha256: str) -> BinaryIO:
        """A buffered binary reader streaming ``objects/<sha256>`` (ranged GETs of
        ``block_size`` bytes). Raises NotFoundError when the object is missing."""
        name = self._object_name(sha256)
        with self._errors(
            f"reading {name}", missing=f"artifact {sha256[:12]}… is missing from {self.describe()}"
        ):
            downloader = self._container.download_blob(name, max_concurrency=1)
        return io.BufferedReader(_DownloadReader(downloader, self), buffer_size=self.block_size)  # type: ignore[return-value]

    def delete(self, sha256: str) -> None:
        """Delete an object; deleting a missing one is a no-op."""
        name = self._object_name(sha256)
        with self._errors(f"deleting {name}"):
            try:
                self._container.delete_blob(name)
            except ResourceNotFoundError:
                pass

    def iter_objects(self) -> Iterator[str]:
        """The sha256 of every object, sorted."""
        with self._errors("listing objects"):
            names = list(self._container.list_blob_names(name_starts_with=OBJECTS))
        for n in sorted(names):
            m = _SHA_NAME_RE.match(n)
            if m:
                yield m.group(1)

    # ------------------------------------------------------------------ keyed blobs
    def write_blob(self, key: str, data: bytes) -> None:
        """Write (or replace) ``blobs/<key>``; the new content appears at once, whole
        (one Put Blob, or Put Block List above the SDK's single-put size)."""
        name = BLOBS + check_blob_key(key)
        with self._errors(f"writing {name}"):
            self._container.upload_blob(
                name,
                data,
                overwrite=True,
                content_settings=ContentSettings(content_type="application/octet-stream"),
            )

    def read_blob(self, key: str) -> bytes:
        name = BLOBS + check_blob_key(key)
        with self._errors(f"reading {name}", missing=f"no blob {key!r} in {self.describe()}"):
            return self._container.download_blob(name).readall()

    def list_blobs(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (a plain string prefix, like the local store), sorted."""
        if not isinstance(prefix, str):
            raise ValidationError(f"blob prefix must be a string, not {type(prefix).__name__}")
        with self._errors(f"listing blobs under {prefix!r}"):
            names = self._container.list_blob_names(name_starts_with=BLOBS + prefix)
            return sorted(n[len(BLOBS) :] for n in names)

    def delete_blob(self, key: str) -> None:
        """Delete ``blobs/<key>``; deleting a missing one is a no-op."""
        name = BLOBS + check_blob_key(key)
        with self._errors(f"deleting {name}"):
            try:
                self._container.delete_blob(name)
            except ResourceNotFoundError:
                pass


class _DownloadReader(io.RawIOBase):
    """Raw binary stream over a ``StorageStreamDownloader`` (which fetches ranges lazily)."""

    def __init__(self, downloader: StorageStreamDownloader, store: AzureBlobArtifactStore) -> None:
        self._dl = downloader
        self._store = store

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        with self._store._errors(f"reading {self._dl.name}"):
            data = self._dl.read(len(view))
        n = len(data)
        view[:n] = data
        return n


_AUTH_CODES = {"AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch"}


def _code(e: HttpResponseError) -> str:
    """Azure's error code (``AuthenticationFailed``, ...) as a plain string."""
    code = getattr(e, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _reason(e: HttpResponseError) -> str:
    msg = (str(e).splitlines() or [""])[0].strip()
    return " ".join(str(p) for p in (getattr(e, "status_code", None), _code(e), msg) if p)
