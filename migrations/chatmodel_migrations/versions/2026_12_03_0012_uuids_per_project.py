"""Session and message uuids unique per project, not across the server.

Another project's sessions and messages are as if they did not exist, so their uuids must
not stand in the way of yours. Each row keeps ``id`` as its own key (what messages and runs
reference) and gains ``uuid``, the one the API shows and takes, unique per project:

* ``chat_session.uuid``: filled with ``id`` for the sessions stored so far (their uuids do
  not change); unique with ``project_id``.
* ``session_message.project_id`` (the session's) and ``session_message.uuid`` (filled with
  ``id``); unique together.

Downgrading needs every row's ``uuid`` to equal its ``id`` (as before this revision):
sessions and messages stored since are known by uuids the old schema cannot hold, so the
downgrade refuses while any exist rather than give them other uuids.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uuid", sa.Uuid(), nullable=True))
    op.execute("UPDATE chat_session SET uuid = id")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.alter_column("uuid", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_chat_session_project_id_uuid"), ["project_id", "uuid"]
        )

    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uuid", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("project_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE session_message SET uuid = id, project_id = (SELECT chat_session.project_id"
        " FROM chat_session WHERE chat_session.id = session_message.session_id)"
    )
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.alter_column("uuid", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("project_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_session_message_project_id_project"),
            "project",
            ["project_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_session_message_project_id_uuid"), ["project_id", "uuid"]
        )


def downgrade() -> None:
    connection = op.get_bind()
    for table in ("chat_session", "session_message"):
        renamed = connection.scalar(sa.text(f"SELECT count(*) FROM {table} WHERE uuid != id"))
        if renamed:
            raise RuntimeError(
                f"{renamed} rows of {table} have a uuid other than their id (stored since "
                "revision 0012); the schema before it cannot hold them. Delete them first "
                "or stay on 0012."
            )
    with op.batch_alter_table("session_message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_session_message_project_id_uuid"), type_="unique")
        batch_op.drop_constraint(
            batch_op.f("fk_session_message_project_id_project"), type_="foreignkey"
        )
        batch_op.drop_column("project_id")
        batch_op.drop_column("uuid")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_chat_session_project_id_uuid"), type_="unique")
        batch_op.drop_column("uuid")
