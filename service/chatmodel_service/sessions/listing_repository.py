"""All SQL for the admin listing of sessions: a filtered page, newest first, and the
figures its rows show, each read for the whole page in one query.

Which index each filter reads (revision 0018): ``user_id`` (project_id, user_id,
created_at); ``version`` (version_id, created_at); a chat model (chat_model_id,
created_at); none of them (project_id, created_at). ``has_errors`` probes the partial
index of failed runs once per session it considers. ``text`` has no index: it reads the
messages of each session the other filters leave, newest session first, until the page
is full, so a rare text over many sessions reads many messages (narrow it with the other
filters)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnClause

from chatmodel_service.models import (
    ChatModel,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    SessionMessage,
)
from chatmodel_service.sessions.repository import LoadedSession

# Written out, not bound: a database uses a partial index only for a query whose own
# condition implies the index's, which a bound parameter cannot.
_FAILED: ColumnClause[str] = literal_column("'failed'")
_USER: ColumnClause[str] = literal_column("'user'")


@dataclass(frozen=True)
class SessionCriteria:
    """What a page of the listing holds: the project's sessions matching every field set
    (names already resolved to row ids)."""

    project_id: uuid.UUID
    chat_model_id: uuid.UUID | None = None
    version_id: uuid.UUID | None = None
    user_id: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    has_errors: bool | None = None  # a failed run (True), none (False), either (None)
    text: str | None = None  # in some message's content, case-insensitively


@dataclass(frozen=True)
class RunCounts:
    runs: int
    failed: int


def _conditions(criteria: SessionCriteria) -> list[Any]:
    conditions: list[Any] = [ChatSession.project_id == criteria.project_id]
    if criteria.chat_model_id is not None:
        conditions.append(ChatSession.chat_model_id == criteria.chat_model_id)
    if criteria.version_id is not None:
        conditions.append(ChatSession.version_id == criteria.version_id)
    if criteria.user_id is not None:
        conditions.append(ChatSession.user_id == criteria.user_id)
    if criteria.created_after is not None:
        conditions.append(ChatSession.created_at >= criteria.created_after)
    if criteria.created_before is not None:
        conditions.append(ChatSession.created_at < criteria.created_before)
    if criteria.has_errors is not None:
        failed = exists().where(ChatRun.session_id == ChatSession.id, ChatRun.status == _FAILED)
        conditions.append(failed if criteria.has_errors else ~failed)
    if criteria.text is not None:
        # lower(content) LIKE '%' || lower(text) || '%', with % _ / in the text escaped.
        conditions.append(
            exists().where(
                SessionMessage.session_id == ChatSession.id,
                SessionMessage.content.icontains(criteria.text, autoescape=True),
            )
        )
    return conditions


class SessionListingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        criteria: SessionCriteria,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[LoadedSession]:
        """Matching sessions newest first, ordered by (created_at, id) and strictly after
        ``before`` in that order, so later inserts never shift a page."""
        query = (
            select(ChatSession, ChatModelVersion, ChatModel)
            .join(ChatModelVersion, ChatModelVersion.id == ChatSession.version_id)
            .join(ChatModel, ChatModel.id == ChatSession.chat_model_id)
            .where(*_conditions(criteria))
            .order_by(ChatSession.created_at.desc(), ChatSession.id.desc())
            .limit(limit)
        )
        if before is not None:
            created_at, session_id = before
            query = query.where(
                or_(
                    ChatSession.created_at < created_at,
                    and_(ChatSession.created_at == created_at, ChatSession.id < session_id),
                )
            )
        return [LoadedSession(*row) for row in await self.session.execute(query)]

    async def message_summaries(
        self, session_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[int, datetime | None]]:
        """Per session: how many messages, and when the newest was stored."""
        if not session_ids:
            return {}
        rows = await self.session.execute(
            select(SessionMessage.session_id, func.count(), func.max(SessionMessage.created_at))
            .where(SessionMessage.session_id.in_(session_ids))
            .group_by(SessionMessage.session_id)
        )
        return {session_id: (int(count), last) for session_id, count, last in rows}

    async def run_counts(self, session_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RunCounts]:
        """Per session with runs: how many, and how many of them failed."""
        if not session_ids:
            return {}
        rows = await self.session.execute(
            select(
                ChatRun.session_id,
                func.count(),
                func.count(case((ChatRun.status == _FAILED, 1))),
            )
            .where(ChatRun.session_id.in_(session_ids))
            .group_by(ChatRun.session_id)
        )
        return {
            session_id: RunCounts(int(runs), int(failed))
            for session_id, runs, failed in rows
            if session_id is not None
        }

    async def first_user_messages(
        self, session_ids: Sequence[uuid.UUID], length: int
    ) -> dict[uuid.UUID, str | None]:
        """Per session with a user message: the first one's content, its first ``length``
        characters only (cut by the database: a long message is not read whole)."""
        if not session_ids:
            return {}
        firsts = (
            select(SessionMessage.session_id, func.min(SessionMessage.seq).label("seq"))
            .where(SessionMessage.session_id.in_(session_ids), SessionMessage.role == _USER)
            .group_by(SessionMessage.session_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(SessionMessage.session_id, func.substr(SessionMessage.content, 1, length)).join(
                firsts,
                and_(
                    SessionMessage.session_id == firsts.c.session_id,
                    SessionMessage.seq == firsts.c.seq,
                ),
            )
        )
        return {session_id: content for session_id, content in rows}
