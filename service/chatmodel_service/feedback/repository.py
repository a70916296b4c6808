"""All SQL for feedback: finding it by its id, storing and updating it, a session's
feedback and a version's figures per score name."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.models import Feedback, SessionMessage
from chatmodel_service.models.base import utcnow


@dataclass(frozen=True)
class FeedbackGroup:
    """A version's feedback of one name, kind and category: how many, and their sum."""

    name: str
    kind: str
    category: str | None
    count: int
    total: float


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, project_id: uuid.UUID, feedback_uuid: uuid.UUID) -> Feedback | None:
        """The project's feedback known by this id (the API's, unique per project)."""
        return await self.session.scalar(
            select(Feedback).where(
                Feedback.project_id == project_id, Feedback.uuid == feedback_uuid
            )
        )

    async def add_unless_exists(self, feedback: Feedback) -> bool:
        """Insert the feedback; False (and nothing inserted) if a concurrent transaction
        took its id in the project meanwhile (the insert runs in a savepoint)."""
        try:
            async with self.session.begin_nested():
                self.session.add(feedback)
        except IntegrityError:
            return False
        return True

    async def update(self, feedback: Feedback, values: dict[str, Any]) -> None:
        """Replace what the feedback says (``values``: its columns), as of now."""
        for column, value in values.items():
            setattr(feedback, column, value)
        feedback.updated_at = utcnow()
        await self.session.flush()

    async def of_session(self, session_id: uuid.UUID) -> list[tuple[Feedback, uuid.UUID | None]]:
        """The session's feedback oldest first, each with its message's uuid (None: the
        session's own)."""
        rows = await self.session.execute(
            select(Feedback, SessionMessage.uuid)
            .outerjoin(SessionMessage, SessionMessage.id == Feedback.message_id)
            .where(Feedback.session_id == session_id)
            .order_by(Feedback.created_at, Feedback.id)
        )
        return [(feedback, message_uuid) for feedback, message_uuid in rows]

    async def version_groups(self, version_id: uuid.UUID) -> list[FeedbackGroup]:
        """The version's feedback counted per name, kind and category (one query)."""
        rows = await self.session.execute(
            select(
                Feedback.name,
                Feedback.value_kind,
                Feedback.value_text,
                func.count(),
                func.sum(Feedback.value_number),  # null for categories
            )
            .where(Feedback.version_id == version_id)
            .group_by(Feedback.name, Feedback.value_kind, Feedback.value_text)
            .order_by(Feedback.name, Feedback.value_kind, Feedback.value_text)
        )
        return [
            FeedbackGroup(name, kind, category, int(count), float(total or 0))
            for name, kind, category, count, total in rows
        ]
