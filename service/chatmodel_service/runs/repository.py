"""All SQL for run records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.db import execute_core
from chatmodel_service.models import (
    ChatModel,
    ChatModelVersion,
    ChatRun,
    RunEventBatch,
    SessionMessage,
)
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository

_RUN_TABLE = cast(Table, ChatRun.__table__)
_runs = _RUN_TABLE.c
# Built once (see db.execute_core). _FINISH sets the columns its parameters name.
_START = insert(_RUN_TABLE)
_ADD_EVENTS = insert(cast(Table, RunEventBatch.__table__))
_FINISH = update(_RUN_TABLE).where(_runs.id == bindparam("finishing"), _runs.status == "running")
_LEAVE_QUEUE = update(_RUN_TABLE).where(
    _runs.id == bindparam("finishing"), _runs.status == "queued"
)


@dataclass(frozen=True)
class StoredRun:
    """A session's run with its version, its session and its stored reply (if any)."""

    run: ChatRun
    version: ChatModelVersion
    session: LoadedSession
    reply: SessionMessage | None


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, run: ChatRun, reply: dict[str, Any] | None) -> None:
        """Store a finished run and, if it succeeded, its reply, in the caller's
        transaction (runs without a session are recorded this way, once, at the end)."""
        self.session.add(run)
        await self.session.flush()
        if reply is not None:
            await SessionRepository(self.session).append_reply({**reply, "run_id": run.id})

    async def start(self, values: dict[str, Any]) -> None:
        """Insert a run record (a ``running`` one: its outcome comes with ``finish``)."""
        await execute_core(self.session, _START, values)

    async def by_idempotency_key(self, session_id: uuid.UUID, key: str) -> ChatRun | None:
        return await self.session.scalar(
            select(ChatRun).where(ChatRun.session_id == session_id, ChatRun.idempotency_key == key)
        )

    async def finish(self, run_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Write a running run's outcome; False if it is no longer running (it was given
        up as interrupted when its lease lapsed)."""
        parameters = {**values, "finishing": run_id}
        return bool((await execute_core(self.session, _FINISH, parameters)).rowcount)

    async def leave_queue(self, run_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Write a queued run's new state (running, or its end); False if it is no longer
        queued (it was cancelled or given up)."""
        parameters = {**values, "queued_until": None, "finishing": run_id}
        return bool((await execute_core(self.session, _LEAVE_QUEUE, parameters)).rowcount)

    async def vouch(self, run_id: uuid.UUID, until: datetime) -> bool:
        """Keep a queued run in its queue until ``until``; False if it left it."""
        result = await self.session.execute(
            update(ChatRun)
            .where(ChatRun.id == run_id, ChatRun.status == "queued")
            .values(queued_until=until)
        )
        return bool(getattr(result, "rowcount", 0))

    def _live_queue(self, session_id: uuid.UUID, now: datetime) -> Any:
        return select(ChatRun.id).where(
            ChatRun.session_id == session_id,
            ChatRun.status == "queued",
            ChatRun.queued_until >= now,
        )

    async def first_queued(self, session_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
        """The session's oldest queued run whose process still vouches for it."""
        query = self._live_queue(session_id, now).order_by(ChatRun.created_at, ChatRun.id)
        return cast("uuid.UUID | None", await self.session.scalar(query.limit(1)))

    async def queue_position(self, run: ChatRun, now: datetime) -> int:
        """1 for the next queued run of its session, 2 for the one after it, ..."""
        ahead = self._live_queue(cast(uuid.UUID, run.session_id), now).where(
            (ChatRun.created_at < run.created_at)
            | ((ChatRun.created_at == run.created_at) & (ChatRun.id < run.id))
        )
        count = await self.session.scalar(select(func.count()).select_from(ahead.subquery()))
        return int(count or 0) + 1

    async def lapsed_queued(self, now: datetime) -> list[uuid.UUID]:
        """Queued runs whose process stopped vouching for them (it died)."""
        rows = await self.session.scalars(
            select(ChatRun.id).where(ChatRun.status == "queued", ChatRun.queued_until < now)
        )
        return list(rows)

    async def next_queue_expiry(self) -> datetime | None:
        """When the first queued run's process stops vouching for it (unless it renews)."""
        query = select(func.min(ChatRun.queued_until)).where(ChatRun.status == "queued")
        return cast("datetime | None", await self.session.scalar(query))

    async def cancellation(self, run_id: uuid.UUID) -> str | None:
        """The ``error_log`` of a run that was cancelled; None if it was not."""
        row = (
            await self.session.execute(
                select(ChatRun.status, ChatRun.error_log).where(ChatRun.id == run_id)
            )
        ).one_or_none()
        if row is None or row[0] != "cancelled":
            return None
        return str(row[1] or "")

    async def list_for_session(
        self,
        session_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int | None = None,
    ) -> list[tuple[ChatRun, int, uuid.UUID | None]]:
        """Runs oldest first, with their version number and reply's uuid (if any): all of
        them, or up to ``limit`` of those strictly after ``after`` in (created_at, id)
        order, read along the (session_id, created_at) index."""
        query = (
            select(ChatRun, ChatModelVersion.number, SessionMessage.uuid)
            .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
            .outerjoin(SessionMessage, SessionMessage.run_id == ChatRun.id)
            .where(ChatRun.session_id == session_id)
            .order_by(ChatRun.created_at, ChatRun.id)
            .limit(limit)
        )
        if after is not None:
            created_at, run_id = after
            query = query.where(
                (ChatRun.created_at > created_at)
                | ((ChatRun.created_at == created_at) & (ChatRun.id > run_id))
            )
        rows = await self.session.execute(query)
        return [(run, int(number), message_uuid) for run, number, message_uuid in rows]

    async def session_run(self, project_id: uuid.UUID, run_id: uuid.UUID) -> StoredRun | None:
        """The project's run ``run_id`` made on a session, read afresh (what this
        transaction wrote included)."""
        row = (
            await self.session.execute(
                select(ChatRun, ChatModelVersion)
                .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
                .join(ChatModel, ChatModel.id == ChatModelVersion.chat_model_id)
                .where(ChatRun.id == run_id, ChatModel.project_id == project_id)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if row is None or row[0].session_id is None:
            return None
        run, version = row
        loaded = await SessionRepository(self.session).get_by_id(row[0].session_id)
        if loaded is None:
            return None
        reply = await self.session.scalar(
            select(SessionMessage).where(SessionMessage.run_id == run.id).limit(1)
        )
        return StoredRun(run, version, loaded, reply)


@dataclass(frozen=True)
class RunProgress:
    """What a stream's reader needs to know of a run it follows."""

    status: str
    finished_at: datetime | None
    stream_format: str | None  # null: the run keeps no events


class RunEventRepository:
    """A run's kept server-sent events (``events.py``)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, batches: list[dict[str, Any]]) -> None:
        """Insert batches (run_id, first_seq, last_seq, frames, final, created_at)."""
        connection = await self.session.connection()
        await connection.execute(_ADD_EVENTS, batches)

    async def after(self, run_id: uuid.UUID, seq: int) -> list[RunEventBatch]:
        """The run's batches holding events from ``seq`` on, and its final one (which
        may hold none), in order."""
        rows = await self.session.scalars(
            select(RunEventBatch)
            .where(
                RunEventBatch.run_id == run_id,
                (RunEventBatch.last_seq >= seq) | RunEventBatch.final.is_(True),
            )
            .order_by(RunEventBatch.first_seq)
        )
        return list(rows)

    async def progress(self, run_id: uuid.UUID) -> RunProgress | None:
        row = (
            await self.session.execute(
                select(ChatRun.status, ChatRun.finished_at, ChatRun.stream_format).where(
                    ChatRun.id == run_id
                )
            )
        ).one_or_none()
        return RunProgress(row[0], row[1], row[2]) if row is not None else None

    async def prune(self, ended_before: datetime, abandoned_before: datetime) -> int:
        """Delete the events of runs whose last events were written before
        ``ended_before``, and any batch older than ``abandoned_before`` (runs whose
        server died before their end was written)."""
        ended = select(RunEventBatch.run_id).where(
            RunEventBatch.final.is_(True), RunEventBatch.created_at < ended_before
        )
        result = await self.session.execute(
            delete(RunEventBatch).where(
                RunEventBatch.run_id.in_(ended) | (RunEventBatch.created_at < abandoned_before)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
