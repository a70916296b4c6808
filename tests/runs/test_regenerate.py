"""Regenerate: the last reply is answered again; the old one stays, marked superseded
once (and only once) the new reply is stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import DEFAULT_PROJECT_ID
from chatmodel_service.runs.schemas import RunRequest
from chatmodel_service.runs.service import PreparedRun, start_run
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer


async def test_regenerate_keeps_the_old_reply_and_never_sends_it_again(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Name a colour."})
    llm_server.enqueue(Reply("Red."), Reply("Blue."), Reply("Green."))
    first = await run(client, session)
    second = await run(client, session, regenerate=True)
    assert (first["content"], second["content"]) == ("Red.", "Blue.")
    sent = [m["content"] for m in llm_server.requests[1]["messages"]]
    assert sent == ["You are a test assistant.", "Name a colour."]  # not "Red."

    stored = await stored_messages(client, session)
    assert [(m["seq"], m["content"], m["superseded"]) for m in stored] == [
        (1, "Name a colour.", False),
        (2, "Red.", True),
        (3, "Blue.", False),
    ]
    # The next run continues from the regenerated reply.
    await add_messages(client, session, {"role": "user", "content": "Another?"})
    await run(client, session)
    sent = [m["content"] for m in llm_server.requests[2]["messages"]]
    assert sent == ["You are a test assistant.", "Name a colour.", "Blue.", "Another?"]


async def test_regenerate_needs_a_reply_to_answer_again(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    response = await client.post(f"/v1/sessions/{session}/run", json={"regenerate": True})
    expect_error(response, 409, "nothing_to_regenerate", "regenerate")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    response = await client.post(f"/v1/sessions/{session}/run", json={"regenerate": True})
    expect_error(response, 409, "nothing_to_regenerate", "regenerate")
    both = {"regenerate": True, "messages": [{"role": "user", "content": "x"}]}
    response = await client.post(f"/v1/sessions/{session}/run", json=both)
    assert response.status_code == 422 and response.json()["field"] == "regenerate"
    # Nothing was stored by the refused requests, and no run was recorded.
    assert [m["content"] for m in await stored_messages(client, session)] == ["hi"]
    assert (await client.get(f"/v1/sessions/{session}/runs")).json()["data"] == []


async def _answered_once(client: httpx.AsyncClient, server: ScriptedLLMServer) -> str:
    """A session whose newest message is the reply "Red." to "Name a colour."."""
    await make_chat_model(client, "remote", model="openai/scripted-model", api_base=server.base_url)
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Name a colour."})
    server.enqueue(Reply("Red."))
    assert (await run(client, session))["content"] == "Red."
    return session


async def _history(client: httpx.AsyncClient, session: str) -> list[tuple[str, bool]]:
    return [(m["content"], m["superseded"]) for m in await stored_messages(client, session)]


async def test_a_failed_regenerate_keeps_the_old_reply_and_can_be_retried(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await _answered_once(client, llm_server)
    llm_server.enqueue(ErrorReply(500, "upstream broke"), Reply("Blue."))

    failed = await run(client, session, regenerate=True)
    assert (failed["error"], failed["error_type"]) == (True, "provider_error")
    sent = [m["content"] for m in llm_server.requests[1]["messages"]]
    assert sent == ["You are a test assistant.", "Name a colour."]  # never the old reply
    assert await _history(client, session) == [("Name a colour.", False), ("Red.", False)]

    retried = await run(client, session, regenerate=True)
    assert retried["content"] == "Blue."
    assert await _history(client, session) == [
        ("Name a colour.", False),
        ("Red.", True),
        ("Blue.", False),
    ]


async def test_a_regenerate_refused_for_its_context_keeps_the_old_reply(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await _answered_once(client, llm_server)
    refused = await run(client, session, regenerate=True, params={"max_tokens": 10_000_000})
    assert (refused["error"], refused["error_type"]) == (True, "context_window_exceeded")
    assert await _history(client, session) == [("Name a colour.", False), ("Red.", False)]
    assert len(llm_server.requests) == 1  # refused before any model call

    llm_server.enqueue(Reply("Green."))
    assert (await run(client, session, regenerate=True))["content"] == "Green."
    assert await _history(client, session) == [
        ("Name a colour.", False),
        ("Red.", True),
        ("Green.", False),
    ]


@pytest.fixture
async def short_lease_app(database_url: str, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url, seed_demo=False, llm_timeout_seconds=5, run_lease_seconds=0.5
    )
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_regenerate_whose_server_died_keeps_the_old_reply(
    short_lease_app: FastAPI, llm_server: ScriptedLLMServer
) -> None:
    """A regenerate claimed and never finished (its server killed mid-call): the old
    reply stays as it is while the run is in flight and after the run is given up."""
    app = short_lease_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as client:
        session = await _answered_once(client, llm_server)
        orphan = await start_run(
            app.state.database,
            app.state.gateway,
            app.state.settings,
            DEFAULT_PROJECT_ID,
            uuid.UUID(session),
            RunRequest(regenerate=True),
        )
        assert isinstance(orphan, PreparedRun)
        sent = [m["content"] for m in orphan.call.messages]
        assert sent == ["You are a test assistant.", "Name a colour."]
        assert await _history(client, session) == [("Name a colour.", False), ("Red.", False)]

        await asyncio.sleep(0.6)  # the dead run's lease lapses
        llm_server.enqueue(Reply("Blue."))
        retried = await run(client, session, regenerate=True)
        assert retried["content"] == "Blue."
        assert await _history(client, session) == [
            ("Name a colour.", False),
            ("Red.", True),
            ("Blue.", False),
        ]
        runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
        assert [(r["status"], r["error_type"]) for r in runs] == [
            ("succeeded", None),
            ("failed", "interrupted"),
            ("succeeded", None),
        ]
