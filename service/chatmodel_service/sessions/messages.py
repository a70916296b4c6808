"""Message shaping shared by sessions, runs and config: no I/O here."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from chatmodel_service.errors import InvalidInput
from chatmodel_service.models import SessionMessage
from chatmodel_service.sessions.schemas import MessageIn, MessageOut, UsageOut


def message_to_openai(message: SessionMessage) -> dict[str, Any]:
    """The stored message in OpenAI chat format, as sent to the model."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        out["name"] = message.name
    if message.function_call is not None:
        out["function_call"] = message.function_call
    if message.tool_calls is not None:
        out["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def message_in_to_openai(message: MessageIn) -> dict[str, Any]:
    """A posted message in OpenAI chat format, for a call that stores nothing."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        out["name"] = message.name
    if message.function_call is not None:
        out["function_call"] = message.function_call.model_dump()
    if message.tool_calls is not None:
        out["tool_calls"] = [tc.model_dump() for tc in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def message_out(message: SessionMessage) -> MessageOut:
    usage = None
    if message.prompt_tokens is not None or message.completion_tokens is not None:
        usage = UsageOut.of(message.prompt_tokens, message.completion_tokens)
    return MessageOut(
        uuid=message.uuid,
        seq=message.seq,
        role=message.role,
        content=message.content,
        name=message.name,
        function_call=message.function_call,
        tool_calls=message.tool_calls,
        tool_call_id=message.tool_call_id,
        metadata=message.meta,
        created_at=message.created_at,
        run_uuid=message.run_id,
        model=message.model,
        usage=usage,
        cost=message.cost,
        latency_ms=message.latency_ms,
        finish_reason=message.finish_reason,
        superseded=message.superseded_at is not None,
        deleted=message.deleted_at is not None,
    )


def answers(
    role: str,
    name: str | None,
    tool_call_id: str | None,
    function_name: str | None,
    tool_call_ids: Collection[str],
) -> bool:
    """Whether a result answers one of the calls of an assistant message that calls
    ``function_name`` (None: no function_call) and makes the tool calls ``tool_call_ids``.

    The one pairing rule: a result belongs to the newest assistant message before it (any
    user or system message may come between), and answers it when that message makes its
    call: a ``tool`` result the tool call with its ``tool_call_id``, a ``function`` result
    the function call (the same function, when the result gives a ``name``). Linking a
    result posted without its id (``link_results``) and keeping a call with its results in
    a run's prompt (``runs/window.py``) both follow it."""
    if role == "function":
        return function_name is not None and name in (None, function_name)
    if role == "tool":
        return tool_call_id is not None and tool_call_id in tool_call_ids
    return False


@dataclass
class PendingCalls:
    """Calls of the newest assistant message that have no result yet."""

    function_name: str | None = None
    tool_calls: dict[str, str] = field(default_factory=dict)  # id -> function name

    def see(
        self,
        role: str,
        name: str | None,
        function_call: dict[str, Any] | None,
        tool_calls: list[dict[str, Any]] | None,
        tool_call_id: str | None,
    ) -> None:
        if role == "assistant":
            self.function_name = function_call["name"] if function_call else None
            self.tool_calls = {tc["id"]: tc["function"]["name"] for tc in tool_calls or []}
        elif not answers(role, name, tool_call_id, self.function_name, self.tool_calls):
            return
        elif role == "function":
            self.function_name = None
        elif tool_call_id is not None:
            del self.tool_calls[tool_call_id]


def pending_after(tail: list[SessionMessage]) -> PendingCalls:
    """Replay the stored messages since the newest assistant message."""
    pending = PendingCalls()
    for m in tail:
        pending.see(m.role, m.name, m.function_call, m.tool_calls, m.tool_call_id)
    return pending


def link_results(
    messages: list[tuple[int, MessageIn]], pending: PendingCalls
) -> list[tuple[int, MessageIn]]:
    """Fill a missing function ``name`` / ``tool_call_id`` from the call it answers.

    Seed 004 posts ``{"role": "function", "content": "13 degrees celsius"}``: the result
    belongs to the one function call still waiting. No pending call, or several tool
    calls to choose from, is the caller's mistake (422 naming the message).
    ``messages`` pairs each message with its index in the request, for error paths.
    """
    linked: list[tuple[int, MessageIn]] = []
    for index, message in messages:
        where = f"messages.{index}"
        if message.role == "function" and message.name is None:
            if pending.function_name is None:
                raise InvalidInput(
                    "This function result has no name and no function call is waiting for a "
                    "result; give 'name'.",
                    field=f"{where}.name",
                )
            message = message.model_copy(update={"name": pending.function_name})
        elif message.role == "tool" and message.tool_call_id is None:
            waiting = list(pending.tool_calls)
            if len(waiting) != 1:
                detail = (
                    "no tool call is waiting for a result"
                    if not waiting
                    else f"several tool calls are waiting ({', '.join(waiting)})"
                )
                raise InvalidInput(
                    f"This tool result has no tool_call_id and {detail}; give 'tool_call_id'.",
                    field=f"{where}.tool_call_id",
                )
            message = message.model_copy(update={"tool_call_id": waiting[0]})
        pending.see(
            message.role,
            message.name,
            message.function_call.model_dump() if message.function_call else None,
            [tc.model_dump() for tc in message.tool_calls] if message.tool_calls else None,
            message.tool_call_id,
        )
        linked.append((index, message))
    return linked
