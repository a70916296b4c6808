"""Both ways LiteLLM can reach an OpenAI-compatible server (``litellm_openai_transport``):
its own HTTP handler (the default) and the OpenAI SDK. A user switching between them
must see no difference: the same request on the wire, the same results and errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatmodel_service.app import create_app
from chatmodel_service.config import OPENAI_TRANSPORT_ENV, OpenAITransport, Settings
from chatmodel_service.llm.gateway import create_gateway
from tests.factories import WEATHER_FUNCTION, add_messages, make_chat_model, make_session, run
from tests.support.llm_server import ErrorReply, FunctionCallReply, Reply, ScriptedLLMServer

TRANSPORTS: tuple[OpenAITransport, ...] = ("litellm", "openai-sdk")


async def _conversation(
    settings: Settings, transport: OpenAITransport, server: ScriptedLLMServer
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One session through ``transport``: a reply, a function call, a streamed reply and
    an upstream 503. Returns what the server received and what each run answered."""
    server.requests.clear()  # the server is shared by both conversations
    app = create_app(settings, create_gateway(transport))
    async with app.router.lifespan_context(app), _client(app) as client:
        name = transport.replace("-", "_")  # both conversations share one database
        await make_chat_model(
            client,
            name,
            model="openai/scripted-model",
            api_base=server.base_url,
            params={"temperature": 0.3, "max_tokens": 50},
        )
        session = await make_session(client, name)
        await add_messages(client, session, {"role": "user", "content": "Weather in Boston?"})
        server.enqueue(
            Reply("Let me look.", prompt_tokens=11, completion_tokens=3),
            FunctionCallReply("get_weather", '{"location": "Boston"}'),
            Reply("13 degrees.", prompt_tokens=30, completion_tokens=4),
            ErrorReply(503, "scripted outage"),
        )
        results = [await run(client, session)]
        results.append(await run(client, session, functions=[WEATHER_FUNCTION]))
        await add_messages(client, session, {"role": "function", "content": "13 C"})
        results.append(await _streamed(client, session))
        await add_messages(client, session, {"role": "user", "content": "And tomorrow?"})
        results.append(await run(client, session))
    return list(server.requests), results


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _streamed(client: httpx.AsyncClient, session: str) -> dict[str, Any]:
    """A streamed run's last event (the stored result)."""
    async with client.stream("POST", f"/v1/sessions/{session}/run", json={"stream": True}) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) async for line in r.aiter_lines() if line[6:7] == "{"]
    assert events[-1]["done"] is True
    return dict(events[-1])


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    """What a user reads from a result, without what differs by run (ids, timings)."""
    kept = ("content", "error", "error_type", "finish_reason", "usage", "messages_sent")
    values = {name: result.get(name) for name in kept}
    values["function_call"] = (result.get("function_call") or {}).get("args")
    values["message"] = (result.get("message") or {}).get("content")
    return values


@pytest.fixture
async def each_transport(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Whatever the tests set, the process's transport is restored afterwards."""
    monkeypatch.setenv(OPENAI_TRANSPORT_ENV, "true")
    yield


@pytest.mark.usefixtures("each_transport")
async def test_both_transports_send_the_same_request_and_give_the_same_results(
    settings: Settings, llm_server: ScriptedLLMServer
) -> None:
    seen = {}
    for transport in TRANSPORTS:
        requests, results = await _conversation(settings, transport, llm_server)
        seen[transport] = requests, [_comparable(r) for r in results]

    (sent, results), (sdk_sent, sdk_results) = seen["litellm"], seen["openai-sdk"]
    assert len(sent) == 4
    assert sent == sdk_sent
    assert sent[0]["temperature"] == 0.3 and sent[0]["max_tokens"] == 50
    assert sent[1]["functions"] == [WEATHER_FUNCTION]
    assert sent[2]["stream"] is True
    assert results == sdk_results
    assert [r["error_type"] for r in results] == [None, None, None, "provider_error"]
    assert results[0]["usage"]["prompt_tokens"] == 11
    assert results[1]["function_call"] == {"location": "Boston"}
    assert results[2]["message"] == "13 degrees."


async def test_costs_of_priced_and_unpriced_models_plain_and_streamed(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """A model in LiteLLM's price table is priced on every run, streamed or not (a
    stream's cost is computed from its assembled reply); one missing from it never is."""
    for name, model in (("priced", "openai/gpt-4o-mini"), ("unpriced", "openai/no-such-model")):
        await make_chat_model(client, name, model=model, api_base=llm_server.base_url)
    costs: dict[str, list[float | None]] = {}
    for name in ("priced", "unpriced"):
        session = await make_session(client, name)
        await add_messages(client, session, {"role": "user", "content": "Hello?"})
        for _ in range(2):
            llm_server.enqueue(
                Reply("Hi.", prompt_tokens=1000, completion_tokens=500),
                Reply("Hi again.", prompt_tokens=1000, completion_tokens=500),
            )
            costs.setdefault(name, []).append((await run(client, session))["cost"])
            costs[name].append((await _streamed(client, session)).get("cost"))

    assert all(cost is not None and cost > 0 for cost in costs["priced"])
    assert costs["priced"][0] == costs["priced"][2]  # the same usage costs the same
    assert costs["unpriced"] == [None, None, None, None]
