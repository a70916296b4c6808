"""A failed run says what happened, and never a cause nobody reported.

LiteLLM labels many failures of a 200 answer "HTTP 500": a body cut off mid-way, an error
object sent in a stream, a stream that breaks. The provider sent no 500, so none is shown
(``provider_status`` stays null) and the error names what did happen. A run whose session
was deleted with ``?force=true`` while it ran says so. Through the real LiteLLM over HTTP,
on both of its transports.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from chatmodel_service.config import OPENAI_TRANSPORT_ENV, OpenAITransport
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from tests.factories import (
    make_remote_session,
    run,
    stored_messages,
    stream,
)
from tests.support.llm_server import (
    CutBody,
    Delay,
    RawBody,
    Reply,
    ScriptedLLMServer,
    SlowStream,
    StreamDrop,
    sse_body,
)

TRANSPORTS: tuple[OpenAITransport, ...] = ("litellm", "openai-sdk")
QUESTION = {"role": "user", "content": "What happened?"}
OVERLOADED = "The engine is overloaded, try again later"
ERROR_OBJECT = {
    "error": {"message": OVERLOADED, "type": "server_error", "param": None, "code": None}
}
FIRST_PIECE = {
    "id": "chatcmpl-piece",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "Once upon"}, "finish_reason": None}],
}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> OpenAITransport:
    value: OpenAITransport = request.param
    return value


@pytest.fixture
def gateway(transport: OpenAITransport, monkeypatch: pytest.MonkeyPatch) -> LLMGateway:
    """The real gateway on ``transport``; the process's transport is restored afterwards."""
    monkeypatch.setenv(OPENAI_TRANSPORT_ENV, "true")
    return create_gateway(transport)


def assert_no_invented_status(result: dict[str, Any]) -> None:
    assert result["error"] is True, result
    assert "HTTP 500" not in result["error_log"], result["error_log"]
    assert [a["provider_status"] for a in result["attempts"]] == [None], result["attempts"]


# -- a non-streamed body cut mid-way ----------------------------------------------------


async def test_a_body_cut_mid_way_says_the_answer_was_cut_off(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(CutBody(Reply("A long answer that never arrives whole."), sent_bytes=40))

    result = await run(client, session)

    assert_no_invented_status(result)
    assert result["error_type"] == "connection_error"
    assert "closed the connection before its answer was complete" in result["error_log"]
    assert "Could not reach" not in result["error_log"]  # it was reached: it answered
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


async def test_a_body_cut_mid_way_is_retried_as_a_dropped_connection(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION, num_retries=1)
    llm_server.enqueue(CutBody(Reply("Cut."), sent_bytes=30), Reply("Whole this time."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    assert result["content"] == "Whole this time."
    assert [(a["outcome"], a["provider_status"]) for a in result["attempts"]] == [
        ("connection_error", None),
        ("succeeded", None),
    ]


# -- an error object in a 200 stream ----------------------------------------------------


async def test_an_error_event_on_a_stream_reports_the_providers_message(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(RawBody(sse_body(ERROR_OBJECT), media_type="text/event-stream"))

    events = await stream(client, session)

    assert len(events) == 1, events
    assert_no_invented_status(events[0])
    assert events[0]["error_type"] == "provider_error"
    assert OVERLOADED in events[0]["error_log"]
    assert "broke off" not in events[0]["error_log"]  # nothing broke: the provider said no


async def test_a_json_error_body_on_a_stream_invents_no_status(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, transport: OpenAITransport
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(RawBody(json.dumps(ERROR_OBJECT)))

    events = await stream(client, session)

    assert len(events) == 1, events
    assert_no_invented_status(events[0])
    if transport == "litellm":
        assert events[0]["error_type"] == "provider_error"
        assert OVERLOADED in events[0]["error_log"]
    else:  # the OpenAI SDK reads SSE lines only: the body is lost, no answer came
        assert events[0]["error_type"] == "malformed_response"
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


async def test_an_error_event_after_the_first_piece_interrupts_the_stream(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(RawBody(sse_body(FIRST_PIECE, ERROR_OBJECT), media_type="text/event-stream"))

    events = await stream(client, session)

    assert [e.get("content") for e in events[:-1]] == ["Once upon"]
    assert_no_invented_status(events[-1])
    assert events[-1]["error_type"] == "stream_interrupted"
    assert OVERLOADED in events[-1]["error_log"]
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


async def test_a_stream_that_breaks_off_invents_no_status(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(StreamDrop(Reply("one two three four"), after_chunks=2))

    events = await stream(client, session)

    assert_no_invented_status(events[-1])
    assert events[-1]["error_type"] == "stream_interrupted"
    assert "broke off before the reply was complete" in events[-1]["error_log"]


# -- a run whose session was deleted ----------------------------------------------------


async def until_the_model_is_called(server: ScriptedLLMServer) -> None:
    for _ in range(500):
        if server.requests:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the model was never called")


async def delete_by_force(client: httpx.AsyncClient, session: str) -> None:
    deleted = await client.delete(f"/v1/sessions/{session}", params={"force": True})
    assert deleted.status_code == 204, deleted.text


@pytest.mark.parametrize("transport", ["litellm"], indirect=True)
async def test_a_run_ended_by_a_forced_delete_says_the_session_was_deleted(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(0.5, Reply("Too late.")))
    running = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    await until_the_model_is_called(llm_server)

    await delete_by_force(client, session)
    answered = (await running).json()

    assert (answered["error"], answered["error_type"]) == (True, "interrupted")
    assert "deleted" in answered["error_log"], answered["error_log"]
    assert "renew" not in answered["error_log"]


@pytest.mark.parametrize("transport", ["litellm"], indirect=True)
async def test_a_stream_ended_by_a_forced_delete_says_the_session_was_deleted(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(SlowStream(Reply("one two three four"), chunk_delay=0.15))
    streaming = asyncio.create_task(stream(client, session))
    await until_the_model_is_called(llm_server)

    await delete_by_force(client, session)
    last = (await streaming)[-1]

    assert (last["error"], last["error_type"]) == (True, "interrupted")
    assert "deleted" in last["error_log"], last["error_log"]
    assert "renew" not in last["error_log"]
