"""A model call's outcome as the API answers it and as it is stored. No I/O here.

Three shapes of one outcome: the ``LLMResponse`` a run answers (failures as data,
``error: true``), the columns of its run record, and, on success, its reply's row.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from chatmodel_service.llm.types import LLMFailure, LLMOutcome, LLMResult, TokenCounter
from chatmodel_service.models import ChatModel, ChatModelVersion
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs.prompt_fit import ContextFigures
from chatmodel_service.runs.schemas import (
    AttemptOut,
    FunctionCallOut,
    LLMResponse,
    ResponseDetail,
    ToolCallOut,
)
from chatmodel_service.sessions.repository import LoadedSession
from chatmodel_service.sessions.schemas import UsageOut


def interrupted(model: str, latency_ms: int = 0, reason: str | None = None) -> LLMFailure:
    """The outcome of a run that was given up before it finished (by default: its
    server stopped and its lease lapsed)."""
    return LLMFailure(
        model=model,
        error_type="interrupted",
        error_log=reason
        or "The server handling this run stopped before the run finished (its lease on the "
        "session lapsed); nothing was stored for it. Run again.",
        latency_ms=latency_ms,
    )


# -- the answer -------------------------------------------------------------------------


def response_detail(
    chat_model: ChatModel,
    version: ChatModelVersion,
    model: str,
    *,
    session_uuid: uuid.UUID | None = None,
    message_uuid: uuid.UUID | None = None,
    run_uuid: uuid.UUID | None = None,
) -> ResponseDetail:
    """What served a call of ``version``, answered by ``model`` (a session's run names the
    session, its run and its stored reply; a version test run none of them)."""
    return ResponseDetail(
        name=chat_model.name,
        version=version.number,
        version_uuid=version.id,
        model=model,
        session_uuid=session_uuid,
        message_uuid=message_uuid,
        run_uuid=run_uuid,
    )


def llm_response(
    loaded: LoadedSession,
    run_id: uuid.UUID,
    outcome: LLMOutcome,
    message_uuid: uuid.UUID | None,
    figures: ContextFigures | None = None,
) -> LLMResponse:
    """A session's run's outcome as its LLMResponse (``message_uuid``: its stored reply)."""
    detail = response_detail(
        loaded.chat_model,
        loaded.version,
        outcome.model,
        session_uuid=loaded.session.uuid,
        message_uuid=message_uuid,
        run_uuid=run_id,
    )
    return outcome_response(outcome, detail, figures)


def outcome_response(
    outcome: LLMOutcome, detail: ResponseDetail | None, figures: ContextFigures | None = None
) -> LLMResponse:
    """The gateway's outcome as an LLMResponse (failures as ``error: true``), with what
    the prompt sent (``figures``) when it was fitted; no ``detail`` for an unsaved draft."""
    attempts = [AttemptOut(**vars(a)) for a in outcome.attempts] or None
    sent = figures.columns() if figures is not None else {}
    if isinstance(outcome, LLMFailure):
        return LLMResponse(
            error=True,
            error_type=outcome.error_type,
            error_log=outcome.error_log,
            latency_ms=outcome.latency_ms,
            api_response=outcome.api_response,
            detail=detail,
            attempts=attempts,
            **sent,
        )
    return LLMResponse(
        content=outcome.content,
        raw_output=outcome.content,
        function_call=_function_call_out(outcome.function_call),
        tool_calls=_tool_calls_out(outcome.tool_calls),
        finish_reason=outcome.finish_reason,
        usage=UsageOut.of(outcome.prompt_tokens, outcome.completion_tokens),
        cost=outcome.cost,
        latency_ms=outcome.latency_ms,
        api_response=outcome.api_response,
        detail=detail,
        attempts=attempts,
        **sent,
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


# -- what is stored ---------------------------------------------------------------------


def outcome_values(outcome: LLMOutcome) -> dict[str, Any]:
    """A finished run's columns from its outcome."""
    failed = isinstance(outcome, LLMFailure)
    result = outcome if isinstance(outcome, LLMResult) else None
    return {
        "status": "failed" if failed else "succeeded",
        "model": outcome.model,
        "error_type": outcome.error_type if isinstance(outcome, LLMFailure) else None,
        "error_log": outcome.error_log if isinstance(outcome, LLMFailure) else None,
        "latency_ms": outcome.latency_ms,
        "prompt_tokens": result.prompt_tokens if result else None,
        "completion_tokens": result.completion_tokens if result else None,
        "cost": result.cost if result else None,
        "attempts": [vars(a) for a in outcome.attempts] or None,
        "finished_at": utcnow(),
    }


def _reply_message(result: LLMResult) -> dict[str, Any]:
    """The reply as the next run sends it (OpenAI format), for counting its tokens."""
    message: dict[str, Any] = {"role": "assistant", "content": result.content}
    if result.function_call is not None:
        message["function_call"] = result.function_call
    if result.tool_calls is not None:
        message["tool_calls"] = result.tool_calls
    return message


def reply_values(
    loaded: LoadedSession, result: LLMResult, count_tokens: TokenCounter | None
) -> dict[str, Any]:
    """The row of a successful run's reply in its session (its tokens counted as the next
    run will send it, when ``count_tokens`` is given)."""
    tokens = count_tokens(loaded.version.model, _reply_message(result)) if count_tokens else None
    return {
        "id": uuid.uuid4(),
        "uuid": uuid.uuid4(),
        "project_id": loaded.session.project_id,
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
        "token_count": tokens,
    }
