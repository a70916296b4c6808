"""Background runs: answered at once (202), finished on the server, read by their uuid and
cancelled; the same lease and one-run-per-session rules as a foreground run. A server
killed mid-run (SIGKILL) leaves nothing running: the run is ``interrupted`` within a lease
(and a half sweep) by any server that is up."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.runs.background import BackgroundRuns
from tests.factories import expect_error, make_chat_model, make_remote_session, make_session
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import background_run_at_the_model, serve_process

QUESTION = {"role": "user", "content": "What is the answer?"}
BASE = "http://chatmodel.test"


async def wait_finished(client: httpx.AsyncClient, run: str, within: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        state = await client.get(f"/v1/runs/{run}")
        assert state.status_code == 200, state.text
        body: dict[str, Any] = state.json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_a_background_run_answers_at_once_and_finishes_on_the_server(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(0.5, Reply("Forty-two.")))
    started = await client.post(f"/v1/sessions/{session}/run", json={"background": True})
    assert started.status_code == 202, started.text
    run = started.json()
    assert (run["status"], run["session_uuid"], run["response"]) == ("running", session, None)

    busy = await client.post(f"/v1/sessions/{session}/run", json={})
    expect_error(busy, 409, "session_busy", None)

    done = await wait_finished(client, run["uuid"])
    assert done["status"] == "succeeded"
    assert done["response"]["content"] == "Forty-two."
    assert done["response"]["detail"]["run_uuid"] == run["uuid"]
    assert done["message_uuid"] == done["response"]["detail"]["message_uuid"]
    messages = (await client.get(f"/v1/sessions/{session}/messages")).json()["data"]
    assert [m["content"] for m in messages] == ["What is the answer?", "Forty-two."]


async def test_cancelling_stops_the_run_and_stores_nothing(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(3, Reply("Too late.")))
    run = (await client.post(f"/v1/sessions/{session}/run", json={"background": True})).json()
    await asyncio.sleep(0.3)  # the model has the call by now
    cancelled = await client.post(f"/v1/runs/{run['uuid']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["error_type"]) == ("cancelled", "cancelled")
    assert body["response"]["error"] is True and body["finished_at"] is not None

    llm_server.enqueue(Reply("Next."))
    again = await client.post(f"/v1/sessions/{session}/run", json={})
    assert again.status_code == 200 and again.json()["content"] == "Next."  # the session is free
    await asyncio.sleep(0.2)
    messages = (await client.get(f"/v1/sessions/{session}/messages")).json()["data"]
    assert [m["content"] for m in messages] == ["What is the answer?", "Next."]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [r["status"] for r in runs] == ["cancelled", "succeeded"]

    unchanged = await client.post(f"/v1/runs/{run['uuid']}/cancel")
    assert unchanged.json()["status"] == "cancelled"
    finished = await client.post(f"/v1/runs/{runs[1]['uuid']}/cancel")
    assert finished.status_code == 200 and finished.json()["status"] == "succeeded"
    assert finished.json()["response"]["content"] == "Next."


async def test_cancelling_a_request_s_run_answers_it_at_once(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """A run that is not in the background or streamed: cancelling it closes its model
    call in this process, and its request answers the cancellation then, not when the
    model would have answered."""
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(6, Reply("Too late.")))
    running = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    deadline = time.monotonic() + 5
    while not llm_server.requests:  # the model has the call
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    run_uuid = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"][0]["uuid"]
    cancelled = await client.post(f"/v1/runs/{run_uuid}/cancel")
    assert cancelled.json()["status"] == "cancelled", cancelled.text
    # Well before the model's 6 s: the call was closed, not waited for.
    answered = await asyncio.wait_for(running, timeout=4)
    assert answered.status_code == 200
    assert (answered.json()["error"], answered.json()["error_type"]) == (True, "cancelled")
    assert answered.headers["X-Run-Id"] == run_uuid
    messages = (await client.get(f"/v1/sessions/{session}/messages")).json()["data"]
    assert [m["content"] for m in messages] == ["What is the answer?"]


async def test_any_run_is_read_by_its_uuid(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    ran = await client.post(
        f"/v1/sessions/{session}/run", json={"messages": [{"role": "user", "content": "Hi"}]}
    )
    run_uuid = ran.json()["detail"]["run_uuid"]
    state = await client.get(f"/v1/runs/{run_uuid}")
    assert state.status_code == 200
    assert state.json()["response"]["content"] == "Hi"
    assert state.json()["response"]["detail"] == ran.json()["detail"]
    missing = await client.get("/v1/runs/00000000-0000-4000-8000-000000000000")
    expect_error(missing, 404, "run_not_found", "run_uuid")


def test_a_killed_server_leaves_its_background_run_interrupted(
    tmp_path: Path, database_url: str, llm_server: ScriptedLLMServer
) -> None:
    lease = {"CHATMODEL_RUN_LEASE_SECONDS": "2"}
    llm_server.enqueue(Delay(30, Reply("Never.")))
    # Two servers on one database; the run goes on the first, which is killed. The
    # second, up all along and asked nothing about the session, finds the lease lapsed
    # by its own sweep: within one lease of the kill, since the lease was renewed before.
    with (
        serve_process(tmp_path / "second", database_url, lease) as (other_url, _),
        serve_process(tmp_path / "first", database_url, lease) as (base_url, process),
    ):
        session_uuid, run_uuid = background_run_at_the_model(base_url, llm_server, QUESTION)
        time.sleep(0.8)  # past the first renewal, so the lease is the renewed one
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(timeout=10)
        while True:
            state = httpx.get(f"{other_url}/v1/runs/{run_uuid}").json()
            if state["status"] != "running":
                break
            # One lease, plus the sweep's slack and this loop's polling and requests.
            assert time.monotonic() < killed_at + 2 + 0.6, "not interrupted within a lease"
            time.sleep(0.05)
        assert (state["status"], state["error_type"]) == ("failed", "interrupted")
        free = httpx.post(f"{other_url}/v1/sessions/{session_uuid}/run", json={})
        assert free.status_code == 200  # the session is usable again


async def test_a_run_cancelled_from_another_process_stops_there(
    settings: Settings, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    quick = settings.model_copy(update={"run_lease_seconds": 1.5})  # renewed every 0.5 s
    first, second = create_app(quick, gateway), create_app(quick, gateway)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=BASE) as one,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=BASE) as two,
    ):
        session = await make_remote_session(one, llm_server.base_url, QUESTION)
        llm_server.enqueue(Delay(10, Reply("Too late.")))
        run = (await one.post(f"/v1/sessions/{session}/run", json={"background": True})).json()
        await asyncio.sleep(0.2)
        cancelled = await two.post(f"/v1/runs/{run['uuid']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        runs: BackgroundRuns = first.state.background_runs
        deadline = time.monotonic() + 3
        while runs.running():  # the first process's heartbeat finds the lease gone
            assert time.monotonic() < deadline, "the run went on in the other process"
            await asyncio.sleep(0.05)
        state = (await one.get(f"/v1/runs/{run['uuid']}")).json()
        assert state["status"] == "cancelled"
        messages = (await one.get(f"/v1/sessions/{session}/messages")).json()["data"]
        assert [m["role"] for m in messages] == ["user"]


async def test_a_server_stopped_at_once_leaves_no_task_behind(
    settings: Settings, gateway: LLMGateway
) -> None:
    """Stopped while its sweep may still be reading the database, a server ends that
    read before it closes the database: nothing of it is left running."""
    for _ in range(3):
        app = create_app(settings, gateway)
        async with app.router.lifespan_context(app):
            pass
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert left == [], left
