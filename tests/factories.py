"""Factory functions for test data, all through the public REST API."""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatmodel_service.llm import OFFLINE_MODEL

# The end of every SSE body the service sends.
TERMINATOR = "data: [DONE]\n\n"

WEATHER_FUNCTION: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City name"}},
        "required": ["location"],
    },
}


async def make_chat_model(
    client: httpx.AsyncClient,
    name: str = "assistant",
    *,
    model: str = OFFLINE_MODEL,
    system_prompt: str = "You are a test assistant.",
    publish: bool = True,
    **version_fields: Any,
) -> dict[str, Any]:
    """Create a chat model with one version (published by default); returns the version."""
    created = await client.post("/v1/chat-models", json={"name": name})
    assert created.status_code == 201, created.text
    version = await client.post(
        f"/v1/chat-models/{name}/versions",
        json={"system_prompt": system_prompt, "model": model, "publish": publish, **version_fields},
    )
    assert version.status_code == 201, version.text
    body: dict[str, Any] = version.json()
    return body


async def make_session(client: httpx.AsyncClient, chat_model: str, **fields: Any) -> str:
    response = await client.post("/v1/sessions", json={"chat_model": chat_model, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["uuid"])


async def add_messages(
    client: httpx.AsyncClient, session: str, *messages: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/sessions/{session}/messages", json={"messages": messages})
    assert response.status_code == 201, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def stored_messages(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/messages", params={"limit": 1000})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def run(client: httpx.AsyncClient, session: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/sessions/{session}/run", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_version(
    client: httpx.AsyncClient,
    chat_model: str,
    *,
    model: str = OFFLINE_MODEL,
    system_prompt: str = "You are a test assistant.",
    **fields: Any,
) -> dict[str, Any]:
    """Add the next version to an existing chat model (unpublished unless publish=True)."""
    response = await client.post(
        f"/v1/chat-models/{chat_model}/versions",
        json={"system_prompt": system_prompt, "model": model, **fields},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def publish(client: httpx.AsyncClient, chat_model: str, version: int) -> dict[str, Any]:
    response = await client.post(f"/v1/chat-models/{chat_model}/publish", json={"version": version})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def expect_error(response: httpx.Response, status: int, error: str, field: str | None) -> str:
    """Assert the JSON error contract; returns the detail text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert body["field"] == field, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert "Traceback" not in body["detail"]
    return str(body["detail"])


async def make_remote_session(
    client: httpx.AsyncClient, api_base: str, question: dict[str, Any], **params: Any
) -> str:
    """A session holding ``question``, of a chat model 'remote' whose published version
    calls the OpenAI-compatible server at ``api_base`` (a scripted one) with ``params``."""
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=api_base, params=params
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, question)
    return session


async def versions_of(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/chat-models/{name}/versions")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def sse_frames(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    """The (id, JSON event) of each event of an SSE body, checking it ends with the
    terminator."""
    assert text.endswith(TERMINATOR), text[-200:]
    frames = []
    for block in text[: -len(TERMINATOR)].split("\n\n"):
        if not block:
            continue
        event_id, _, data = block.rpartition("\n") if block.startswith("id: ") else ("", "", block)
        assert data.startswith("data: "), block
        frames.append((event_id.removeprefix("id: ") or None, json.loads(data[len("data: ") :])))
    return frames


def sse_events(text: str) -> list[dict[str, Any]]:
    """The JSON events of an SSE body, checking it ends with the terminator and, when
    they carry ids, that they are one run's and numbered 0, 1, 2, ... with no gap."""
    frames = sse_frames(text)
    ids = [event_id for event_id, _ in frames if event_id is not None]
    if ids:
        assert len(ids) == len(frames), "some events carry no id"
        runs = {event_id.rpartition(":")[0] for event_id in ids}
        assert len(runs) == 1, runs
        assert [int(event_id.rpartition(":")[2]) for event_id in ids] == list(range(len(ids)))
    return [event for _, event in frames]


async def stream(client: httpx.AsyncClient, session: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/sessions/{session}/run", json={"stream": True, **body})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_events(response.text)
