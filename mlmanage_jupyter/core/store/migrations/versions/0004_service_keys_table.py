"""Service keys of a shared database go into a ``service_keys`` table: with the keys in one
workspace folder's 0600 files (revision 0003), a teammate whose folder uses the same
PostgreSQL database listed a service but could not ``get_keys()`` or ``regen_key()`` it.

The table is created on every database (one schema everywhere); only databases other than
SQLite use it (``store/keys.py``): a SQLite workspace keeps its 0600 files, so a copied
``metadata.db`` still carries no keys. On such a database, the keys files of the migrating
folder (``config.attributes["workspace_path"]``, when given) whose service exists are copied
into the table, in the migration's transaction; the files are left for the folder to remove
once it reads the keys from the table (a failure here loses nothing). Other folders' files
are moved the first time each folder reads them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.store.keys import keys_dir, read_keys
from mlmanage_jupyter.core.store.metadata import utcnow

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_services = sa.table("services", sa.column("name", sa.String))


def upgrade() -> None:
    op.create_table(
        "service_keys",
        sa.Column("service_name", sa.String(63), sa.ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("keys", sa.JSON, nullable=False),
        sa.Column("updated_time", sa.String(40), nullable=False),
    )
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        return
    cfg = op.get_context().config
    root = cfg.attributes.get("workspace_path") if cfg else None
    if root is None or not keys_dir(root).is_dir():
        return
    names = set(conn.execute(sa.select(_services.c.name)).scalars())
    table = sa.table("service_keys", sa.column("service_name", sa.String), sa.column("keys", sa.JSON),
                     sa.column("updated_time", sa.String))  # fmt: skip
    for f in sorted(keys_dir(root).glob("*.json")):
        name = Path(f).stem
        keys: dict[str, str] = {}
        with contextlib.suppress(OSError, ValidationError):  # a damaged file: regen_key() replaces it
            keys = read_keys(root, name) if name in names else {}
        if keys:
            conn.execute(sa.insert(table).values(service_name=name, keys=keys, updated_time=utcnow()))


def downgrade() -> None:
    """Keys of the table are lost with it: regenerate them (``regen_key``) after a downgrade."""
    op.drop_table("service_keys")
