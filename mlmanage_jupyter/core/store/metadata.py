"""SQL schema of the metadata store (SQLAlchemy 2 Core).

SQLite with WAL by default (one file in the workspace); any SQLAlchemy URL (e.g.
``postgresql+psycopg://...``) works for a team. Times are UTC ISO-8601 strings;
JSON columns hold tags, properties and configuration.

Tables:
  models          one row per model version (name, version unique)
  model_files     the files of a version: relative path, sha256, size in bytes
  images          one row per image version (name, version unique), content-hashed
  image_models    which model versions an image packs
  services        one row per web service (name unique)
  service_models  which model versions a service serves
  service_keys    a service's auth keys, on databases other than SQLite (``store/keys.py``)
  events          an append-only log of what happened (register, deploy, update, ...)

The schema is versioned with Alembic (``migrations/``, revision ``0001`` = 0.1.0's schema, kept
in the table ``mlmanage_schema_version``); :func:`upgrade_schema` brings a database to the head
revision in place, once, under a lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction
advisory lock; both run DDL transactionally, so a migration is all or nothing). Changing a table
here needs a new revision in ``migrations/versions/``.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    make_url,
)
from sqlalchemy.exc import ArgumentError

from mlmanage_jupyter.core.errors import MlManageError

VERSION_TABLE = "mlmanage_schema_version"
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# PostgreSQL advisory lock keys (64-bit, per database): one for schema upgrades, one that every
# write transaction takes, so read-then-write transactions (version allocation) serialize as
# SQLite's BEGIN IMMEDIATE makes them do.
PG_MIGRATE_LOCK = 0x6D6C6D67_6D696772  # "mlmgmigr"
PG_WRITE_LOCK = 0x6D6C6D67_77726974  # "mlmgwrit"

# byte counts: 64-bit (PostgreSQL's INTEGER stops at 2 GiB); SQLite's INTEGER is 64-bit already
_Bytes = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("description", Text),
    Column("model_framework", String(64)),
    Column("model_framework_version", String(64)),
    Column("tags", JSON, nullable=False, default=dict),
    Column("properties", JSON, nullable=False, default=dict),
    Column("root_name", String(255), nullable=False),  # registered file or folder name
    Column("is_folder", Boolean, nullable=False, default=False),
    Column("sha256", String(64), nullable=False),  # of the file, or of the folder's manifest
    Column("size", _Bytes, nullable=False),  # bytes, all files
    Column("file_count", Integer, nullable=False),
    Column("created_time", String(40), nullable=False),
    UniqueConstraint("name", "version", name="uq_model_name_version"),
)

model_files = Table(
    "model_files",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),  # posix path relative to the model root
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", _Bytes, nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("description", Text),
    Column("tags", JSON, nullable=False, default=dict),
    Column("spec", JSON, nullable=False, default=dict),  # inference config, environment, ...
    Column("context_path", Text),  # build context folder on disk
    Column("docker_image", String(512)),  # tag once built by the docker target
    Column("created_time", String(40), nullable=False),
    UniqueConstraint("name", "version", name="uq_image_name_version"),
)

image_models = Table(
    "image_models",
    metadata,
    Column("image_id", Integer, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
)

services = Table(
    "services",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("compute_type", String(32), nullable=False),  # local | docker | kubernetes
    Column("state", String(32), nullable=False),  # Transitioning | Healthy | Unhealthy | Failed
    Column("error", Text),
    Column("image_id", Integer, ForeignKey("images.id")),
    Column("config", JSON, nullable=False, default=dict),  # deploy_configuration as a dict
    Column("runtime", JSON, nullable=False, default=dict),  # target-specific: pid, port, container id
    Column("keys", JSON, nullable=False, default=dict),  # {"primaryKey": ..., "secondaryKey": ...}
    Column("scoring_uri", Text),
    Column("swagger_uri", Text),
    Column("created_time", String(40), nullable=False),
    Column("updated_time", String(40), nullable=False),
)

service_models = Table(
    "service_models",
    metadata,
    Column("service_name", String(63), ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
)

service_keys = Table(
    "service_keys",
    metadata,
    Column("service_name", String(63), ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
    Column("keys", JSON, nullable=False, default=dict),  # {"primaryKey": ..., "secondaryKey": ...}
    Column("updated_time", String(40), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("kind", String(64), nullable=False),  # e.g. model.register, service.update
    Column("subject", String(512), nullable=False),  # e.g. "diabetes:3"
    Column("detail", JSON, nullable=False, default=dict),
)


def utcnow() -> str:
    """Current UTC time as ISO-8601 with microseconds and 'Z'."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def safe_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (for messages and details)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///<path>`` URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def create_private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 (narrowed further by the umask) unless it
    exists: SQLite then keeps that mode for the database and gives it to its ``-wal`` and
    ``-shm`` files (instead of 0644, world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create an engine; for SQLite: WAL, foreign keys, ``secure_delete`` (deleted content is
    overwritten, not left in free pages), 30 s busy timeout, and write transactions (execution
    option ``mlmanage_write=True``) that take the database lock at BEGIN (``BEGIN IMMEDIATE``) so
    read-then-write transactions (version allocation) serialize across processes instead of
    failing.

    ``read_only`` (SQLite): open the file with ``mode=ro`` (SQLite's URI parameter), or, when
    that can't work because no ``-shm`` file exists and none can be made (a read-only folder),
    ``immutable=1``; nothing is ever written, not even the WAL switch."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if read_only and path is not None:
            shm = path.with_name(path.name + "-shm")
            flag = "mode=ro" if shm.exists() else "immutable=1"
            url = f"sqlite:///file:{quote(str(path))}?{flag}&uri=true"
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            if not read_only:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA secure_delete=ON")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # writers (Workspace.write()) lock at BEGIN; readers stay deferred (WAL: never block)
            write = conn.get_execution_options().get("mlmanage_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


class SchemaVersionError(MlManageError):
    """The database's schema revision is unknown to this version of mlmanage-jupyter (a newer
    version made or upgraded it), or the database is not a workspace's."""


def _alembic_config(conn: Connection | None = None) -> Config:
    cfg = Config()  # no alembic.ini: the scripts ship inside the package
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest schema revision this version knows (e.g. ``"0002"``)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


# the tables 0.1.0 created (revision 0001): a database holding all of them and no version table
# is a 0.1.0 workspace
TABLES_0_1_0 = frozenset({"models", "model_files", "images", "image_models", "services", "service_models", "events"})


def schema_revision(conn: Connection) -> str | None:
    """The schema revision of the database behind ``conn``: ``None`` for a database without the
    workspace's tables (empty, or other applications' tables only), ``"0001"`` for one made by
    0.1.0 (all its tables, no version table). Reads only.

    Raises SchemaVersionError when some but not all of the workspace's tables exist without a
    version table (another application's tables of the same names: use another database or
    schema), or when the version table holds several revisions."""
    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    if len(heads) > 1:
        raise SchemaVersionError(f"the metadata database has several schema revisions {heads}: it was migrated by hand")
    if heads:
        return heads[0]
    present = TABLES_0_1_0 & set(inspect(conn).get_table_names())
    if present == TABLES_0_1_0:
        return "0001"
    if present:
        raise SchemaVersionError(
            f"the metadata database has tables named {sorted(present)} but not the rest of a workspace's "
            f"({sorted(TABLES_0_1_0 - present)}) and no {VERSION_TABLE} table: it belongs to something else; "
            f"point metadata_url at an empty database"
        )
    return None


def _check_known(script: ScriptDirectory, rev: str | None, where: str) -> None:
    if rev is None:
        return
    try:
        script.get_revision(rev)
    except CommandError:
        raise SchemaVersionError(
            f"the metadata database of {where} has schema revision {rev!r}, which this version of "
            f"mlmanage-jupyter does not know (it knows up to {script.get_current_head()!r}): a newer "
            f"mlmanage-jupyter made or upgraded it. Upgrade: pip install -U mlmanage-jupyter"
        ) from None


def upgrade_schema(engine: Engine, where: str = "the workspace", workspace_path: Path | None = None) -> bool:
    """Bring the database to the head schema revision in place; returns True when it migrated.

    Checks the revision first with a read only: a database already at head is not written (so
    listing needs no write access). Otherwise takes the migration lock (SQLite: ``BEGIN
    IMMEDIATE``; PostgreSQL: ``pg_advisory_xact_lock``), checks again (another process may have
    migrated meanwhile), stamps a 0.1.0 database as ``0001`` and runs the missing revisions, all
    in that one transaction: concurrent openers migrate once, and a failure leaves the old schema.

    ``workspace_path`` is the workspace folder, where revision 0003 puts the service keys it
    takes out of the database (``store/keys.py``). On SQLite the WAL is then checkpointed and
    truncated, so content a migration removed (keys) is left in neither file.

    Raises SchemaVersionError (``where`` names the workspace in the message) when the database
    has a revision this version does not know.
    """
    script = ScriptDirectory.from_config(_alembic_config())
    head = script.get_current_head()
    with engine.connect() as conn:
        rev = schema_revision(conn)
        conn.rollback()
    if rev == head:
        return False
    _check_known(script, rev, where)
    with engine.connect().execution_options(mlmanage_write=True) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATE_LOCK})")
            rev = schema_revision(conn)
            if rev == head:
                return False
            _check_known(script, rev, where)
            cfg = _alembic_config(conn)
            cfg.attributes["workspace_path"] = workspace_path
            if rev is not None and not MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads():
                command.stamp(cfg, rev)  # a 0.1.0 database: record what it has, then upgrade
            command.upgrade(cfg, "head")
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # autocommit (isolation_level None): no transaction open
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    return True


def needs_upgrade(engine: Engine) -> str | None:
    """The database's schema revision when it is not this version's head (``"none"`` for an
    empty database), else None. Reads only."""
    with engine.connect() as conn:
        rev = schema_revision(conn)
        conn.rollback()
    return None if rev == head_revision() else (rev or "none")


def take_write_lock(conn: Connection) -> None:
    """Serialize write transactions across processes: on PostgreSQL, a transaction advisory lock
    (released at commit/rollback); on SQLite nothing (``BEGIN IMMEDIATE`` already locked)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def create_schema(engine: Engine) -> None:
    """Deprecated name of :func:`upgrade_schema`."""
    upgrade_schema(engine)
