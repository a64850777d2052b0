"""Service keys leave the metadata database: each service's keys move to its 0600 keys file
(``<workspace>/keys/<service>.json``, ``store/keys.py``) and the ``services.keys`` column is
emptied (kept, ``{}``, so the table stays 0.1.0's shape). 0.1.0 stored them in plain text in a
world-readable database (and its WAL).

The files are written before the column is emptied, in the migration's transaction: a failure
leaves the keys in the database and this revision not applied (files already written are
rewritten with the same keys next time). ``upgrade_schema`` passes the workspace folder in
``config.attributes["workspace_path"]``; without one (a bare database) there is nowhere to put
the keys and the migration refuses, naming what to pass.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from mlmanage_jupyter.core.store.keys import write_keys

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_services = sa.table("services", sa.column("name", sa.String), sa.column("keys", sa.JSON))


def upgrade() -> None:
    conn = op.get_bind()
    rows = [(name, keys) for name, keys in conn.execute(sa.select(_services.c.name, _services.c["keys"])) if keys]
    if not rows:
        return
    root = op.get_context().config.attributes.get("workspace_path") if op.get_context().config else None
    if root is None:
        raise RuntimeError(
            "schema revision 0003 moves service keys into the workspace folder's keys/ files: "
            "run it through Workspace(path) (upgrade_schema(engine, workspace_path=...))"
        )
    for name, keys in rows:
        if isinstance(keys, str):  # a JSON column read as text by some drivers
            keys = json.loads(keys)
        write_keys(root, name, {str(k): str(v) for k, v in dict(keys).items()})
    conn.execute(sa.update(_services).values(keys={}))


def downgrade() -> None:
    """Keys stay in their files: the column was never needed with them there."""
