"""All SQL for run records."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.sessions.repository import SessionRepository


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, run: ChatRun, reply: dict[str, Any] | None) -> None:
        """Store the run and, if it succeeded, its reply, in the caller's transaction."""
        self.session.add(run)
        await self.session.flush()
        if reply is not None:
            await SessionRepository(self.session).append_reply({**reply, "run_id": run.id})

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
