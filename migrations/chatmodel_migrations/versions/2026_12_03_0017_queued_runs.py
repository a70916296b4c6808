"""Queued runs (``if_busy: enqueue``): ``chat_run.status`` takes ``queued``, and
``chat_run.queued_until`` says until when the waiting process vouches for a queued run;
``ix_chat_run_queued`` finds a session's queued runs in arrival order.

Downgrading records the runs still queued as what they would have become had their
server stopped: failed, ``interrupted``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"),
            sa.text("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"),
        )
    op.create_index(
        "ix_chat_run_queued",
        "chat_run",
        ["session_id", "created_at"],
        unique=False,
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_run_queued", table_name="chat_run", postgresql_where=QUEUED, sqlite_where=QUEUED
    )
    op.execute(
        "UPDATE chat_run SET status = 'failed', error_type = 'interrupted' WHERE status = 'queued'"
    )
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"),
            sa.text("status IN ('running', 'succeeded', 'failed', 'cancelled')"),
        )
        batch_op.drop_column("queued_until")
