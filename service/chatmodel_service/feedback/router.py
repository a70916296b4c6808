"""Feedback routes: named scores of a session and of its messages."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from chatmodel_service.deps import CallerDep, DbSession, ProjectId
from chatmodel_service.feedback import service
from chatmodel_service.feedback.schemas import FeedbackIn, FeedbackList, FeedbackOut

router = APIRouter(prefix="/v1/sessions", tags=["feedback"])

UPDATED: dict[int | str, dict[str, Any]] = {
    200: {"model": FeedbackOut, "description": "Feedback with this id existed: it was updated."}
}


@router.post("/{session_uuid}/feedback", status_code=201, responses=UPDATED)
async def give_session_feedback(
    session_uuid: uuid.UUID,
    body: FeedbackIn,
    db: DbSession,
    project: ProjectId,
    caller: CallerDep,
    response: Response,
) -> FeedbackOut:
    """A named score of the whole session (e.g. ``resolved``)."""
    feedback, created = await service.give_feedback(
        db, project, session_uuid, None, body, key_name=caller.key_name
    )
    if not created:
        response.status_code = 200
    return feedback


@router.post("/{session_uuid}/messages/{message_uuid}/feedback", status_code=201, responses=UPDATED)
async def give_message_feedback(
    session_uuid: uuid.UUID,
    message_uuid: uuid.UUID,
    body: FeedbackIn,
    db: DbSession,
    project: ProjectId,
    caller: CallerDep,
    response: Response,
) -> FeedbackOut:
    """A named score of one of the session's messages (e.g. ``thumbs`` on a reply)."""
    feedback, created = await service.give_feedback(
        db, project, session_uuid, message_uuid, body, key_name=caller.key_name
    )
    if not created:
        response.status_code = 200
    return feedback


@router.get("/{session_uuid}/feedback")
async def list_feedback(session_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> FeedbackList:
    """All of the session's feedback, oldest first; a message's names its ``message_uuid``."""
    return await service.list_feedback(db, project, session_uuid)
