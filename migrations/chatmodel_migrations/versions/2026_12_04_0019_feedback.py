"""Feedback: named scores of sessions and of their messages.

* ``feedback``: one score (``name``, a value of kind ``boolean``, ``number`` or
  ``category``, an optional ``comment``, the key's name and the caller's ``given_by``) of
  a session, or of one of its messages (``message_id``); deleted with either. ``uuid`` is
  the id clients give it, unique per project (``uq_feedback_project_id_uuid``): the same
  id again updates it. ``version_id`` is the version the session was pinned to then.
* ``ix_feedback_session_id_created_at``: a session's feedback, oldest first;
  ``ix_feedback_message_id``: a deleted message's feedback (ON DELETE CASCADE);
  ``ix_feedback_version_id_name``: a version's figures per score name.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VALUE_KIND = "value_kind IN ('boolean', 'number', 'category')"
VALUE = (
    "(value_kind = 'category' AND value_text IS NOT NULL AND value_number IS NULL)"
    " OR (value_kind <> 'category' AND value_number IS NOT NULL AND value_text IS NULL)"
)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value_kind", sa.String(length=16), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_text", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("key_name", sa.String(length=100), nullable=True),
        sa.Column("given_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(VALUE, name=op.f("ck_feedback_value")),
        sa.CheckConstraint(VALUE_KIND, name=op.f("ck_feedback_value_kind")),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["session_message.id"],
            name=op.f("fk_feedback_message_id_session_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_feedback_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_feedback_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["chat_model_version.id"],
            name=op.f("fk_feedback_version_id_chat_model_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("project_id", "uuid", name=op.f("uq_feedback_project_id_uuid")),
    )
    op.create_index(
        "ix_feedback_session_id_created_at",
        "feedback",
        ["session_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_feedback_message_id"), "feedback", ["message_id"], unique=False)
    op.create_index("ix_feedback_version_id_name", "feedback", ["version_id", "name"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feedback_version_id_name", table_name="feedback")
    op.drop_index(op.f("ix_feedback_message_id"), table_name="feedback")
    op.drop_index("ix_feedback_session_id_created_at", table_name="feedback")
    op.drop_table("feedback")
