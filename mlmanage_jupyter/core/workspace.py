"""Workspace: the root that holds a metadata store and an artifact store.

Where a workspace is, in order of precedence:

1. ``Workspace(path)`` / ``Workspace.create(path=...)``;
2. the ``MLMANAGE_WORKSPACE`` environment variable;
3. ``Workspace.from_config()``: a ``config.json`` found in the current folder, its
   ``.mlmanage/`` or ``.azureml/`` subfolder, or any parent folder (Azure ML's search);
4. ``./.mlmanage`` (created on first use).

A workspace folder contains::

    config.json        {"name", "metadata_url"?, "artifact_store"?: {...}}
    metadata.db        SQLite (WAL) unless metadata_url names another database
    artifacts/         the local artifact store (objects/, blobs/, tmp/)
    models/            materialized model files for get_model_path (a cache)
    datastores/        datastores' files (core/datastore.py); datasets/: registered datasets (core/dataset.py)
    images/            image build contexts
    services/          per-service run folders (logs, status files) of the local target

``config.json`` fields: ``metadata_url`` (any SQLAlchemy URL, default the SQLite file);
``artifact_store``: ``{"type": "local"}`` (default) or ``{"type": "azure_blob",
"container": "mlmanage", "connection_string": "..."}`` — the connection string may also come
from ``AZURE_STORAGE_CONNECTION_STRING`` (Azure's variable), the container from
``MLMANAGE_BLOB_CONTAINER``.

One instance per workspace per process: ``Workspace(path)`` (and so ``resolve_workspace(path)``)
returns the same object, with one SQLAlchemy engine, for the same resolved folder, overrides
and ``config.json`` content; a changed ``config.json`` gives a new instance (the old engine is
disposed). ``Workspace.close()`` disposes the engine and forgets the instance; every cached
engine is disposed at exit. Opening a workspace upgrades its metadata schema to this version's
(``store/metadata.upgrade_schema``) and writes nothing when it is already there.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from mlmanage_jupyter.core.datastore import Datastore
from mlmanage_jupyter.core.errors import NotFoundError, ReadOnlyWorkspaceError, ValidationError
from mlmanage_jupyter.core.fsutil import write_json_atomic
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.artifacts import ArtifactStore, LocalArtifactStore

CONFIG_FILE = "config.json"
DEFAULT_DIRNAME = ".mlmanage"


def default_name(path: Path) -> str:
    """A workspace's name when none is given: the project folder holding ``.mlmanage``
    (``~/proj/.mlmanage`` -> ``proj``), else the workspace folder's own name
    (``/tmp/tour-x1`` -> ``tour-x1``, not ``tmp``)."""
    own = path.name
    if own in (DEFAULT_DIRNAME, ".azureml", ""):
        return path.parent.name or "workspace"
    return own


_default: Workspace | None = None
# (real path, metadata_url override) -> the open instance (not with an artifact_store override)
_instances: dict[tuple[str, str | None], Workspace] = {}
_instances_lock = threading.RLock()


def _workspace_path(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        path = os.environ.get("MLMANAGE_WORKSPACE") or Path.cwd() / DEFAULT_DIRNAME
    return Path(path).expanduser().resolve()


def _sqlite_identity(url: str) -> tuple[int, int] | None:
    """(device, inode) of a SQLite database file, None for other databases or no file."""
    if not url.startswith("sqlite:///"):
        return None
    try:
        st = os.stat(url[len("sqlite:///"):])
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def unwritable_reason(path: Path) -> str | None:
    """Why ``path`` (a folder, or a file that may not exist yet) can't be written, or None:
    a read-only file system (``statvfs`` ST_RDONLY, e.g. a read-only mount) or no write
    permission for this user (``os.access``)."""
    probe = path if path.exists() else path.parent
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            return f"{probe} is on a read-only file system"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable by this user"
    if not path.exists() and not os.access(probe, os.W_OK):
        return f"{probe} is not writable by this user"
    return None


def _read_config_text(path: Path) -> str | None:
    try:
        return (path / CONFIG_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None

# Azure ML's config.json fields (Workspace.write_config / from_config)
AZURE_CONFIG_KEYS = ("subscription_id", "resource_group", "location")


def _is_azure_config(cfg: dict[str, Any]) -> bool:
    """Azure's config.json (``workspace_name``) rather than a workspace folder's own."""
    return "workspace_name" in cfg and not ({"name", "metadata_url", "artifact_store"} & cfg.keys())


class Workspace:
    """A workspace rooted at a folder.

    Args:
        path: the workspace folder; default ``$MLMANAGE_WORKSPACE`` or ``./.mlmanage``.
            Created (with its config) when missing.
        metadata_url: a SQLAlchemy URL overriding the config's (e.g. PostgreSQL).
        artifact_store: an :class:`ArtifactStore` overriding the config's (such an instance is
            the caller's own, not shared).

    ``Workspace(path)`` returns the process's one open instance for that folder (same
    ``metadata_url`` override and ``config.json`` content); ``close()`` (or ``with``) disposes
    its engine. Opening upgrades the metadata schema when this version's is newer.

    Raises:
        ValidationError: the path exists and is a file; the config is not a JSON object; the
            metadata_url is malformed, needs a driver that is not installed, or can't be reached.
        SchemaVersionError: (``core.store.metadata``) the database was upgraded by a newer
            mlmanage-jupyter, or holds another application's tables.
    """

    _ready: bool = False
    _cache_key: tuple[str, str | None] | None = None

    def __new__(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        metadata_url: str | None = None,
        artifact_store: ArtifactStore | None = None,
    ) -> Workspace:
        self = super().__new__(cls)
        if artifact_store is not None:
            return self  # a caller-made store: not shared
        p = _workspace_path(path)
        key = (str(p), metadata_url)
        with _instances_lock:
            ws = _instances.get(key)
            if ws is not None and type(ws) is cls and ws._still_current():
                return ws
        self._cache_key = key
        return self

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        metadata_url: str | None = None,
        artifact_store: ArtifactStore | None = None,
    ) -> None:
        if self._ready:  # the cached instance that __new__ returned
            return
        self.path = _workspace_path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValidationError(f"workspace path {self.path} is a file; give a folder")
        if not self.path.is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
        #: why this workspace is open read-only (None: it is writable); see :meth:`write`
        self.read_only: str | None = unwritable_reason(self.path)
        cfg_file = self.path / CONFIG_FILE
        if cfg_file.exists():
            self._config_text: str | None = cfg_file.read_text()
            try:
                self.config: dict[str, Any] = json.loads(self._config_text or "{}")
            except json.JSONDecodeError as e:
                raise ValidationError(f"{cfg_file} is not valid JSON: {e}") from None
            if not isinstance(self.config, dict):
                raise ValidationError(f"{cfg_file} must hold a JSON object, got {type(self.config).__name__}")
        else:
            self.config = {"name": default_name(self.path)}
            if self.read_only is None:
                write_json_atomic(cfg_file, self.config)
            self._config_text = _read_config_text(self.path)
        self.name: str = self.config.get("name") or default_name(self.path)
        self.metadata_url = metadata_url or self.config.get("metadata_url") or f"sqlite:///{self.path / 'metadata.db'}"
        if self.read_only is None and metadata_url is None and "metadata_url" not in self.config:
            db_reason = unwritable_reason(self.path / "metadata.db")
            self.read_only = db_reason
        self.artifacts: ArtifactStore = artifact_store or self._make_artifact_store()
        if self.read_only is not None and isinstance(self.artifacts, LocalArtifactStore):
            self.artifacts.read_only = self._read_only_message()
        self.engine: Engine = self._open_engine(metadata_url is not None)
        self._db_identity = _sqlite_identity(self.metadata_url)
        self._ready = True
        with _instances_lock:
            old = _instances.get(self._cache_key) if self._cache_key else None
            if self._cache_key is not None:
                _instances[self._cache_key] = self
        if old is not None and old is not self:
            old.engine.dispose()  # its config changed: the replaced instance keeps working, with fresh connections

    def _open_engine(self, overridden: bool) -> Engine:
        """The engine for ``metadata_url``, with the schema upgraded to this version's.

        Raises ValidationError naming the setting to fix (``config.json``'s ``metadata_url``
        or the ``metadata_url`` argument) when the URL is malformed, its driver is not
        installed, or the database can't be reached; SchemaVersionError from the upgrade."""
        where = "the metadata_url argument" if overridden else f"metadata_url in {self.path / CONFIG_FILE}"
        shown = md.safe_url(self.metadata_url)
        db_file = md.sqlite_path(self.metadata_url)
        if db_file is not None and self.read_only is None and not db_file.exists():
            with contextlib.suppress(OSError):
                md.create_private_file(db_file)  # 0600: the database is the owner's
        try:
            if self.read_only is not None and db_file is not None:
                engine = md.make_engine(self.metadata_url, read_only=True)
            else:
                engine = md.make_engine(self.metadata_url)
        except NoSuchModuleError:
            raise ValidationError(
                f"{where} names a database this install can't talk to ({shown}): use sqlite:///... or "
                f"postgresql+psycopg://user:password@host:5432/database"
            ) from None
        except ArgumentError as e:
            raise ValidationError(f"{where} is not a valid SQLAlchemy URL ({shown}): {e}") from None
        except ImportError as e:
            hint = " (pip install 'mlmanage-jupyter[postgres]')" if "psycopg" in str(e) else ""
            raise ValidationError(f"the database driver for {shown} is not installed: {e}{hint}") from None
        try:
            if self.read_only is not None:
                rev = md.needs_upgrade(engine)
                if rev is not None:
                    raise ReadOnlyWorkspaceError(
                        f"{self._read_only_message()}; its metadata database {shown} is at schema revision {rev}, "
                        f"not this version's {md.head_revision()}: open it once with write access to upgrade it"
                    )
            else:
                md.upgrade_schema(engine, where=f"workspace {self.path} ({shown})", workspace_path=self.path)
        except OperationalError as e:
            engine.dispose()
            reason = str(e.orig).strip().splitlines()[0] if e.orig is not None else str(e)
            raise ValidationError(f"can't open the metadata database {shown} ({where}): {reason}") from None
        except BaseException:
            engine.dispose()
            raise
        return engine

    def _still_current(self) -> bool:
        """Same ``config.json`` content and (SQLite) the same database file as when opened:
        a folder deleted and made again gets a new instance, not an engine on a deleted file."""
        return self._config_text == _read_config_text(self.path) and self._db_identity == _sqlite_identity(self.metadata_url)

    def close(self) -> None:
        """Dispose the engine (its pooled connections) and forget this instance: the next
        ``Workspace(path)`` opens a new one. Using this object afterwards still works (the
        engine reconnects) but is no longer shared."""
        with _instances_lock:
            if self._cache_key is not None and _instances.get(self._cache_key) is self:
                del _instances[self._cache_key]
        global _default
        if _default is self:
            _default = None
        self.engine.dispose()

    def __copy__(self) -> Workspace:
        return self  # a handle on a shared workspace: copies are the same workspace

    def __deepcopy__(self, memo: dict[int, Any]) -> Workspace:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled (e.g. to a worker process) as its folder and override; reopened there
        return (_reopen, (str(self.path), self._cache_key[1] if self._cache_key else None))

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        metadata_url: str | None = None,
        artifact_store: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> Workspace:
        """Create a workspace folder with its ``config.json`` and return it.

        ``artifact_store`` is the config form, e.g. ``{"type": "azure_blob", "container": "ml"}``.
        Raises ValidationError when it exists and ``exist_ok`` is False.
        """
        p = Path(path or os.environ.get("MLMANAGE_WORKSPACE") or Path.cwd() / DEFAULT_DIRNAME).expanduser().resolve()
        if (p / CONFIG_FILE).exists() and not exist_ok:
            raise ValidationError(f"a workspace already exists at {p}")
        p.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {}
        if (p / CONFIG_FILE).exists():
            cfg = json.loads((p / CONFIG_FILE).read_text() or "{}")
        cfg["name"] = name or cfg.get("name") or default_name(p)
        if metadata_url:
            cfg["metadata_url"] = metadata_url
        if artifact_store:
            cfg["artifact_store"] = artifact_store
        write_json_atomic(p / CONFIG_FILE, cfg)
        return cls(p)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, _file_name: str | None = None) -> Workspace:
        """Find a ``config.json`` (Azure ML's search: the folder's ``.azureml/`` subfolder, its
        ``.mlmanage/``, the folder itself, then each parent) and open the workspace it names.

        The config may hold ``"workspace": "<folder>"`` (relative to the config file) to
        point elsewhere. Azure's own config (``subscription_id``, ``resource_group``,
        ``workspace_name``) opens ``<project>/.mlmanage`` named ``workspace_name``, where
        ``<project>`` holds ``.azureml/`` (or the config); it raises ValidationError when that
        folder already belongs to another Azure workspace name. Otherwise the folder holding
        the config is the workspace.
        Raises NotFoundError when no config is found.
        """
        name = _file_name or CONFIG_FILE
        start = Path(path or Path.cwd()).expanduser().resolve()
        if start.is_file():
            return cls._from_config_file(start)
        for d in [start, *start.parents]:
            # .azureml/ first: Azure's config names the workspace (and is checked against .mlmanage/)
            for cand in (d / ".azureml" / name, d / DEFAULT_DIRNAME / name, d / name):
                if cand.is_file():
                    return cls._from_config_file(cand)
        raise NotFoundError(
            f"no {name} found in {start} or its parents (looked in ./, ./.mlmanage/, ./.azureml/); "
            f"create one with Workspace.create(path=...) or `mlmanage workspace create`"
        )

    @classmethod
    def _from_config_file(cls, cfg_file: Path) -> Workspace:
        try:
            cfg = json.loads(cfg_file.read_text() or "{}")
        except json.JSONDecodeError as e:
            raise ValidationError(f"{cfg_file} is not valid JSON: {e}") from None
        target = cfg.get("workspace")
        if target:
            return cls((cfg_file.parent / target).resolve())
        if _is_azure_config(cfg):
            return cls._from_azure_config(cfg_file, cfg)
        return cls(cfg_file.parent)

    @classmethod
    def get_default(cls) -> Workspace:
        """The process-wide default workspace (``MLMANAGE_WORKSPACE`` or ``./.mlmanage``)."""
        global _default
        wanted = _workspace_path(None)
        if _default is None or _default.path != wanted:
            _default = cls(wanted)
        return _default

    @classmethod
    def set_default(cls, workspace: Workspace | None) -> None:
        global _default
        _default = workspace

    # ------------------------------------------------------------------ stores
    def _make_artifact_store(self) -> ArtifactStore:
        spec = dict(self.config.get("artifact_store") or {"type": "local"})
        kind = spec.get("type", "local")
        if kind == "local":
            return LocalArtifactStore(Path(spec.get("path") or self.path / "artifacts"))
        if kind == "azure_blob":
            from mlmanage_jupyter.core.store.blob import AzureBlobArtifactStore

            conn = spec.get("connection_string") or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            container = spec.get("container") or os.environ.get("MLMANAGE_BLOB_CONTAINER") or "mlmanage"
            if not conn:
                raise ValidationError(
                    "artifact_store type azure_blob needs a connection string: set "
                    "AZURE_STORAGE_CONNECTION_STRING or artifact_store.connection_string in config.json"
                )
            return AzureBlobArtifactStore(conn, container)
        raise ValidationError(f"unknown artifact_store type {kind!r} in {self.path / CONFIG_FILE}: use local or azure_blob")

    def _read_only_message(self) -> str:
        return (
            f"workspace {self.path} is open read-only ({self.read_only}): listing and reading work, "
            "changes don't; open a writable copy or ask its owner for write access"
        )

    def check_writable(self) -> None:
        """Raise ReadOnlyWorkspaceError (naming the folder and why) when the workspace is read-only."""
        if self.read_only is not None:
            raise ReadOnlyWorkspaceError(self._read_only_message())

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, commits on exit. Write transactions serialize across processes
        (SQLite: the database lock at BEGIN; PostgreSQL: an advisory lock), so reading the
        highest version and inserting the next one is safe. Raises ReadOnlyWorkspaceError on a
        workspace opened read-only."""
        self.check_writable()
        with self.engine.connect().execution_options(mlmanage_write=True) as conn:
            with conn.begin():
                md.take_write_lock(conn)
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def log_event(self, conn: Connection, kind: str, subject: str, **detail: Any) -> None:
        conn.execute(insert(md.events).values(time=md.utcnow(), kind=kind, subject=subject, detail=detail))

    def last_event_id(self) -> int:
        """The id of the newest event (0 when none): a cheap change mark. Anything that changes
        the registry or a service (register, tag, deploy, update, delete, ...) logs an event,
        so a view re-reads only when this number moved."""
        with self.read() as conn:
            return int(conn.execute(select(func.max(md.events.c.id))).scalar() or 0)

    def get_events(self, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with an id greater than ``since``, oldest first, at most ``limit`` (1..10000).

        Returns dicts ``{"id": int, "time": ISO-8601 UTC str, "kind": str (e.g. "model.register",
        "service.update"), "subject": str (e.g. "diabetes:3"), "detail": dict}``.
        Raises ValidationError for a negative ``since`` or a ``limit`` out of range.
        """
        if not isinstance(since, int) or since < 0:
            raise ValidationError(f"since must be an event id >= 0, got {since!r}")
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError(f"limit must be between 1 and 10000, got {limit!r}")
        ev = md.events
        with self.read() as conn:
            rows = conn.execute(select(ev).where(ev.c.id > since).order_by(ev.c.id).limit(limit)).all()
        return [{"id": r.id, "time": r.time, "kind": r.kind, "subject": r.subject, "detail": dict(r.detail or {})} for r in rows]

    # ------------------------------------------------------------------ folders
    def subdir(self, *parts: str) -> Path:
        """``<workspace>/<parts...>``, created when missing (ReadOnlyWorkspaceError when it
        is missing and the workspace is read-only)."""
        p = self.path.joinpath(*parts)
        if not p.is_dir():
            self.check_writable()
        p.mkdir(parents=True, exist_ok=True)
        return p

    # ------------------------------------------------------------------ Azure ML v1's workspace surface
    # Azure's config.json names a cloud workspace by subscription_id, resource_group and
    # workspace_name; here it names the local workspace <project>/.mlmanage, where <project>
    # holds .azureml/config.json (or config.json). Those fields are kept in its config.json.
    @classmethod
    def _from_azure_config(cls, cfg_file: Path, cfg: dict[str, Any]) -> Workspace:
        project = cfg_file.parent.parent if cfg_file.parent.name == ".azureml" else cfg_file.parent
        where = project / DEFAULT_DIRNAME
        name = cfg["workspace_name"]
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"{cfg_file}: workspace_name must be a non-empty string")
        mine: dict[str, Any] = {}
        if (where / CONFIG_FILE).is_file():
            try:
                mine = json.loads((where / CONFIG_FILE).read_text() or "{}")
            except json.JSONDecodeError as e:
                raise ValidationError(f"{where / CONFIG_FILE} is not valid JSON: {e}") from None
        if mine.get("subscription_id") and mine.get("name") != name:
            raise ValidationError(
                f"{cfg_file} names workspace {name!r} but {where} is workspace {mine.get('name')!r}: "
                f"fix workspace_name, or add \"workspace\": \"<folder>\" to {cfg_file} to use another folder"
            )
        wanted = {**mine, "name": name}
        for key in AZURE_CONFIG_KEYS:
            if cfg.get(key) is not None:
                wanted[key] = cfg[key]
        if wanted != mine:
            where.mkdir(parents=True, exist_ok=True)
            write_json_atomic(where / CONFIG_FILE, wanted)
        return cls(where)

    def get_default_datastore(self) -> Datastore:
        """Azure's ``ws.get_default_datastore()``: the folder ``datastores/workspaceblobstore``
        of this workspace (see :mod:`~mlmanage_jupyter.core.datastore`)."""
        return Datastore.get_default(self)

    @property
    def datastores(self) -> dict[str, Datastore]:
        """Azure's ``ws.datastores``: every datastore of this workspace, by name."""
        return {n: Datastore(self, n) for n in Datastore.list_names(self)}

    @property
    def subscription_id(self) -> str:
        """Azure's subscription id from the config (``"local"`` when none was given)."""
        return str(self.config.get("subscription_id") or "local")

    @property
    def resource_group(self) -> str:
        """Azure's resource group from the config (``"local"`` when none was given)."""
        return str(self.config.get("resource_group") or "local")

    @property
    def location(self) -> str:
        """Azure's region from the config (``"local"`` when none was given)."""
        return str(self.config.get("location") or "local")

    def _azure_details(self) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                  f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}",
            "location": self.location,
            "resourceGroup": self.resource_group,
            "subscriptionId": self.subscription_id,
            "provisioningState": "Succeeded",
        }

    def write_config(self, path: str | os.PathLike[str] | None = None, file_name: str | None = None) -> str:
        """Write Azure's ``<path or cwd>/.azureml/<file_name or config.json>`` naming this
        workspace (``subscription_id``, ``resource_group``, ``workspace_name``, plus
        ``"workspace"``: this folder, relative to the file), so ``Workspace.from_config()``
        run under ``path`` opens this workspace. Returns the file's path."""
        folder = Path(path or Path.cwd()).expanduser().resolve() / ".azureml"
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / (file_name or CONFIG_FILE)
        write_json_atomic(out, {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.name,
            "workspace": os.path.relpath(self.path, folder),
        })  # fmt: skip
        return str(out)

    @classmethod
    def get(cls, name: str, auth: Any = None, subscription_id: str | None = None, resource_group: str | None = None,
            location: str | None = None, cloud: str = "AzureCloud", id: str | None = None) -> Workspace:
        """The local workspace named ``name`` (Azure's ``Workspace.get``): the default workspace
        (``$MLMANAGE_WORKSPACE`` or ``./.mlmanage``) or the one ``from_config()`` finds. Azure's
        other arguments are accepted and unused. Raises NotFoundError naming where it looked."""
        looked = []
        default = Path(os.environ.get("MLMANAGE_WORKSPACE") or Path.cwd() / DEFAULT_DIRNAME).expanduser().resolve()
        if (default / CONFIG_FILE).is_file():
            ws = cls(default)
            if ws.name == name:
                return ws
            looked.append(f"{default} ({ws.name!r})")
        try:
            ws = cls.from_config()
        except NotFoundError:
            pass
        else:
            if ws.name == name:
                return ws
            looked.append(f"{ws.path} ({ws.name!r})")
        raise NotFoundError(
            f"no local workspace named {name!r} (looked at: {', '.join(looked) or 'none found'}); create it with "
            f"Workspace.create(name={name!r}) or point $MLMANAGE_WORKSPACE at it"
        )

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, path={str(self.path)!r}, artifacts={self.artifacts.describe()!r})"

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f"<b>Workspace</b> {escape(self.name)}<br><code>{escape(str(self.path))}</code><br>"
            f"metadata: <code>{escape(self.metadata_url.split('@')[-1])}</code>, "
            f"artifacts: <code>{escape(self.artifacts.describe())}</code>"
        )

    def get_details(self) -> dict[str, Any]:
        return {**self._azure_details(),
            "name": self.name,
            "path": str(self.path),
            "metadata_url": md.safe_url(self.metadata_url),  # no password in details
            "artifact_store": self.artifacts.describe(),
        }


def _reopen(path: str, metadata_url: str | None) -> Workspace:
    return Workspace(path, metadata_url=metadata_url)


def resolve_workspace(workspace: Workspace | str | os.PathLike[str] | None) -> Workspace:
    """Accept a Workspace, a path, or None (the default workspace). A path gives the process's
    one instance for that folder (see the module docstring), never a new engine per call."""
    if workspace is None:
        return Workspace.get_default()
    if isinstance(workspace, Workspace):
        return workspace
    return Workspace(workspace)



@atexit.register
def _dispose_all() -> None:
    """Dispose every cached engine at exit (closes pooled connections cleanly)."""
    with _instances_lock:
        instances = list(_instances.values())
        _instances.clear()
    for ws in instances:
        try:
            ws.engine.dispose()
        except Exception:
            pass
