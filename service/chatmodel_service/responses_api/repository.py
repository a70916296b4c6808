"""All SQL of the Responses and Conversations APIs: their reads of runs and messages, a
response's deletion and a conversation item's. Sessions, runs and messages are the
native ones; nothing here is a table of its own.

A conversation shows a session's *live* messages: those a run sends, so neither a
superseded (regenerated) reply nor a deleted item.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import ChatModel, ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository


@dataclass(frozen=True)
class StoredResponse:
    """A run, with its version and chat model, and its session when it has one."""

    run: ChatRun
    version: ChatModelVersion
    chat_model: ChatModel
    session: LoadedSession | None


def _live(session_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(SessionMessage.session_id == session_id, SessionMessage.superseded_at.is_(None))


class ResponsesRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- responses: runs ----------------------------------------------------------------

    async def response(self, project_id: uuid.UUID, run_id: uuid.UUID) -> StoredResponse | None:
        """The project's run ``run_id`` (not deleted through this API)."""
        row = (
            await self.session.execute(
                select(ChatRun, ChatModelVersion, ChatModel)
                .join(ChatModelVersion, ChatModelVersion.id == ChatRun.version_id)
                .join(ChatModel, ChatModel.id == ChatModelVersion.chat_model_id)
                .where(
                    ChatRun.id == run_id,
                    ChatModel.project_id == project_id,
                    ChatRun.deleted_at.is_(None),
                )
            )
        ).one_or_none()
        if row is None:
            return None
        run, version, chat_model = row
        loaded = None
        if run.session_id is not None:
            loaded = await SessionRepository(self.session).get_by_id(run.session_id)
        return StoredResponse(run, version, chat_model, loaded)

    async def reply(self, run_id: uuid.UUID) -> SessionMessage | None:
        """The reply a run stored, if any."""
        return await self.session.scalar(
            select(SessionMessage).where(SessionMessage.run_id == run_id).limit(1)
        )

    async def delete_response(self, run_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(ChatRun).where(ChatRun.id == run_id).values(deleted_at=when)
        )

    async def has_runs(self, session_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(ChatRun.id).where(ChatRun.session_id == session_id).limit(1)
        )
        return found is not None

    # -- items: live messages ------------------------------------------------------------

    async def live_between(
        self, session_id: uuid.UUID, first_seq: int, last_seq: int
    ) -> list[SessionMessage]:
        """The live messages with ``first_seq <= seq <= last_seq``, oldest first."""
        result = await self.session.execute(
            select(SessionMessage)
            .where(_live(session_id), SessionMessage.seq.between(first_seq, last_seq))
            .order_by(SessionMessage.seq)
        )
        return list(result.scalars())

    async def live_page(
        self, session_id: uuid.UUID, from_seq: int | None, limit: int, *, newest_first: bool
    ) -> list[SessionMessage]:
        """Up to ``limit`` live messages from ``from_seq`` on (inclusive; None: from the
        newest or the oldest end), in the order read, on the (session_id, seq) index."""
        query = select(SessionMessage).where(_live(session_id))
        if from_seq is not None:
            query = query.where(
                SessionMessage.seq <= from_seq if newest_first else SessionMessage.seq >= from_seq
            )
        order = SessionMessage.seq.desc() if newest_first else SessionMessage.seq
        result = await self.session.execute(query.order_by(order).limit(limit))
        return list(result.scalars())

    async def live_message(
        self, session_id: uuid.UUID, message_uuid: uuid.UUID
    ) -> SessionMessage | None:
        return await self.session.scalar(
            select(SessionMessage).where(_live(session_id), SessionMessage.uuid == message_uuid)
        )

    async def newest_live_seq(self, session_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            select(func.coalesce(func.max(SessionMessage.seq), 0)).where(_live(session_id))
        )
        return int(value or 0)

    async def previous_assistant_seq(self, session_id: uuid.UUID, before_seq: int) -> int:
        """The seq of the newest live assistant message before ``before_seq`` (0: none)."""
        value = await self.session.scalar(
            select(func.coalesce(func.max(SessionMessage.seq), 0)).where(
                _live(session_id),
                SessionMessage.role == "assistant",
                SessionMessage.seq < before_seq,
            )
        )
        return int(value or 0)

    async def live_results_of(
        self, session_id: uuid.UUID, call_ids: Sequence[str]
    ) -> list[SessionMessage]:
        """The live tool messages answering any of these calls."""
        if not call_ids:
            return []
        result = await self.session.execute(
            select(SessionMessage).where(
                _live(session_id),
                SessionMessage.role == "tool",
                SessionMessage.tool_call_id.in_(list(call_ids)),
            )
        )
        return list(result.scalars())

    async def live_at(self, session_id: uuid.UUID, seq: int) -> SessionMessage | None:
        return await self.session.scalar(
            select(SessionMessage).where(_live(session_id), SessionMessage.seq == seq)
        )

    async def delete_messages(self, message_ids: Sequence[uuid.UUID], when: datetime) -> None:
        """Deleted items: left out of every read here and never sent to a model again."""
        await self.session.execute(
            update(SessionMessage)
            .where(SessionMessage.id.in_(list(message_ids)))
            .values(deleted_at=when, superseded_at=when)
        )
