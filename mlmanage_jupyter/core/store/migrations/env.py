"""Alembic environment: always online, on the connection that ``schema.upgrade`` passes in
``config.attributes["connection"]`` (already inside a transaction holding the migration lock)."""

from __future__ import annotations

from alembic import context

from mlmanage_jupyter.core.store.metadata import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,  # SQLite's DDL is transactional too: one migration is all or nothing
    render_as_batch=True,  # ALTERs on SQLite copy the table (Alembic's batch mode)
)
with context.begin_transaction():
    context.run_migrations()
