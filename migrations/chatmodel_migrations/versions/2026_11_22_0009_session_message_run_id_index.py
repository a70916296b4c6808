"""Index session_message(run_id), so deleting sessions with runs stays cheap.

``session_message.run_id`` references ``chat_run``. Deleting a run (with its session, or
by ``chatmodel gc``) makes the database check that no message still references it; without
an index on ``run_id`` each check scans the whole message table, once per deleted run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_message_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_message_run_id"))
