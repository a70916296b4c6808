"""Indexes for the filtered session listing (``GET /v1/sessions?user_id=&version=&has_errors=``).

- ``chat_session.user_id``: the metadata's ``user_id`` as a column of its own, filled from
  the metadata of every existing session here and kept with every write of it since
  (``sessions.metadata.metadata_user_id``: a string, or an integer's digits; null for
  anything else and for more than 200 characters). ``ix_chat_session_user_id`` on
  (project_id, user_id, created_at) reads one user's sessions newest first.
- ``ix_chat_session_version_id`` (version_id) becomes (version_id, created_at): one
  version's sessions newest first; the per-version figures use its first column as before.
- ``ix_chat_run_session_id`` (session_id) becomes (session_id, created_at): a session's
  runs oldest first, a page at a time; deletes and counts use its first column as before.
- ``ix_chat_run_failed``: the failed runs' sessions only (partial), for ``has_errors``
  and the listing's ``failed_runs``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED = sa.text("status = 'failed'")

# metadata.user_id as the service keeps it: a string of 1 to 200 characters as it is, an
# integer as its digits, anything else null.
USER_ID_POSTGRESQL = """
UPDATE chat_session SET user_id = metadata ->> 'user_id'
WHERE json_typeof(metadata) = 'object'
  AND (json_typeof(metadata -> 'user_id') = 'string'
       OR (json_typeof(metadata -> 'user_id') = 'number'
           AND (metadata ->> 'user_id') ~ '^-?[0-9]+$'))
  AND length(metadata ->> 'user_id') BETWEEN 1 AND 200
"""
USER_ID_SQLITE = """
UPDATE chat_session SET user_id = CAST(json_extract(metadata, '$.user_id') AS TEXT)
WHERE json_valid(metadata) AND json_type(metadata) = 'object'
  AND json_type(metadata, '$.user_id') IN ('text', 'integer')
  AND length(CAST(json_extract(metadata, '$.user_id') AS TEXT)) BETWEEN 1 AND 200
"""


def upgrade() -> None:
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=200), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(USER_ID_POSTGRESQL if dialect == "postgresql" else USER_ID_SQLITE)
    op.create_index(
        "ix_chat_session_user_id",
        "chat_session",
        ["project_id", "user_id", "created_at"],
        unique=False,
    )
    op.drop_index("ix_chat_session_version_id", table_name="chat_session")
    op.create_index(
        "ix_chat_session_version_id_created_at",
        "chat_session",
        ["version_id", "created_at"],
        unique=False,
    )
    op.drop_index("ix_chat_run_session_id", table_name="chat_run")
    op.create_index(
        "ix_chat_run_session_id_created_at",
        "chat_run",
        ["session_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_chat_run_failed",
        "chat_run",
        ["session_id"],
        unique=False,
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_run_failed", table_name="chat_run", postgresql_where=FAILED, sqlite_where=FAILED
    )
    op.drop_index("ix_chat_run_session_id_created_at", table_name="chat_run")
    op.create_index("ix_chat_run_session_id", "chat_run", ["session_id"], unique=False)
    op.drop_index("ix_chat_session_version_id_created_at", table_name="chat_session")
    op.create_index("ix_chat_session_version_id", "chat_session", ["version_id"], unique=False)
    op.drop_index("ix_chat_session_user_id", table_name="chat_session")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_column("user_id")
