"""Summaries of long sessions (``context_strategy`` summarize).

- ``chat_model_version.context_strategy`` also takes ``summarize``; ``summary_model`` and
  ``summary_prompt`` say who writes the summary and how (null: the version's own model,
  the built-in prompt).
- ``session_summary``: a session's summaries, append-only; each stands in for the
  session's messages up to ``covers_through_seq``, the newest (``ix_session_summary_
  session_id``: session_id, created_at) is the one a run uses and extends.
- ``chat_run``: what a run's summary did (``messages_summarised``, ``summary_id``,
  ``summary_tokens``) or why it sent none (``summary_error``).

Downgrading drops the summaries and turns ``summarize`` versions into ``truncate`` ones
(what a run without a summary does).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WITH_SUMMARIES = "context_strategy IN ('truncate', 'last_n', 'fail', 'summarize')"
WITHOUT_SUMMARIES = "context_strategy IN ('truncate', 'last_n', 'fail')"


def upgrade() -> None:
    with op.batch_alter_table("chat_model_version", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_chat_model_version_context_strategy"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_model_version_context_strategy"), sa.text(WITH_SUMMARIES)
        )
        batch_op.add_column(sa.Column("summary_model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("summary_prompt", sa.Text(), nullable=True))
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messages_summarised", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("summary_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("summary_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("summary_error", sa.Text(), nullable=True))
    op.create_table(
        "session_summary",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("covers_through_seq", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_session_summary_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_summary")),
    )
    op.create_index(
        "ix_session_summary_session_id",
        "session_summary",
        ["session_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_session_summary_session_id", table_name="session_summary")
    op.drop_table("session_summary")
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_column("summary_error")
        batch_op.drop_column("summary_tokens")
        batch_op.drop_column("summary_id")
        batch_op.drop_column("messages_summarised")
    op.execute(
        "UPDATE chat_model_version SET context_strategy = 'truncate' "
        "WHERE context_strategy = 'summarize'"
    )
    with op.batch_alter_table("chat_model_version", schema=None) as batch_op:
        batch_op.drop_column("summary_prompt")
        batch_op.drop_column("summary_model")
        batch_op.drop_constraint(op.f("ck_chat_model_version_context_strategy"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_chat_model_version_context_strategy"), sa.text(WITHOUT_SUMMARIES)
        )
