"""One run at a time per session, idempotent runs, attempts per run.

* ``chat_session.lease_run_id`` / ``lease_expires_at``: the run that holds the session and
  until when (renewed while it runs; a lapsed lease can be taken over).
* ``chat_run.status`` may be ``running``: the record is written when a run starts, so a
  run whose server died is still there, and is marked failed (``interrupted``) when its
  lease is taken over. ``finished_at`` is null while it runs.
* ``chat_run.idempotency_key`` + ``request_hash`` (unique per session) and ``result`` (the
  LLMResponse, kept for replays); ``attempts`` lists each try of the model call.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_run_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"), sa.text("status IN ('running', 'succeeded', 'failed')")
        )
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=True
        )
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.JSON(), nullable=True))
        batch_op.create_unique_constraint(
            op.f("uq_chat_run_session_id_idempotency_key"), ["session_id", "idempotency_key"]
        )


def downgrade() -> None:
    # Runs still marked running have no place in the old schema: they become failed.
    op.execute(
        "UPDATE chat_run SET status = 'failed', error_type = 'interrupted', "
        "finished_at = created_at WHERE status = 'running'"
    )
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_chat_run_session_id_idempotency_key"), type_="unique")
        batch_op.drop_column("attempts")
        batch_op.drop_column("result")
        batch_op.drop_column("request_hash")
        batch_op.drop_column("idempotency_key")
        batch_op.alter_column(
            "finished_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_constraint(op.f("ck_chat_run_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_run_status"), sa.text("status IN ('succeeded', 'failed')")
        )
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_run_id")
