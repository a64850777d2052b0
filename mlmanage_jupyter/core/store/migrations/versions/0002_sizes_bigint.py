"""Byte sizes as 64-bit integers: PostgreSQL's INTEGER stops at 2 GiB, so registering a model
of 2 GiB or more failed there (SQLite's INTEGER is already 64-bit: nothing to do on SQLite).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in ("models", "model_files"):
        op.alter_column(table, "size", type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table in ("models", "model_files"):
        op.alter_column(table, "size", type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
