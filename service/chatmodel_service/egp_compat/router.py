"""Scale EGP's completion routes under ``/egp`` (the SDK's ``endpoint_url`` is
``http://HOST:PORT/egp``). Like the OpenAI-compatible completion routes, they take the
database factory, not a request transaction: none is held while the model answers.

``x-api-key: KEY`` is one of our API keys (client or admin); ``Authorization: Bearer``
works too. Not in our OpenAPI schema: this is another API's wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from chatmodel_service.deps import CallerDep, DatabaseDep, DbSession, GatewayDep, SettingsDep
from chatmodel_service.egp_compat import service
from chatmodel_service.egp_compat.errors import EGPRoute
from chatmodel_service.egp_compat.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    UserInfo,
)
from chatmodel_service.limits import check_messages
from chatmodel_service.responses import schema_response

router = APIRouter(
    prefix="/egp", tags=["scale egp compatible"], route_class=EGPRoute, include_in_schema=False
)

SelectedAccount = Annotated[
    str | None,
    Header(alias="x-selected-account-id", description="The caller's project id, if given."),
]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _answer(answer: BaseModel | AsyncIterator[str]) -> Response:
    if isinstance(answer, BaseModel):
        return schema_response(answer)
    return StreamingResponse(answer, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/user-info")
async def user_info(db: DbSession, caller: CallerDep) -> UserInfo:
    """The key as EGP's user, its project as the account (the SDK's constructor asks)."""
    return await service.user_info(db, caller)


@router.post("/v2/completions", response_model=None)  # the SDK's
@router.post("/v1/completions", response_model=None)  # EGP's documented samples'
async def completions(
    body: CompletionRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    caller: CallerDep,
    account: SelectedAccount = None,
) -> Response:
    check_messages(settings, [body.prompt], "prompt")
    return _answer(await service.answer_text(database, gateway, settings, caller, body, account))


@router.post("/v1/chat-completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    database: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    caller: CallerDep,
    account: SelectedAccount = None,
) -> Response:
    check_messages(settings, [m.content for m in body.messages], "messages")
    return _answer(await service.answer_chat(database, gateway, settings, caller, body, account))
