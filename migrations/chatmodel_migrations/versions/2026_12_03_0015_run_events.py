"""Resumable streams: a run's server-sent events, kept for a while after it ends.

* ``chat_run.stream_format``: how a streamed or background run's events are framed
  (``native``, ``chat``, ``text``, ``responses``); null for a run that keeps none;
* ``run_event_batch``: the events, a batch per row (what the run's process wrote
  together), keyed by the run and the batch's first sequence number;
* ``ix_chat_session_held``: the held sessions by lease expiry, for the sweep every
  server makes for runs whose server died.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stream_format", sa.String(length=16), nullable=True))
    op.create_table(
        "run_event_batch",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("frames", sa.JSON(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["chat_run.id"],
            name=op.f("fk_run_event_batch_run_id_chat_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "first_seq", name=op.f("pk_run_event_batch")),
    )
    op.create_index(
        op.f("ix_run_event_batch_created_at"), "run_event_batch", ["created_at"], unique=False
    )
    op.create_index(
        "ix_chat_session_held",
        "chat_session",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("lease_run_id IS NOT NULL"),
        sqlite_where=sa.text("lease_run_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_session_held",
        table_name="chat_session",
        postgresql_where=sa.text("lease_run_id IS NOT NULL"),
        sqlite_where=sa.text("lease_run_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_run_event_batch_created_at"), table_name="run_event_batch")
    op.drop_table("run_event_batch")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_column("stream_format")
