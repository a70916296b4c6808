"""Giving and reading feedback. Never commits: the request's unit of work does.

Feedback is kept under its id (the client's, or a new one): giving the same id again
replaces its name, value, comment and givers, on the same session or message only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.errors import Conflict, NotFound
from chatmodel_service.feedback.repository import FeedbackGroup, FeedbackRepository
from chatmodel_service.feedback.schemas import (
    FeedbackFigures,
    FeedbackIn,
    FeedbackKind,
    FeedbackList,
    FeedbackOut,
    FeedbackValue,
)
from chatmodel_service.models import ChatSession, Feedback, SessionMessage
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.service import require_session

# Whole numbers up to this size are exact as stored (a double) and come back as integers.
MAX_EXACT_INTEGER = 2**53


class MessageNotFound(NotFound):
    code = "message_not_found"


@dataclass(frozen=True)
class FeedbackTarget:
    """What feedback is given to: a session, or one of its messages."""

    session: ChatSession
    message: SessionMessage | None = None

    @property
    def message_id(self) -> uuid.UUID | None:
        return self.message.id if self.message is not None else None

    @property
    def message_uuid(self) -> uuid.UUID | None:
        return self.message.uuid if self.message is not None else None


async def session_target(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> FeedbackTarget:
    loaded = await require_session(SessionRepository(db), project_id, session_uuid)
    return FeedbackTarget(loaded.session)


async def message_target(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID, message_uuid: uuid.UUID
) -> FeedbackTarget:
    """The session's message ``message_uuid`` (404 ``message_not_found`` if it is another
    session's, or no message of the project)."""
    sessions = SessionRepository(db)
    loaded = await require_session(sessions, project_id, session_uuid)
    message = (await sessions.messages_by_uuid(project_id, [message_uuid])).get(message_uuid)
    if message is None or message.session_id != loaded.session.id:
        raise MessageNotFound(
            f"Session {session_uuid} has no message {message_uuid}.", field="message_uuid"
        )
    return FeedbackTarget(loaded.session, message)


async def project_message_target(
    db: AsyncSession, project_id: uuid.UUID, message_uuid: uuid.UUID, *, field: str
) -> FeedbackTarget:
    """The project's message ``message_uuid``, in whichever of its sessions holds it (for
    callers that name a message only, as promptmodel's SDK does)."""
    sessions = SessionRepository(db)
    message = (await sessions.messages_by_uuid(project_id, [message_uuid])).get(message_uuid)
    loaded = await sessions.get_by_id(message.session_id) if message is not None else None
    if message is None or loaded is None:
        raise MessageNotFound(f"No message {message_uuid}.", field=field)
    return FeedbackTarget(loaded.session, message)


def stored_value(value: FeedbackValue) -> dict[str, Any]:
    """The value's columns: its kind, and a boolean (as 1 or 0) or number, or a category."""
    if isinstance(value, bool):
        return {"value_kind": "boolean", "value_number": float(value), "value_text": None}
    if isinstance(value, str):
        return {"value_kind": "category", "value_number": None, "value_text": value}
    return {"value_kind": "number", "value_number": float(value), "value_text": None}


def wire_value(feedback: Feedback) -> bool | int | float | str:
    if feedback.value_kind == "category":
        return feedback.value_text or ""
    number = feedback.value_number or 0.0
    if feedback.value_kind == "boolean":
        return number != 0
    if number.is_integer() and abs(number) <= MAX_EXACT_INTEGER:
        return int(number)
    return number


def feedback_out(
    feedback: Feedback, session_uuid: uuid.UUID, message_uuid: uuid.UUID | None
) -> FeedbackOut:
    return FeedbackOut(
        id=feedback.uuid,
        session_uuid=session_uuid,
        message_uuid=message_uuid,
        name=feedback.name,
        kind=cast(FeedbackKind, feedback.value_kind),
        value=wire_value(feedback),
        comment=feedback.comment,
        by=feedback.given_by,
        key_name=feedback.key_name,
        created_at=feedback.created_at,
        updated_at=feedback.updated_at,
    )


async def save_feedback(
    db: AsyncSession, target: FeedbackTarget, body: FeedbackIn, *, key_name: str | None
) -> tuple[FeedbackOut, bool]:
    """Store the feedback, or update the one with its id; returns it and whether it is new.
    The id is unique in the project: feedback of another session or message under it is a
    409 (``field: id``)."""
    repo = FeedbackRepository(db)
    session = target.session
    values = {
        "name": body.name,
        **stored_value(body.value),
        "comment": body.comment,
        "key_name": key_name,
        "given_by": body.by,
    }
    feedback_uuid = body.id or uuid.uuid4()
    existing = await repo.get(session.project_id, feedback_uuid) if body.id else None
    if existing is None:
        now = utcnow()
        feedback = Feedback(
            id=uuid.uuid4(),
            uuid=feedback_uuid,
            project_id=session.project_id,
            session_id=session.id,
            message_id=target.message_id,
            version_id=session.version_id,
            created_at=now,
            updated_at=now,
            **values,
        )
        if await repo.add_unless_exists(feedback):
            return feedback_out(feedback, session.uuid, target.message_uuid), True
        existing = await repo.get(session.project_id, feedback_uuid)  # given concurrently
        if existing is None:  # and deleted since, with its session
            raise Conflict("The write conflicts with data stored concurrently; retry.")
    if (existing.session_id, existing.message_id) != (session.id, target.message_id):
        scored = "message" if target.message is not None else "session"
        raise Conflict(
            f"Feedback {feedback_uuid} was given to another session or message, not to this "
            f"{scored}.",
            field="id",
        )
    await repo.update(existing, values)
    return feedback_out(existing, session.uuid, target.message_uuid), False


async def give_feedback(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    message_uuid: uuid.UUID | None,
    body: FeedbackIn,
    *,
    key_name: str | None,
) -> tuple[FeedbackOut, bool]:
    """Feedback on the session, or on its message ``message_uuid``; see ``save_feedback``."""
    if message_uuid is None:
        target = await session_target(db, project_id, session_uuid)
    else:
        target = await message_target(db, project_id, session_uuid, message_uuid)
    return await save_feedback(db, target, body, key_name=key_name)


async def list_feedback(
    db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID
) -> FeedbackList:
    """All of the session's feedback, its messages' included, oldest first."""
    target = await session_target(db, project_id, session_uuid)
    rows = await FeedbackRepository(db).of_session(target.session.id)
    return FeedbackList(
        data=[feedback_out(feedback, session_uuid, message_uuid) for feedback, message_uuid in rows]
    )


def figures_by_name(groups: list[FeedbackGroup]) -> dict[str, FeedbackFigures]:
    """Per score name: how much feedback, the mean of its booleans and numbers, and how
    many of each category."""
    figures: dict[str, FeedbackFigures] = {}
    numbers: dict[str, tuple[int, float]] = {}
    for group in groups:
        named = figures.setdefault(group.name, FeedbackFigures(count=0, mean=None, categories={}))
        named.count += group.count
        if group.kind == "category" and group.category is not None:
            named.categories[group.category] = group.count
        else:
            count, total = numbers.get(group.name, (0, 0.0))
            numbers[group.name] = (count + group.count, total + group.total)
    for name, (count, total) in numbers.items():
        figures[name].mean = total / count
    return figures


async def version_figures(db: AsyncSession, version_id: uuid.UUID) -> dict[str, FeedbackFigures]:
    """The feedback given in sessions of the version (pinned to it then), per score name."""
    return figures_by_name(await FeedbackRepository(db).version_groups(version_id))
