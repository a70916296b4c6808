"""A request's ``messages``: read into our messages, split into per-call instructions and
the conversation, and matched against a session's stored history. No I/O here.

Rules:

* ``developer`` messages are ``system`` messages; text content parts are joined with
  newlines (other part types are refused).
* The request's *leading* system messages are instructions for this call: they follow the
  chat model's system prompt, and a session never stores them.
* The rest is the conversation. With a session it must repeat the stored history (the
  session's leading system messages aside) message for message, in order; what follows
  is new and gets stored. Anything else is a 409 naming the first index that differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chatmodel_service.errors import Conflict, InvalidInput, ServiceError
from chatmodel_service.models import SessionMessage
from chatmodel_service.openai_compat.schemas import ChatMessage
from chatmodel_service.sessions.messages import PendingCalls, link_results, message_in_to_openai
from chatmodel_service.sessions.schemas import MessageIn

Indexed = tuple[int, MessageIn]  # a message with its index in the request's ``messages``


class HistoryMismatch(Conflict):
    """The request's messages do not repeat the session's stored history."""

    code = "history_mismatch"


@dataclass(frozen=True)
class RequestMessages:
    instructions: list[MessageIn]
    conversation: list[Indexed]

    def openai_instructions(self) -> list[dict[str, Any]]:
        """The leading system messages: they follow the chat model's system prompt."""
        return [message_in_to_openai(m) for m in self.instructions]

    def openai_conversation(self) -> list[dict[str, Any]]:
        """The conversation, results linked to their calls (for a call without a session:
        a session's stored messages are linked as they are stored)."""
        linked = link_results(self.conversation, PendingCalls())
        return [message_in_to_openai(m) for _, m in linked]


def _text(index: int, message: ChatMessage) -> str | None:
    if not isinstance(message.content, list):
        return message.content
    texts = []
    for position, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise InvalidInput(
                f"Content parts of type '{part.type}' are not supported; send text.",
                field=f"messages.{index}.content.{position}.type",
            )
        texts.append(part.text)
    return "\n".join(texts)


def to_message_in(index: int, message: ChatMessage) -> MessageIn:
    """One request message as the sessions API takes it (400 naming the field if invalid)."""
    fields: dict[str, Any] = {
        "role": "system" if message.role == "developer" else message.role,
        "content": _text(index, message),
        "name": message.name,
        "tool_call_id": message.tool_call_id,
        "function_call": message.function_call.model_dump() if message.function_call else None,
        "tool_calls": [tc.model_dump() for tc in message.tool_calls]
        if message.tool_calls
        else None,
    }
    try:
        return MessageIn.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in (index, *error["loc"]))
        raise InvalidInput(
            str(error["msg"]).removeprefix("Value error, "), field=f"messages.{where}"
        ) from None


def read_messages(messages: Sequence[ChatMessage]) -> RequestMessages:
    converted = [to_message_in(i, m) for i, m in enumerate(messages)]
    lead = 0
    while lead < len(converted) and converted[lead].role == "system":
        lead += 1
    return RequestMessages(
        instructions=converted[:lead],
        conversation=list(enumerate(converted))[lead:],
    )


def _calls(tool_calls: Sequence[dict[str, Any]] | None) -> list[tuple[str, str, str]]:
    return [
        (str(c["id"]), str(c["function"]["name"]), str(c["function"]["arguments"]))
        for c in tool_calls or []
    ]


def _difference(sent: MessageIn, stored: SessionMessage) -> str | None:
    """The first field in which the request's message differs from the stored one.

    A function result without ``name`` (a tool result without ``tool_call_id``) matches
    the stored one, which was linked to its call when it was stored."""
    function_call = sent.function_call.model_dump() if sent.function_call else None
    stored_call = stored.function_call
    checks: list[tuple[str, object, object]] = [
        ("role", sent.role, stored.role),
        ("content", sent.content or None, stored.content or None),
        (
            "function_call",
            (function_call["name"], function_call["arguments"]) if function_call else None,
            (stored_call["name"], stored_call["arguments"]) if stored_call else None,
        ),
        (
            "tool_calls",
            _calls([tc.model_dump() for tc in sent.tool_calls or []]),
            _calls(stored.tool_calls),
        ),
    ]
    if not (sent.role == "function" and sent.name is None):
        checks.append(("name", sent.name, stored.name))
    if not (sent.role == "tool" and sent.tool_call_id is None):
        checks.append(("tool_call_id", sent.tool_call_id, stored.tool_call_id))
    return next((name for name, mine, theirs in checks if mine != theirs), None)


_FULL_HISTORY = (
    "With a session, send the whole conversation every time: the session's stored "
    "messages first, unchanged and in order, then the new ones."
)


def new_messages(
    session_uuid: uuid.UUID, stored: Sequence[SessionMessage], request: RequestMessages
) -> list[Indexed]:
    """What the request adds to the stored history; 409 when it does not extend it."""
    conversation = request.conversation
    history = list(stored)
    while history and history[0].role == "system":
        history.pop(0)
    for position, stored_message in enumerate(history):
        if position >= len(conversation):
            first = conversation[-1][0] + 1 if conversation else len(request.instructions)
            raise HistoryMismatch(
                f"messages[{first}] is missing: session {session_uuid} holds {len(history)} "
                f"messages and the request repeats only {len(conversation)} of them. "
                + _FULL_HISTORY,
                field="messages",
            )
        index, sent = conversation[position]
        differs = _difference(sent, stored_message)
        if differs is not None:
            raise HistoryMismatch(
                f"messages[{index}] differs from message {position + 1} of session "
                f"{session_uuid} (its {differs} is not the stored one). " + _FULL_HISTORY,
                field="messages",
            )
    return list(conversation[len(history) :])


def shift_fields(exc: ServiceError, added: Sequence[Indexed]) -> ServiceError:
    """Re-point ``messages.<i>`` of an error about the added messages at the request."""
    if exc.field is None or not exc.field.startswith("messages."):
        return exc
    head, _, rest = exc.field.removeprefix("messages.").partition(".")
    if not head.isdigit() or int(head) >= len(added):
        return exc
    exc.field = ".".join(["messages", str(added[int(head)][0]), *([rest] if rest else [])])
    return exc
