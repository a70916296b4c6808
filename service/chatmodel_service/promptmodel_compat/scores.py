"""promptmodel's scores, ``ChatModel.log_score`` and ``log_score_to_session``: each
``{metric: value}`` pair is one named score of the message or the session (``feedback``),
kept under an id made from what it scores and the metric's name, so scoring a metric
again (a retry, a changed mind) updates it."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.errors import InvalidInput
from chatmodel_service.feedback.schemas import FeedbackIn, FeedbackList
from chatmodel_service.feedback.service import (
    FeedbackTarget,
    project_message_target,
    save_feedback,
    session_target,
)

# The namespace of the ids promptmodel's scores are kept under (uuid5 of what is scored
# and the metric's name).
SCORE_IDS = uuid.UUID("6c1f4d0e-3b7a-4c55-9e2f-8a0d5b6c7e19")


def _score(name: str, value: Any, feedback_id: uuid.UUID) -> FeedbackIn:
    try:
        return FeedbackIn.model_validate({"id": feedback_id, "name": name, "value": value})
    except ValidationError as exc:
        problem = exc.errors()[0]
        if problem["loc"][0] == "value":
            reason = "a score is true or false, a number, or a text of 1 to 200 characters"
        else:
            reason = f"the metric's name: {problem['msg']}"
        raise InvalidInput(
            f"Score '{name}' cannot be stored: {reason}.", field=f"score.{name}"
        ) from None


async def _save_scores(
    db: AsyncSession,
    target: FeedbackTarget,
    scored: str,
    score: dict[str, Any],
    key_name: str | None,
) -> FeedbackList:
    """Each metric of ``score`` as a feedback of ``target``, all or none."""
    if not score:
        raise InvalidInput("The score is empty: send {metric: value, ...}.", field="score")
    bodies = [
        _score(name, value, uuid.uuid5(SCORE_IDS, f"{scored}:{name}"))
        for name, value in score.items()
    ]
    saved = [(await save_feedback(db, target, body, key_name=key_name))[0] for body in bodies]
    return FeedbackList(data=saved)


async def score_message(
    db: AsyncSession,
    project_id: uuid.UUID,
    message_uuid: uuid.UUID,
    score: dict[str, Any],
    *,
    key_name: str | None,
) -> FeedbackList:
    """``ChatModel.log_score``: scores of a message (the SDK's ``log_uuid``, a reply)."""
    target = await project_message_target(db, project_id, message_uuid, field="chat_message_uuid")
    return await _save_scores(db, target, f"message:{message_uuid}", score, key_name)


async def score_session(
    db: AsyncSession,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    score: dict[str, Any],
    *,
    key_name: str | None,
) -> FeedbackList:
    """``ChatModel.log_score_to_session``: scores of the whole session."""
    target = await session_target(db, project_id, session_uuid)
    return await _save_scores(db, target, f"session:{session_uuid}", score, key_name)
