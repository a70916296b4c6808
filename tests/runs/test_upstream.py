"""Runs against a scripted OpenAI-compatible server, through the real LiteLLM over HTTP.

The contract: a run always answers 200 with an LLMResponse. Upstream failures come back
as ``error: true`` with an ``error_type`` and a readable ``error_log`` (no traceback, no
key); the session keeps its messages, gets no assistant reply, and the run is recorded
as failed with the same error.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from chatmodel_service.db import Database
from chatmodel_service.models import ChatModelVersion
from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.llm_server import (
    Delay,
    ErrorReply,
    FunctionCallReply,
    MalformedBody,
    Reply,
    ScriptedLLMServer,
    Step,
    ToolCall,
    ToolCallsReply,
)

SYSTEM_PROMPT = "You are the scripted test assistant."
REMOTE_MODEL = "openai/scripted-model"
VERSION_PARAMS = {"temperature": 0.3, "max_tokens": 50}
TIME_FUNCTION: dict[str, Any] = {
    "name": "get_time",
    "description": "Current time in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
USER_QUESTION = {"role": "user", "content": "What's the weather in Boston?"}


async def remote_model(
    client: httpx.AsyncClient,
    server: ScriptedLLMServer,
    name: str = "remote",
    **fields: Any,
) -> dict[str, Any]:
    """A published version that calls the scripted server."""
    fields = {"api_base": server.base_url, "params": VERSION_PARAMS, **fields}
    return await make_chat_model(
        client, name, model=REMOTE_MODEL, system_prompt=SYSTEM_PROMPT, **fields
    )


async def list_runs(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def assert_nothing_leaks(result: dict[str, Any]) -> None:
    """No traceback and no configured key anywhere in the response."""
    text = json.dumps(result)
    assert "Traceback" not in text
    assert 'File "' not in text
    assert os.environ["OPENAI_API_KEY"] not in text


async def assert_failed_cleanly(
    client: httpx.AsyncClient,
    session: str,
    result: dict[str, Any],
    before: list[dict[str, Any]],
    error_type: str,
) -> dict[str, Any]:
    """The failure contract; returns the failed run record."""
    assert result["error"] is True, result
    assert result["error_type"] == error_type, result["error_log"]
    assert result["error_log"]
    assert result["content"] is None
    assert result["function_call"] is None
    assert result["tool_calls"] is None
    assert result["detail"]["message_uuid"] is None
    assert result["detail"]["session_uuid"] == session
    assert result["usage"] is None and result["cost"] is None
    assert result["latency_ms"] >= 0
    assert_nothing_leaks(result)
    assert await stored_messages(client, session) == before
    runs = await list_runs(client, session)
    assert [r["uuid"] for r in runs] == [result["detail"]["run_uuid"]]
    record = runs[0]
    assert record["status"] == "failed"
    assert record["error_type"] == result["error_type"]
    assert record["error_log"] == result["error_log"]
    assert record["message_uuid"] is None
    return record


# -- success paths ---------------------------------------------------------------------


async def test_plain_reply_contract_and_request_shape(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    version = await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    history = [
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a fact."},
    ]
    await add_messages(client, session, *history)
    llm_server.enqueue(Reply("Octopuses have three hearts.", prompt_tokens=21, completion_tokens=6))

    result = await run(client, session)

    assert result["error"] is False
    assert result["error_type"] is None and result["error_log"] is None
    assert result["content"] == result["raw_output"] == "Octopuses have three hearts."
    assert result["function_call"] is None and result["tool_calls"] is None
    assert result["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 21, "completion_tokens": 6, "total_tokens": 27}
    assert result["latency_ms"] >= 0
    assert result["cost"] is None or result["cost"] >= 0
    provider = result["api_response"]
    assert provider["id"].startswith("chatcmpl-")
    assert provider["object"] == "chat.completion"
    assert provider["choices"][0]["message"]["content"] == "Octopuses have three hearts."
    assert provider["choices"][0]["finish_reason"] == "stop"
    assert provider["usage"]["prompt_tokens"] == 21
    assert provider["usage"]["completion_tokens"] == 6

    [sent] = llm_server.requests
    assert sent["model"] == "scripted-model"
    assert sent["messages"] == [{"role": "system", "content": SYSTEM_PROMPT}, *history]
    assert sent["temperature"] == 0.3
    assert sent["max_tokens"] == 50
    assert "functions" not in sent and "tools" not in sent

    messages = await stored_messages(client, session)
    assert [(m["seq"], m["role"]) for m in messages] == [
        (1, "user"),
        (2, "assistant"),
        (3, "user"),
        (4, "assistant"),
    ]
    reply = messages[-1]
    assert reply["content"] == "Octopuses have three hearts."
    assert reply["finish_reason"] == "stop"
    assert reply["usage"]["total_tokens"] == 27
    detail = result["detail"]
    assert detail["name"] == "remote"
    assert detail["version"] == 1
    assert detail["version_uuid"] == version["uuid"]
    assert detail["model"] == REMOTE_MODEL
    assert detail["session_uuid"] == session
    assert detail["message_uuid"] == reply["uuid"]
    assert reply["run_uuid"] == detail["run_uuid"]
    [record] = await list_runs(client, session)
    assert record["uuid"] == detail["run_uuid"]
    assert record["status"] == "succeeded"
    assert record["error_type"] is None and record["error_log"] is None
    assert record["message_uuid"] == reply["uuid"]
    assert record["usage"] == result["usage"]


async def test_run_params_override_version_params_for_that_run_only(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Be creative."})
    llm_server.enqueue(Reply("A purple idea."), Reply("A beige idea."))

    hot = await run(client, session, params={"temperature": 0.9})
    default = await run(client, session)

    assert hot["error"] is False and default["error"] is False
    first, second = llm_server.requests
    assert (first["temperature"], first["max_tokens"]) == (0.9, 50)
    assert (second["temperature"], second["max_tokens"]) == (0.3, 50)


async def test_function_call_round_trip(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    llm_server.enqueue(FunctionCallReply("get_weather", '{"location": "Boston"}'))

    call = await run(client, session, functions=[WEATHER_FUNCTION])

    assert call["error"] is False
    assert call["content"] is None
    assert call["finish_reason"] == "function_call"
    assert call["function_call"] == {
        "name": "get_weather",
        "arguments": '{"location": "Boston"}',
        "args": {"location": "Boston"},
    }
    assert llm_server.requests[0]["functions"] == [WEATHER_FUNCTION]
    stored_call = (await stored_messages(client, session))[-1]
    assert stored_call["role"] == "assistant"
    assert stored_call["uuid"] == call["detail"]["message_uuid"]
    assert stored_call["function_call"] == {
        "name": "get_weather",
        "arguments": '{"location": "Boston"}',
    }

    [result] = await add_messages(client, session, {"role": "function", "content": "13 °C"})
    assert result["name"] == "get_weather"
    llm_server.enqueue(Reply("It is 13 °C in Boston."))

    answer = await run(client, session)

    assert answer["error"] is False
    assert answer["content"] == "It is 13 °C in Boston."
    sent = llm_server.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "function"]
    assert sent[2]["function_call"] == {
        "name": "get_weather",
        "arguments": '{"location": "Boston"}',
    }
    assert sent[3] == {"role": "function", "name": "get_weather", "content": "13 °C"}
    roles = [m["role"] for m in await stored_messages(client, session)]
    assert roles == ["user", "assistant", "function", "assistant"]


async def test_parallel_tool_calls_round_trip(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Weather in Boston and Paris?"})
    tools = [{"type": "function", "function": WEATHER_FUNCTION}]
    llm_server.enqueue(
        ToolCallsReply(
            (
                ToolCall("call_bos", "get_weather", '{"location": "Boston"}'),
                ToolCall("call_par", "get_weather", '{"location": "Paris"}'),
            )
        )
    )

    call = await run(client, session, tools=tools)

    assert call["error"] is False
    assert call["finish_reason"] == "tool_calls"
    assert call["content"] is None and call["function_call"] is None
    assert call["tool_calls"] == [
        {
            "id": "call_bos",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location": "Boston"}',
                "args": {"location": "Boston"},
            },
        },
        {
            "id": "call_par",
            "type": "function",
            "function": {
                "name": "get_weather",
                "arguments": '{"location": "Paris"}',
                "args": {"location": "Paris"},
            },
        },
    ]
    assert llm_server.requests[0]["tools"] == tools
    stored_call = (await stored_messages(client, session))[-1]
    assert [tc["id"] for tc in stored_call["tool_calls"]] == ["call_bos", "call_par"]

    await add_messages(
        client,
        session,
        {"role": "tool", "tool_call_id": "call_bos", "content": "13 °C"},
        {"role": "tool", "tool_call_id": "call_par", "content": "18 °C"},
    )
    llm_server.enqueue(Reply("Boston 13 °C, Paris 18 °C."))

    answer = await run(client, session)

    assert answer["error"] is False
    assert answer["content"] == "Boston 13 °C, Paris 18 °C."
    sent = llm_server.requests[1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool"]
    assert [tc["id"] for tc in sent[2]["tool_calls"]] == ["call_bos", "call_par"]
    assert sent[3] == {"role": "tool", "tool_call_id": "call_bos", "content": "13 °C"}
    assert sent[4] == {"role": "tool", "tool_call_id": "call_par", "content": "18 °C"}


async def test_version_default_functions_and_run_override(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server, functions=[WEATHER_FUNCTION])
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Weather or time?"})
    llm_server.enqueue(Reply("default"), Reply("override"))

    await run(client, session)
    await run(client, session, functions=[TIME_FUNCTION])

    default, override = llm_server.requests
    assert default["functions"] == [WEATHER_FUNCTION]
    assert override["functions"] == [TIME_FUNCTION]
    assert "tools" not in default and "tools" not in override


async def test_functions_and_tools_together_are_rejected(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)

    response = await client.post(
        f"/v1/sessions/{session}/run",
        json={
            "functions": [WEATHER_FUNCTION],
            "tools": [{"type": "function", "function": TIME_FUNCTION}],
        },
    )

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert "functions" in body["detail"] and "tools" in body["detail"]
    assert llm_server.requests == []
    assert await list_runs(client, session) == []


async def test_functions_and_tools_conflict_points_at_the_tools_field(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")

    response = await client.post(
        f"/v1/sessions/{session}/run",
        json={
            "functions": [WEATHER_FUNCTION],
            "tools": [{"type": "function", "function": TIME_FUNCTION}],
        },
    )

    assert response.status_code == 422
    assert response.json()["field"] == "tools"


# -- failures ----------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 nobody listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


@dataclass(frozen=True)
class Fault:
    steps: tuple[Step, ...]
    error_type: str
    log_mentions: tuple[str, ...] = ()
    run: dict[str, Any] = field(default_factory=dict)


FAULTS = {
    "rate_limited": Fault(
        (ErrorReply(429, "Rate limit reached for requests", "requests"),),
        "rate_limited",
        ("429", "Rate limit reached"),
    ),
    "server_error": Fault(
        (ErrorReply(500, "The server had an error while processing your request"),),
        "provider_error",
        ("500", "server had an error"),
    ),
    "unauthorized": Fault(
        (ErrorReply(401, "Invalid credentials"),),
        "authentication_error",
        ("OPENAI_API_KEY", "Invalid credentials"),
    ),
    # OpenAI-compatible servers label a 401/403 "invalid_request_error"; LiteLLM then
    # raises BadRequestError (status 401/403 kept), which must not read as "bad_request".
    "unauthorized_invalid_request": Fault(
        (ErrorReply(401, "Invalid credentials", "invalid_request_error"),),
        "authentication_error",
        ("OPENAI_API_KEY", "Invalid credentials"),
    ),
    "forbidden": Fault(
        (ErrorReply(403, "Project lacks access", "invalid_request_error"),),
        "authentication_error",
        ("Project lacks access",),
    ),
    # What OpenAI answers for a model it does not serve.
    "unknown_remote_model": Fault(
        (ErrorReply(404, "The model `scripted-model` does not exist", "invalid_request_error"),),
        "model_not_found",
        ("openai/scripted-model", "does not exist"),
    ),
    "bad_request": Fault(
        (ErrorReply(400, "max_tokens is too large", "invalid_request_error"),),
        "bad_request",
        ("max_tokens is too large",),
    ),
    # 200 with a body that is not JSON: LiteLLM says "InternalServerError, HTTP 500".
    "malformed_body": Fault(
        (MalformedBody(),),
        "malformed_response",
        ("not valid JSON", "Expecting property name"),
    ),
    "malformed_tool_call": Fault(
        (FunctionCallReply("get_weather", '{"location": '),),
        "malformed_tool_call",
        ("get_weather", "not valid JSON"),
        run={"functions": [WEATHER_FUNCTION]},
    ),
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_upstream_fault_is_reported_not_raised(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, fault: Fault
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    before = await stored_messages(client, session)
    llm_server.enqueue(*fault.steps)

    result = await run(client, session, **fault.run)

    await assert_failed_cleanly(client, session, result, before, fault.error_type)
    for text in fault.log_mentions:
        assert text in result["error_log"]
    assert len(llm_server.requests) == 1  # no hidden retries


async def test_malformed_tool_call_keeps_the_provider_response(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    llm_server.enqueue(FunctionCallReply("get_weather", '{"location": '))

    result = await run(client, session, functions=[WEATHER_FUNCTION])

    assert result["error_type"] == "malformed_tool_call"
    message = result["api_response"]["choices"][0]["message"]
    assert message["function_call"]["arguments"] == '{"location": '


async def test_timeout_returns_before_the_slow_reply(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server, params={"timeout": 0.5})
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    before = await stored_messages(client, session)
    llm_server.enqueue(Delay(2, Reply("too late")))

    started = time.perf_counter()
    result = await run(client, session)
    elapsed = time.perf_counter() - started

    assert elapsed < 1.5, f"the run took {elapsed:.2f} s"
    await assert_failed_cleanly(client, session, result, before, "timeout")
    assert "0.5 s" in result["error_log"]


async def test_connection_refused(client: httpx.AsyncClient, closed_port: int) -> None:
    address = f"http://127.0.0.1:{closed_port}/v1"
    await make_chat_model(client, "remote", model=REMOTE_MODEL, api_base=address)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    before = await stored_messages(client, session)

    result = await run(client, session)

    await assert_failed_cleanly(client, session, result, before, "connection_error")
    assert address in result["error_log"]
    assert "refused" in result["error_log"]


async def test_unknown_model_fails_without_touching_the_network(
    client: httpx.AsyncClient,
    app: FastAPI,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Creating such a version is refused now (tests/chat_models/test_version_validation.py); one
    # stored before that check still has to fail cleanly at run time.
    version = await make_chat_model(client, "mystery")
    database: Database = app.state.database
    async with database.transaction() as db:
        await db.execute(
            update(ChatModelVersion)
            .where(ChatModelVersion.id == uuid.UUID(version["uuid"]))
            .values(model="definitely-not-a-model")
        )
    session = await make_session(client, "mystery")
    await add_messages(client, session, USER_QUESTION)
    before = await stored_messages(client, session)
    connects: list[object] = []

    def no_network(sock: socket.socket, address: object) -> None:
        connects.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)

    result = await run(client, session)

    monkeypatch.undo()
    assert connects == []
    assert llm_server.requests == []
    await assert_failed_cleanly(client, session, result, before, "unknown_model")
    assert "definitely-not-a-model" in result["error_log"]


async def test_provider_message_with_a_key_is_redacted(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    before = await stored_messages(client, session)
    llm_server.enqueue(
        ErrorReply(
            401,
            "Incorrect API key provided: sk-abcdef1234567890. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
        )
    )

    result = await run(client, session)

    record = await assert_failed_cleanly(client, session, result, before, "authentication_error")
    for text in (result["error_log"], record["error_log"], json.dumps(result)):
        assert "abcdef1234567890" not in text
    assert "Incorrect API key provided: [redacted]" in result["error_log"]


async def test_session_is_usable_after_a_failure(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote_model(client, llm_server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER_QUESTION)
    llm_server.enqueue(ErrorReply(500), Reply("Sunny in Boston."))

    failed = await run(client, session)
    recovered = await run(client, session)

    assert failed["error"] is True
    assert recovered["error"] is False
    assert recovered["content"] == "Sunny in Boston."
    first, second = llm_server.requests
    assert first["messages"] == second["messages"]  # the failure added nothing to the prompt
    messages = await stored_messages(client, session)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    runs = await list_runs(client, session)
    assert [r["status"] for r in runs] == ["failed", "succeeded"]
    assert runs[1]["message_uuid"] == messages[1]["uuid"] == recovered["detail"]["message_uuid"]
