"""Run routes. A run takes the database factory, not a request transaction: it must not
hold a transaction open while the model answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse, Response, StreamingResponse

from chatmodel_service.chat_models.schemas import MAX_NUMBER
from chatmodel_service.deps import (
    AdminOnly,
    CallerDep,
    DatabaseDep,
    DbSession,
    GatewayDep,
    ProjectId,
    SettingsDep,
)
from chatmodel_service.limits import check_functions
from chatmodel_service.runs.schemas import (
    LLMResponse,
    LLMStreamResponse,
    RunList,
    RunRequest,
    VersionTrialRequest,
)
from chatmodel_service.runs.service import list_runs, prepare_run, run_session
from chatmodel_service.runs.streaming import sse_lines, stream_run
from chatmodel_service.runs.trial import trial_run

router = APIRouter(prefix="/v1/sessions", tags=["runs"])
# Test runs of a version live under the chat model's URL but are runs all the same.
version_test_router = APIRouter(prefix="/v1/chat-models", tags=["runs"])

RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": LLMResponse,
        "description": "An LLMResponse, or with `stream: true` a text/event-stream of "
        "LLMStreamResponse events ending with `data: [DONE]`.",
        "content": {"text/event-stream": {"schema": LLMStreamResponse.model_json_schema()}},
    }
}


@router.post("/{session_uuid}/run", response_model=None, responses=RUN_RESPONSES)
async def run(
    session_uuid: uuid.UUID,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
    body: Annotated[RunRequest | None, Body()] = None,
) -> Response:
    request = body or RunRequest()
    check_functions(settings, request.functions, "functions")
    check_functions(settings, request.tools, "tools")
    if request.stream:
        prepared = await prepare_run(
            database, settings, project, session_uuid, request, caller.key_name
        )
        return StreamingResponse(
            sse_lines(stream_run(database, gateway, prepared)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = await run_session(
        database, gateway, settings, project, session_uuid, request, caller.key_name
    )
    return JSONResponse(result.model_dump(mode="json"))


@router.get("/{session_uuid}/runs")
async def get_runs(session_uuid: uuid.UUID, db: DbSession, project: ProjectId) -> RunList:
    return await list_runs(db, project, session_uuid)


@version_test_router.post("/{name}/versions/{number}/test", dependencies=[AdminOnly])
async def run_version_test(
    name: Annotated[str, Path(description="The chat model's name.")],
    number: Annotated[int, Path(ge=1, le=MAX_NUMBER)],
    body: VersionTrialRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
) -> LLMResponse:
    """One model call on this version with the given messages; stores nothing (no session,
    no messages, no run record). Answers 200 with an LLMResponse whether or not the model
    call worked; ``detail.session_uuid``, ``message_uuid`` and ``run_uuid`` are null."""
    return await trial_run(database, gateway, settings, project, name, number, body)
