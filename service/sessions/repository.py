"""All SQL for sessions and their messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModel, ChatModelVersion, ChatSession, SessionMessage


@dataclass(frozen=True)
class LoadedSession:
    session: ChatSession
    version: ChatModelVersion
    chat_model: ChatModel


def next_seq(session_id: uuid.UUID) -> Any:
    """The session's next sequence number, as a scalar subquery for an INSERT."""
    return (
        select(func.coalesce(func.max(SessionMessage.seq), 0) + 1)
        .where(SessionMessage.session_id == session_id)
        .scalar_subquery()
    )


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_with_version(
        self, project_id: uuid.UUID, session_id: uuid.UUID
    ) -> LoadedSession | None:
        """The session with its pinned version and chat model, in one query."""
        row = (
            await self.session.execute(
                select(ChatSession, ChatModelVersion, ChatModel)
                .join(ChatModelVersion, ChatModelVersion.id == ChatSession.version_id)
                .join(ChatModel, ChatModel.id == ChatSession.chat_model_id)
                .where(ChatSession.id == session_id, ChatSession.project_id == project_id)
            )
        ).one_or_none()
        return LoadedSession(*row) if row is not None else None

    async def page(
        self,
        project_id: uuid.UUID,
        chat_model_id: uuid.UUID | None,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[LoadedSession]:
        """Sessions newest first, ordered by (created_at, id) and strictly after ``before``
        in that order, so later inserts never shift a page."""
        query = (
            select(ChatSession, ChatModelVersion, ChatModel)
            .join(ChatModelVersion, ChatModelVersion.id == ChatSession.version_id)
            .join(ChatModel, ChatModel.id == ChatSession.chat_model_id)
            .where(ChatSession.project_id == project_id)
            .order_by(ChatSession.created_at.desc(), ChatSession.id.desc())
            .limit(limit)
        )
        if chat_model_id is not None:
            query = query.where(ChatSession.chat_model_id == chat_model_id)
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

    async def exists_anywhere(self, session_id: uuid.UUID) -> bool:
        return await self.session.get(ChatSession, session_id) is not None

    async def add(self, chat_session: ChatSession) -> ChatSession:
        self.session.add(chat_session)
        await self.session.flush()
        return chat_session

    async def all_messages(self, session_id: uuid.UUID) -> list[SessionMessage]:
        result = await self.session.execute(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id)
            .order_by(SessionMessage.seq)
        )
        return list(result.scalars())

    async def page_messages(
        self, session_id: uuid.UUID, after: int, limit: int
    ) -> list[SessionMessage]:
        result = await self.session.execute(
            select(SessionMessage)
            .where(SessionMessage.session_id == session_id, SessionMessage.seq > after)
            .order_by(SessionMessage.seq)
            .limit(limit)
        )
        return list(result.scalars())

    async def messages_by_id(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, SessionMessage]:
        if not ids:
            return {}
        result = await self.session.execute(
            select(SessionMessage).where(SessionMessage.id.in_(ids))
        )
        return {m.id: m for m in result.scalars()}

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
        await self.session.execute(
            insert(SessionMessage).values(**values, seq=next_seq(values["session_id"]))
        )
