"""The Responses and Conversations APIs: what a response asked for, deleted responses and
deleted conversation items.

* ``chat_run.responses_request``: a Responses API run's request as its Response object
  echoes it (null for runs of other APIs);
* ``chat_run.deleted_at``: a response deleted through that API (the record stays, for
  the figures);
* ``session_message.deleted_at``: a message deleted as a conversation item (it is also
  superseded, so it is never sent to the model again; its seq stays taken).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responses_request", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("responses_request")
