"""The metadata schema of mlmanage-jupyter 0.1.0, exactly as its ``metadata.py`` created it.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("model_framework", sa.String(64)),
        sa.Column("model_framework_version", sa.String(64)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("root_name", sa.String(255), nullable=False),
        sa.Column("is_folder", sa.Boolean, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("created_time", sa.String(40), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_model_name_version"),
    )
    op.create_index("ix_models_name", "models", ["name"])
    op.create_table(
        "model_files",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_model_files_sha256", "model_files", ["sha256"])
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("context_path", sa.Text),
        sa.Column("docker_image", sa.String(512)),
        sa.Column("created_time", sa.String(40), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_image_name_version"),
    )
    op.create_index("ix_images_name", "images", ["name"])
    op.create_index("ix_images_content_hash", "images", ["content_hash"])
    op.create_table(
        "image_models",
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    )
    op.create_table(
        "services",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("compute_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id")),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("runtime", sa.JSON, nullable=False),
        sa.Column("keys", sa.JSON, nullable=False),
        sa.Column("scoring_uri", sa.Text),
        sa.Column("swagger_uri", sa.Text),
        sa.Column("created_time", sa.String(40), nullable=False),
        sa.Column("updated_time", sa.String(40), nullable=False),
    )
    op.create_table(
        "service_models",
        sa.Column("service_name", sa.String(63), sa.ForeignKey("services.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("events", "service_models", "services", "image_models", "images", "model_files", "models"):
        op.drop_table(table)
