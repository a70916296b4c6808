"""A completed call as OpenAI's response objects. No I/O here."""

from __future__ import annotations

from chatmodel_service.llm.types import LLMResult
from chatmodel_service.openai_compat.schemas import (
    AssistantMessage,
    CallDetail,
    ChatChoice,
    ChatCompletion,
    FunctionCallWire,
    TextChoice,
    TextCompletion,
    ToolCallWire,
    Usage,
)
from chatmodel_service.openai_compat.service import PreparedCompletion
from chatmodel_service.sessions.schemas import total_tokens


def usage_of(result: LLMResult) -> Usage:
    prompt, completion = result.prompt_tokens or 0, result.completion_tokens or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total_tokens(prompt, completion),
    )


def finish_reason(result: LLMResult) -> str:
    if result.finish_reason:
        return result.finish_reason
    if result.tool_calls:
        return "tool_calls"
    return "function_call" if result.function_call else "stop"


def assistant_message(result: LLMResult) -> AssistantMessage:
    return AssistantMessage(
        content=result.content,
        function_call=FunctionCallWire(**result.function_call) if result.function_call else None,
        tool_calls=[ToolCallWire.model_validate(tc) for tc in result.tool_calls]
        if result.tool_calls
        else None,
    )


def chat_completion(
    prepared: PreparedCompletion, result: LLMResult, detail: CallDetail
) -> ChatCompletion:
    return ChatCompletion(
        id=prepared.completion_id("chatcmpl"),
        created=prepared.created,
        model=prepared.model,
        choices=[
            ChatChoice(message=assistant_message(result), finish_reason=finish_reason(result))
        ],
        usage=usage_of(result),
        chatmodel=detail,
    )


def text_completion(
    prepared: PreparedCompletion, result: LLMResult, detail: CallDetail
) -> TextCompletion:
    return TextCompletion(
        id=prepared.completion_id("cmpl"),
        created=prepared.created,
        model=prepared.model,
        choices=[TextChoice(text=result.content or "", finish_reason=finish_reason(result))],
        usage=usage_of(result),
        chatmodel=detail,
    )
