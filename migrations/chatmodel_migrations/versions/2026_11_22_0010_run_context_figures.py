"""What each run sent: the prompt as fitted to the model's input limit.

* ``chat_run.messages_sent`` / ``messages_dropped``: the session's messages in the prompt,
  and those left out because they did not fit (oldest first);
* ``chat_run.prompt_tokens_estimate``: the prompt's tokens as counted before the call
  (system prompt, messages, function/tool schemas).

Null for runs recorded before this revision.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("messages_sent", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("messages_dropped", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prompt_tokens_estimate", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_run", schema=None) as batch_op:
        batch_op.drop_column("prompt_tokens_estimate")
        batch_op.drop_column("messages_dropped")
        batch_op.drop_column("messages_sent")
