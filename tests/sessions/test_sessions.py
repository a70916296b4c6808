"""Sessions and their append-only message log: ids, paging, validation, result linking."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)

WEATHER_TOOL = {"type": "function", "function": WEATHER_FUNCTION}


def expect_error(response: httpx.Response, status: int, error: str, field: str | None) -> str:
    """Assert the JSON error contract; returns the detail text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    assert body["field"] == field, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return str(body["detail"])


async def post_messages(client: httpx.AsyncClient, session: str, *messages: Any) -> httpx.Response:
    return await client.post(f"/v1/sessions/{session}/messages", json={"messages": list(messages)})


@pytest.fixture
async def session(client: httpx.AsyncClient) -> str:
    """A session of chat model "bot" that already holds one user message."""
    await make_chat_model(client, "bot")
    created = await make_session(client, "bot")
    await add_messages(client, created, {"role": "user", "content": "already here"})
    return created


def tool_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather"}}


# --- sessions --------------------------------------------------------------------------------


async def test_create_with_client_uuid_and_metadata(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    chosen = str(uuid.uuid4())

    response = await client.post(
        "/v1/sessions",
        json={"chat_model": "bot", "session_uuid": chosen, "metadata": {"user": "ada", "n": 1}},
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["uuid"], created["chat_model"], created["version"]) == (chosen, "bot", 1)
    got = (await client.get(f"/v1/sessions/{chosen}")).json()
    assert got == created
    assert got["metadata"] == {"user": "ada", "n": 1}


async def test_recreating_a_session(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await make_chat_model(client, "other")
    chosen = str(uuid.uuid4())
    first = await client.post("/v1/sessions", json={"chat_model": "bot", "session_uuid": chosen})

    again = await client.post("/v1/sessions", json={"chat_model": "bot", "session_uuid": chosen})
    clash = await client.post("/v1/sessions", json={"chat_model": "other", "session_uuid": chosen})

    assert (again.status_code, again.json()) == (200, first.json())
    expect_error(clash, 409, "conflict", "session_uuid")
    assert (await client.get(f"/v1/sessions/{chosen}")).json()["chat_model"] == "bot"


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("GET", "/messages"), ("POST", "/messages")]
)
async def test_unknown_and_malformed_session_ids(
    client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    missing = str(uuid.uuid4())
    body = {"messages": [{"role": "user", "content": "hi"}]} if method == "POST" else None

    unknown = await client.request(method, f"/v1/sessions/{missing}{suffix}", json=body)
    malformed = await client.request(method, f"/v1/sessions/not-a-uuid{suffix}", json=body)

    expect_error(unknown, 404, "session_not_found", "session_uuid")
    expect_error(malformed, 422, "validation_error", "session_uuid")
    assert (await client.get(f"/v1/sessions/{missing}")).status_code == 404


async def test_session_for_unknown_chat_model_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sessions", json={"chat_model": "ghost"})

    expect_error(response, 404, "chat_model_not_found", "chat_model")
    assert (await client.get("/v1/chat-models")).json()["data"] == []


# --- adding and reading messages -------------------------------------------------------------


async def test_batch_is_numbered_in_order(client: httpx.AsyncClient, session: str) -> None:
    added = await add_messages(
        client,
        session,
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "one", "metadata": {"source": "web"}},
        {"role": "assistant", "content": "two"},
    )

    assert [(m["seq"], m["content"]) for m in added] == [(2, "be brief"), (3, "one"), (4, "two")]
    stored = await stored_messages(client, session)
    order = [f"{m['seq']}:{m['role']}" for m in stored]
    assert order == ["1:user", "2:system", "3:user", "4:assistant"]
    assert stored[2]["metadata"] == {"source": "web"}
    assert stored[1:] == added


async def test_cursor_pagination_walks_every_page(client: httpx.AsyncClient, session: str) -> None:
    await add_messages(
        client, session, *({"role": "user", "content": f"m{i}"} for i in range(2, 8))
    )

    pages, after = [], 0
    while after is not None:
        response = await client.get(
            f"/v1/sessions/{session}/messages", params={"after": after, "limit": 3}
        )
        page = response.json()
        pages.append(([m["seq"] for m in page["data"]], page["has_more"], page["next_after"]))
        after = page["next_after"]

    assert pages == [([1, 2, 3], True, 3), ([4, 5, 6], True, 6), ([7], False, None)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": -1}, "after"),
        ({"after": 2**63}, "after"),
    ],
)
async def test_bad_page_parameters(
    client: httpx.AsyncClient, session: str, params: dict[str, Any], field: str
) -> None:
    response = await client.get(f"/v1/sessions/{session}/messages", params=params)

    expect_error(response, 422, "validation_error", field)


async def test_reposting_a_uuid_returns_the_stored_message(
    client: httpx.AsyncClient, session: str
) -> None:
    message = {"role": "user", "content": "once", "uuid": str(uuid.uuid4())}
    [first] = await add_messages(client, session, message)

    again = await add_messages(client, session, message, {"role": "user", "content": "new"})

    assert again[0] == first
    assert again[1]["seq"] == first["seq"] + 1
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["already here", "once", "new"]


async def test_reposting_a_uuid_with_other_content_conflicts(
    client: httpx.AsyncClient, session: str
) -> None:
    message_uuid = str(uuid.uuid4())
    await post_messages(client, session, {"role": "user", "content": "v1", "uuid": message_uuid})
    before = await stored_messages(client, session)

    response = await post_messages(
        client,
        session,
        {"role": "user", "content": "fresh"},
        {"role": "user", "content": "changed", "uuid": message_uuid},
    )

    expect_error(response, 409, "conflict", "messages.1.uuid")
    assert await stored_messages(client, session) == before


async def test_a_message_uuid_belongs_to_one_session(
    client: httpx.AsyncClient, session: str
) -> None:
    [stored] = await stored_messages(client, session)
    other = await make_session(client, "bot")

    response = await post_messages(
        client, other, {"role": "user", "content": "already here", "uuid": stored["uuid"]}
    )

    expect_error(response, 409, "conflict", "messages.0.uuid")
    assert await stored_messages(client, other) == []


async def test_duplicate_uuid_in_one_request(client: httpx.AsyncClient, session: str) -> None:
    before = await stored_messages(client, session)
    same = str(uuid.uuid4())

    response = await post_messages(
        client,
        session,
        {"role": "user", "content": "a", "uuid": same},
        {"role": "user", "content": "a", "uuid": same},
    )

    expect_error(response, 422, "invalid_input", "messages.1.uuid")
    assert await stored_messages(client, session) == before


USER = {"role": "user", "content": "fine"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": []}, "messages"),
        ({"messages": {"role": "user", "content": "x"}}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({}, "messages"),
        ({"messages": [USER, {"role": "user"}]}, "messages.1"),
        ({"messages": [{"role": "tool", "content": None}]}, "messages.0"),
        ({"messages": [{"role": "assistant"}]}, "messages.0"),
        ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages.0.content"),
        ({"messages": [{**USER, "tool_calls": [tool_call("c1")]}]}, "messages.0"),
        ({"messages": [{**USER, "function_call": {"name": "f"}}]}, "messages.0"),
        ({"messages": [{**USER, "tool_call_id": "c1"}]}, "messages.0"),
        ({"messages": [{**USER, "uuid": "nope"}]}, "messages.0.uuid"),
        ({"messages": [{**USER, "metadata": "tag"}]}, "messages.0.metadata"),
        ({"messages": [{**USER, "colour": "red"}]}, "messages.0.colour"),
        ({"messages": [USER], "extra": 1}, "extra"),
        ({"messages": [USER, USER, {"role": "Users", "content": "x"}]}, "messages.2.role"),
    ],
)
async def test_bad_messages_store_nothing(
    client: httpx.AsyncClient, session: str, body: dict[str, Any], field: str
) -> None:
    before = await stored_messages(client, session)

    response = await client.post(f"/v1/sessions/{session}/messages", json=body)

    expect_error(response, 422, "validation_error", field)
    assert await stored_messages(client, session) == before


async def test_malformed_json_is_a_json_error(client: httpx.AsyncClient, session: str) -> None:
    before = await stored_messages(client, session)

    response = await client.post(
        f"/v1/sessions/{session}/messages",
        content=b'{"messages": [{"role": "user", "content": "x"}',
        headers={"content-type": "application/json"},
    )

    assert "JSON" in expect_error(response, 422, "validation_error", "body")
    assert await stored_messages(client, session) == before


@pytest.fixture
async def small_client(database_url: str, gateway: LLMGateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app that accepts bodies of at most 2000 bytes."""
    app = create_app(
        Settings(database_url=database_url, seed_demo=False, max_body_bytes=2000), gateway
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
            yield c


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_413(small_client: httpx.AsyncClient, streamed: bool) -> None:
    await make_chat_model(small_client, "bot")
    session = await make_session(small_client, "bot")
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 3000}]}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    response = await small_client.post(
        f"/v1/sessions/{session}/messages",
        content=chunks() if streamed else body,
        headers={"content-type": "application/json"},
    )

    expect_error(response, 413, "payload_too_large", "body")
    assert await stored_messages(small_client, session) == []


# --- linking function and tool results to their calls ----------------------------------------


@pytest.mark.parametrize("source", ["posted", "run"])
async def test_unnamed_function_result_links_to_the_pending_call(
    client: httpx.AsyncClient, session: str, source: str
) -> None:
    if source == "posted":
        call = {"name": "get_weather", "arguments": '{"location": "Oslo"}'}
        await add_messages(client, session, {"role": "assistant", "function_call": call})
    else:
        await add_messages(client, session, {"role": "user", "content": "Weather in Oslo?"})
        assert (await run(client, session, functions=[WEATHER_FUNCTION]))["function_call"]

    [result] = await add_messages(client, session, {"role": "function", "content": "-3 C"})

    assert result["name"] == "get_weather"
    assert (await stored_messages(client, session))[-1] == result


async def test_function_result_in_the_same_batch_as_its_call(
    client: httpx.AsyncClient, session: str
) -> None:
    added = await add_messages(
        client,
        session,
        {"role": "assistant", "function_call": {"name": "lookup", "arguments": "{}"}},
        {"role": "function", "content": "found"},
    )

    assert added[1]["name"] == "lookup"


async def test_unnamed_function_result_without_a_call(
    client: httpx.AsyncClient, session: str
) -> None:
    before = await stored_messages(client, session)

    response = await post_messages(client, session, {"role": "function", "content": "-3 C"})

    expect_error(response, 422, "invalid_input", "messages.0.name")
    assert await stored_messages(client, session) == before


async def test_failed_link_rolls_back_the_whole_batch(
    client: httpx.AsyncClient, session: str
) -> None:
    before = await stored_messages(client, session)

    response = await post_messages(
        client,
        session,
        {"role": "user", "content": "valid on its own"},
        {"role": "function", "content": "orphan"},
    )

    expect_error(response, 422, "invalid_input", "messages.1.name")
    assert await stored_messages(client, session) == before


async def test_tool_result_links_to_the_single_pending_call(
    client: httpx.AsyncClient, session: str
) -> None:
    await add_messages(client, session, {"role": "user", "content": "Weather in Rome?"})
    reply = await run(client, session, tools=[WEATHER_TOOL])
    [call] = reply["tool_calls"]

    [result] = await add_messages(client, session, {"role": "tool", "content": "25 C"})

    assert result["tool_call_id"] == call["id"]
    assert (await stored_messages(client, session))[-1]["tool_call_id"] == call["id"]


async def test_tool_result_with_two_pending_calls_must_choose(
    client: httpx.AsyncClient, session: str
) -> None:
    calls = {"role": "assistant", "tool_calls": [tool_call("call_a"), tool_call("call_b")]}
    await add_messages(client, session, calls)
    before = await stored_messages(client, session)

    response = await post_messages(client, session, {"role": "tool", "content": "25 C"})

    detail = expect_error(response, 422, "invalid_input", "messages.0.tool_call_id")
    assert "call_a" in detail and "call_b" in detail
    assert await stored_messages(client, session) == before


async def test_explicit_tool_call_id_is_accepted_and_narrows_the_rest(
    client: httpx.AsyncClient, session: str
) -> None:
    calls = {"role": "assistant", "tool_calls": [tool_call("call_a"), tool_call("call_b")]}
    await add_messages(client, session, calls)

    added = await add_messages(
        client,
        session,
        {"role": "tool", "content": "for b", "tool_call_id": "call_b"},
        {"role": "tool", "content": "for a"},
    )

    assert [(m["content"], m["tool_call_id"]) for m in added] == [
        ("for b", "call_b"),
        ("for a", "call_a"),
    ]
