"""A session's stored summaries (context_strategy summarize, written by
``runs.summaries``), as ``GET /v1/sessions/{uuid}/summaries`` lists them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import SessionSummary
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.schemas import SummaryList, SummaryOut
from chatmodel_service.sessions.service import require_session
from chatmodel_service.sessions.summary_repository import SummaryRepository


def summary_out(row: SessionSummary) -> SummaryOut:
    return SummaryOut(
        uuid=row.id,
        covers_through_seq=row.covers_through_seq,
        content=row.content,
        model=row.model,
        tokens=row.token_count,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        created_at=row.created_at,
    )


async def list_summaries(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID, limit: int
) -> SummaryList:
    loaded = await require_session(SessionRepository(db), project_id, session_uuid)
    rows = await SummaryRepository(db).list_for(loaded.session.id, limit)
    return SummaryList(data=[summary_out(row) for row in rows])
