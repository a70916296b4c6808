"""A run reports how its prompt was fitted to the model's window (issue 8): the client reads
``messages_sent``, ``messages_dropped`` and ``prompt_tokens_estimate`` as typed fields, with
the values the server recorded for the run. Sync over a real socket, async in-process."""

from __future__ import annotations

from typing import Any

import httpx

from chatmodel import ChatModel, LLMResponse, LLMStreamResponse
from tests.client.conftest import ASGI_BASE_URL
from tests.factories import make_chat_model
from tests.support.servers import LiveApp

WINDOW = 200
MAX_TOKENS = 50
FIGURES = ("messages_sent", "messages_dropped", "prompt_tokens_estimate")
HISTORY = [
    {"role": "user", "content": f"This is message number {i} of a long talk."} for i in range(40)
]


async def make_small_window_model(http: httpx.AsyncClient) -> None:
    """The offline model with a window far smaller than 40 messages."""
    await make_chat_model(http, "small", context_window=WINDOW, params={"max_tokens": MAX_TOKENS})


async def recorded_figures(http: httpx.AsyncClient, session_uuid: str) -> list[tuple[Any, ...]]:
    response = await http.get(f"/v1/sessions/{session_uuid}/runs")
    assert response.status_code == 200, response.text
    return [tuple(run[name] for name in FIGURES) for run in response.json()["data"]]


def figures(res: LLMResponse | LLMStreamResponse) -> tuple[int | None, int | None, int | None]:
    for name in FIGURES:  # declared fields, not untyped extras
        assert name not in (res.model_extra or {})
    return res.messages_sent, res.messages_dropped, res.prompt_tokens_estimate


def assert_fitted(sent: int | None, dropped: int | None, estimate: int | None, total: int) -> None:
    assert sent is not None and dropped is not None and estimate is not None
    assert sent >= 1 and dropped >= 1  # the newest messages went, the oldest were left out
    assert sent + dropped == total
    assert 0 < estimate <= WINDOW - MAX_TOKENS


async def test_sync_runs_report_what_was_sent(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    await make_small_window_model(live_admin)
    session = ChatModel("small", base_url=live_app.base_url)
    session.add_messages(HISTORY)

    res = session.run()
    assert not res.error, res.error_log
    assert_fitted(*figures(res), total=40)

    session.add_messages([{"role": "user", "content": "And one more."}])
    last = list(session.run(stream=True))[-1]
    assert last.done and not last.error, last.error_log
    assert_fitted(*figures(last), total=42)

    assert session.session_uuid is not None
    assert await recorded_figures(live_admin, session.session_uuid) == [
        figures(res),
        figures(last),
    ]


async def test_async_runs_report_what_was_sent(client: httpx.AsyncClient) -> None:
    await make_small_window_model(client)
    session = ChatModel("small", base_url=ASGI_BASE_URL, async_http_client=client)
    await session.aadd_messages(HISTORY)

    res = await session.arun()
    assert not res.error, res.error_log
    assert_fitted(*figures(res), total=40)

    await session.aadd_messages([{"role": "user", "content": "And one more."}])
    chunks = [chunk async for chunk in await session.arun(stream=True)]
    assert all(figures(chunk) == (None, None, None) for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.done and not last.error, last.error_log
    assert_fitted(*figures(last), total=42)

    assert session.session_uuid is not None
    assert await recorded_figures(client, session.session_uuid) == [figures(res), figures(last)]


async def test_a_short_session_is_sent_whole(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "roomy")
    session = ChatModel("roomy", base_url=ASGI_BASE_URL, async_http_client=client)
    await session.aadd_messages(HISTORY[:3])

    res = await session.arun()

    sent, dropped, estimate = figures(res)
    assert (sent, dropped) == (3, 0)
    assert estimate is not None and estimate > 0
