"""All SQL for a session's life beyond its messages: copying a prefix into a fork,
deleting sessions with everything that belongs to them, and finding sessions past their
chat model's retention. Every statement is set-based: no row is read to be written back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    Uuid,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from chatmodel_service.models import ChatRun, ChatSession, SessionMessage


class random_uuid(FunctionElement[uuid.UUID]):
    """A new random (version 4) UUID per row, computed by the database."""

    type = Uuid()
    inherit_cache = True


@compiles(random_uuid, "postgresql")
def _random_uuid_postgresql(element: random_uuid, compiler: SQLCompiler, **kw: Any) -> str:
    return "gen_random_uuid()"


@compiles(random_uuid, "sqlite")
def _random_uuid_sqlite(element: random_uuid, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores a Uuid as 32 hex digits: random ones, with the version-4 and
    # variant bits set where RFC 9562 puts them.
    return (
        "lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2)"
        " || substr('89ab', 1 + (abs(random()) % 4), 1)"
        " || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))"
    )


# Columns a fork does not copy: its own id, uuid and session, and the run (runs stay
# with the original session).
_NOT_COPIED = frozenset({"id", "uuid", "session_id", "run_id"})


@dataclass(frozen=True)
class Deleted:
    sessions: int = 0
    messages: int = 0
    runs: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(
            self.sessions + other.sessions,
            self.messages + other.messages,
            self.runs + other.runs,
        )


@dataclass(frozen=True)
class IdleSession:
    """A session idle since before a retention cutoff; ``busy`` if a run holds it."""

    id: uuid.UUID
    created_at: datetime
    busy: bool


def lease_is_live(now: datetime) -> ColumnElement[bool]:
    """A run holds the session: its lease has not lapsed (as ``claim_session`` decides).
    Never NULL, so its negation means "no run holds it"."""
    return and_(
        ChatSession.lease_run_id.is_not(None),
        ChatSession.lease_expires_at.is_not(None),
        ChatSession.lease_expires_at >= now,
    )


def idle_since(cutoff: datetime) -> ColumnElement[bool]:
    """Nothing happened in the session since ``cutoff``: it was created before, and its
    newest message too (a fork's copied messages may be older than the fork itself). The
    newest message is one probe of the (session_id, seq) index, never a scan."""
    newest_message = (
        select(SessionMessage.created_at)
        .where(SessionMessage.session_id == ChatSession.id)
        .order_by(SessionMessage.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    return and_(
        ChatSession.created_at < cutoff,
        or_(newest_message.is_(None), newest_message < cutoff),
    )


class SessionLifecycleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def message_seq(self, session_id: uuid.UUID, message_uuid: uuid.UUID) -> int | None:
        """The seq of the message known by ``message_uuid`` if it is one of the session's."""
        return await self.session.scalar(
            select(SessionMessage.seq).where(
                SessionMessage.uuid == message_uuid, SessionMessage.session_id == session_id
            )
        )

    async def copy_messages(
        self, source_id: uuid.UUID, target_id: uuid.UUID, up_to_seq: int
    ) -> int:
        """Copy the source's messages with ``seq <= up_to_seq`` into the target (a session
        of the same project), in one INSERT ... SELECT: new ids and uuids, the same seq
        and every other column (superseded flags included), no run. Returns how many were
        copied."""
        table = SessionMessage.__table__
        assert isinstance(table, Table)
        copied = [column for column in table.columns if column.name not in _NOT_COPIED]
        rows = select(random_uuid(), random_uuid(), literal(target_id, Uuid()), *copied).where(
            table.c.session_id == source_id, table.c.seq <= up_to_seq
        )
        result = await self.session.execute(
            insert(table).from_select([table.c.id, table.c.uuid, table.c.session_id, *copied], rows)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_sessions(self, session_ids: Sequence[uuid.UUID]) -> Deleted:
        """Delete the sessions, their messages and their runs. Messages go first: replies
        reference their runs (without ON DELETE CASCADE), so runs can only go after them."""
        if not session_ids:
            return Deleted()
        ids = list(session_ids)
        messages = await self.session.execute(
            delete(SessionMessage)
            .where(SessionMessage.session_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        runs = await self.session.execute(
            delete(ChatRun)
            .where(ChatRun.session_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        sessions = await self.session.execute(
            delete(ChatSession)
            .where(ChatSession.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        return Deleted(
            sessions=int(sessions.rowcount),  # type: ignore[attr-defined]
            messages=int(messages.rowcount),  # type: ignore[attr-defined]
            runs=int(runs.rowcount),  # type: ignore[attr-defined]
        )

    async def contents(self, session_ids: Sequence[uuid.UUID]) -> Deleted:
        """What ``delete_sessions`` would delete, counted on the session indexes."""
        if not session_ids:
            return Deleted()
        ids = list(session_ids)
        messages = await self.session.scalar(
            select(func.count()).where(SessionMessage.session_id.in_(ids))
        )
        runs = await self.session.scalar(select(func.count()).where(ChatRun.session_id.in_(ids)))
        return Deleted(sessions=len(ids), messages=int(messages or 0), runs=int(runs or 0))

    async def idle_sessions(
        self,
        chat_model_id: uuid.UUID,
        cutoff: datetime,
        now: datetime,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        *,
        lock: bool,
    ) -> list[IdleSession]:
        """The chat model's next ``limit`` sessions idle since ``cutoff``, in (created_at,
        id) order after ``after``, on the (chat_model_id, created_at) index. ``lock``:
        PostgreSQL locks them for this transaction, skipping sessions another writer holds
        (they are in use, so not idle)."""
        query = (
            select(ChatSession.id, ChatSession.created_at, lease_is_live(now))
            .where(ChatSession.chat_model_id == chat_model_id, idle_since(cutoff))
            .order_by(ChatSession.created_at, ChatSession.id)
            .limit(limit)
        )
        if after is not None:
            created_at, session_id = after
            query = query.where(
                or_(
                    ChatSession.created_at > created_at,
                    and_(ChatSession.created_at == created_at, ChatSession.id > session_id),
                )
            )
        if lock:
            query = query.with_for_update(of=ChatSession, skip_locked=True)
        rows = await self.session.execute(query)
        return [
            IdleSession(session_id, created_at, bool(busy)) for session_id, created_at, busy in rows
        ]

    async def still_idle(
        self, session_ids: Sequence[uuid.UUID], cutoff: datetime, now: datetime
    ) -> list[uuid.UUID]:
        """Of ``session_ids`` (locked by this transaction), those still idle and free of
        runs, read afresh: a message committed while the lock was awaited counts."""
        if not session_ids:
            return []
        rows = await self.session.scalars(
            select(ChatSession.id).where(
                ChatSession.id.in_(list(session_ids)), idle_since(cutoff), ~lease_is_live(now)
            )
        )
        return list(rows)
