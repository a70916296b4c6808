"""When the server cannot be reached: run/arun report it, the other calls raise
APIConnectionError; idempotent requests are retried without storing anything twice."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from fastapi import FastAPI

import chatmodel
from chatmodel import ChatModel
from tests.client.conftest import ASGI_BASE_URL
from tests.client.recording import Recorder
from tests.factories import make_chat_model, stored_messages

QUESTION = [{"role": "user", "content": "Hello?"}]


def test_server_down_sync(closed_port_url: str) -> None:
    session = ChatModel("simple_assistant", base_url=closed_port_url)
    chosen = session.session_uuid

    result = session.run()
    assert (result.error, result.error_type, result.content) == (True, "api_connection_error", None)
    assert closed_port_url in (result.error_log or "")

    chunks = list(session.run(stream=True))
    assert [(c.done, c.error, c.error_type) for c in chunks] == [
        (True, True, "api_connection_error")
    ]

    resumed = ChatModel("simple_assistant", uuid.uuid4(), base_url=closed_port_url)
    assert [(c.done, c.error_type) for c in resumed.run(stream=True)] == [
        (True, "api_connection_error")
    ]
    assert resumed.run().error_type == "api_connection_error"

    with pytest.raises(chatmodel.APIConnectionError) as raised:
        session.add_messages(QUESTION)
    assert raised.value.url.startswith(closed_port_url)
    with pytest.raises(chatmodel.APIConnectionError):
        session.get_config()
    assert session.session_uuid == chosen
    # no session was made: listing its messages asks nothing (else it would raise here)
    assert session.list_messages() == chatmodel.MessagePage(data=[], has_more=False)


async def test_server_down_async(closed_port_url: str) -> None:
    session = ChatModel("simple_assistant", base_url=closed_port_url)

    result = await session.arun()
    assert (result.error, result.error_type) == (True, "api_connection_error")

    chunks = [chunk async for chunk in await session.arun(stream=True)]
    assert [(c.done, c.error, c.error_type) for c in chunks] == [
        (True, True, "api_connection_error")
    ]

    with pytest.raises(chatmodel.APIConnectionError):
        await session.aadd_messages(QUESTION)
    with pytest.raises(chatmodel.APIConnectionError):
        await session.aget_config()


def test_timeouts() -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"))
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        result = session.run()
        with pytest.raises(chatmodel.APITimeoutError):
            session.get_config()
    assert (result.error, result.error_type) == (True, "api_timeout")
    # a run and a read are both retried twice
    assert [r.method for r in recorder.requests] == ["POST"] * 3 + ["GET"] * 3
    runs = recorder.requests[:3]
    # the run is resent under its first key, now waiting for the first attempt if it still runs
    assert len({r.headers["Idempotency-Key"] for r in runs}) == 1
    assert [json.loads(r.content) for r in runs] == [{}, {"if_busy": "wait"}, {"if_busy": "wait"}]


def run_answer(content: str) -> httpx.Response:
    return httpx.Response(200, json={"content": content, "finish_reason": "stop"})


def test_a_run_that_got_no_answer_is_resent_with_the_same_idempotency_key() -> None:
    recorder = Recorder(
        httpx.ConnectError("refused"), httpx.ReadError("reset"), run_answer("stored")
    )
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        result = session.run(params={"temperature": 0}, if_busy="reject", wait_seconds=5)
    assert (result.error, result.content) == (False, "stored")
    keys = {r.headers["Idempotency-Key"] for r in recorder.requests}
    assert len(recorder.requests) == 3 and len(keys) == 1
    uuid.UUID(keys.pop())
    first, *resent = [json.loads(r.content) for r in recorder.requests]
    assert first == {"params": {"temperature": 0}, "if_busy": "reject", "wait_seconds": 5}
    assert resent == [first | {"if_busy": "wait"}] * 2


async def test_an_async_run_that_got_no_answer_is_resent_with_the_same_key() -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), run_answer("stored"))
    async with recorder.async_client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), async_http_client=http)
        result = await session.arun()
    assert result.content == "stored"
    first, again = recorder.requests
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert (json.loads(first.content), json.loads(again.content)) == ({}, {"if_busy": "wait"})


def test_every_run_has_its_own_idempotency_key() -> None:
    recorder = Recorder(run_answer("one"), run_answer("two"), event_stream("[DONE]"))
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        session.run()
        session.run()
        list(session.run(stream=True))
    keys = [r.headers["Idempotency-Key"] for r in recorder.requests]
    assert len(keys) == len(set(keys)) == 3
    assert all(str(uuid.UUID(key)) == key for key in keys)


def test_a_streamed_run_is_never_resent() -> None:
    recorder = Recorder(httpx.ReadError("reset"))
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        chunks = list(session.run(stream=True, if_busy="wait", wait_seconds=2.5))
    assert [(c.done, c.error, c.error_type) for c in chunks] == [
        (True, True, "api_connection_error")
    ]
    # Sent once, never again: the client only looks for the run by its key (to resume it
    # had it started), and finds nothing here.
    request, *looked_up = recorder.requests
    assert json.loads(request.content) == {
        "if_busy": "wait",
        "wait_seconds": 2.5,
        "stream": True,
        "on_disconnect": "continue",
    }
    assert "Idempotency-Key" in request.headers
    assert looked_up  # (a read, which the client tries again as it does every read)
    assert {(r.method, r.url.path.rsplit("/", 1)[-1]) for r in looked_up} == {("GET", "runs")}


def test_session_busy_is_returned_not_retried() -> None:
    busy = httpx.Response(
        409,
        json={"error": "session_busy", "detail": "Another run is in progress.", "field": None},
        headers={"Retry-After": "2"},
    )
    recorder = Recorder(busy)
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        result = session.run()
        (chunk,) = list(session.run(stream=True))
    assert (result.error, result.error_type) == (True, "session_busy")
    assert "Another run is in progress." in (result.error_log or "")
    assert (chunk.done, chunk.error, chunk.error_type) == (True, True, "session_busy")
    assert len(recorder.requests) == 2


def test_add_messages_retries_with_the_same_message_uuids() -> None:
    stored = {
        "data": [
            {
                "uuid": str(uuid.uuid4()),
                "seq": 1,
                "role": "user",
                "content": "Hello?",
                "created_at": "2025-01-01T00:00:00Z",
            }
        ]
    }
    recorder = Recorder(
        httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.Response(201, json=stored)
    )
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        (message,) = session.add_messages(QUESTION)
    assert message.content == "Hello?"
    bodies = [json.loads(r.content) for r in recorder.requests]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    uuid.UUID(bodies[0]["messages"][0]["uuid"])
    assert QUESTION == [{"role": "user", "content": "Hello?"}]  # the caller's dicts are untouched


def test_add_messages_gives_up_after_two_retries() -> None:
    recorder = Recorder(httpx.ConnectError("refused"))
    with recorder.client() as http, pytest.raises(chatmodel.APIConnectionError):
        ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).add_messages(QUESTION)
    assert len(recorder.requests) == 3


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Delivers each request, but drops the first answer of every POST path on the way back."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.dropped: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path not in self.dropped:
            self.dropped.add(request.url.path)
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered")
        return response


async def test_lost_answers_are_retried_without_storing_twice(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "assistant")
    transport = LoseFirstAnswer(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport) as flaky:
        session = ChatModel("assistant", base_url=ASGI_BASE_URL, async_http_client=flaky)
        added = await session.aadd_messages(
            [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
        )
    assert len(transport.dropped) == 2  # the session create and the messages were both resent
    assert session.session_uuid is not None
    stored = await stored_messages(client, session.session_uuid)
    assert [(m["seq"], m["content"]) for m in stored] == [(1, "one"), (2, "two")]
    assert [str(m.uuid) for m in added] == [m["uuid"] for m in stored]


async def test_a_score_whose_answer_was_lost_is_stored_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "assistant")
    session = ChatModel("assistant", base_url=ASGI_BASE_URL, async_http_client=client)
    await session.aadd_messages(QUESTION)
    await session.arun()
    transport = LoseFirstAnswer(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport) as flaky:
        resent = ChatModel(
            "assistant", session.session_uuid, base_url=ASGI_BASE_URL, async_http_client=flaky
        )
        thumbs = await resent.alog_score("thumbs", True)
        resolved = await resent.alog_score_to_session("resolved", True)
    assert len(transport.dropped) == 2  # each was resent, under the same id
    listed = await client.get(f"/v1/sessions/{session.session_uuid}/feedback")
    assert [f["id"] for f in listed.json()["data"]] == [str(thumbs.id), str(resolved.id)]


def event_stream(*events: str) -> httpx.Response:
    body = "".join(f"data: {event}\n\n" for event in events)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_a_stream_cut_before_its_last_event_ends_with_an_error_chunk() -> None:
    with Recorder(event_stream('{"content": "Hel"}', '{"content": "lo"}')).client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        chunks = list(session.run(stream=True))
    assert [c.content for c in chunks] == ["Hel", "lo", None]
    assert (chunks[-1].done, chunks[-1].error, chunks[-1].error_type) == (
        True,
        True,
        "api_connection_error",
    )


def test_a_complete_stream_needs_no_extra_chunk() -> None:
    last = '{"done": true, "message": {"content": "Hello"}, "finish_reason": "stop"}'
    with Recorder(event_stream('{"content": "Hello"}', last, "[DONE]")).client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        chunks = list(session.run(stream=True))
    assert [(c.content, c.done, c.error) for c in chunks] == [
        ("Hello", False, False),
        (None, True, False),
    ]
    assert chunks[-1].message is not None and chunks[-1].message.content == "Hello"


def test_an_unreadable_event_ends_the_stream_with_an_error_chunk() -> None:
    recorder = Recorder(event_stream('{"content": "ok"}', "{not json", '{"content": "never"}'))
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        chunks = list(session.run(stream=True))
    assert [c.content for c in chunks] == ["ok", None]
    assert (chunks[-1].error, chunks[-1].error_type) == (True, "invalid_response")


def test_writes_that_lost_a_race_are_sent_again() -> None:
    race = httpx.Response(409, json={"error": "conflict", "detail": "retry", "field": None})
    recorder = Recorder(
        race, httpx.Response(200, json={}), race, httpx.Response(201, json={"data": []})
    )
    with recorder.client() as http:
        session = ChatModel("assistant", http_client=http)
        assert session.add_messages(QUESTION) == []
    assert [r.url.path for r in recorder.requests] == [
        "/v1/sessions",
        "/v1/sessions",
        f"/v1/sessions/{session.session_uuid}/messages",
        f"/v1/sessions/{session.session_uuid}/messages",
    ]


def test_other_conflicts_are_not_sent_again() -> None:
    reused = {"error": "conflict", "detail": "uuid of another session", "field": "messages.0.uuid"}
    recorder = Recorder(httpx.Response(409, json=reused))
    with recorder.client() as http, pytest.raises(chatmodel.ConflictError) as raised:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        session.add_messages(QUESTION)
    assert raised.value.field == "messages.0.uuid"
    assert len(recorder.requests) == 1


def test_a_session_create_conflict_is_asked_once_more_then_raised() -> None:
    taken = {"error": "conflict", "detail": "Session is taken.", "field": "session_uuid"}
    recorder = Recorder(httpx.Response(409, json=taken))
    with recorder.client() as http, pytest.raises(chatmodel.ConflictError):
        ChatModel("assistant", http_client=http).add_messages(QUESTION)
    assert [r.url.path for r in recorder.requests] == ["/v1/sessions", "/v1/sessions"]


NO_SUCH_SESSION = httpx.Response(
    404, json={"error": "session_not_found", "detail": "No session.", "field": "session_uuid"}
)
SESSION_MADE = httpx.Response(201, json={})


def test_a_named_session_the_server_lacks_is_made_and_the_write_sent_again() -> None:
    named = uuid.uuid4()
    stored: dict[str, list[object]] = {"data": []}
    recorder = Recorder(
        NO_SUCH_SESSION, SESSION_MADE, httpx.Response(201, json=stored), run_answer("two")
    )
    with recorder.client() as http:
        session = ChatModel("assistant", named, version="latest", http_client=http)
        assert session.add_messages(QUESTION) == []
        assert session.run().content == "two"  # known now: no second create
    path = f"/v1/sessions/{named}"
    assert [r.url.path for r in recorder.requests] == [
        f"{path}/messages",
        "/v1/sessions",
        f"{path}/messages",
        f"{path}/run",
    ]
    first, create, again, _ = (json.loads(r.content) for r in recorder.requests)
    assert create == {"chat_model": "assistant", "version": "latest", "session_uuid": str(named)}
    assert first == again  # the same message uuids: nothing stored twice


def test_a_run_on_a_named_session_the_server_lacks_is_sent_again_under_its_key() -> None:
    recorder = Recorder(NO_SUCH_SESSION, SESSION_MADE, run_answer("made"))
    with recorder.client() as http:
        result = ChatModel("assistant", uuid.uuid4(), http_client=http).run(if_busy="reject")
    assert result.content == "made"
    first, create, again = recorder.requests
    assert create.url.path == "/v1/sessions"
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert first.content == again.content  # not a resend after a lost answer: no if_busy=wait


def test_a_stream_on_a_named_session_the_server_lacks_is_streamed_again() -> None:
    last = '{"done": true, "message": {"content": "Hello"}, "finish_reason": "stop"}'
    recorder = Recorder(NO_SUCH_SESSION, SESSION_MADE, event_stream(last, "[DONE]"))
    with recorder.client() as http:
        chunks = list(ChatModel("assistant", uuid.uuid4(), http_client=http).run(stream=True))
    assert [(c.done, c.error) for c in chunks] == [(True, False)]
    first, create, again = recorder.requests
    assert create.url.path == "/v1/sessions"
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]


def test_only_a_missing_session_makes_one() -> None:
    """Another 404, or a create the server refuses, is reported; nothing is tried twice."""
    gone = {"error": "chat_model_not_found", "detail": "No chat model.", "field": None}
    recorder = Recorder(httpx.Response(404, json=gone))
    with recorder.client() as http, pytest.raises(chatmodel.ChatModelNotFound):
        ChatModel("assistant", uuid.uuid4(), http_client=http).add_messages(QUESTION)
    assert len(recorder.requests) == 1

    taken = {"error": "conflict", "detail": "Session is taken.", "field": "session_uuid"}
    recorder = Recorder(NO_SUCH_SESSION, httpx.Response(409, json=taken))
    with recorder.client() as http:
        session = ChatModel("assistant", uuid.uuid4(), http_client=http)
        (chunk,) = list(session.run(stream=True))
    assert (chunk.done, chunk.error, chunk.error_type) == (True, True, "conflict")
    assert [r.url.path for r in recorder.requests][1:] == ["/v1/sessions", "/v1/sessions"]
