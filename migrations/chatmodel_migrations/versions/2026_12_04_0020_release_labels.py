"""Release labels: every release belongs to a named pointer (``production``, ``staging``,
admin-defined ones), each with a publish/split/rollback history of its own.

- ``chat_model_release.label``: existing releases become ``production`` (what "deploy"
  meant until now), so their history, numbers and current release are unchanged.
- ``seq`` stays numbered per chat model across labels (``uq_chat_model_release_chat_model_id_seq``
  is kept): "release 7" names one release of the chat model whichever label it went to.
- ``ix_chat_model_release_chat_model_id_label_seq`` on (chat_model_id, label, seq): a
  label's current release (its highest seq) and its history newest first.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_model_release", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("label", sa.String(length=40), server_default="production", nullable=False)
        )
    op.create_index(
        "ix_chat_model_release_chat_model_id_label_seq",
        "chat_model_release",
        ["chat_model_id", "label", "seq"],
        unique=False,
    )


def downgrade() -> None:
    # Releases of other labels would otherwise become production history (and move what
    # "deploy" means): they are dropped. Sessions made on them keep their pinned versions.
    op.execute(
        "DELETE FROM release_version WHERE release_id IN "
        "(SELECT id FROM chat_model_release WHERE label <> 'production')"
    )
    op.execute("DELETE FROM chat_model_release WHERE label <> 'production'")
    op.drop_index("ix_chat_model_release_chat_model_id_label_seq", table_name="chat_model_release")
    with op.batch_alter_table("chat_model_release", schema=None) as batch_op:
        batch_op.drop_column("label")
