"""The Scale EGP routes over HTTP (the app in process): how a request becomes a call of
the chat model's published version, what comes back, streamed and not, and the errors."""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatmodel_service.models import DEFAULT_PROJECT_ID
from tests.factories import make_chat_model
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer, StreamDrop


async def scripted_chat_model(client: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    await make_chat_model(
        client,
        "remote",
        model="openai/scripted",
        api_base=server.base_url,
        system_prompt="You are a support agent.",
        params={"temperature": 0.9},
    )


async def sse_data(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[str]:
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines()]
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


async def stats(client: httpx.AsyncClient) -> tuple[int, int]:
    figures = (await client.get("/v1/chat-models/remote/versions/1/stats")).json()
    return figures["runs"], figures["errors"]


async def test_user_info_names_the_project_as_the_account(client: httpx.AsyncClient) -> None:
    response = await client.get("/egp/user-info")

    assert response.status_code == 200
    profile = {"role": "admin", "account": {"id": str(DEFAULT_PROJECT_ID), "name": "default"}}
    assert response.json() == {
        "id": "local",  # keys are not required here: the default project's admin
        "first_name": None,
        "last_name": None,
        "email": "",
        "access_profiles": [profile],
        "accounts": [profile],
    }


async def test_completion_runs_the_published_version_with_the_callers_parameters(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Reply("Hi there.", prompt_tokens=12, completion_tokens=3))

    response = await client.post(
        "/egp/v2/completions",
        json={
            "model": "remote",
            "prompt": "Say hi.",
            "images": None,
            "model_parameters": {"temperature": 0.2, "stop_sequences": ["END"], "max_tokens": 20},
            "stream": False,
            "account_id": str(DEFAULT_PROJECT_ID),
        },
        headers={"x-selected-account-id": str(DEFAULT_PROJECT_ID)},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["completion"] == {"text": "Hi there.", "finish_reason": "stop"}
    assert body["token_usage"] == {"prompt": 12, "completion": 3, "total": 15}
    assert body["chatmodel"]["chat_model"] == "remote"
    assert body["chatmodel"]["version"] == 1
    (sent,) = llm_server.requests
    assert sent["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Say hi."},
    ]
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.2, 20, ["END"])
    assert await stats(client) == (1, 0)


async def test_without_model_parameters_the_versions_own_apply(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Reply("Hi."))

    response = await client.post(
        "/egp/v1/completions", json={"model": "remote", "prompt": "Hi", "model_parameters": None}
    )

    assert response.status_code == 200, response.text
    assert llm_server.requests[0]["temperature"] == 0.9


async def test_chat_completion_reads_egp_roles_and_answers_as_the_agent(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Reply("Paris.", prompt_tokens=30, completion_tokens=2))

    response = await client.post(
        "/egp/v1/chat-completions",
        json={
            "model": "remote",
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "agent", "content": "Hi! How can I help?"},
                {"role": "user", "content": "Capital of France?"},
            ],
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["chat_completion"] == {
        "message": {"role": "agent", "content": "Paris.", "tool_request": None},
        "finish_reason": "stop",
    }
    assert body["token_usage"] == {"prompt": 30, "completion": 2, "total": 32}
    assert [(m["role"], m["content"]) for m in llm_server.requests[0]["messages"]] == [
        ("system", "You are a support agent."),
        ("user", "Hello"),
        ("assistant", "Hi! How can I help?"),
        ("user", "Capital of France?"),
    ]
    assert body["chatmodel"]["session_uuid"] is None  # nothing stored but the run
    assert await stats(client) == (1, 0)


async def test_streams_are_json_pieces_with_usage_on_the_last_and_no_done_line(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(Reply("One two three.", prompt_tokens=8, completion_tokens=3))
    llm_server.enqueue(Reply("Four five.", prompt_tokens=9, completion_tokens=2))

    text = [
        json.loads(data)
        for data in await sse_data(
            client, "/egp/v2/completions", {"model": "remote", "prompt": "Count", "stream": True}
        )
    ]
    chat = [
        json.loads(data)
        for data in await sse_data(
            client,
            "/egp/v1/chat-completions",
            {"model": "remote", "messages": [{"role": "user", "content": "Go"}], "stream": True},
        )
    ]

    assert "".join(e["completion"]["text"] for e in text) == "One two three."
    assert all(set(e) == {"completion"} for e in text[:-1])
    assert all(e["completion"]["finish_reason"] is None for e in text[:-1])
    assert text[-1]["completion"] == {"text": "", "finish_reason": "stop"}
    assert text[-1]["token_usage"] == {"prompt": 8, "completion": 3, "total": 11}

    assert "".join(e["chat_completion"]["message"]["content"] for e in chat) == "Four five."
    assert {e["chat_completion"]["message"]["role"] for e in chat} == {"agent"}
    assert chat[-1]["chat_completion"]["finish_reason"] == "stop"
    assert chat[-1]["token_usage"] == {"prompt": 9, "completion": 2, "total": 11}
    assert await stats(client) == (2, 0)


async def test_a_stream_that_breaks_off_ends_with_an_error_event(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(StreamDrop(Reply("one two three four five six"), after_chunks=2))

    events = await sse_data(
        client, "/egp/v2/completions", {"model": "remote", "prompt": "Go", "stream": True}
    )

    last = json.loads(events[-1])
    assert set(last) == {"error", "detail", "field"}
    assert isinstance(last["detail"], str) and last["detail"]
    assert all("completion" in json.loads(e) for e in events[:-1])
    assert await stats(client) == (1, 1)


async def test_a_failed_model_call_is_an_error_with_its_status_and_detail(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_chat_model(client, llm_server)
    llm_server.enqueue(ErrorReply(429, "slow down", "rate_limit_error"), ErrorReply(503))

    limited = await client.post("/egp/v2/completions", json={"model": "remote", "prompt": "Hi"})
    broken = await client.post(
        "/egp/v2/completions", json={"model": "remote", "prompt": "Hi", "stream": True}
    )

    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limit_exceeded"
    assert "slow down" in limited.json()["detail"]
    assert broken.status_code == 502  # failed before its first piece: an ordinary answer
    assert isinstance(broken.json()["detail"], str)
    assert await stats(client) == (2, 2)


async def test_request_errors_answer_a_detail_message(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/egp/v2/completions", json={"model": "gpt-4", "prompt": "Hi"})
    missing = await client.post("/egp/v2/completions", json={"model": "gpt-4"})
    images = await client.post(
        "/egp/v2/completions",
        json={"model": "gpt-4", "prompt": "Hi", "images": [{"image_url": "http://x/y.png"}]},
    )
    other_account = await client.post(
        "/egp/v1/chat-completions",
        json={"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]},
        headers={"x-selected-account-id": "another"},
    )

    assert unknown.status_code == 404
    assert unknown.json()["detail"].startswith("The model 'gpt-4' does not exist")
    assert missing.status_code == 422
    assert "prompt" in missing.json()["detail"]
    assert images.status_code == 422
    assert images.json()["detail"] == "Image completions are not supported."
    assert other_account.status_code == 403
    assert "no access to account 'another'" in other_account.json()["detail"]


async def test_the_routes_are_not_in_our_openapi_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/egp")]
