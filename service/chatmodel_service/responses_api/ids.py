"""The ids this API shows: our own uuids with OpenAI's prefixes. No I/O here.

A response is a run (``resp_<run uuid hex>``), a conversation a session
(``conv_<session uuid hex>``; a session's bare uuid is taken too, so a session made
natively is continued by its uuid), and an item one stored message or part of one:

* ``msg_<message uuid hex>``: a message's text (a user, system or assistant message);
* ``fc_<message uuid hex>_<i>``: the ``i``-th function call of an assistant message;
* ``fco_<message uuid hex>``: a function call's output (a tool message).

An id that is not of this form names nothing here: it is answered as not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

RESPONSE, CONVERSATION = "resp_", "conv_"
ItemKind = Literal["msg", "fc", "fco"]


def response_id(run_id: uuid.UUID) -> str:
    return f"{RESPONSE}{run_id.hex}"


def conversation_id(session_uuid: uuid.UUID) -> str:
    return f"{CONVERSATION}{session_uuid.hex}"


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def parse_response_id(text: str) -> uuid.UUID | None:
    return _uuid(text.removeprefix(RESPONSE)) if text.startswith(RESPONSE) else None


def parse_conversation_id(text: str) -> uuid.UUID | None:
    """``conv_<hex>``, or a session's uuid as the native API shows it."""
    return _uuid(text.removeprefix(CONVERSATION)) if text.startswith(CONVERSATION) else _uuid(text)


@dataclass(frozen=True)
class ItemId:
    message_uuid: uuid.UUID
    kind: ItemKind
    index: int = 0  # of a function call among its message's calls

    def __str__(self) -> str:
        if self.kind == "fc":
            return f"fc_{self.message_uuid.hex}_{self.index}"
        return f"{self.kind}_{self.message_uuid.hex}"


def parse_item_id(text: str) -> ItemId | None:
    kind, _, rest = text.partition("_")
    if kind == "fc":
        hex_part, _, index = rest.partition("_")
        found = _uuid(hex_part)
        if found is None or not index.isdigit() or len(index) > 3:
            return None
        return ItemId(found, "fc", int(index))
    if kind in ("msg", "fco"):
        found = _uuid(rest)
        return ItemId(found, "msg" if kind == "msg" else "fco") if found else None
    return None
