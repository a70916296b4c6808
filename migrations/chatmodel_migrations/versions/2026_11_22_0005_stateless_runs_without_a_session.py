"""Runs without a session: chat_run.session_id becomes nullable.

A stateless call through the OpenAI-compatible API is recorded as a run of the version
it used, with no session. Downgrading deletes those runs (the old schema cannot hold them).

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM chat_run WHERE session_id IS NULL")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.alter_column("session_id", existing_type=sa.Uuid(), nullable=False)
