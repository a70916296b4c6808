"""Partial indexes on session_message(session_id, seq): superseded replies, user messages.

A run reads only the newest messages it can send. To report how many older ones it left
out it counts the superseded replies before them (the others follow from ``seq``, which
numbers a session's messages without gaps), and when none of the messages it read is a
user message it asks whether an older one exists. Each index holds only those messages,
so both stay one short index probe however long the session.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUPERSEDED = sa.text("superseded_at IS NOT NULL")
USER = sa.text("role = 'user'")


def upgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_message_superseded",
            ["session_id", "seq"],
            unique=False,
            postgresql_where=SUPERSEDED,
            sqlite_where=SUPERSEDED,
        )
        batch_op.create_index(
            "ix_session_message_user",
            ["session_id", "seq"],
            unique=False,
            postgresql_where=USER,
            sqlite_where=USER,
        )


def downgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.drop_index("ix_session_message_user")
        batch_op.drop_index("ix_session_message_superseded")
