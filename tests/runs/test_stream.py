"""Streamed runs: SSE events, one complete stored reply, and what happens on faults."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    make_chat_model,
    make_session,
    run,
    stored_messages,
    stream,
)
from tests.support.llm_server import (
    ErrorReply,
    Reply,
    ScriptedLLMServer,
    SlowStream,
    StreamDrop,
    ToolCall,
    ToolCallsReply,
)
from tests.support.servers import LiveApp


async def remote_session(client: httpx.AsyncClient, llm_server: ScriptedLLMServer) -> str:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Tell me something."})
    return session


async def test_offline_text_stream_is_stored_once_complete(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "Hello there, streaming world"})

    events = await stream(client, session)

    pieces, last = events[:-1], events[-1]
    assert len(pieces) > 1
    assert all(not e["done"] for e in pieces)
    text = "".join(e.get("content") or "" for e in pieces)
    assert text == "Hello there, streaming world"
    assert last["done"] is True and last["error"] is False
    assert last["message"]["content"] == text
    assert last["finish_reason"] == "stop"
    assert last["usage"]["total_tokens"] > 0
    messages = await stored_messages(client, session)
    assert [(m["role"], m["content"]) for m in messages] == [("user", text), ("assistant", text)]
    assert messages[1]["uuid"] == last["detail"]["message_uuid"]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [(r["status"], r["stream"]) for r in runs] == [("succeeded", True)]


async def test_offline_function_call_stream(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "Weather in Boston?"})

    events = await stream(client, session, functions=[WEATHER_FUNCTION])

    deltas = [e["function_call"] for e in events if e.get("function_call")]
    assert deltas and deltas[0]["name"] == "get_weather"
    assert json.loads("".join(d["arguments"] for d in deltas)) == {"location": "Boston"}
    final = events[-1]["message"]["function_call"]
    assert final["args"] == {"location": "Boston"}
    stored = (await stored_messages(client, session))[-1]
    assert stored["function_call"] == {"name": "get_weather", "arguments": final["arguments"]}


async def test_scripted_stream_reports_provider_usage(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Reply("It is sunny today.", prompt_tokens=12, completion_tokens=4))

    events = await stream(client, session)

    assert "".join(e.get("content") or "" for e in events) == "It is sunny today."
    assert events[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    sent = llm_server.requests[-1]
    assert sent["stream"] is True
    assert sent["messages"][0] == {"role": "system", "content": "You are a test assistant."}


async def test_scripted_tool_calls_are_assembled_from_deltas(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(
        ToolCallsReply(
            (
                ToolCall("call_a", "get_weather", '{"location": "Paris"}'),
                ToolCall("call_b", "get_weather", '{"location": "Rome"}'),
            )
        )
    )

    events = await stream(
        client, session, tools=[{"type": "function", "function": WEATHER_FUNCTION}]
    )

    final = events[-1]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["args"]) for c in final] == [
        ("call_a", {"location": "Paris"}),
        ("call_b", {"location": "Rome"}),
    ]
    stored = (await stored_messages(client, session))[-1]
    assert [c["id"] for c in stored["tool_calls"]] == ["call_a", "call_b"]
    assert events[-1]["finish_reason"] == "tool_calls"


async def test_upstream_drop_mid_stream_stores_nothing_and_says_so(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    before = await stored_messages(client, session)
    llm_server.enqueue(StreamDrop(Reply("one two three four five six"), after_chunks=3))

    events = await stream(client, session)

    assert any(e.get("content") for e in events[:-1])  # the client saw partial text
    last = events[-1]
    assert last["done"] is True and last["error"] is True
    assert last["error_type"] == "stream_interrupted"
    assert "Traceback" not in last["error_log"]
    assert last["detail"]["message_uuid"] is None
    assert await stored_messages(client, session) == before
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "stream_interrupted")]

    llm_server.enqueue(Reply("Back again."))
    assert (await run(client, session))["content"] == "Back again."


async def test_upstream_error_before_the_first_piece(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(ErrorReply(429, "slow down"))

    events = await stream(client, session)

    assert len(events) == 1
    assert events[0]["error"] is True and events[0]["error_type"] == "rate_limited"


async def test_unknown_session_is_a_json_404_not_a_stream(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sessions/00000000-0000-4000-8000-00000000abcd/run", json={"stream": True}
    )
    assert response.status_code == 404
    assert response.json()["error"] == "session_not_found"


def test_client_disconnect_closes_upstream_and_stores_nothing(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.1))
    with httpx.Client(base_url=live_app.base_url, timeout=10) as http:
        http.post("/v1/chat-models", json={"name": "remote"}).raise_for_status()
        http.post(
            "/v1/chat-models/remote/versions",
            json={
                "system_prompt": "s",
                "model": "openai/slow",
                "api_base": llm_server.base_url,
                "publish": True,
            },
        ).raise_for_status()
        session = http.post("/v1/sessions", json={"chat_model": "remote"}).json()["uuid"]
        http.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [{"role": "user", "content": "Talk slowly."}]},
        ).raise_for_status()

        with http.stream("POST", f"/v1/sessions/{session}/run", json={"stream": True}) as response:
            received = 0
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received += 1
                if received == 2:
                    break  # hang up mid-reply

        deadline = time.monotonic() + 10
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            runs = http.get(f"/v1/sessions/{session}/runs").json()["data"]
            # The upstream is closed first, the run recorded just after: wait for both.
            if runs and runs[0]["status"] != "running" and llm_server.open_streams == 0:
                break
            time.sleep(0.05)
        assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "client_disconnected")]
        assert llm_server.open_streams == 0
        assert llm_server.abandoned_streams == 1  # upstream closed early, not read to the end
        roles = [m["role"] for m in http.get(f"/v1/sessions/{session}/messages").json()["data"]]
        assert roles == ["user"]
    pool = live_app.app.state.database.engine.pool
    deadline = time.monotonic() + 2  # the run's end read back and its events written
    while pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pool.checkedout() == 0  # nothing held on to a connection
