"""Where a run happens: load the session, build the prompt, call the gateway, store the reply.

A run holds no database transaction while the model is thinking: one short read
(session + version, then its messages), the model call, one short write (run record and
reply together), so a slow provider never pins a connection or a SQLite write lock.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chatmodel_service.chat_models.templates import render_system_prompt
from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, LLMFailure, LLMOutcome, LLMResult
from chatmodel_service.models import ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.runs.schemas import (
    FunctionCallOut,
    LLMResponse,
    ResponseDetail,
    RunList,
    RunOptions,
    RunOut,
    RunRequest,
    ToolCallOut,
)
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import LoadedSession, SessionRepository
from chatmodel_service.sessions.schemas import UsageOut
from chatmodel_service.sessions.service import require_session


def build_call(
    loaded: LoadedSession, history: list[SessionMessage], body: RunOptions, settings: Settings
) -> LLMCall:
    """The version's system prompt (rendered with the session's variables) first, then the
    session's messages, then the options."""
    return version_call(
        loaded.version,
        loaded.session.variables,
        [message_to_openai(m) for m in history],
        body,
        settings,
    )


def version_call(
    version: ChatModelVersion,
    variables: dict[str, str] | None,
    conversation: list[dict[str, Any]],
    body: RunOptions,
    settings: Settings,
) -> LLMCall:
    """One call of ``version`` on ``conversation`` (OpenAI-format messages): its system
    prompt rendered with ``variables`` first, its parameters under the request's."""
    system_prompt = render_system_prompt(version.system_prompt, version.variables, variables)
    messages = list(conversation)
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    params: dict[str, Any] = dict(version.params)
    if body.params is not None:
        params |= body.params.model_dump(exclude_none=True)
    timeout = min(
        float(params.pop("timeout", settings.llm_timeout_seconds)), settings.llm_timeout_seconds
    )
    if body.functions or body.tools:
        functions = [f.model_dump(exclude_none=True) for f in body.functions or []] or None
        tools = [t.model_dump(exclude_none=True) for t in body.tools or []] or None
    else:
        functions, tools = version.functions, version.tools
    return LLMCall(
        model=version.model,
        messages=messages,
        params=params,
        api_base=version.api_base,
        functions=functions,
        function_call=body.function_call if functions else None,
        tools=tools,
        tool_choice=body.tool_choice if tools else None,
        timeout=timeout,
    )


def _parsed(arguments: str) -> dict[str, Any] | None:
    try:
        value = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _function_call_out(call: dict[str, str] | None) -> FunctionCallOut | None:
    if call is None:
        return None
    return FunctionCallOut(
        name=call["name"], arguments=call["arguments"], args=_parsed(call["arguments"])
    )


def _tool_calls_out(calls: list[dict[str, Any]] | None) -> list[ToolCallOut] | None:
    if not calls:
        return None
    return [ToolCallOut(id=c["id"], function=_function_call_out(c["function"])) for c in calls]


def llm_response(
    loaded: LoadedSession, run_id: uuid.UUID, outcome: LLMOutcome, message_id: uuid.UUID | None
) -> LLMResponse:
    detail = ResponseDetail(
        name=loaded.chat_model.name,
        version=loaded.version.number,
        version_uuid=loaded.version.id,
        model=outcome.model,
        session_uuid=loaded.session.id,
        message_uuid=message_id,
        run_uuid=run_id,
    )
    return outcome_response(outcome, detail)


def outcome_response(outcome: LLMOutcome, detail: ResponseDetail) -> LLMResponse:
    """The gateway's outcome as an LLMResponse (failures as ``error: true``)."""
    if isinstance(outcome, LLMFailure):
        return LLMResponse(
            error=True,
            error_type=outcome.error_type,
            error_log=outcome.error_log,
            latency_ms=outcome.latency_ms,
            api_response=outcome.api_response,
            detail=detail,
        )
    total = None
    if outcome.prompt_tokens is not None or outcome.completion_tokens is not None:
        total = (outcome.prompt_tokens or 0) + (outcome.completion_tokens or 0)
    return LLMResponse(
        content=outcome.content,
        raw_output=outcome.content,
        function_call=_function_call_out(outcome.function_call),
        tool_calls=_tool_calls_out(outcome.tool_calls),
        finish_reason=outcome.finish_reason,
        usage=UsageOut(
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            total_tokens=total,
        ),
        cost=outcome.cost,
        latency_ms=outcome.latency_ms,
        api_response=outcome.api_response,
        detail=detail,
    )


def run_record(
    session_id: uuid.UUID | None,
    version_id: uuid.UUID,
    outcome: LLMOutcome,
    *,
    stream: bool,
    run_id: uuid.UUID | None = None,
    key_name: str | None = None,
) -> ChatRun:
    """The run record of one call of ``version_id`` (``session_id`` None: a call made
    without a session, as the OpenAI-compatible API's stateless calls are)."""
    failed = isinstance(outcome, LLMFailure)
    return ChatRun(
        id=run_id or uuid.uuid4(),
        session_id=session_id,
        version_id=version_id,
        status="failed" if failed else "succeeded",
        stream=stream,
        model=outcome.model,
        error_type=outcome.error_type if isinstance(outcome, LLMFailure) else None,
        error_log=outcome.error_log if isinstance(outcome, LLMFailure) else None,
        latency_ms=outcome.latency_ms,
        prompt_tokens=outcome.prompt_tokens if isinstance(outcome, LLMResult) else None,
        completion_tokens=outcome.completion_tokens if isinstance(outcome, LLMResult) else None,
        cost=outcome.cost if isinstance(outcome, LLMResult) else None,
        key_name=key_name,
    )


def _reply_values(loaded: LoadedSession, result: LLMResult) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "session_id": loaded.session.id,
        "role": "assistant",
        "content": result.content,
        "function_call": result.function_call,
        "tool_calls": result.tool_calls,
        "model": result.model,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost": result.cost,
        "latency_ms": result.latency_ms,
        "finish_reason": result.finish_reason,
    }


@dataclass(frozen=True)
class PreparedRun:
    """A run whose session was read and whose model call is built, ready to send."""

    loaded: LoadedSession
    call: LLMCall
    key_name: str | None = None  # the API key that asked for it (recorded on the run)


async def prepare_run(
    database: Database,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    key_name: str | None = None,
) -> PreparedRun:
    """The read phase: session with version, then its messages; the connection is released."""
    async with database.transaction() as db:
        repo = SessionRepository(db)
        loaded = await require_session(repo, project_id, session_uuid)
        history = await repo.all_messages(session_uuid)
    return PreparedRun(loaded, build_call(loaded, history, body, settings), key_name)


async def finish_run(
    database: Database,
    prepared: PreparedRun,
    outcome: LLMOutcome,
    *,
    stream: bool,
    run_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The write phase: run record and (on success) the reply, in one transaction.
    ``run_id`` gives the record a uuid chosen before the call (else a new one)."""
    loaded = prepared.loaded
    run = run_record(
        loaded.session.id,
        loaded.version.id,
        outcome,
        stream=stream,
        run_id=run_id,
        key_name=prepared.key_name,
    )
    reply = _reply_values(prepared.loaded, outcome) if isinstance(outcome, LLMResult) else None
    async with database.transaction() as db:
        await RunRepository(db).record(run, reply)
    return run.id, reply["id"] if reply else None


async def run_session(
    database: Database,
    gateway: LLMGateway,
    settings: Settings,
    project_id: uuid.UUID,
    session_uuid: uuid.UUID,
    body: RunRequest,
    key_name: str | None = None,
) -> LLMResponse:
    """Run the model on a session and store its reply; upstream failures come back as data."""
    prepared = await prepare_run(database, settings, project_id, session_uuid, body, key_name)
    outcome = await gateway.complete(prepared.call)
    run_id, message_id = await finish_run(database, prepared, outcome, stream=False)
    return llm_response(prepared.loaded, run_id, outcome, message_id)


async def list_runs(db: AsyncSession, project_id: uuid.UUID, session_uuid: uuid.UUID) -> RunList:
    await require_session(SessionRepository(db), project_id, session_uuid)
    data = []
    for run, number, message_id in await RunRepository(db).list_for_session(session_uuid):
        usage = None
        if run.prompt_tokens is not None or run.completion_tokens is not None:
            usage = UsageOut(
                prompt_tokens=run.prompt_tokens,
                completion_tokens=run.completion_tokens,
                total_tokens=(run.prompt_tokens or 0) + (run.completion_tokens or 0),
            )
        data.append(
            RunOut(
                uuid=run.id,
                session_uuid=session_uuid,
                version=number,
                version_uuid=run.version_id,
                status=run.status,
                stream=run.stream,
                model=run.model,
                error_type=run.error_type,
                error_log=run.error_log,
                latency_ms=run.latency_ms,
                usage=usage,
                cost=run.cost,
                message_uuid=message_id,
                created_at=run.created_at,
                finished_at=run.finished_at,
                key_name=run.key_name,
            )
        )
    return RunList(data=data)
