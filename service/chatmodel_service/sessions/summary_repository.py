"""All SQL for a session's summaries (context_strategy summarize): the newest one, the
messages dropped since it, storing the next, and listing them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import SessionMessage, SessionSummary


class SummaryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest(self, session_id: uuid.UUID) -> SessionSummary | None:
        """The summary a run uses: the session's newest (one probe of its index)."""
        result = await self.session.execute(
            select(SessionSummary)
            .where(SessionSummary.session_id == session_id)
            .order_by(SessionSummary.created_at.desc(), SessionSummary.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def dropped_between(
        self, session_id: uuid.UUID, after_seq: int, through_seq: int, limit: int
    ) -> list[SessionMessage]:
        """Up to ``limit`` of the newest messages a run would send (superseded replies
        skipped) with ``after_seq < seq <= through_seq``, oldest first: a range scan of
        the (session_id, seq) index, bounded however long the session is."""
        result = await self.session.execute(
            select(SessionMessage)
            .where(
                SessionMessage.session_id == session_id,
                SessionMessage.superseded_at.is_(None),
                SessionMessage.seq > after_seq,
                SessionMessage.seq <= through_seq,
            )
            .order_by(SessionMessage.seq.desc())
            .limit(limit)
        )
        return list(reversed(result.scalars().all()))

    async def add(self, session_id: uuid.UUID, **fields: Any) -> SessionSummary:
        summary = SessionSummary(id=uuid.uuid4(), session_id=session_id, **fields)
        self.session.add(summary)
        await self.session.flush()
        return summary

    async def list_for(self, session_id: uuid.UUID, limit: int) -> list[SessionSummary]:
        """The session's summaries, newest first."""
        result = await self.session.execute(
            select(SessionSummary)
            .where(SessionSummary.session_id == session_id)
            .order_by(SessionSummary.created_at.desc(), SessionSummary.id.desc())
            .limit(limit)
        )
        return list(result.scalars())
