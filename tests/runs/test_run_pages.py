"""A session's runs a page at a time (``GET /v1/sessions/{uuid}/runs?limit=&cursor=``),
oldest first, as the admin page reads a long session; without ``limit``, all of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import add_messages, expect_error, make_chat_model, make_session, run
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer


async def runs_page(client: httpx.AsyncClient, session: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/sessions/{session}/runs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pages_cover_every_run_oldest_first(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Again and again."})
    for index in range(5):
        llm_server.enqueue(Reply(f"Reply {index}.") if index % 2 else ErrorReply(503))
        await run(client, session)

    everything = await runs_page(client, session)
    pages, cursor = [], None
    while True:
        page = await runs_page(client, session, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append([r["uuid"] for r in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert everything["next_cursor"] is None
    assert [r["status"] for r in everything["data"]] == [
        "failed",
        "succeeded",
        "failed",
        "succeeded",
        "failed",
    ]
    uuids = [r["uuid"] for r in everything["data"]]
    assert pages == [uuids[0:2], uuids[2:4], uuids[4:]]
    exact = await runs_page(client, session, limit=5)
    assert (len(exact["data"]), exact["next_cursor"]) == (5, None)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"cursor": "nope"}, "cursor")],
)
async def test_bad_run_pages(client: httpx.AsyncClient, params: dict[str, Any], field: str) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")

    response = await client.get(f"/v1/sessions/{session}/runs", params=params)

    error = "invalid_input" if field == "cursor" else "validation_error"
    expect_error(response, 422, error, field)
