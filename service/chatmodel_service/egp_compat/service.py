"""Where an EGP call happens: read as an OpenAI-compatible request and run through that
API's service functions (``openai_compat.service``), so ``model`` names a chat model of
the caller's project and its published version applies, exactly as on
``/v1/completions`` and ``/v1/chat/completions``; the call is recorded as a run without a
session (with the caller's key name), counted in ``GET /v1/usage`` and the version's stats.

EGP's account is the caller's project: ``GET /egp/user-info`` names it, and an
``account_id`` (body) or ``x-selected-account-id`` (header) naming another one is a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.auth.repository import ProjectRepository
from chatmodel_service.auth.service import Caller
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.egp_compat import stream
from chatmodel_service.egp_compat.replies import chat_completion, completion
from chatmodel_service.egp_compat.schemas import (
    AccessProfile,
    Account,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessage,
    Completion,
    CompletionRequest,
    ModelParameters,
    UserInfo,
)
from chatmodel_service.errors import Forbidden, InvalidInput, NotFound
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.openai_compat import schemas as openai
from chatmodel_service.openai_compat import service as openai_service
from chatmodel_service.openai_compat.chunks import open_stream
from chatmodel_service.openai_compat.service import PreparedCompletion

# EGP's roles as OpenAI's: the model is EGP's "agent"; a tool's result names its tool.
_ROLES: dict[str, openai.OpenAIRole] = {
    "system": "system",
    "user": "user",
    "agent": "assistant",
    "assistant": "assistant",
    "tool": "function",
}


async def user_info(db: AsyncSession, caller: Caller) -> UserInfo:
    """The caller's key as EGP's user; its project as the one account, with the key's
    scope as the role (the SDK picks the ``admin`` account, else the first)."""
    project = await ProjectRepository(db).get(caller.project_id)
    if project is None:
        raise NotFound(f"Project {caller.project_id} does not exist.")
    profile = AccessProfile(
        role=caller.scope, account=Account(id=str(project.id), name=project.name)
    )
    return UserInfo(
        id=str(caller.key_id) if caller.key_id else "local",
        first_name=caller.key_name,
        access_profiles=[profile],
        accounts=[profile],
    )


def check_account(project_id: uuid.UUID, selected: str | None, from_body: str | None) -> None:
    """An account named by the header or the body must be the caller's project."""
    for field, account in (("x-selected-account-id", selected), ("account_id", from_body)):
        if account is not None and account != str(project_id):
            raise Forbidden(
                f"This API key has no access to account '{account}'; its account is "
                f"'{project_id}' (GET /egp/user-info).",
                field=field,
            )


def _sampling(parameters: ModelParameters | None) -> dict[str, Any]:
    if parameters is None:
        return {}
    given = {
        "temperature": parameters.temperature,
        "top_p": parameters.top_p,
        "max_tokens": parameters.max_tokens,
        "stop": parameters.stop_sequences or None,
    }
    return {name: value for name, value in given.items() if value is not None}


def _openai_message(message: ChatMessage) -> openai.ChatMessage:
    return openai.ChatMessage(role=_ROLES[message.role], content=message.content, name=message.name)


async def prepare_text(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    caller: Caller,
    body: CompletionRequest,
    selected_account: str | None,
) -> PreparedCompletion:
    """The prompt as ``/v1/completions`` reads it (one user message after the system
    prompt), ready to call."""
    check_account(caller.project_id, selected_account, body.account_id)
    if body.images:
        raise InvalidInput("Image completions are not supported.", field="images")
    request = openai.CompletionRequest(
        model=body.model, prompt=body.prompt, stream=body.stream, **_sampling(body.model_parameters)
    )
    prepared = await openai_service.prepare_text(
        database, gateway, settings, caller.project_id, request, None
    )
    return replace(prepared, key_name=caller.key_name)


async def prepare_chat(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    caller: Caller,
    body: ChatCompletionRequest,
    selected_account: str | None,
) -> PreparedCompletion:
    """The conversation as ``/v1/chat/completions`` without a session reads it."""
    check_account(caller.project_id, selected_account, body.account_id)
    request = openai.ChatCompletionRequest(
        model=body.model,
        messages=[_openai_message(message) for message in body.messages],
        stream=body.stream,
        **_sampling(body.model_parameters),
    )
    prepared = await openai_service.prepare_chat(
        database, gateway, settings, caller.project_id, request, None
    )
    return replace(prepared, key_name=caller.key_name)


async def answer_text(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    caller: Caller,
    body: CompletionRequest,
    selected_account: str | None,
) -> Completion | AsyncIterator[str]:
    """A completion, or with ``stream`` its SSE events (the call started: a failure before
    its first piece raises)."""
    prepared = await prepare_text(database, gateway, settings, caller, body, selected_account)
    if body.stream:
        return stream.text_sse(prepared, await open_stream(database, gateway, prepared))
    result, detail = await openai_service.complete(database, gateway, prepared)
    return completion(result, detail)


async def answer_chat(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    caller: Caller,
    body: ChatCompletionRequest,
    selected_account: str | None,
) -> ChatCompletion | AsyncIterator[str]:
    """A chat completion, or with ``stream`` its SSE events."""
    prepared = await prepare_chat(database, gateway, settings, caller, body, selected_account)
    if body.stream:
        return stream.chat_sse(prepared, await open_stream(database, gateway, prepared))
    result, detail = await openai_service.complete(database, gateway, prepared)
    return chat_completion(result, detail)
