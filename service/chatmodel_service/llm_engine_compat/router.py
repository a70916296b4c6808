"""LLM Engine's completion routes. Like runs, they take the database factory, not a
request transaction: none is held while the model answers.

The SDK sends its key (``SCALE_API_KEY``) as ``x-api-key`` (and as HTTP Basic ``key:``,
which is not read); a missing or bad key is a 401, which it raises as
``UnauthorizedError``. Left out of the OpenAPI schema: this is another API's wire format.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from chatmodel_service.deps import CallerDep, DatabaseDep, GatewayDep, ProjectId, SettingsDep
from chatmodel_service.llm_engine_compat import service
from chatmodel_service.llm_engine_compat.errors import LLMEngineRoute
from chatmodel_service.llm_engine_compat.schemas import (
    CompletionSyncV1Response,
    CompletionV1Request,
)

router = APIRouter(
    prefix="/v1/llm",
    tags=["llm engine compatible"],
    route_class=LLMEngineRoute,
    include_in_schema=False,
)

ModelEndpoint = Annotated[
    str, Query(min_length=1, max_length=200, description="A chat model's name.")
]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/completions-sync")
async def completions_sync(
    body: CompletionV1Request,
    model_endpoint_name: ModelEndpoint,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
) -> CompletionSyncV1Response:
    return await service.complete(
        database, gateway, settings, project, model_endpoint_name, body, caller.key_name
    )


@router.post("/completions-stream", response_model=None)
async def completions_stream(
    body: CompletionV1Request,
    model_endpoint_name: ModelEndpoint,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    project: ProjectId,
    caller: CallerDep,
) -> StreamingResponse:
    events = await service.open_completion_stream(
        database, gateway, settings, project, model_endpoint_name, body, caller.key_name
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
