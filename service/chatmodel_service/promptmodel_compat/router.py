"""promptmodel's backend routes, ``/api/cli/...``, as its SDK 0.2.1 calls them.

``Authorization: Bearer $PROMPTMODEL_API_KEY`` is one of our API keys (a client key is
enough; it is project-scoped like every key). Success is always 200 (the SDK counts no
other status as success); errors are our own ``{"error", "detail", "field"}`` body, which
the SDK prints. Not in our OpenAPI schema: this is another API's wire format.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from chatmodel_service.deps import CallerDep, DbSession, GatewayDep, ProjectId
from chatmodel_service.feedback.schemas import FeedbackList
from chatmodel_service.promptmodel_compat import scores, service
from chatmodel_service.promptmodel_compat.schemas import (
    ChatLogItem,
    ChatLogStored,
    SessionMade,
    UpdateCheck,
    VersionsWithLogs,
)

router = APIRouter(prefix="/api/cli", include_in_schema=False)

OptionalText = Annotated[str | None, Query(max_length=200)]
# Scores in one request ({metric: value}, each stored as a feedback of its own).
MAX_SCORES = 100


@router.get("/chat_model_versions_with_logs")
async def chat_model_versions_with_logs(
    db: DbSession,
    project: ProjectId,
    chat_model_name: Annotated[str, Query(min_length=1, max_length=200)],
    session_uuid: OptionalText = None,
    version: OptionalText = None,
) -> VersionsWithLogs:
    return await service.versions_with_logs(
        db,
        project,
        chat_model_name,
        service.optional_uuid(session_uuid, "session_uuid"),
        service.version_selector(version),
    )


@router.post("/make_session")
async def make_session(
    db: DbSession,
    project: ProjectId,
    session_uuid: OptionalText = None,
    version_uuid: OptionalText = None,
) -> SessionMade:
    return await service.make_session(
        db,
        project,
        service.required_uuid(session_uuid, "session_uuid"),
        service.required_uuid(version_uuid, "version_uuid"),
    )


@router.post("/chat_log")
async def chat_log(
    db: DbSession,
    project: ProjectId,
    caller: CallerDep,
    gateway: GatewayDep,
    items: Annotated[list[ChatLogItem], Body(max_length=1000)],
    session_uuid: OptionalText = None,
    version_uuid: OptionalText = None,  # the session's own version: it names nothing new
) -> ChatLogStored:
    service.optional_uuid(version_uuid, "version_uuid")
    return await service.store_chat_log(
        db,
        project,
        service.required_uuid(session_uuid, "session_uuid"),
        items,
        key_name=caller.key_name,
        count_tokens=gateway.count_message_tokens,
    )


@router.post("/chat_message_score")
async def chat_message_score(
    db: DbSession,
    project: ProjectId,
    caller: CallerDep,
    score: Annotated[dict[str, Any] | None, Body(max_length=MAX_SCORES)] = None,
    chat_message_uuid: OptionalText = None,
) -> FeedbackList:
    return await scores.score_message(
        db,
        project,
        service.required_uuid(chat_message_uuid, "chat_message_uuid"),
        score or {},
        key_name=caller.key_name,
    )


@router.post("/save_chat_session_score")
async def save_chat_session_score(
    db: DbSession,
    project: ProjectId,
    caller: CallerDep,
    score: Annotated[dict[str, Any] | None, Body(max_length=MAX_SCORES)] = None,
    chat_session_uuid: OptionalText = None,
) -> FeedbackList:
    return await scores.score_session(
        db,
        project,
        service.required_uuid(chat_session_uuid, "chat_session_uuid"),
        score or {},
        key_name=caller.key_name,
    )


@router.get("/check_update")
async def check_update(project: ProjectId, cached_version: int = 0) -> UpdateCheck:
    return UpdateCheck(version=cached_version)
