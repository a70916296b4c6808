"""Feedback: a named score of the session's last reply, of a given message, or of the
session itself.

Operations, as in ``_protocol`` (no I/O here). Each feedback is sent with an id (the
caller's, else a fresh one), so a request that got no answer is resent safely: the server
updates the feedback it already stored under that id instead of storing a second one.
"""

from __future__ import annotations

import uuid
from typing import Any

from chatmodel._errors import NothingToScore
from chatmodel._models import Feedback
from chatmodel._protocol import (
    Operation,
    SessionState,
    json_request,
    list_messages,
    parse,
    send_with_retries,
    write_to_session,
)

# A score: true/false, a number, or a category (text).
ScoreValue = bool | float | str
# The last reply is looked for this many messages at a time, newest first.
REPLY_PAGE = 50


def _payload(
    name: str,
    value: ScoreValue,
    comment: str | None,
    by: str | None,
    feedback_id: str | uuid.UUID | None,
) -> dict[str, Any]:
    fields = {"id": str(feedback_id or uuid.uuid4()), "name": name, "value": value}
    extra = {"comment": comment, "by": by}
    return fields | {key: text for key, text in extra.items() if text is not None}


def last_reply(state: SessionState) -> Operation[uuid.UUID]:
    """The uuid of the session's newest assistant reply that still counts (regenerated,
    superseded replies and deleted ones skipped), read backwards a page at a time."""
    before: int | None = None
    while True:
        page = yield from list_messages(
            state, after=None, before=before, order="desc", limit=REPLY_PAGE
        )
        for message in reversed(page.data):
            if message.role == "assistant" and not (message.superseded or message.deleted):
                return message.uuid
        if not page.has_more or page.next_before is None:
            raise NothingToScore(f"Session {state.uuid} has no reply to score.")
        before = page.next_before


def log_score(
    state: SessionState,
    name: str,
    value: ScoreValue,
    *,
    message_uuid: str | uuid.UUID | None,
    comment: str | None,
    by: str | None,
    feedback_id: str | uuid.UUID | None,
) -> Operation[Feedback]:
    """Score the message ``message_uuid``, by default the session's last reply."""
    if message_uuid is None:
        target = yield from last_reply(state)
    else:
        target = uuid.UUID(str(message_uuid))
    payload = _payload(name, value, comment, by, feedback_id)
    request = json_request("POST", f"{state.path}/messages/{target}/feedback", payload)
    response = yield from send_with_retries(request)
    return parse(Feedback, response)


def log_score_to_session(
    state: SessionState,
    name: str,
    value: ScoreValue,
    *,
    comment: str | None,
    by: str | None,
    feedback_id: str | uuid.UUID | None,
) -> Operation[Feedback]:
    """Score the session itself (made first if it is new, as a write makes it)."""
    payload = _payload(name, value, comment, by, feedback_id)
    request = json_request("POST", f"{state.path}/feedback", payload)
    response = yield from write_to_session(state, request)
    return parse(Feedback, response)
