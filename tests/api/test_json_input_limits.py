"""Free-form JSON (metadata, function and tool parameters, response_format, tool_choice,
function_call) has a depth limit and finite numbers only, on both databases: a value
nested too deeply or a NaN is a 422 naming the field, never a 500 (which also closed the
connection) or a value that silently changes."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from chatmodel_service.free_json import MAX_JSON_DEPTH
from tests.factories import make_chat_model, make_session
from tests.support.servers import LiveApp


def nested(levels: int) -> dict[str, Any]:
    """A JSON object ``levels`` objects deep: ``nested(2) == {"a": {}}``."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


async def post_json(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    """Post ``body`` as Python's json writes it: NaN and Infinity included (httpx refuses)."""
    return await client.post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def assert_refused(response: httpx.Response, field: str, words: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error", body
    assert body["field"] == field, body
    assert words in body["detail"], body


# (path, body, field): the body carries ``VALUE`` where the free-form JSON goes.
VALUE = object()
NATIVE_FIELDS = [
    ("/v1/sessions", {"chat_model": "assistant", "metadata": VALUE}, "metadata"),
    (
        "/v1/sessions/{session}/messages",
        {"messages": [{"role": "user", "content": "hi", "metadata": VALUE}]},
        "messages.0.metadata",
    ),
    ("/v1/sessions/{session}/fork", {"metadata": VALUE}, "metadata"),
    (
        "/v1/sessions/{session}/run",
        {"messages": [{"role": "user", "content": "hi", "metadata": VALUE}]},
        "messages.0.metadata",
    ),
    (
        "/v1/sessions/{session}/run",
        {"params": {"response_format": VALUE}},
        "params.response_format",
    ),
    ("/v1/sessions/{session}/run", {"tool_choice": VALUE}, "tool_choice"),
    ("/v1/sessions/{session}/run", {"function_call": VALUE}, "function_call"),
    (
        "/v1/chat-models/assistant/versions",
        {
            "system_prompt": "hi",
            "model": "chatmodel-offline/echo",
            "params": {"response_format": VALUE},
        },
        "params.response_format",
    ),
    (
        "/v1/chat-models/assistant/versions",
        {
            "system_prompt": "hi",
            "model": "chatmodel-offline/echo",
            "functions": [{"name": "f", "parameters": {"type": "object", "x": VALUE}}],
        },
        "functions.0.parameters",
    ),
    (
        "/v1/chat-models/assistant/versions",
        {
            "system_prompt": "hi",
            "model": "chatmodel-offline/echo",
            "tools": [{"function": {"name": "f", "parameters": {"type": "object", "x": VALUE}}}],
        },
        "tools.0.function.parameters",
    ),
    (
        "/v1/chat-models/assistant/versions/1/test",
        {"message": "hi", "tool_choice": VALUE},
        "tool_choice",
    ),
]


def with_value(body: Any, value: Any) -> Any:
    if body is VALUE:
        return value
    if isinstance(body, dict):
        return {key: with_value(item, value) for key, item in body.items()}
    if isinstance(body, list):
        return [with_value(item, value) for item in body]
    return body


async def messages_of(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/messages")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.mark.parametrize(("path", "body", "field"), NATIVE_FIELDS)
async def test_deep_free_form_json_is_a_422_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    url = path.format(session=session)
    # 256 levels or deeper was a 500 (pydantic stops serializing the answer at 255).
    assert_refused(await post_json(client, url, with_value(body, nested(300))), field, "64")
    assert await messages_of(client, session) == []


@pytest.mark.parametrize(("path", "body", "field"), NATIVE_FIELDS)
async def test_non_finite_numbers_in_free_form_json_are_a_422_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    url = path.format(session=session)
    for number in (float("nan"), float("inf"), float("-inf")):
        value = {"tags": [1, {"score": number}]}
        assert_refused(await post_json(client, url, with_value(body, value)), field, "NaN")
    assert await messages_of(client, session) == []


async def test_metadata_at_the_depth_limit_round_trips(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    deepest = nested(MAX_JSON_DEPTH)
    session = await make_session(client, "assistant", metadata=deepest)
    shown = await client.get(f"/v1/sessions/{session}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["metadata"] == deepest
    message = {"role": "user", "content": "hi", "metadata": deepest}
    added = await client.post(f"/v1/sessions/{session}/messages", json={"messages": [message]})
    assert added.status_code == 201, added.text
    assert (await messages_of(client, session))[0]["metadata"] == deepest

    too_deep = {"chat_model": "assistant", "metadata": nested(MAX_JSON_DEPTH + 1)}
    assert_refused(await client.post("/v1/sessions", json=too_deep), "metadata", "64")


async def test_a_huge_exponent_read_as_infinity_is_refused(client: httpx.AsyncClient) -> None:
    # Python's JSON parser reads 1e999 as inf: SQLite stored Infinity, PostgreSQL refused it.
    await make_chat_model(client, "assistant")
    response = await client.post(
        "/v1/sessions",
        content=b'{"chat_model": "assistant", "metadata": {"big": 1e999}}',
        headers={"content-type": "application/json"},
    )
    assert_refused(response, "metadata", "NaN")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_non_finite_typed_numbers_are_a_422_naming_the_field(
    client: httpx.AsyncClient, number: float
) -> None:
    await make_chat_model(client, "assistant")
    for field in ("temperature", "timeout"):
        body = {"system_prompt": "hi", "model": "chatmodel-offline/echo", "params": {field: number}}
        response = await post_json(client, "/v1/chat-models/assistant/versions", body)
        assert_refused(response, f"params.{field}", "finite number")
    versions = await client.get("/v1/chat-models/assistant/versions")
    assert len(versions.json()["data"]) == 1


OPENAI_FIELDS = [
    ({"response_format": VALUE}, "response_format"),
    ({"tool_choice": VALUE}, "tool_choice"),
    ({"function_call": VALUE}, "function_call"),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": VALUE}}]},
        "tools.0.function.parameters",
    ),
]


@pytest.mark.parametrize(("fields", "param"), OPENAI_FIELDS)
async def test_deep_or_non_finite_json_on_the_openai_route_is_a_400_naming_the_param(
    client: httpx.AsyncClient, fields: dict[str, Any], param: str
) -> None:
    await make_chat_model(client, "assistant")
    messages = [{"role": "user", "content": "hi"}]
    for value in ({"type": "object", "x": nested(300)}, {"type": "object", "x": float("nan")}):
        body = {"model": "assistant", "messages": messages, **with_value(fields, value)}
        response = await post_json(client, "/v1/chat/completions", body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param, error
        assert error["code"] == "validation_error", error


async def test_non_finite_sampling_numbers_on_the_openai_route_are_refused(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "assistant")
    body = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
    for field in ("temperature", "top_p", "presence_penalty"):
        response = await post_json(client, "/v1/chat/completions", {**body, field: float("inf")})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == field, error
        assert "finite number" in error["message"], error


def test_deep_metadata_leaves_the_connection_open(live_app: LiveApp) -> None:
    # The 500 also closed the keep-alive connection: the client's next request on it failed.
    address = urlsplit(live_app.base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port)
    connection.auto_open = False  # fail, rather than reconnect, if the server hung up
    connection.connect()
    try:
        body = json.dumps({"chat_model": "simple_assistant", "metadata": nested(300)})
        connection.request(
            "POST", "/v1/sessions", body=body, headers={"content-type": "application/json"}
        )
        refused = connection.getresponse()
        assert refused.status == 422, refused.read()
        assert json.loads(refused.read())["field"] == "metadata"

        connection.request("GET", "/health")
        health = connection.getresponse()
        assert health.status == 200
        health.read()
    finally:
        connection.close()
