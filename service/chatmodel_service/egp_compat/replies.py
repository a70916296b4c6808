"""A completed call as EGP's response objects. No I/O here."""

from __future__ import annotations

from chatmodel_service.egp_compat.schemas import (
    AgentMessage,
    ChatCompletion,
    ChatCompletionContent,
    Completion,
    CompletionContent,
    TokenUsage,
    ToolRequest,
)
from chatmodel_service.llm.types import LLMResult
from chatmodel_service.openai_compat.responses import finish_reason
from chatmodel_service.openai_compat.schemas import CallDetail
from chatmodel_service.sessions.schemas import total_tokens


def token_usage(result: LLMResult) -> TokenUsage:
    prompt, completion_tokens = result.prompt_tokens or 0, result.completion_tokens or 0
    return TokenUsage(
        prompt=prompt,
        completion=completion_tokens,
        total=total_tokens(prompt, completion_tokens),
    )


def tool_request(result: LLMResult) -> ToolRequest | None:
    """The model's function call (or first tool call) as EGP's one tool request."""
    call = result.function_call
    if call is None and result.tool_calls:
        call = result.tool_calls[0].get("function")
    if not call:
        return None
    return ToolRequest(name=str(call.get("name", "")), arguments=str(call.get("arguments", "")))


def completion(result: LLMResult, detail: CallDetail, *, text: str | None = None) -> Completion:
    """The whole completion, or (``text=""``) a stream's last piece: the same figures."""
    content = CompletionContent(
        text=result.content or "" if text is None else text, finish_reason=finish_reason(result)
    )
    return Completion(completion=content, token_usage=token_usage(result), chatmodel=detail)


def chat_completion(
    result: LLMResult, detail: CallDetail, *, text: str | None = None
) -> ChatCompletion:
    """The whole reply, or (``text=""``) a stream's last piece with its tool request."""
    message = AgentMessage(
        role="agent",
        content=result.content if text is None else text,
        tool_request=tool_request(result),
    )
    return ChatCompletion(
        chat_completion=ChatCompletionContent(message=message, finish_reason=finish_reason(result)),
        token_usage=token_usage(result),
        chatmodel=detail,
    )
