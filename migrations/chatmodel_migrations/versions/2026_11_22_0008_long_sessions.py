"""Long sessions: token counts per message, context strategies, fork, regenerate, retention.

* ``session_message.token_count``: the message's tokens, counted once when it is stored
  (null for messages stored before this revision: counted when read);
  ``superseded_at``: set on a reply that was regenerated (kept, never sent again).
* ``chat_model_version.context_strategy`` (truncate | last_n | fail), ``context_last_n``
  and ``context_window`` (the model's input limit when LiteLLM does not know it).
* ``chat_session.parent_session_id`` / ``parent_seq``: where a forked session came from.
* ``chat_model.retention_days``: sessions idle longer are deleted by ``chatmodel gc``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("chat_model_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "context_strategy",
                sa.String(length=16),
                server_default="truncate",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("context_last_n", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("context_window", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_chat_model_version_context_strategy"),
            sa.text("context_strategy IN ('truncate', 'last_n', 'fail')"),
        )
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_session_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("parent_seq", sa.Integer(), nullable=True))
    with op.batch_alter_table("chat_model", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_model", schema=None) as batch_op:
        batch_op.drop_column("retention_days")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_column("parent_seq")
        batch_op.drop_column("parent_session_id")
    with op.batch_alter_table("chat_model_version", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_model_version_context_strategy"), type_="check")
        batch_op.drop_column("context_window")
        batch_op.drop_column("context_last_n")
        batch_op.drop_column("context_strategy")
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("token_count")
