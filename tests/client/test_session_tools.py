"""Session tools through the client, on the real app and database: regenerate the last
reply, fork a session at a message, delete a session, and read message pages both ways.
Sync methods over a real socket (``live_app``), async twins in-process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import chatmodel
from chatmodel import ChatModel, Message, MessagePage, Session
from tests.client.conftest import ASGI_BASE_URL
from tests.factories import make_chat_model, stored_messages
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp

DEMO = "simple_assistant"


def over(client: httpx.AsyncClient, name: str, **kwargs: Any) -> ChatModel:
    return ChatModel(name, async_http_client=client, base_url=ASGI_BASE_URL, **kwargs)


def sent_texts(server: ScriptedLLMServer, request: int) -> list[str]:
    return [m["content"] for m in server.requests[request]["messages"]]


def history(messages: list[Message]) -> list[tuple[int, str | None, bool]]:
    return [(m.seq, m.content, m.superseded) for m in messages]


async def scripted(http: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    await make_chat_model(http, "remote", model="openai/scripted-model", api_base=server.base_url)


async def session_uuids(http: httpx.AsyncClient, chat_model: str) -> set[str]:
    response = await http.get("/v1/sessions", params={"chat_model": chat_model})
    assert response.status_code == 200, response.text
    return {s["uuid"] for s in response.json()["data"]}


# -- regenerate ------------------------------------------------------------------------------


async def test_regenerate_answers_the_last_reply_again(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted(live_admin, llm_server)
    llm_server.enqueue(Reply("Red."), Reply("Blue."), Reply("Green."))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "Name a colour."}])

    first = session.run()
    second = session.run(regenerate=True)

    assert (first.content, second.content) == ("Red.", "Blue.")
    assert sent_texts(llm_server, 1) == ["You are a test assistant.", "Name a colour."]
    assert second.messages_sent == 1
    page = session.list_messages()
    assert history(page.data) == [
        (1, "Name a colour.", False),
        (2, "Red.", True),
        (3, "Blue.", False),
    ]
    assert second.detail is not None and page.data[-1].uuid == second.detail.message_uuid

    chunks = list(session.run(stream=True, regenerate=True))
    assert chunks[-1].done and not chunks[-1].error, chunks[-1].error_log
    assert chunks[-1].message is not None and chunks[-1].message.content == "Green."
    assert sent_texts(llm_server, 2) == ["You are a test assistant.", "Name a colour."]
    assert [m.superseded for m in session.list_messages().data] == [False, True, True, False]


async def test_regenerate_without_a_reply_is_returned_not_raised(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "hi"}])

    result = session.run(regenerate=True)
    (chunk,) = list(session.run(stream=True, regenerate=True))

    assert (result.error, result.error_type) == (True, "nothing_to_regenerate")
    assert result.error_log
    assert (chunk.done, chunk.error, chunk.error_type) == (True, True, "nothing_to_regenerate")
    assert session.session_uuid is not None
    assert [m["content"] for m in await stored_messages(live_admin, session.session_uuid)] == ["hi"]


async def test_async_regenerate(client: httpx.AsyncClient, llm_server: ScriptedLLMServer) -> None:
    await scripted(client, llm_server)
    llm_server.enqueue(Reply("Red."), Reply("Blue."), Reply("Green."))
    session = over(client, "remote")
    await session.aadd_messages([{"role": "user", "content": "Name a colour."}])
    await session.arun()

    again = await session.arun(regenerate=True)
    chunks = [chunk async for chunk in await session.arun(stream=True, regenerate=True)]

    assert again.content == "Blue."
    assert chunks[-1].message is not None and chunks[-1].message.content == "Green."
    assert [sent_texts(llm_server, i) for i in (1, 2)] == [
        ["You are a test assistant.", "Name a colour."]
    ] * 2
    page = await session.alist_messages()
    assert history(page.data) == [
        (1, "Name a colour.", False),
        (2, "Red.", True),
        (3, "Blue.", True),
        (4, "Green.", False),
    ]
    await session.aadd_messages([{"role": "user", "content": "Another?"}])
    assert (await session.arun(regenerate=True)).error_type == "nothing_to_regenerate"


# -- fork ------------------------------------------------------------------------------------


def test_fork_at_a_message(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    first, _ = session.add_messages(
        [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
    )
    session.run()

    forked = session.fork(first.uuid, metadata={"branch": "b"})

    assert isinstance(forked, Session)
    assert str(forked.uuid) != session.session_uuid
    assert (str(forked.parent_session_uuid), forked.parent_seq) == (session.session_uuid, 1)
    assert (forked.chat_model, forked.metadata) == (DEMO, {"branch": "b"})
    branch = ChatModel(DEMO, forked.uuid, base_url=live_app.base_url)
    assert [(m.seq, m.content) for m in branch.list_messages().data] == [(1, "one")]
    branch.add_messages([{"role": "user", "content": "three"}])
    assert branch.run().content == "three"
    assert [m.content for m in session.list_messages().data] == ["one", "two", "two"]

    whole = session.fork()
    by_seq = session.fork(at_seq=2)
    assert (whole.parent_seq, by_seq.parent_seq) == (3, 2)
    copies = ChatModel(DEMO, whole.uuid, base_url=live_app.base_url).list_messages().data
    assert [m.content for m in copies] == ["one", "two", "two"]


def test_fork_with_a_chosen_uuid_returns_that_fork_again(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "one"}])
    chosen = uuid.uuid4()

    forked = session.fork(session_uuid=chosen)
    again = session.fork(session_uuid=str(chosen))

    assert forked.uuid == again.uuid == chosen
    assert again == forked
    with pytest.raises(chatmodel.ConflictError) as elsewhere:
        session.fork(at_seq=1, session_uuid=session.session_uuid)
    assert elsewhere.value.field == "session_uuid"


def test_fork_points_the_session_does_not_have_raise(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "one"}])

    with pytest.raises(chatmodel.InvalidInputError) as unknown:
        session.fork(uuid.uuid4())
    with pytest.raises(chatmodel.InvalidInputError) as past:
        session.fork(at_seq=2)
    with pytest.raises(chatmodel.ValidationError) as both:
        session.fork(uuid.uuid4(), at_seq=1)
    with pytest.raises(chatmodel.SessionNotFound):
        ChatModel(DEMO, uuid.uuid4(), base_url=live_app.base_url).fork()

    assert [e.value.field for e in (unknown, past, both)] == [
        "at_message_uuid",
        "at_seq",
        "at_seq",
    ]


async def test_async_fork(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client, "assistant")
    await session.aadd_messages([{"role": "user", "content": "one"}])
    await session.arun()

    forked = await session.afork(at_seq=1)

    assert (str(forked.parent_session_uuid), forked.parent_seq) == (session.session_uuid, 1)
    assert forked.metadata == {}
    branch = over(client, "assistant", session_uuid=forked.uuid)
    assert [m.content for m in (await branch.alist_messages()).data] == ["one"]
    assert await session_uuids(client, "assistant") == {session.session_uuid, str(forked.uuid)}


# -- delete ----------------------------------------------------------------------------------


async def test_delete_session(live_app: LiveApp, live_admin: httpx.AsyncClient) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "one"}])
    session.run()
    forked = session.fork()

    session.delete_session()

    gone = await live_admin.get(f"/v1/sessions/{session.session_uuid}")
    assert gone.status_code == 404 and gone.json()["error"] == "session_not_found"
    assert (await live_admin.get(f"/v1/sessions/{session.session_uuid}/runs")).status_code == 404
    with pytest.raises(chatmodel.SessionNotFound):
        session.list_messages()
    with pytest.raises(chatmodel.SessionNotFound):
        session.add_messages([{"role": "user", "content": "two"}])
    assert session.run().error_type == "session_not_found"
    with pytest.raises(chatmodel.SessionNotFound):
        session.delete_session()
    # its fork stays
    assert len(await stored_messages(live_admin, str(forked.uuid))) == 2


async def test_a_session_a_run_holds_is_deleted_only_with_force(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted(client, llm_server)
    # The model answers 2 s after it is called, so the delete below lands while the run
    # holds the session even on a loaded machine.
    llm_server.enqueue(Delay(2.0, Reply("Too late.")))
    session = over(client, "remote")
    await session.aadd_messages([{"role": "user", "content": "Slow?"}])
    running = asyncio.create_task(session.arun())
    for _ in range(3000):  # until the model has been called
        if llm_server.requests:
            break
        await asyncio.sleep(0.01)
    assert llm_server.requests, "the run never called the model"

    with pytest.raises(chatmodel.ConflictError) as busy:
        await session.adelete_session()
    await session.adelete_session(force=True)
    cut_short = await running

    assert busy.value.code == "session_busy"
    assert isinstance(busy.value, chatmodel.SessionBusyError)
    assert busy.value.retry_after is not None and busy.value.retry_after >= 1
    assert (cut_short.error, cut_short.error_type) == (True, "interrupted")
    assert await session_uuids(client, "remote") == set()


# -- message pages ---------------------------------------------------------------------------


def seqs(page: MessagePage) -> list[int]:
    return [m.seq for m in page.data]


def test_message_pages_both_ways(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    assert session.list_messages() == MessagePage(data=[], has_more=False)  # no session yet
    not_made = httpx.get(f"{live_app.base_url}/v1/sessions/{session.session_uuid}")
    assert not_made.status_code == 404  # reading made none
    session.add_messages([{"role": "user", "content": f"m{i}"} for i in range(25)])

    forwards: list[int] = []
    page = session.list_messages(limit=10)
    while True:
        forwards += seqs(page)
        if not page.has_more:
            break
        assert page.next_after == seqs(page)[-1]
        page = session.list_messages(after=page.next_after, limit=10)
    assert forwards == list(range(1, 26))

    newest = session.list_messages(order="desc", limit=10)
    assert (seqs(newest), newest.has_more, newest.next_before) == (list(range(16, 26)), True, 16)
    backwards = [seqs(newest)]
    page = newest
    while page.has_more:
        assert page.next_before is not None
        page = session.list_messages(before=page.next_before, limit=10)  # desc: only before
        backwards.append(seqs(page))
    assert backwards == [list(range(16, 26)), list(range(6, 16)), list(range(1, 6))]

    between = session.list_messages(after=3, before=8)
    assert (seqs(between), between.has_more) == ([4, 5, 6, 7], False)
    assert [m.content for m in between.data] == ["m3", "m4", "m5", "m6"]
    with pytest.raises(chatmodel.InvalidInputError) as bad:
        session.list_messages(after=5, before=5)
    assert bad.value.field == "before"
    with pytest.raises(chatmodel.ValidationError):
        session.list_messages(limit=0)


async def test_async_message_pages(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client, "assistant")
    assert (await session.alist_messages()).data == []
    await session.aadd_messages([{"role": "user", "content": f"m{i}"} for i in range(5)])

    oldest = await session.alist_messages(limit=2)
    newest = await session.alist_messages(order="desc", limit=2)
    older = await session.alist_messages(before=newest.next_before, limit=2)

    assert (seqs(oldest), oldest.has_more, oldest.next_after) == ([1, 2], True, 2)
    assert (seqs(newest), newest.has_more, newest.next_before) == ([4, 5], True, 4)
    assert seqs(older) == [2, 3]
    with pytest.raises(chatmodel.SessionNotFound):
        await over(client, "assistant", session_uuid=uuid.uuid4()).alist_messages()


# -- resent after a lost answer --------------------------------------------------------------


class LoseFirstAnswers(httpx.AsyncBaseTransport):
    """Delivers each request, but drops the first answer of every method and path."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.dropped: set[tuple[str, str]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if (request.method, request.url.path) not in self.dropped:
            self.dropped.add((request.method, request.url.path))
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered")
        return response


async def test_lost_answers_are_resent_without_doing_anything_twice(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted(client, llm_server)
    llm_server.enqueue(Reply("Red."), Reply("Blue."), Reply("Green."))
    steady = over(client, "remote")
    await steady.aadd_messages([{"role": "user", "content": "Name a colour."}])
    await steady.arun()
    transport = LoseFirstAnswers(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport) as flaky:
        session = ChatModel(
            "remote", steady.session_uuid, base_url=ASGI_BASE_URL, async_http_client=flaky
        )

        regenerated = await session.arun(regenerate=True)
        forked = await session.afork()
        page = await session.alist_messages()
        await session.adelete_session()

    path = f"/v1/sessions/{steady.session_uuid}"
    assert transport.dropped == {
        ("POST", f"{path}/run"),
        ("POST", f"{path}/fork"),
        ("GET", f"{path}/messages"),
        ("DELETE", path),
    }
    assert regenerated.content == "Blue."
    assert len(llm_server.requests) == 2  # the resent regenerate replayed the stored run
    assert history(page.data) == [
        (1, "Name a colour.", False),
        (2, "Red.", True),
        (3, "Blue.", False),
    ]
    assert await session_uuids(client, "remote") == {str(forked.uuid)}  # one fork, original gone
