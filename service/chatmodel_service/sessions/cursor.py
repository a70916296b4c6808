"""Cursors: the session listing's opaque (created_at, id) of the last row shown, and the
seq range and direction of a page of messages."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from chatmodel_service.errors import InvalidInput
from chatmodel_service.sessions.schemas import MessageOrder


def encode_cursor(created_at: datetime, session_id: uuid.UUID) -> str:
    raw = json.dumps({"created_at": created_at.isoformat(), "id": session_id.hex})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fields = json.loads(raw)
        created_at = datetime.fromisoformat(fields["created_at"])
        session_id = uuid.UUID(hex=fields["id"])
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError):
        raise InvalidInput(
            "Not a cursor this server gave out; pass next_cursor unchanged.", field="cursor"
        ) from None
    if created_at.tzinfo is None:
        raise InvalidInput("Not a cursor this server gave out.", field="cursor")
    return created_at, session_id


@dataclass(frozen=True)
class MessageWindow:
    """Which page of messages to read: those with ``after < seq < before`` (a missing
    bound is open), ``limit`` of them from the oldest end (``order="asc"``) or the newest
    (``order="desc"``). Without an order, ``before`` alone means reading backwards."""

    after: int | None
    before: int | None
    order: MessageOrder | None
    limit: int

    def __post_init__(self) -> None:
        if self.after is not None and self.before is not None and self.before <= self.after:
            raise InvalidInput(
                f"before ({self.before}) must be greater than after ({self.after}): the page "
                "holds the messages with after < seq < before.",
                field="before",
            )

    @property
    def newest_first(self) -> bool:
        if self.order is not None:
            return self.order == "desc"
        return self.before is not None and self.after is None
