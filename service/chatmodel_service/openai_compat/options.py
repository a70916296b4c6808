"""A request's parameters as a run's options, and the session it names. No I/O here.

The caller's sampling parameters and functions/tools override the version's for the call;
they are checked as a native run's are, and a failure is a 400 naming the request field.
OpenAI's aliases (``max_completion_tokens``, ``max_new_tokens``) agree with ``max_tokens``
or are refused.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chatmodel_service.chat_models.schemas import ModelParams
from chatmodel_service.errors import InvalidInput
from chatmodel_service.openai_compat.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingFields,
)
from chatmodel_service.runs import RunOptions

ModelT = TypeVar("ModelT", bound=BaseModel)


def chat_options(body: ChatCompletionRequest) -> RunOptions:
    max_tokens = _one_of(body.max_tokens, body.max_completion_tokens, "max_completion_tokens")
    params = _params(body, max_tokens, response_format=body.response_format)
    return validated(
        RunOptions,
        {
            "functions": body.functions,
            "tools": body.tools,
            "tool_choice": body.tool_choice,
            "function_call": body.function_call,
            "params": params,
        },
    )


def text_options(body: CompletionRequest) -> RunOptions:
    max_tokens = _one_of(body.max_tokens, body.max_new_tokens, "max_new_tokens")
    return RunOptions(params=_params(body, max_tokens))


def named_session(header: str | None, from_body: uuid.UUID | None) -> uuid.UUID | None:
    """The session named by ``X-Session-Id`` or ``session_uuid`` (both: the same one)."""
    if header is None:
        return from_body
    try:
        from_header = uuid.UUID(header)
    except ValueError:
        raise InvalidInput("X-Session-Id is not a UUID.", field="X-Session-Id") from None
    if from_body is not None and from_body != from_header:
        raise InvalidInput(
            "X-Session-Id and session_uuid name different sessions; give one.",
            field="session_uuid",
        )
    return from_header


def validated(model: type[ModelT], fields: dict[str, Any]) -> ModelT:
    """``model`` from request fields; a failure is a 400 naming the request field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}" if where else message, field=where) from None


def _params(body: SamplingFields, max_tokens: int | None, **more: Any) -> ModelParams:
    given = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "max_tokens": max_tokens,
        "stop": body.stop,
        "presence_penalty": body.presence_penalty,
        "frequency_penalty": body.frequency_penalty,
        "seed": body.seed,
        **more,
    }
    return validated(ModelParams, {k: v for k, v in given.items() if v is not None})


def _one_of(first: int | None, second: int | None, second_name: str) -> int | None:
    if first is not None and second is not None and first != second:
        raise InvalidInput(
            f"max_tokens is {first} and {second_name} is {second}; give one.", field=second_name
        )
    return first if first is not None else second
