"""Runs can be cancelled: ``chat_run.status`` takes ``cancelled`` (a run stopped by
``POST /v1/runs/{uuid}/cancel``: its reply was not stored).

Downgrading records the cancelled runs as what they were before this revision could say
otherwise: failed, with their ``error_type`` ``cancelled`` kept.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"),
            sa.text("status IN ('running', 'succeeded', 'failed', 'cancelled')"),
        )


def downgrade() -> None:
    op.execute("UPDATE chat_run SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"), sa.text("status IN ('running', 'succeeded', 'failed')")
        )
