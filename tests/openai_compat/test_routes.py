"""The OpenAI-compatible API over HTTP: which settings a call uses, what is stored, raw SSE
as seeds 000-003 read it, and OpenAI's error shape on these routes only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import requests
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import ChatRun
from chatmodel_service.runs.outcomes import interrupted, outcome_values
from chatmodel_service.runs.repository import RunRepository
from chatmodel_service.sessions.repository import SessionRepository
from tests.factories import WEATHER_FUNCTION, add_messages, make_chat_model, stored_messages
from tests.support.llm_server import (
    Delay,
    ErrorReply,
    Reply,
    ScriptedLLMServer,
    SlowStream,
    StreamDrop,
    ToolCall,
    ToolCallsReply,
)
from tests.support.servers import LiveApp

USER_HELLO = {"role": "user", "content": "Hello, what can you do?"}


def chat(model: str = "assistant", *messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": list(messages) or [USER_HELLO], **fields}


def expect_openai_error(
    response: httpx.Response, status: int, code: str | None, param: str | None
) -> str:
    """Assert OpenAI's error body; returns the message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["code"], error["param"]) == (code, param), error
    assert isinstance(error["message"], str) and error["message"], error
    return str(error["message"])


def sse_data(lines: list[str]) -> list[Any]:
    """Seed 000/002 parsing: every ``data: `` line, JSON-decoded, up to ``[DONE]``."""
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def stream_events(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], **kwargs: Any
) -> list[Any]:
    async with client.stream("POST", path, json=body, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_data([line async for line in response.aiter_lines()])


async def scripted_chat_model(
    client: httpx.AsyncClient, server: ScriptedLLMServer, name: str = "remote", **fields: Any
) -> dict[str, Any]:
    return await make_chat_model(
        client,
        name,
        model="openai/scripted",
        api_base=server.base_url,
        system_prompt="You are a support agent.",
        **fields,
    )


async def stored_run(app: FastAPI, run_uuid: str) -> ChatRun | None:
    async with app.state.database.transaction() as db:
        run: ChatRun | None = await db.get(ChatRun, uuid.UUID(run_uuid))
        return run


# -- which settings a call uses ---------------------------------------------------------


async def test_version_settings_apply_and_caller_parameters_override(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(
        client, llm_server, params={"temperature": 0.3, "max_tokens": 400, "top_p": 0.5}
    )
    llm_server.enqueue(Reply("Sure."))

    response = await client.post(
        "/v1/chat/completions",
        json=chat(
            "remote",
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
            temperature=0.9,
            stop=["END"],
        ),
    )

    assert response.status_code == 200, response.text
    sent = llm_server.requests[-1]
    assert sent["model"] == "scripted"  # the version's model, not the request's "remote"
    assert sent["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
    ]
    assert (sent["temperature"], sent["stop"]) == (0.9, ["END"])  # the caller's
    assert (sent["max_tokens"], sent["top_p"]) == (400, 0.5)  # the version's
    body = response.json()
    assert body["model"] == "remote"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert body["chatmodel"]["chat_model"] == "remote" and body["chatmodel"]["version"] == 1


async def test_caller_tools_replace_the_versions_functions(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server, functions=[WEATHER_FUNCTION])
    calls = (ToolCall("call_1", "lookup", '{"q": "x"}'),)
    llm_server.enqueue(ToolCallsReply(calls))
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {}}}

    response = await client.post(
        "/v1/chat/completions", json=chat("remote", tools=[lookup], tool_choice="required")
    )

    assert response.status_code == 200, response.text
    sent = llm_server.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup"]
    assert sent["tool_choice"] == "required" and "functions" not in sent
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"}'},
            }
        ],
    }


async def test_legacy_function_call_round_trip(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    question = {"role": "user", "content": "What is the weather in Boston?"}

    first = await client.post(
        "/v1/chat/completions", json=chat("assistant", question, functions=[WEATHER_FUNCTION])
    )
    message = first.json()["choices"][0]["message"]
    assert message["function_call"] == {
        "name": "get_weather",
        "arguments": '{"location": "Boston"}',
    }
    result = {"role": "function", "name": "get_weather", "content": "13 degrees celsius"}
    second = await client.post(
        "/v1/chat/completions", json=chat("assistant", question, message, result)
    )

    assert second.json()["choices"][0]["message"]["content"] == (
        "get_weather returned: 13 degrees celsius"
    )


async def test_a_continued_session_keeps_its_version(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, system_prompt="v1")
    session = str(uuid.uuid4())
    headers = {"X-Session-Id": session}
    await client.post("/v1/chat/completions", json=chat(), headers=headers)
    await client.post(
        "/v1/chat-models/assistant/versions",
        json={"system_prompt": "v2", "model": OFFLINE_MODEL, "publish": True},
    )

    continued = await client.post(
        "/v1/chat/completions",
        json=chat("assistant", USER_HELLO, {"role": "assistant", "content": USER_HELLO["content"]}),
        headers=headers,
    )
    fresh = await client.post("/v1/chat/completions", json=chat())

    assert continued.json()["chatmodel"]["version"] == 1
    assert continued.headers["X-Session-Id"] == session
    assert fresh.json()["chatmodel"]["version"] == 2


# -- sessions ---------------------------------------------------------------------------


async def test_session_stores_new_messages_not_instructions(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Reply("One."), Reply("Two."))
    session = str(uuid.uuid4())
    instruction = {"role": "developer", "content": "Be terse."}
    first = [instruction, {"role": "user", "content": "Q1"}]

    await client.post(
        "/v1/chat/completions", json=chat("remote", *first), headers={"X-Session-Id": session}
    )
    second = [*first, {"role": "assistant", "content": "One."}, {"role": "user", "content": "Q2"}]
    response = await client.post(
        "/v1/chat/completions", json=chat("remote", *second, session_uuid=session)
    )

    assert response.status_code == 200, response.text
    assert response.json()["chatmodel"]["session_uuid"] == session
    assert [(m["role"], m["content"]) for m in await stored_messages(client, session)] == [
        ("user", "Q1"),
        ("assistant", "One."),
        ("user", "Q2"),
        ("assistant", "Two."),
    ]
    assert llm_server.requests[-1]["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "One."},
        {"role": "user", "content": "Q2"},
    ]


async def test_a_request_shorter_than_the_history_names_the_missing_index(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client)
    session = str(uuid.uuid4())
    headers = {"X-Session-Id": session}
    await client.post("/v1/chat/completions", json=chat(), headers=headers)

    only_new = await client.post(
        "/v1/chat/completions",
        json=chat("assistant", {"role": "user", "content": "Next"}),
        headers=headers,
    )
    message = expect_openai_error(only_new, 409, "history_mismatch", "messages")
    assert "messages[0] differs" in message and "whole conversation" in message

    repeated = await client.post("/v1/chat/completions", json=chat(), headers=headers)
    message = expect_openai_error(repeated, 409, "history_mismatch", "messages")
    assert "messages[1] is missing" in message
    assert len(await stored_messages(client, session)) == 2


async def test_a_session_of_another_chat_model_is_a_conflict(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "first")
    await make_chat_model(client, "second")
    session = str(uuid.uuid4())
    await client.post("/v1/chat/completions", json=chat("first"), headers={"X-Session-Id": session})

    response = await client.post(
        "/v1/chat/completions", json=chat("second"), headers={"X-Session-Id": session}
    )

    message = expect_openai_error(response, 409, "conflict", "session_uuid")
    assert f"{session} already exists and is not a session of chat model 'second'" in message


async def test_a_failed_call_keeps_the_new_messages_and_can_be_resent(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(ErrorReply(500, "upstream broke"), Reply("Fine now."))
    headers = {"X-Session-Id": str(uuid.uuid4())}
    body = chat("remote", {"role": "user", "content": "Hi"})

    failed = await client.post("/v1/chat/completions", json=body, headers=headers)
    resent = await client.post("/v1/chat/completions", json=body, headers=headers)

    assert "upstream broke" in expect_openai_error(failed, 502, "provider_error", None)
    assert resent.status_code == 200, resent.text
    stored = await stored_messages(client, headers["X-Session-Id"])
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Hi"),
        ("assistant", "Fine now."),
    ]
    runs = (await client.get(f"/v1/sessions/{headers['X-Session-Id']}/runs")).json()["data"]
    assert [r["status"] for r in runs] == ["failed", "succeeded"]
    assert runs[1]["uuid"] == resent.json()["chatmodel"]["run_uuid"]
    assert resent.json()["id"] == f"chatcmpl-{uuid.UUID(runs[1]['uuid']).hex}"


async def test_tool_result_without_id_is_linked_like_in_the_sessions_api(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, tools=[{"type": "function", "function": WEATHER_FUNCTION}])
    session = str(uuid.uuid4())
    question = {"role": "user", "content": "Weather in Oslo?"}
    first = await client.post(
        "/v1/chat/completions", json=chat("assistant", question), headers={"X-Session-Id": session}
    )
    reply = first.json()["choices"][0]["message"]

    second = await client.post(
        "/v1/chat/completions",
        json=chat("assistant", question, reply, {"role": "tool", "content": "Sunny"}),
        headers={"X-Session-Id": session},
    )

    assert second.json()["choices"][0]["message"]["content"] == "get_weather returned: Sunny"
    stored = await stored_messages(client, session)
    assert stored[2]["tool_call_id"] == reply["tool_calls"][0]["id"]


# -- stateless calls are recorded --------------------------------------------------------


async def test_stateless_calls_are_recorded_against_the_version(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client)

    responses = [await client.post("/v1/chat/completions", json=chat()) for _ in range(2)]

    run = await stored_run(app, responses[0].json()["chatmodel"]["run_uuid"])
    assert run is not None and run.session_id is None and run.status == "succeeded"
    stats = (await client.get("/v1/chat-models/assistant/versions/1/stats")).json()
    assert (stats["runs"], stats["sessions"]) == (2, 0)
    assert (await client.get("/v1/sessions")).json()["data"] == []


async def test_a_failed_stateless_call_is_recorded_as_failed(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server, params={"timeout": 0.5})
    llm_server.enqueue(Delay(2, Reply("too late")))

    response = await client.post("/v1/chat/completions", json=chat("remote"))

    expect_openai_error(response, 504, "timeout", None)
    stats = (await client.get("/v1/chat-models/remote/versions/1/stats")).json()
    assert (stats["runs"], stats["errors"]) == (1, 1)


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (ErrorReply(429, "slow down", "rate_limit_error"), 429, "rate_limit_exceeded"),
        (ErrorReply(401, "bad key", "invalid_request_error"), 502, "authentication_error"),
        (ErrorReply(503, "overloaded"), 502, "provider_error"),
    ],
)
async def test_upstream_failures_are_openai_errors(
    client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
    reply: ErrorReply,
    status: int,
    code: str,
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(reply)

    response = await client.post("/v1/chat/completions", json=chat("remote"))

    assert reply.message in expect_openai_error(response, status, code, None)


# -- streaming, read the way the seeds read it -------------------------------------------


def test_raw_sse_chat_stream_seed_style(live_app: LiveApp) -> None:
    response = requests.post(
        f"{live_app.base_url}/v1/chat/completions",
        json={
            "model": "simple_assistant",
            "messages": [{"role": "user", "content": "Hello, what can you do?"}],
            "stream": True,
        },
        headers={"accept": "application/json", "x-api-key": "sampleapikey12345"},
        stream=True,
        timeout=30,
    )
    text, events = "", []
    for raw_event in response.iter_lines():
        if raw_event:
            event_str = raw_event.decode()
            if event_str.startswith("data: "):
                events.append(event_str[len("data: ") :])
    for payload in events[:-1]:
        chunk = json.loads(payload)
        assert chunk["object"] == "chat.completion.chunk"
        text += chunk["choices"][0]["delta"].get("content") or ""

    assert text == "Hello, what can you do?"
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


def test_raw_sse_text_completion_stream_seed_style(live_app: LiveApp) -> None:
    response = requests.post(
        f"{live_app.base_url}/v1/completions",
        json={
            "model": "simple_assistant",
            "prompt": "Give me a summary.",
            "max_new_tokens": 1000,
            "temperature": 0.2,
            "stream": True,
        },
        headers={"Authorization": "Bearer sampleapikey12345"},
        stream=True,
        timeout=30,
    )
    lines = [raw.decode() for raw in response.iter_lines() if raw]
    events = sse_data(lines)

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Give me a summary."
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_text_completion_is_one_user_message_without_tools(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server, functions=[WEATHER_FUNCTION])
    llm_server.enqueue(Reply("Bob."))

    response = await client.post(
        "/v1/completions",
        json={"model": "remote", "prompt": ["Hello, my name is"], "max_new_tokens": 10},
    )

    assert response.status_code == 200, response.text
    assert response.json()["choices"] == [
        {"text": "Bob.", "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    sent = llm_server.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Hello, my name is"},
    ]
    assert sent["max_tokens"] == 10 and "functions" not in sent and "tools" not in sent


async def test_stream_usage_and_tool_call_deltas(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(ToolCallsReply((ToolCall("call_9", "lookup", '{"query": "boston"}'),)))
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {}}}

    events = await stream_events(
        client,
        "/v1/chat/completions",
        chat("remote", tools=[lookup], stream=True, stream_options={"include_usage": True}),
    )

    assert events[-1] == "[DONE]"
    *chunks, usage_chunk = events[:-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    calls = [piece for group in pieces if group for piece in group]
    assert calls[0]["id"] == "call_9" and calls[0]["function"]["name"] == "lookup"
    assert "".join(p["function"]["arguments"] for p in calls) == '{"query": "boston"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_a_stream_that_breaks_off_ends_with_an_error_event(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(StreamDrop(Reply("one two three four five six"), after_chunks=3))
    session = str(uuid.uuid4())

    events = await stream_events(
        client,
        "/v1/chat/completions",
        chat("remote", stream=True),
        headers={"X-Session-Id": session},
    )

    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "stream_interrupted"
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "stream_interrupted")]
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


# -- passthrough --------------------------------------------------------------------------


@pytest.fixture
async def passthrough_client(
    database_url: str, gateway: LLMGateway
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, seed_demo=False, openai_passthrough=True)
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
            yield c


async def test_raw_model_strings_need_passthrough(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat(OFFLINE_MODEL))

    assert "does not exist" in expect_openai_error(response, 404, "model_not_found", "model")


async def test_passthrough_calls_a_raw_model(passthrough_client: httpx.AsyncClient) -> None:
    response = await passthrough_client.post("/v1/chat/completions", json=chat(OFFLINE_MODEL))
    unknown = await passthrough_client.post("/v1/chat/completions", json=chat("nope/model"))
    with_session = await passthrough_client.post(
        "/v1/chat/completions",
        json=chat(OFFLINE_MODEL),
        headers={"X-Session-Id": str(uuid.uuid4())},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == USER_HELLO["content"]
    assert body["model"] == OFFLINE_MODEL
    assert (body["chatmodel"]["chat_model"], body["chatmodel"]["run_uuid"]) == (None, None)
    assert "'nope'" in expect_openai_error(unknown, 404, "model_not_found", "model")
    expect_openai_error(with_session, 400, "invalid_input", "session_uuid")


# -- OpenAI's error shape on these routes only ------------------------------------------------


async def test_request_errors_use_openai_shape(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)

    two_choices = await client.post("/v1/chat/completions", json=chat(n=2))
    too_hot = await client.post("/v1/chat/completions", json=chat(temperature=3))
    bad_role = await client.post(
        "/v1/chat/completions", json=chat("assistant", {"role": "robot", "content": "x"})
    )
    image = await client.post(
        "/v1/chat/completions",
        json=chat(
            "assistant",
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        ),
    )
    not_json = await client.post(
        "/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}
    )
    two_prompts = await client.post(
        "/v1/completions", json={"model": "assistant", "prompt": ["a", "b"]}
    )
    bad_session = await client.post(
        "/v1/chat/completions", json=chat(), headers={"X-Session-Id": "not-a-uuid"}
    )

    assert "n=1" in expect_openai_error(two_choices, 400, "validation_error", "n")
    expect_openai_error(too_hot, 400, "invalid_input", "temperature")
    expect_openai_error(bad_role, 400, "validation_error", "messages.0.role")
    expect_openai_error(image, 400, "invalid_input", "messages.0.content.0.type")
    expect_openai_error(not_json, 400, "validation_error", "body")
    expect_openai_error(two_prompts, 400, "validation_error", "prompt")
    expect_openai_error(bad_session, 400, "invalid_input", "X-Session-Id")
    assert two_choices.json()["error"]["type"] == "invalid_request_error"


async def test_an_oversized_body_is_413_in_openai_shape(
    database_url: str, gateway: LLMGateway
) -> None:
    settings = Settings(database_url=database_url, seed_demo=False, max_body_bytes=1000)
    app = create_app(settings, gateway)
    big = chat("assistant", {"role": "user", "content": "x" * 2000})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            declared = await client.post("/v1/chat/completions", json=big)
            streamed = await client.post(
                "/v1/chat/completions",
                content=_chunks(json.dumps(big).encode()),
                headers={"content-type": "application/json"},
            )
            elsewhere = await client.post("/v1/chat-models", json={"name": "x" * 2000})

    expect_openai_error(declared, 413, "payload_too_large", "body")
    expect_openai_error(streamed, 413, "payload_too_large", "body")
    assert elsewhere.status_code == 413 and elsewhere.json()["error"] == "payload_too_large"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 500):
        yield data[start : start + 500]


async def test_the_rest_of_the_api_keeps_its_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions", json={"chat_model": "missing"})

    assert response.status_code == 404
    assert response.json()["error"] == "chat_model_not_found"


async def test_an_unpublished_chat_model_is_not_served(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "draft", publish=False)
    await make_chat_model(client, "live")

    response = await client.post("/v1/chat/completions", json=chat("draft"))
    models = (await client.get("/v1/models")).json()

    assert "no published version" in expect_openai_error(response, 404, "model_not_found", "model")
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["live"]
    assert set(models["data"][0]) == {"id", "object", "created", "owned_by"}
    assert (await client.get("/v1/chat-models")).status_code == 200


async def test_auth_headers_are_accepted(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    for headers in ({"Authorization": "Bearer sk-anything"}, {"x-api-key": "anything"}):
        response = await client.post("/v1/chat/completions", json=chat(), headers=headers)
        assert response.status_code == 200, response.text


async def test_messages_added_through_the_sessions_api_count_as_history(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client)
    session = (await client.post("/v1/sessions", json={"chat_model": "assistant"})).json()["uuid"]
    await add_messages(client, session, {"role": "user", "content": "Posted directly"})

    response = await client.post(
        "/v1/chat/completions",
        json=chat("assistant", {"role": "user", "content": "Posted directly"}),
        headers={"X-Session-Id": session},
    )

    assert response.json()["choices"][0]["message"]["content"] == "Posted directly"
    assert [m["content"] for m in await stored_messages(client, session)] == [
        "Posted directly",
        "Posted directly",
    ]


# -- a session's lease ------------------------------------------------------------------


# Short leases: a call slower than one keeps its session only by renewing it (every third
# of a lease). Long enough that a loaded machine's scheduling delays never miss a renewal.
LEASE = 1.2


@pytest.fixture
async def short_lease_app(database_url: str, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        seed_demo=False,
        llm_timeout_seconds=10,
        run_lease_seconds=LEASE,
    )
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def short_lease_client(short_lease_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=short_lease_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
        yield c


async def _running_run(client: httpx.AsyncClient, session: str) -> str:
    """The uuid of the session's run in progress, once it is recorded as running."""
    for _ in range(500):
        response = await client.get(f"/v1/sessions/{session}/runs")
        runs = response.json()["data"] if response.status_code == 200 else []  # 404: not yet
        running = [r["uuid"] for r in runs if r["status"] == "running"]
        if running:
            return str(running[0])
        await asyncio.sleep(0.01)
    raise AssertionError("no run in progress")


async def _until_requested(server: ScriptedLLMServer, count: int = 1) -> None:
    for _ in range(1000):
        if len(server.requests) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the scripted server got no request")


async def _take_over(app: FastAPI, session: str, run_uuid: str) -> None:
    """What another server does when it finds a run's lease lapsed (its own server could
    not renew it): mark the run interrupted and free the session."""
    values = outcome_values(interrupted(""))
    del values["model"]
    async with app.state.database.transaction() as db:
        assert await RunRepository(db).finish(uuid.UUID(run_uuid), values)
        await SessionRepository(db).release_lease(uuid.UUID(session), uuid.UUID(run_uuid))


async def test_a_session_call_slower_than_the_lease_keeps_its_session(
    short_lease_client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    client = short_lease_client
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Delay(2 * LEASE + 0.8, Reply("Slow but sure.")), Reply("Native."))
    session = str(uuid.uuid4())
    headers = {"X-Session-Id": session}
    call = asyncio.create_task(
        client.post("/v1/chat/completions", json=chat("remote"), headers=headers)
    )
    await _until_requested(llm_server)
    await asyncio.sleep(2 * LEASE)  # twice the lease: only renewals keep the session

    busy = await client.post(f"/v1/sessions/{session}/run", json={})
    assert busy.status_code == 409 and busy.json()["error"] == "session_busy", busy.text

    response = await call
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Slow but sure."
    message_uuid = response.json()["chatmodel"]["message_uuid"]
    stored = await stored_messages(client, session)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", USER_HELLO["content"]),
        ("assistant", "Slow but sure."),
    ]
    assert stored[1]["uuid"] == message_uuid
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [r["status"] for r in runs] == ["succeeded"]
    assert len(llm_server.requests) == 1  # the refused native run never reached the model


async def test_a_session_stream_slower_than_the_lease_keeps_its_session(
    short_lease_client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    client = short_lease_client
    await scripted_chat_model(client, llm_server)
    chunk_delay = (2 * LEASE + 0.8) / 6  # the stream outlasts two leases
    llm_server.enqueue(SlowStream(Reply("one two three four five six"), chunk_delay=chunk_delay))
    session = str(uuid.uuid4())
    call = asyncio.create_task(
        stream_events(
            client,
            "/v1/chat/completions",
            chat("remote", stream=True),
            headers={"X-Session-Id": session},
        )
    )
    await _until_requested(llm_server)
    await asyncio.sleep(2 * LEASE)

    busy = await client.post(f"/v1/sessions/{session}/run", json={})
    assert busy.status_code == 409 and busy.json()["error"] == "session_busy", busy.text

    events = await call
    assert events[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"] for e in events[:-1] if e["choices"]]
    text = "".join(delta.get("content") or "" for delta in deltas)
    assert text.split() == ["one", "two", "three", "four", "five", "six"]
    stored = await stored_messages(client, session)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"].split() == text.split()


async def test_a_session_call_that_lost_its_lease_is_an_error_not_an_unstored_reply(
    short_lease_app: FastAPI,
    short_lease_client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    client = short_lease_client
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Delay(0.8, Reply("Nobody will keep this.")))
    session = str(uuid.uuid4())
    call = asyncio.create_task(
        client.post("/v1/chat/completions", json=chat("remote"), headers={"X-Session-Id": session})
    )
    run_uuid = await _running_run(client, session)
    await _until_requested(llm_server)
    await _take_over(short_lease_app, session, run_uuid)

    response = await call
    assert "was not stored" in expect_openai_error(response, 502, "interrupted", None)
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [(r["uuid"], r["status"], r["error_type"]) for r in runs] == [
        (run_uuid, "failed", "interrupted")
    ]


async def test_a_session_stream_that_lost_its_lease_ends_with_an_error_event(
    short_lease_app: FastAPI,
    short_lease_client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    client = short_lease_client
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(SlowStream(Reply("one two three four"), chunk_delay=0.2))
    session = str(uuid.uuid4())
    call = asyncio.create_task(
        stream_events(
            client,
            "/v1/chat/completions",
            chat("remote", stream=True),
            headers={"X-Session-Id": session},
        )
    )
    run_uuid = await _running_run(client, session)
    await _until_requested(llm_server)
    await _take_over(short_lease_app, session, run_uuid)

    events = await call
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "interrupted"
    assert not any(e["choices"][0].get("finish_reason") for e in events[:-2] if e.get("choices"))
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


async def test_a_cancelled_session_call_is_recorded_interrupted_at_once(
    short_lease_client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """Cancelled (as at server shutdown): the run is failed ``interrupted`` and the session
    free again now, not when the lease lapses."""
    client = short_lease_client
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Delay(5.0, Reply("too late")), Reply("Next."))
    session = str(uuid.uuid4())
    call = asyncio.create_task(
        client.post("/v1/chat/completions", json=chat("remote"), headers={"X-Session-Id": session})
    )
    run_uuid = await _running_run(client, session)
    await _until_requested(llm_server)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [(r["uuid"], r["status"], r["error_type"]) for r in runs] == [
        (run_uuid, "failed", "interrupted")
    ]
    assert (await client.post(f"/v1/sessions/{session}/run", json={})).status_code == 200
