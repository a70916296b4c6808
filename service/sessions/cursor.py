"""Opaque cursors for the session listing: the (created_at, id) of the last row shown."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from chatmodel_service.errors import InvalidInput


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
