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
  events          an append-only log of what happened (register, deploy, update, ...)
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
)

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
    Column("size", Integer, nullable=False),  # bytes, all files
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
    Column("size", Integer, nullable=False),
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


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite: WAL, foreign keys, 30 s busy timeout, and write
    transactions (execution option ``mlmanage_write=True``) that take the database lock at
    BEGIN (``BEGIN IMMEDIATE``) so read-then-write transactions (version allocation)
    serialize across processes instead of failing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
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


def create_schema(engine: Engine) -> None:
    metadata.create_all(engine)
