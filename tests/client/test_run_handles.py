"""Background runs and their handles against the live app: start, status, wait, cancel,
``get_run``; and a run's ``events()``, which resume by themselves after a dropped
connection (cut on purpose by ``tests/support/cutting_proxy.py``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import aclosing

import httpx
import pytest

import chatmodel
from chatmodel import AsyncRunHandle, ChatModel, LLMStreamResponse, RunHandle, RunState, _run_stream
from chatmodel_service.runs import schemas as server_runs
from tests.client.test_model_contract import nested_pairs
from tests.factories import make_chat_model, stored_messages
from tests.support.cutting_proxy import CuttingProxy
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp

QUESTION = [{"role": "user", "content": "Count, please."}]
COUNTING = "one two three four five six"


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def proxy(live_app: LiveApp) -> Iterator[CuttingProxy]:
    """A proxy to the live app that cuts connections when a test says so."""
    with CuttingProxy(int(live_app.base_url.rsplit(":", 1)[1])) as cutting:
        yield cutting


async def remote(admin: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    await make_chat_model(admin, "remote", model="openai/scripted", api_base=server.base_url)


def lines(proxy: CuttingProxy) -> list[str]:
    """The request line of every request that went through ``proxy``."""
    return [head.split("\r\n", 1)[0] for head in proxy.heads]


def contents(chunks: list[LLMStreamResponse]) -> str:
    return "".join(chunk.content or "" for chunk in chunks if not chunk.done)


def assert_one_whole_stream(chunks: list[LLMStreamResponse], reply: str) -> None:
    """Every piece once, in order, then exactly one last chunk, with the stored reply."""
    assert [chunk.done for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
    assert contents(chunks) == reply
    last = chunks[-1]
    assert (last.error, last.error_type) == (False, None), last.error_log
    assert last.message is not None and last.message.content == reply
    assert last.detail is not None and last.detail.message_uuid is not None


def test_the_client_reads_every_field_of_a_run_state() -> None:
    for client, server, path in nested_pairs(RunState, server_runs.RunState):
        missing = set(server.model_fields) - set(client.model_fields)
        assert missing == set(), f"{path} lacks {sorted(missing)}"


# -- background runs ----------------------------------------------------------------------


async def test_a_background_run_is_followed_to_its_result(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("Later.")))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)

    handle = session.run(background=True)

    assert isinstance(handle, RunHandle)
    state = handle.status()
    assert isinstance(state, RunState)
    assert (str(state.uuid), str(state.session_uuid)) == (handle.uuid, session.session_uuid)
    assert (state.status, state.finished, state.response) == ("running", False, None)
    result = handle.wait(timeout=30)
    assert (result.error, result.content) == (False, "Later.")
    assert result.detail is not None and str(result.detail.run_uuid) == handle.uuid
    ended = handle.status()
    assert (ended.status, ended.finished) == ("succeeded", True)
    assert ended.response is not None and ended.response.content == "Later."
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Count, please.", "Later."]
    # the events of a run that did not stream: its end, once, with the whole result
    [last] = list(handle.events())
    assert (last.done, last.error) == (True, False)
    assert last.message is not None and last.message.content == "Later."


async def test_a_background_run_is_followed_to_its_result_async(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("Later.")))
    session = ChatModel("remote", base_url=live_app.base_url)
    await session.aadd_messages(QUESTION)

    handle = await session.arun(background=True)

    assert isinstance(handle, AsyncRunHandle)
    assert (await handle.status()).status == "running"
    result = await handle.wait()
    assert (result.error, result.content) == (False, "Later.")
    assert (await handle.status()).status == "succeeded"
    events = [chunk async for chunk in handle.events()]
    assert [(e.done, e.message and e.message.content) for e in events] == [(True, "Later.")]


async def test_waiting_too_long_raises_and_a_cancelled_run_frees_the_session(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Delay(5, Reply("Too late.")), Reply("Next."))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)
    handle = session.run(background=True)

    started = time.monotonic()
    with pytest.raises(chatmodel.RunWaitTimeout) as waited:
        handle.wait(timeout=0.3)
    assert time.monotonic() - started < 3
    assert isinstance(waited.value, TimeoutError)
    assert (waited.value.run_uuid, waited.value.state.status) == (handle.uuid, "running")

    cancelled = handle.cancel()
    assert (cancelled.status, cancelled.finished) == ("cancelled", True)
    result = handle.wait(timeout=0)
    assert (result.error, result.error_type, result.content) == (True, "cancelled", None)
    assert handle.cancel().status == "cancelled"  # an ended run is answered as it is
    # the session is free at once, and nothing was stored for the cancelled run's reply
    assert session.run().content == "Next."
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Count, please.", "Next."]


async def test_a_busy_session_refuses_a_background_run_by_raising(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Delay(2, Reply("First.")))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)
    first = session.run(background=True)

    with pytest.raises(chatmodel.SessionBusyError) as busy:
        session.run(background=True)
    assert busy.value.code == "session_busy"
    assert first.cancel().status == "cancelled"


async def test_get_run_finds_any_run_and_refuses_an_unknown_one(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Reply("Plain."), Delay(0.3, Reply("Background.")))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)
    plain = session.run()
    assert plain.detail is not None
    started = session.run(background=True)

    elsewhere = ChatModel("another", base_url=live_app.base_url)  # any ChatModel will do
    found = elsewhere.get_run(plain.detail.run_uuid)
    assert (found.uuid, found.status().status) == (str(plain.detail.run_uuid), "succeeded")
    assert found.wait().content == "Plain."
    again = await elsewhere.aget_run(started.uuid)
    assert isinstance(again, AsyncRunHandle)
    assert (await again.wait(timeout=30)).content == "Background."

    unknown = uuid.uuid4()
    with pytest.raises(chatmodel.RunNotFound) as missing:
        elsewhere.get_run(unknown)
    assert isinstance(missing.value, chatmodel.NotFoundError)
    assert missing.value.code == "run_not_found"
    with pytest.raises(chatmodel.RunNotFound):
        await elsewhere.aget_run(str(unknown))


async def test_a_background_start_whose_answer_was_lost_is_found_by_its_key(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(Delay(1, Reply("Once.")))
    session = ChatModel("remote", base_url=proxy.base_url)
    session.add_messages(QUESTION)
    proxy.cut("/run")  # the 202's head arrives, its body never does

    handle = session.run(background=True)

    assert proxy.cuts == 1
    sent = [(method, path.rsplit("/", 1)[1]) for method, path, _ in map(str.split, lines(proxy))]
    # resent (same Idempotency-Key): 409 run_in_progress; the run is then found by its key
    assert sent[-3:] == [("POST", "run"), ("POST", "run"), ("GET", "runs")]
    keys = {
        head.lower().split("idempotency-key: ")[1].split("\r\n")[0] for head in proxy.heads[-3:-1]
    }
    assert len(keys) == 1
    runs = (await live_admin.get(f"/v1/sessions/{session.session_uuid}/runs")).json()["data"]
    assert [r["uuid"] for r in runs] == [handle.uuid]  # one run: the first attempt's
    assert handle.wait(timeout=30).content == "Once."
    assert len(llm_server.requests) == 1


# -- events across dropped connections ----------------------------------------------------


async def test_events_resume_after_dropped_connections_and_come_once(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.1))
    session = ChatModel("remote", base_url=proxy.base_url)
    session.add_messages(QUESTION)
    handle = session.run(background=True, stream=True)
    proxy.cut("/events", after_frames=2, extra_bytes=7)  # mid-frame
    proxy.cut("/events", after_frames=1)  # the resumed connection, between frames

    followed = list(handle.events())

    assert proxy.cuts == 2
    assert_one_whole_stream(followed, COUNTING)
    resumes = proxy.heads_for("/events")[1:]
    assert len(resumes) == 2
    assert all(f"last-event-id: {handle.uuid}:" in head.lower() for head in resumes)
    # the same events as read in one go, without a drop, once the run has ended
    direct = ChatModel("remote", base_url=live_app.base_url).get_run(handle.uuid)
    assert followed == list(direct.events())
    assert len(llm_server.requests) == 1


async def test_events_resume_after_a_reset_connection_async(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.1))
    session = ChatModel("remote", base_url=proxy.base_url)
    await session.aadd_messages(QUESTION)
    handle = await session.arun(background=True, stream=True)
    proxy.cut("/events", after_frames=3, reset=True)

    followed = [chunk async for chunk in handle.events()]

    assert proxy.cuts == 1
    assert_one_whole_stream(followed, COUNTING)
    direct = await ChatModel("remote", base_url=live_app.base_url).aget_run(handle.uuid)
    assert followed == [chunk async for chunk in direct.events()]


# -- streamed runs across dropped connections ---------------------------------------------


async def test_a_streamed_run_cut_mid_way_yields_every_piece_once(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.1))
    session = ChatModel("remote", base_url=proxy.base_url)
    session.add_messages(QUESTION)
    proxy.cut("/run", after_frames=2, extra_bytes=5)

    chunks = list(session.run(stream=True))

    assert proxy.cuts == 1
    assert_one_whole_stream(chunks, COUNTING)
    detail = chunks[-1].detail
    assert detail is not None
    [resume] = proxy.heads_for("/events")
    assert f"/v1/runs/{detail.run_uuid}/events" in resume
    assert f"last-event-id: {detail.run_uuid}:1" in resume.lower()
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [(m["content"], m["uuid"]) for m in stored[1:]] == [(COUNTING, str(detail.message_uuid))]
    assert len(llm_server.requests) == 1  # the model answered once
    direct = ChatModel("remote", base_url=live_app.base_url).get_run(detail.run_uuid)
    assert chunks == list(direct.events())


async def test_a_streamed_run_cut_mid_way_yields_every_piece_once_async(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.1))
    session = ChatModel("remote", base_url=proxy.base_url)
    await session.aadd_messages(QUESTION)
    proxy.cut("/run", after_frames=1, reset=True)
    proxy.cut("/events", after_frames=2)

    chunks = [chunk async for chunk in await session.arun(stream=True)]

    assert proxy.cuts == 2
    assert_one_whole_stream(chunks, COUNTING)
    assert len(proxy.heads_for("/events")) == 2
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Count, please.", COUNTING]


async def test_a_stream_that_cannot_be_resumed_ends_with_an_error_and_cancels_its_run(
    proxy: CuttingProxy,
    live_app: LiveApp,
    live_admin: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_run_stream, "FIRST_RESUME_PAUSE", 0.01)
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.2))
    session = ChatModel("remote", base_url=proxy.base_url)
    session.add_messages(QUESTION)
    proxy.cut("/run", after_frames=1)
    proxy.cut("/events", times=None)  # every resume: its head, then nothing

    chunks = list(session.run(stream=True))

    *pieces, last = chunks
    assert [piece.done for piece in pieces] == [False]
    assert (last.done, last.error, last.error_type) == (True, True, "api_connection_error")
    assert len(proxy.heads_for("/events")) == _run_stream.STREAM_RESUMES
    [run] = (await live_admin.get(f"/v1/sessions/{session.session_uuid}/runs")).json()["data"]
    assert run["status"] == "cancelled"
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Count, please."]


# -- stopping early -----------------------------------------------------------------------


async def test_stopping_a_stream_early_cancels_its_run(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.2), Reply("Next."))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)

    chunks = session.run(stream=True)
    assert next(chunks).content
    chunks.close()

    [run] = (await live_admin.get(f"/v1/sessions/{session.session_uuid}/runs")).json()["data"]
    assert run["status"] == "cancelled"  # at once: the close waited for the cancel
    assert session.run().content == "Next."  # the session is free, no if_busy="wait"
    await until(lambda: llm_server.abandoned_streams == 1)  # no more tokens paid for
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Count, please.", "Next."]


async def test_stopping_a_stream_early_cancels_its_run_async(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.2), Reply("Next."))
    session = ChatModel("remote", base_url=live_app.base_url)
    await session.aadd_messages(QUESTION)

    async with aclosing(await session.arun(stream=True)) as chunks:
        async for chunk in chunks:
            assert chunk.content
            break

    [run] = (await live_admin.get(f"/v1/sessions/{session.session_uuid}/runs")).json()["data"]
    assert run["status"] == "cancelled"
    assert (await session.arun()).content == "Next."


async def test_stopping_events_early_leaves_the_run_going(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await remote(live_admin, llm_server)
    llm_server.enqueue(SlowStream(Reply(COUNTING), chunk_delay=0.1))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)
    handle = session.run(background=True, stream=True)

    events = handle.events()
    assert next(events).content
    events.close()

    assert handle.status().status == "running"
    assert handle.wait(timeout=30).content == COUNTING
