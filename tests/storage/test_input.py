"""Input that PostgreSQL would refuse (and SQLite quietly store) is refused the same way on
both databases, a 422 naming the field, never a 500; what both can store round-trips.
(NUL in URLs, metadata and OpenAI routes: tests/api/test_fuzz_regressions.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import add_messages, make_chat_model, make_session

NUL = "a\x00b"


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat-models", {"name": "ok", "description": NUL}, "description"),
        (
            "/v1/chat-models/assistant/versions",
            {"system_prompt": NUL, "model": "chatmodel-offline/echo"},
            "system_prompt",
        ),
        (
            "/v1/chat-models/assistant/versions",
            {"system_prompt": "hi", "model": "chatmodel-offline/echo", "memo": NUL},
            "memo",
        ),
        ("/v1/chat-models/assistant/publish", {"version": 1, "note": NUL}, "note"),
        ("/v1/chat-models/assistant/publish", {"version": 1, "by": NUL}, "by"),
        ("/v1/sessions", {"chat_model": "assistant", "metadata": {"k": NUL}}, "metadata.k"),
        ("/v1/sessions", {"chat_model": NUL}, "chat_model"),
    ],
)
async def test_nul_characters_are_refused_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await make_chat_model(client, "assistant")
    assert_refused(await client.post(path, json=body), field)


async def test_huge_integers_in_free_form_json_round_trip(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    metadata = {"big": 2**70, "negative": -(2**63) - 1, "float": 1e300}
    session = await make_session(client, "assistant", metadata=metadata)
    shown = await client.get(f"/v1/sessions/{session}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["metadata"] == metadata


@pytest.mark.parametrize(
    "params",
    [
        {"after": 2**31},
        {"after": 2**63},
        {"limit": 2**31},
    ],
)
async def test_out_of_range_numbers_in_queries_are_refused(
    client: httpx.AsyncClient, params: dict[str, int]
) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    response = await client.get(f"/v1/sessions/{session}/messages", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat-models", {"name": "n" * 201}, "name"),
        (
            "/v1/chat-models/assistant/versions",
            {"system_prompt": "hi", "model": "m" * 201},
            "model",
        ),
        (
            "/v1/chat-models/assistant/versions",
            {"system_prompt": "hi", "model": "openai/x", "api_base": "http://" + "h" * 500},
            "api_base",
        ),
        ("/v1/chat-models/assistant/publish", {"version": 1, "by": "b" * 201}, "by"),
        ("/v1/sessions", {"chat_model": "c" * 201}, "chat_model"),
    ],
)
async def test_over_long_strings_are_refused_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await make_chat_model(client, "assistant")
    assert_refused(await client.post(path, json=body), field)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "user", "content": "x", "name": "n" * 201}, "messages.0.name"),
        ({"role": "tool", "content": "x", "tool_call_id": "t" * 201}, "messages.0.tool_call_id"),
    ],
)
async def test_over_long_message_fields_are_refused_naming_the_field(
    client: httpx.AsyncClient, message: dict[str, Any], field: str
) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    response = await client.post(f"/v1/sessions/{session}/messages", json={"messages": [message]})
    assert_refused(response, field)


async def test_unicode_beyond_the_basic_plane_round_trips(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant", system_prompt="Emoji \U0001f99c and \U0001d518")
    session = await make_session(client, "assistant", metadata={"tag": "🦜"})
    content = "astral text: \U0001f99c \U0001d518, a line separator \u2028, a BOM \ufeff"
    stored = await add_messages(client, session, {"role": "user", "content": content})
    assert stored[0]["content"] == content
    listed = await client.get(f"/v1/sessions/{session}/messages")
    assert listed.json()["data"][0]["content"] == content
    shown = await client.get(f"/v1/sessions/{session}")
    assert shown.json()["metadata"] == {"tag": "🦜"}
