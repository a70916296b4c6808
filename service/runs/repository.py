"""All SQL for run records."""

from __future__ import annotations

from typing import Any

from chatmodel_service.models import ChatRun
from chatmodel_service.sessions.repository import SessionRepository
from sqlalchemy.ext.asyncio import AsyncSession


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, run: ChatRun, reply: dict[str, Any] | None) -> None:
        """Store the run and, if it succeeded, its reply, in the caller's transaction."""
        self.session.add(run)
        await self.session.flush()
        if reply is not None:
            await SessionRepository(self.session).append_reply({**reply, "run_id": run.id})
