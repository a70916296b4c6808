"""All SQL for sessions and their messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.db import execute_core
from chatmodel_service.models import ChatModel, ChatModelVersion, ChatSession, SessionMessage
from chatmodel_service.sessions.metadata import metadata_user_id


@dataclass(frozen=True)
class LoadedSession:
    session: ChatSession
    version: ChatModelVersion
    chat_model: ChatModel


_SESSION_TABLE = cast(Table, ChatSession.__table__)
_sessions = _SESSION_TABLE.c
_MESSAGE_TABLE = cast(Table, SessionMessage.__table__)
_messages = _MESSAGE_TABLE.c

# A run's writes, built once (Core, bind parameters by name; see db.execute_core).
_TAKE_LEASE = (
    update(_SESSION_TABLE)
    .where(
        _sessions.id == bindparam("session_id"),
        or_(_sessions.lease_run_id.is_(None), _sessions.lease_expires_at < bindparam("now")),
    )
    .values(lease_run_id=bindparam("run_id"), lease_expires_at=bindparam("until"))
)
_RENEW_LEASE = (
    update(_SESSION_TABLE)
    .where(_sessions.id == bindparam("session_id"), _sessions.lease_run_id == bindparam("run_id"))
    .values(lease_expires_at=bindparam("until"))
)
_RELEASE_LEASE = (
    update(_SESSION_TABLE)
    .where(_sessions.id == bindparam("session_id"), _sessions.lease_run_id == bindparam("run_id"))
    .values(lease_run_id=None, lease_expires_at=None)
)
_SUPERSEDE = (
    update(_MESSAGE_TABLE)
    .where(_messages.id == bindparam("message_id"))
    .values(superseded_at=bindparam("when"))
)
# One message numbered next in its session: max(seq) + 1 in the same statement.
_APPEND_REPLY = insert(_MESSAGE_TABLE).values(
    seq=select(func.coalesce(func.max(_messages.seq), 0) + 1)
    .where(_messages.session_id == bindparam("numbered_in"))
    .scalar_subquery()
)


def _with_version() -> Any:
    """Sessions with their pinned version and their chat model, joined."""
    return (
        select(ChatSession, ChatModelVersion, ChatModel)
        .join(ChatModelVersion, ChatModelVersion.id == ChatSession.version_id)
        .join(ChatModel, ChatModel.id == ChatSession.chat_model_id)
    )


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_with_version(
        self, project_id: uuid.UUID, session_uuid: uuid.UUID, *, lock: bool = False
    ) -> LoadedSession | None:
        """The project's session known by ``session_uuid`` (the API's uuid, unique per
        project) with its pinned version and chat model, in one query. ``lock``: the
        session's row stays locked until the transaction ends (see ``lock``)."""
        query = _with_version().where(
            ChatSession.project_id == project_id, ChatSession.uuid == session_uuid
        )
        if lock:
            query = query.with_for_update(of=ChatSession)
        row = (await self.session.execute(query)).one_or_none()
        return LoadedSession(*row) if row is not None else None

    async def get_by_id(self, session_id: uuid.UUID) -> LoadedSession | None:
        """The session with this row id, with its pinned version and chat model."""
        row = (
            await self.session.execute(_with_version().where(ChatSession.id == session_id))
        ).one_or_none()
        return LoadedSession(*row) if row is not None else None

    async def repin(
        self,
        session_id: uuid.UUID,
        chat_model_id: uuid.UUID,
        version_id: uuid.UUID,
        variables: dict[str, str] | None,
    ) -> None:
        """Pin the session to another version (of any of the project's chat models)."""
        await self.session.execute(
            update(ChatSession)
            .where(ChatSession.id == session_id)
            .values(chat_model_id=chat_model_id, version_id=version_id, variables=variables)
        )

    async def set_metadata(self, session_id: uuid.UUID, metadata: dict[str, Any]) -> None:
        """Replace the session's metadata (and the ``user_id`` the listing reads from it)."""
        await self.session.execute(
            update(ChatSession)
            .where(ChatSession.id == session_id)
            .values(meta=metadata, user_id=metadata_user_id(metadata))
        )

    async def exists(self, session_id: uuid.UUID) -> bool:
        """Whether the session with this row id is still stored."""
        found = await self.session.scalar(
            select(ChatSession.id).where(ChatSession.id == session_id)
        )
        return found is not None

    async def lock(self, session_id: uuid.UUID) -> None:
        """Serialize writers of one session until this transaction ends: every write that
        numbers messages or moves the run lease takes this first. PostgreSQL: a row lock
        (SELECT ... FOR UPDATE). SQLite: write transactions begin IMMEDIATE, which
        serializes them already (FOR UPDATE is not SQLite syntax and is left out)."""
        await self.session.execute(
            select(ChatSession.id).where(ChatSession.id == session_id).with_for_update()
        )

    async def take_lease(
        self, session_id: uuid.UUID, run_id: uuid.UUID, now: datetime, until: datetime
    ) -> bool:
        """Give the session to ``run_id`` if no run holds it or the holder's lease lapsed."""
        parameters = {"session_id": session_id, "run_id": run_id, "now": now, "until": until}
        return bool((await execute_core(self.session, _TAKE_LEASE, parameters)).rowcount)

    async def renew_lease(self, session_id: uuid.UUID, run_id: uuid.UUID, until: datetime) -> bool:
        parameters = {"session_id": session_id, "run_id": run_id, "until": until}
        return bool((await execute_core(self.session, _RENEW_LEASE, parameters)).rowcount)

    async def release_lease(self, session_id: uuid.UUID, run_id: uuid.UUID) -> bool:
        """Free the session if ``run_id`` holds it; False if it does not (any more). On
        PostgreSQL the update also locks the session's row until the transaction ends,
        as ``lock`` does."""
        parameters = {"session_id": session_id, "run_id": run_id}
        return bool((await execute_core(self.session, _RELEASE_LEASE, parameters)).rowcount)

    async def lapsed_leases(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(session, run) of every lease that lapsed: runs whose server stopped."""
        rows = await self.session.execute(
            select(ChatSession.id, ChatSession.lease_run_id).where(
                ChatSession.lease_run_id.is_not(None), ChatSession.lease_expires_at < now
            )
        )
        return [(session_id, run_id) for session_id, run_id in rows if run_id is not None]

    async def next_lease_expiry(self) -> datetime | None:
        """When the first lease held now runs out (unless renewed first)."""
        query = select(func.min(ChatSession.lease_expires_at)).where(
            ChatSession.lease_run_id.is_not(None)
        )
        return cast("datetime | None", await self.session.scalar(query))

    async def add_unless_exists(self, chat_session: ChatSession) -> bool:
        """Insert the session; False (and nothing inserted) if its uuid was taken in its
        project meanwhile by a concurrent transaction (the insert runs in a savepoint).
        Its ``user_id`` column is set here from its metadata, for every new session."""
        chat_session.user_id = metadata_user_id(chat_session.meta)
        try:
            async with self.session.begin_nested():
                self.session.add(chat_session)
        except IntegrityError:
            return False
        return True

    async def all_messages(self, session_id: uuid.UUID) -> list[SessionMessage]:
        result = await self.session.execute(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id)
            .order_by(SessionMessage.seq)
        )
        return list(result.scalars())

    async def prompt_messages(self, session_id: uuid.UUID) -> list[SessionMessage]:
        """The messages a run sends: all but regenerated (superseded) replies, in order."""
        result = await self.session.execute(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id, SessionMessage.superseded_at.is_(None))
            .order_by(SessionMessage.seq)
        )
        return list(result.scalars())

    async def prompt_tail(
        self, session_id: uuid.UUID, before_seq: int | None, limit: int
    ) -> list[SessionMessage]:
        """Up to ``limit`` of the messages a run sends (superseded replies skipped) with
        ``seq < before_seq``, newest first: a backward range scan of the (session_id, seq)
        index, so a run reads its window, not the whole history."""
        query = select(SessionMessage).where(
            SessionMessage.session_id == session_id, SessionMessage.superseded_at.is_(None)
        )
        if before_seq is not None:
            query = query.where(SessionMessage.seq < before_seq)
        result = await self.session.execute(query.order_by(SessionMessage.seq.desc()).limit(limit))
        return list(result.scalars())

    async def count_prompt_messages_before(self, session_id: uuid.UUID, seq: int) -> int:
        """How many messages a run would send (superseded replies skipped) before ``seq``,
        without reading them: a session's messages are numbered 1, 2, 3, ... without gaps
        (adds and replies take the next number, a fork copies a prefix with its numbers,
        messages are only ever deleted with their session), so ``seq - 1`` of them come
        before ``seq``; less the superseded ones, counted on their partial index, which
        holds only superseded replies (one per regeneration)."""
        superseded = await self.session.scalar(
            select(func.count()).where(
                SessionMessage.session_id == session_id,
                SessionMessage.seq < seq,
                SessionMessage.superseded_at.is_not(None),
            )
        )
        return seq - 1 - int(superseded or 0)

    async def has_user_message_before(self, session_id: uuid.UUID, seq: int) -> bool:
        """Whether a user message comes before ``seq``: one probe of the partial index of
        the session's user messages. (``role = 'user'`` is written out, not bound: a
        database uses a partial index only for a query whose own condition implies the
        index's, which a bound parameter cannot.)"""
        found = await self.session.scalar(
            select(SessionMessage.seq)
            .where(
                SessionMessage.session_id == session_id,
                SessionMessage.seq < seq,
                SessionMessage.role == literal_column("'user'"),
                SessionMessage.superseded_at.is_(None),
            )
            .order_by(SessionMessage.seq.desc())
            .limit(1)
        )
        return found is not None

    async def last_message(self, session_id: uuid.UUID) -> SessionMessage | None:
        """The newest message that a run would send (superseded replies skipped)."""
        return await self.session.scalar(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id, SessionMessage.superseded_at.is_(None))
            .order_by(SessionMessage.seq.desc())
            .limit(1)
        )

    async def supersede(self, message_id: uuid.UUID, when: datetime) -> None:
        await execute_core(self.session, _SUPERSEDE, {"message_id": message_id, "when": when})

    async def message_window(
        self,
        session_id: uuid.UUID,
        after: int | None,
        before: int | None,
        limit: int,
        *,
        newest_first: bool,
    ) -> list[SessionMessage]:
        """Up to ``limit`` messages with ``after < seq < before`` (either bound optional),
        taken from the newest or the oldest end of that range and returned in the order
        read: one range scan of the (session_id, seq) index, never the whole history."""
        query = select(SessionMessage).where(SessionMessage.session_id == session_id)
        if after is not None:
            query = query.where(SessionMessage.seq > after)
        if before is not None:
            query = query.where(SessionMessage.seq < before)
        order = SessionMessage.seq.desc() if newest_first else SessionMessage.seq
        result = await self.session.execute(query.order_by(order).limit(limit))
        return list(result.scalars())

    async def messages_by_uuid(
        self, project_id: uuid.UUID, uuids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, SessionMessage]:
        """The project's messages known by these uuids (unique per project), by uuid."""
        if not uuids:
            return {}
        result = await self.session.execute(
            select(SessionMessage).where(
                SessionMessage.project_id == project_id, SessionMessage.uuid.in_(uuids)
            )
        )
        return {m.uuid: m for m in result.scalars()}

    async def tail_since_last_assistant(self, session_id: uuid.UUID) -> list[SessionMessage]:
        """The newest assistant message and everything after it (empty if none)."""
        last_assistant = (
            select(func.max(SessionMessage.seq))
            .where(SessionMessage.session_id == session_id, SessionMessage.role == "assistant")
            .scalar_subquery()
        )
        result = await self.session.execute(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id, SessionMessage.seq >= last_assistant)
            .order_by(SessionMessage.seq)
        )
        return list(result.scalars())

    async def last_seq(self, session_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            select(func.coalesce(func.max(SessionMessage.seq), 0)).where(
                SessionMessage.session_id == session_id
            )
        )
        return int(value or 0)

    async def append(self, messages: list[SessionMessage]) -> None:
        """Insert messages whose ``seq`` the caller numbered after ``last_seq``."""
        self.session.add_all(messages)
        await self.session.flush()

    async def append_reply(self, values: dict[str, Any]) -> None:
        """Insert one message numbered next in its session, in a single statement."""
        await execute_core(
            self.session, _APPEND_REPLY, {**values, "numbered_in": values["session_id"]}
        )
