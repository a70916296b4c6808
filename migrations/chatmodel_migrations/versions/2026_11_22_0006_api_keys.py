"""API keys: one table of hashed keys per project, and who (which key) made runs and releases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('admin', 'client')", name=op.f("ck_api_key_scope")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_api_key_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )
    op.create_index(op.f("ix_api_key_project_id"), "api_key", ["project_id"], unique=False)
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_name", sa.String(length=100), nullable=True))
    with op.batch_alter_table("chat_model_release", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_name", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_model_release", schema=None) as batch_op:
        batch_op.drop_column("key_name")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_column("key_name")
    op.drop_index(op.f("ix_api_key_project_id"), table_name="api_key")
    op.drop_table("api_key")
