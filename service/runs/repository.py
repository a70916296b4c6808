"""All SQL for run records."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.sessions.repository import SessionRepository


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

    async def add(self, run: ChatRun) -> None:
        self.session.add(run)
        await self.session.flush()

    async def by_idempotency_key(self, session_id: uuid.UUID, key: str) -> ChatRun | None:
        return await self.session.scalar(
            select(ChatRun).where(ChatRun.session_id == session_id, ChatRun.idempotency_key == key)
        )

    async def finish(self, run_id: uuid.UUID, values: dict[str, Any]) -> bool:
        """Write a running run's outcome; False if it is no longer running (it was given
        up as interrupted when its lease lapsed)."""
        result = await self.session.execute(
            update(ChatRun)
            .where(ChatRun.id == run_id, ChatRun.status == "running")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def list_for_session(
        self, session_id: uuid.UUID
    ) -> list[tuple[ChatRun, int, uuid.UUID | None]]:
        """Runs oldest first, with their version number and reply message id (if any)."""
        rows = await self.session.execute(
            select(ChatRun, ChatModelVersion.number, SessionMessage.id)
            .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
            .outerjoin(SessionMessage, SessionMessage.run_id == ChatRun.id)
            .where(ChatRun.session_id == session_id)
            .order_by(ChatRun.created_at, ChatRun.id)
        )
        return [(run, int(number), message_id) for run, number, message_id in rows]
