"""Items and messages: a request's input items read into session messages, and stored
messages (or a reply not stored) shown as items. No I/O here.

Reading (a 400 naming ``<field>.<i>...`` for anything else):

* a string is one user message;
* a ``message`` item (``type`` may be left out): ``role`` user, assistant, system or
  developer (stored as system), ``content`` a string or text parts (``input_text``,
  ``output_text``), joined with newlines;
* a ``function_call`` item becomes a call of an assistant message: it joins the
  assistant message just before it (text or calls) or starts one;
* a ``function_call_output`` item becomes a tool message answering ``call_id``;
* a ``reasoning`` item is skipped (it carries nothing a chat model is sent).

Showing: a user or system message is a ``message`` item with ``input_text``; an assistant
message is a ``message`` item with ``output_text`` (when it has text, or has nothing else)
followed by a ``function_call`` item per call; a tool or function result is a
``function_call_output`` item.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from chatmodel_service.errors import InvalidInput, ServiceError
from chatmodel_service.models import SessionMessage
from chatmodel_service.responses_api.ids import ItemId
from chatmodel_service.responses_api.schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputText,
    Item,
    MessageItem,
    OutputText,
)
from chatmodel_service.sessions.schemas import MessageIn

TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _text(content: Any, field: str) -> str:
    """A message's or output's content: a string, or text parts joined with newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidInput("Give a string or a list of text parts.", field=field)
    texts = []
    for position, part in enumerate(content):
        where = f"{field}.{position}"
        if not isinstance(part, dict):
            raise InvalidInput("A content part is an object.", field=where)
        kind = part.get("type")
        if kind not in TEXT_PARTS:
            raise InvalidInput(
                f"Content parts of type '{kind}' are not served; send text "
                "(input_text or output_text).",
                field=f"{where}.type",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidInput("A text part needs a string 'text'.", field=f"{where}.text")
        texts.append(text)
    return "\n".join(texts)


def _string(item: dict[str, Any], name: str, field: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"A {item.get('type')} item needs a string '{name}'.", field=field)
    return value


class _Reader:
    """Builds the messages of one input list, remembering which item each came from."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.messages: list[dict[str, Any]] = []
        self.sources: list[int] = []  # the input index each message was built from

    def add(self, index: int, fields: dict[str, Any]) -> None:
        self.messages.append(fields)
        self.sources.append(index)

    def read(self, index: int, item: dict[str, Any]) -> None:
        where = f"{self.field}.{index}"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise InvalidInput(
                    "role is one of user, assistant, system, developer.", field=f"{where}.role"
                )
            content = _text(item.get("content"), f"{where}.content")
            self.add(index, {"role": ROLES[role], "content": content})
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", f"{where}.call_id"),
                "type": "function",
                "function": {
                    "name": _string(item, "name", f"{where}.name"),
                    "arguments": item.get("arguments") or "",
                },
            }
            last = self.messages[-1] if self.messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                self.add(index, {"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            self.add(
                index,
                {
                    "role": "tool",
                    "tool_call_id": _string(item, "call_id", f"{where}.call_id"),
                    "content": _text(item.get("output"), f"{where}.output"),
                },
            )
        elif kind != "reasoning":
            raise InvalidInput(
                f"Input items of type '{kind}' are not served; send message, function_call "
                "and function_call_output items.",
                field=f"{where}.type",
            )

    def validated(self) -> list[MessageIn]:
        result = []
        for fields, index in zip(self.messages, self.sources, strict=True):
            try:
                result.append(MessageIn.model_validate(fields))
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join([self.field, str(index), *(str(p) for p in error["loc"])])
                message = str(error["msg"]).removeprefix("Value error, ")
                raise InvalidInput(message, field=where.rstrip(".")) from None
        return result


def read_input(
    given: str | Sequence[dict[str, Any]] | None, field: str = "input"
) -> list[MessageIn]:
    """The session messages a request's input items make, oldest first."""
    if given is None:
        return []
    if isinstance(given, str):
        return [MessageIn(role="user", content=given)]
    reader = _Reader(field)
    for index, item in enumerate(given):
        reader.read(index, item)
    return reader.validated()


# -- showing -----------------------------------------------------------------------------


def reply_items(
    message_uuid: uuid.UUID,
    content: str | None,
    tool_calls: Sequence[dict[str, Any]] | None,
    function_call: dict[str, Any] | None = None,
    *,
    status: str = "completed",
) -> list[Item]:
    """An assistant message (or a reply not stored, ``message_uuid`` then standing for
    it) as items: its text, then its calls."""
    items: list[Item] = []
    calls = list(tool_calls or [])
    if content or not (calls or function_call):
        items.append(
            MessageItem(
                id=str(ItemId(message_uuid, "msg")),
                role="assistant",
                status=status,
                content=[OutputText(text=content or "")],
            )
        )
    for index, call in enumerate(calls):
        items.append(
            FunctionCallItem(
                id=str(ItemId(message_uuid, "fc", index)),
                status=status,
                call_id=str(call["id"]),
                name=str(call["function"]["name"]),
                arguments=str(call["function"].get("arguments") or ""),
            )
        )
    if function_call is not None:  # a legacy function call: its name stands for the call id
        items.append(
            FunctionCallItem(
                id=str(ItemId(message_uuid, "fc", len(calls))),
                call_id=str(function_call["name"]),
                name=str(function_call["name"]),
                arguments=str(function_call.get("arguments") or ""),
            )
        )
    return items


def message_items(row: SessionMessage) -> list[Item]:
    """A stored message as the items it shows as."""
    if row.role == "assistant":
        return reply_items(row.uuid, row.content, row.tool_calls, row.function_call)
    if row.role in ("tool", "function"):
        call_id = row.tool_call_id if row.role == "tool" else row.name
        return [
            FunctionCallOutputItem(
                id=str(ItemId(row.uuid, "fco")),
                call_id=call_id or "",
                output=row.content or "",
            )
        ]
    return [
        MessageItem(
            id=str(ItemId(row.uuid, "msg")),
            role="system" if row.role == "system" else "user",
            content=[InputText(text=row.content or "")],
        )
    ]


def repointed(exc: ServiceError, field: str) -> ServiceError:
    """An error about stored messages (``messages.<i>...``) re-pointed at the request's
    ``field`` (``input`` or ``items``), whose items they were read from."""
    if exc.field is not None and exc.field.startswith("messages"):
        exc.field = field + exc.field.removeprefix("messages")
    return exc


def item_texts(messages: Sequence[MessageIn]) -> list[str | None]:
    """The contents the size limits are checked on."""
    return [m.content for m in messages]
