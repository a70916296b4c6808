"""Feedback through the client, against a live server (real uvicorn, the real app and
database): ``log_score`` on the last reply or a given message, ``log_score_to_session``,
updates by id, and the errors they raise; sync and async."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

import chatmodel
from chatmodel import ChatModel, Feedback
from tests.support.servers import LiveApp

DEMO = "simple_assistant"  # seeded on the live app, on the offline (echoing) model


async def stored(http: httpx.AsyncClient, session: ChatModel) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/sessions/{session.session_uuid}/feedback")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_log_score_scores_the_last_reply_or_a_given_message(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    (question,) = session.add_messages([{"role": "user", "content": "Hello?"}])
    reply = session.run()
    assert reply.detail is not None and not reply.error, reply.error_log

    thumbs = session.log_score("thumbs", False, comment="Too short.", by="user-7")
    rating = session.log_score("rating", 4, message_uuid=str(question.uuid))
    resolved = session.log_score_to_session("resolved", "yes")
    changed = session.log_score("thumbs", True, id=thumbs.id)

    assert isinstance(thumbs, Feedback)
    assert (thumbs.message_uuid, thumbs.name, thumbs.kind, thumbs.value) == (
        reply.detail.message_uuid,
        "thumbs",
        "boolean",
        False,
    )
    assert (thumbs.comment, thumbs.by, str(thumbs.session_uuid)) == (
        "Too short.",
        "user-7",
        session.session_uuid,
    )
    assert (rating.message_uuid, rating.kind, rating.value) == (question.uuid, "number", 4)
    assert type(rating.value) is int
    assert (resolved.message_uuid, resolved.kind, resolved.value) == (None, "category", "yes")
    assert (changed.id, changed.value, changed.comment) == (thumbs.id, True, None)
    assert changed.created_at == thumbs.created_at
    assert [(f["id"], f["value"]) for f in await stored(live_admin, session)] == [
        (str(thumbs.id), True),
        (str(rating.id), 4),
        (str(resolved.id), "yes"),
    ]


async def test_the_last_reply_is_the_newest_that_counts(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    """A regenerated reply is not the last one, and messages after the reply are not
    replies; a ChatModel opened on the session later finds the same reply."""
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "Hello?"}])
    session.run()
    again = session.run(regenerate=True)
    session.add_messages([{"role": "user", "content": "And then?"}])
    assert again.detail is not None

    reopened = ChatModel(DEMO, session.session_uuid, base_url=live_app.base_url)
    scored = reopened.log_score("thumbs", True)

    assert scored.message_uuid == again.detail.message_uuid
    assert [f["message_uuid"] for f in await stored(live_admin, session)] == [
        str(again.detail.message_uuid)
    ]


def test_errors_of_log_score(live_app: LiveApp) -> None:
    fresh = ChatModel(DEMO, base_url=live_app.base_url)
    with pytest.raises(chatmodel.NothingToScore):
        fresh.log_score("thumbs", True)  # no session yet
    fresh.add_messages([{"role": "user", "content": "Hello?"}])
    with pytest.raises(chatmodel.NothingToScore):
        fresh.log_score("thumbs", True)  # no reply yet

    with pytest.raises(chatmodel.MessageNotFound) as unknown:
        fresh.log_score("thumbs", True, message_uuid=uuid.uuid4())
    assert (unknown.value.code, unknown.value.field) == ("message_not_found", "message_uuid")
    with pytest.raises(chatmodel.SessionNotFound):
        ChatModel(DEMO, uuid.uuid4(), base_url=live_app.base_url).log_score(
            "thumbs", True, message_uuid=uuid.uuid4()
        )
    with pytest.raises(chatmodel.ValidationError) as bad_name:
        fresh.log_score_to_session("thumbs up", True)
    assert bad_name.value.field == "name"

    given = fresh.log_score_to_session("resolved", False)
    fresh.run()
    with pytest.raises(chatmodel.ConflictError) as moved:
        fresh.log_score("resolved", True, id=given.id)  # the session's, not the reply's
    assert moved.value.field == "id"


async def test_log_score_to_a_new_session_makes_it(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url, metadata={"user_id": "u-1"})

    scored = session.log_score_to_session("resolved", True)

    made = await live_admin.get(f"/v1/sessions/{session.session_uuid}")
    assert made.status_code == 200, made.text
    assert made.json()["metadata"] == {"user_id": "u-1"}
    assert [f["id"] for f in await stored(live_admin, session)] == [str(scored.id)]


async def test_async_twins(live_app: LiveApp, live_admin: httpx.AsyncClient) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    await session.aadd_messages([{"role": "user", "content": "Hello?"}])
    reply = await session.arun()
    assert reply.detail is not None and not reply.error, reply.error_log

    thumbs = await session.alog_score("thumbs", True, by="user-7")
    score = await session.alog_score("score", 0.75, message_uuid=reply.detail.message_uuid)
    resolved = await session.alog_score_to_session("resolved", True, comment="Thanks!")
    updated = await session.alog_score_to_session("resolved", False, id=resolved.id)

    assert (thumbs.message_uuid, thumbs.value, thumbs.by) == (
        reply.detail.message_uuid,
        True,
        "user-7",
    )
    assert (score.kind, score.value) == ("number", 0.75)
    assert (resolved.message_uuid, resolved.comment) == (None, "Thanks!")
    assert (updated.id, updated.value) == (resolved.id, False)
    with pytest.raises(chatmodel.NothingToScore):
        await ChatModel(DEMO, base_url=live_app.base_url).alog_score("thumbs", True)
    assert [(f["name"], f["value"]) for f in await stored(live_admin, session)] == [
        ("thumbs", True),
        ("score", 0.75),
        ("resolved", False),
    ]
