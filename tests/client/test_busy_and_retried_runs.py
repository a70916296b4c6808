"""One run at a time per session, and runs resent after a lost answer, against the real app:
a busy session comes back as ``error_type="session_busy"`` (or is waited for with
``if_busy="wait"``), and a run whose answer was lost is fetched again under its
Idempotency-Key, never answered or stored twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from chatmodel import ChatModel, LLMResponse
from tests.client.conftest import ASGI_BASE_URL
from tests.factories import make_chat_model, stored_messages
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import LiveApp

QUESTION = [{"role": "user", "content": "Hello?"}]


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def make_remote_model(admin: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    await make_chat_model(admin, "remote", model="openai/scripted", api_base=server.base_url)


async def list_runs(admin: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await admin.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["data"]
    return runs


def is_run(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/run")


# -- busy sessions ------------------------------------------------------------------------


async def test_a_busy_session_is_reported_or_waited_for_async(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_remote_model(client, llm_server)
    session = ChatModel("remote", base_url=ASGI_BASE_URL, async_http_client=client)
    await session.aadd_messages(QUESTION)
    llm_server.enqueue(Delay(0.5, Reply("first")), Reply("second"))
    first = asyncio.create_task(session.arun())
    await until(lambda: len(llm_server.requests) == 1)

    busy = await session.arun()
    assert (busy.error, busy.error_type, busy.content) == (True, "session_busy", None)
    chunks = [chunk async for chunk in await session.arun(stream=True)]
    assert [(c.done, c.error, c.error_type) for c in chunks] == [(True, True, "session_busy")]
    gave_up = await session.arun(if_busy="wait", wait_seconds=0.05)
    assert gave_up.error_type == "session_busy"

    waited = await session.arun(if_busy="wait", wait_seconds=10)
    assert (waited.error, waited.content) == (False, "second")
    assert waited.attempts is not None
    assert [(a.model, a.outcome) for a in waited.attempts] == [("openai/scripted", "succeeded")]
    assert (await first).content == "first"
    assert len(llm_server.requests) == 2  # the refused runs never reached the model
    assert session.session_uuid is not None
    stored = await stored_messages(client, session.session_uuid)
    assert [m["content"] for m in stored] == ["Hello?", "first", "second"]


async def test_a_busy_session_is_reported_or_waited_for_sync(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_remote_model(live_admin, llm_server)
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages(QUESTION)
    llm_server.enqueue(Delay(0.5, Reply("first")), Reply("second"))
    first = asyncio.create_task(asyncio.to_thread(session.run))
    await until(lambda: len(llm_server.requests) == 1)

    busy = session.run()
    assert (busy.error, busy.error_type) == (True, "session_busy")
    assert [c.error_type for c in session.run(stream=True)] == ["session_busy"]

    waited = session.run(if_busy="wait", wait_seconds=10)
    assert (waited.error, waited.content) == (False, "second")
    assert (await first).content == "first"
    assert len(llm_server.requests) == 2
    assert session.session_uuid is not None
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["content"] for m in stored] == ["Hello?", "first", "second"]


# -- lost answers -------------------------------------------------------------------------


class LoseFirstRunAnswer(httpx.AsyncBaseTransport):
    """Delivers every request to the app, but the first run's answer, which the server has
    sent (the run is stored), never arrives: the client gets ``httpx.ReadError``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.runs: list[httpx.Request] = []
        self.run_answers: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not is_run(request):
            return response
        self.runs.append(request)
        if len(self.runs) == 1:
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered")
        self.run_answers.append(response)
        return response


class LoseFirstRunAnswerSync(httpx.BaseTransport):
    """:class:`LoseFirstRunAnswer` for ``httpx.Client``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.runs: list[httpx.Request] = []
        self.run_answers: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not is_run(request):
            return response
        self.runs.append(request)
        if len(self.runs) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the server answered")
        self.run_answers.append(response)
        return response


async def assert_run_stored_once(
    admin: httpx.AsyncClient,
    session: ChatModel,
    result: LLMResponse,
    runs_sent: list[httpx.Request],
    run_answers: list[httpx.Response],
) -> None:
    """The client's result is the one stored run, fetched again by its Idempotency-Key."""
    assert (result.error, result.content) == (False, "Hello?")
    assert len(runs_sent) == 2
    assert runs_sent[0].headers["Idempotency-Key"] == runs_sent[1].headers["Idempotency-Key"]
    (replayed,) = run_answers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert session.session_uuid is not None
    (run,) = await list_runs(admin, session.session_uuid)
    assert run["status"] == "succeeded"
    assert run["idempotency_key"] == runs_sent[0].headers["Idempotency-Key"]
    stored = await stored_messages(admin, session.session_uuid)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Hello?"),
        ("assistant", "Hello?"),
    ]
    assert result.detail is not None
    assert str(result.detail.run_uuid) == run["uuid"]
    assert str(result.detail.message_uuid) == stored[-1]["uuid"]


async def test_a_lost_run_answer_is_fetched_not_run_again_async(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "assistant")
    transport = LoseFirstRunAnswer(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport) as flaky:
        session = ChatModel("assistant", base_url=ASGI_BASE_URL, async_http_client=flaky)
        await session.aadd_messages(QUESTION)
        result = await session.arun()
    await assert_run_stored_once(client, session, result, transport.runs, transport.run_answers)


async def test_a_lost_run_answer_is_fetched_not_run_again_sync(
    live_app: LiveApp, live_admin: httpx.AsyncClient
) -> None:
    await make_chat_model(live_admin, "assistant")
    transport = LoseFirstRunAnswerSync(httpx.HTTPTransport())
    with httpx.Client(transport=transport) as flaky:
        session = ChatModel("assistant", base_url=live_app.base_url, http_client=flaky)
        session.add_messages(QUESTION)
        result = session.run()
    await assert_run_stored_once(live_admin, session, result, transport.runs, transport.run_answers)


class DropFirstRunWhileItRuns(httpx.AsyncBaseTransport):
    """Delivers the first run to the app but drops the connection while the model is still
    answering it (the server carries on); everything else passes through."""

    def __init__(self, inner: httpx.AsyncBaseTransport, model_called: Callable[[], bool]):
        self.inner = inner
        self.model_called = model_called
        self.first_run: asyncio.Task[httpx.Response] | None = None
        self.run_answers: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if is_run(request) and self.first_run is None:
            self.first_run = asyncio.create_task(self.inner.handle_async_request(request))
            await until(self.model_called)
            raise httpx.ReadError("connection reset while the model was answering")
        response = await self.inner.handle_async_request(request)
        if is_run(request):
            self.run_answers.append(response)
        return response


async def test_a_run_resent_while_its_first_attempt_runs_waits_for_its_result(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_remote_model(client, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("only once")), Reply("a second call"))
    transport = DropFirstRunWhileItRuns(
        httpx.ASGITransport(app=app), lambda: len(llm_server.requests) == 1
    )
    async with httpx.AsyncClient(transport=transport) as flaky:
        session = ChatModel("remote", base_url=ASGI_BASE_URL, async_http_client=flaky)
        await session.aadd_messages(QUESTION)
        result = await session.arun()  # if_busy="reject", but the resend waits for its run

    assert transport.first_run is not None
    first_answer = await transport.first_run  # what the lost connection would have carried
    assert (result.error, result.content) == (False, "only once")
    assert result == LLMResponse.model_validate_json(await first_answer.aread())
    (replayed,) = transport.run_answers
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert len(llm_server.requests) == 1
    assert session.session_uuid is not None
    stored = await stored_messages(client, session.session_uuid)
    assert [m["content"] for m in stored] == ["Hello?", "only once"]
    assert len(await list_runs(client, session.session_uuid)) == 1
