"""The admin listing of sessions: newest first, with message counts, a page at a time."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import add_messages, expect_error, make_chat_model, make_session


async def list_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/sessions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_pages(client: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    """Every page's session uuids, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await list_page(client, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([s["uuid"] for s in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def test_pages_are_newest_first_and_cover_every_session(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "support")
    await make_chat_model(client, "sales")
    support = [await make_session(client, "support") for _ in range(5)]
    sales = [await make_session(client, "sales") for _ in range(2)]

    pages = await all_pages(client, chat_model="support", limit=2)
    everything = await all_pages(client)

    assert pages == [support[:-3:-1], support[-3:-5:-1], support[:1]]
    assert everything == [[*reversed(sales), *reversed(support)]]


async def test_each_session_shows_its_messages_summary(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    quiet = await make_session(client, "bot", metadata={"user_id": "u1"})
    busy = await make_session(client, "bot")
    stored = await add_messages(
        client,
        busy,
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    )

    listed = {s["uuid"]: s for s in (await list_page(client, chat_model="bot"))["data"]}

    assert (listed[busy]["message_count"], listed[busy]["last_message_at"]) == (
        3,
        stored[-1]["created_at"],
    )
    assert (listed[quiet]["message_count"], listed[quiet]["last_message_at"]) == (0, None)
    session = (await client.get(f"/v1/sessions/{quiet}")).json()
    assert {k: v for k, v in listed[quiet].items() if k in session} == session
    assert listed[quiet]["metadata"] == {"user_id": "u1"}


async def test_a_cursor_is_stable_while_sessions_are_added(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    old = [await make_session(client, "bot") for _ in range(4)]
    first = await list_page(client, chat_model="bot", limit=2)

    new = [await make_session(client, "bot") for _ in range(3)]
    second = await list_page(client, chat_model="bot", limit=2, cursor=first["next_cursor"])

    assert [s["uuid"] for s in first["data"]] == [old[3], old[2]]
    assert [s["uuid"] for s in second["data"]] == [old[1], old[0]]
    assert second["next_cursor"] is None
    fresh = await list_page(client, chat_model="bot", limit=3)
    assert [s["uuid"] for s in fresh["data"]] == new[::-1]


async def test_default_limit_is_fifty(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    for _ in range(51):
        await make_session(client, "bot")

    page = await list_page(client)

    assert len(page["data"]) == 50 and page["next_cursor"] is not None
    rest = await list_page(client, cursor=page["next_cursor"])
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None


async def test_an_empty_listing(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")

    assert await list_page(client, chat_model="bot") == {"data": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status", "error", "field"),
    [
        ({"chat_model": "ghost"}, 404, "chat_model_not_found", "chat_model"),
        ({"limit": 0}, 422, "validation_error", "limit"),
        ({"limit": 201}, 422, "validation_error", "limit"),
        ({"cursor": "not-a-cursor"}, 422, "invalid_input", "cursor"),
        ({"cursor": "eyJ4IjogMX0"}, 422, "invalid_input", "cursor"),  # base64 of {"x": 1}
    ],
)
async def test_bad_listing_queries(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")

    expect_error(await client.get("/v1/sessions", params=params), status, error, field)
