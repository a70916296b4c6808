"""A second message while a run holds the session, on SQLite and PostgreSQL: ``enqueue``
queues runs that take the session in arrival order, before any other; ``interrupt``
cancels the running run and runs at once. Nothing stays queued when its process is gone."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from chatmodel_service.db import Database
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs import recover_lapsed_runs
from chatmodel_service.runs.repository import RunRepository
from tests.factories import expect_error, make_remote_session, stored_messages
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer

QUESTION = {"role": "user", "content": "First question"}


def said(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def finished(client: httpx.AsyncClient, run: str, within: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        state: dict[str, Any] = (await client.get(f"/v1/runs/{run}")).json()
        if state["status"] not in ("queued", "running"):
            return state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.05)


async def hold(client: httpx.AsyncClient, session: str) -> str:
    """A background run that holds the session (its reply is scripted by the caller)."""
    held = await client.post(f"/v1/sessions/{session}/run", json={"background": True})
    assert held.status_code == 202, held.text
    return str(held.json()["uuid"])


async def test_enqueued_runs_go_in_arrival_order_each_answering_its_own_message(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(0.8, Reply("first answer")))
    llm_server.enqueue(*[Reply(f"answer {i}") for i in range(4)])
    first = await hold(client, session)
    url = f"/v1/sessions/{session}/run"
    posts = await asyncio.gather(
        *[
            client.post(
                url,
                json={"background": True, "if_busy": "enqueue", "messages": [said(f"m{i}")]},
            )
            for i in range(4)
        ]
    )
    assert [p.status_code for p in posts] == [202] * 4, [p.text for p in posts]
    assert {p.json()["status"] for p in posts} == {"queued"}
    runs = [p.json()["uuid"] for p in posts]
    states = [(await client.get(f"/v1/runs/{run}")).json() for run in runs]
    by_position = sorted(states, key=lambda state: state["queue_position"])
    assert [s["queue_position"] for s in by_position] == [1, 2, 3, 4]
    created = sorted(states, key=lambda state: (state["created_at"], state["uuid"]))
    assert by_position == created  # the place in line is the order of arrival
    # Meanwhile any other run waits its turn behind them.
    refused = await client.post(url, json={"messages": [said("cutting in")]})
    expect_error(refused, 409, "session_busy", None)
    for run in [first, *runs]:
        assert (await finished(client, run))["status"] == "succeeded"
    order = {run: posts[runs.index(run)] for run in runs}
    sent = [order[s["uuid"]].request.content for s in by_position]
    expected = [said(f"m{i}")["content"] for i in range(4)]
    arrival = [next(e for e in expected if e.encode() in body) for body in sent]
    messages = await stored_messages(client, session)
    contents = [(m["role"], m["content"]) for m in messages]
    assert contents[:2] == [("user", "First question"), ("assistant", "first answer")]
    assert contents[2:] == [
        pair
        for i, text in enumerate(arrival)
        for pair in (("user", text), ("assistant", f"answer {i}"))
    ]
    # Each call saw its own message last: the upstream requests in the same order.
    last_said = [r["messages"][-1]["content"] for r in llm_server.requests[1:]]
    assert last_said == arrival


async def test_a_foreground_enqueue_waits_its_turn_and_a_cancelled_one_never_runs(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(0.6, Reply("first answer")), Reply("queued answer"))
    await hold(client, session)
    url = f"/v1/sessions/{session}/run"
    cancelled_one = await client.post(
        url, json={"background": True, "if_busy": "enqueue", "messages": [said("never")]}
    )
    queued = cancelled_one.json()["uuid"]
    gone = await client.post(f"/v1/runs/{queued}/cancel")
    assert (gone.json()["status"], gone.json()["error_type"]) == ("cancelled", "cancelled")
    waited = await client.post(
        url, json={"if_busy": "enqueue", "wait_seconds": 10, "messages": [said("waits")]}
    )
    assert waited.status_code == 200, waited.text
    assert waited.json()["content"] == "queued answer"
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["First question", "first answer", "waits", "queued answer"]
    assert len(llm_server.requests) == 2  # the cancelled one never called the model


async def test_a_foreground_enqueue_that_waits_too_long_is_refused_and_recorded(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(2, Reply("slow")))
    await hold(client, session)
    answer = await client.post(
        f"/v1/sessions/{session}/run", json={"if_busy": "enqueue", "wait_seconds": 0.3}
    )
    expect_error(answer, 409, "session_busy", None)
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert ("failed", "queue_timeout") in [(r["status"], r["error_type"]) for r in runs]


async def test_a_queued_run_of_a_dead_process_loses_its_place(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(0.3, Reply("first answer")), Reply("after"))
    await hold(client, session)
    queued = await client.post(
        f"/v1/sessions/{session}/run", json={"background": True, "if_busy": "enqueue"}
    )
    run = uuid.UUID(queued.json()["uuid"])
    app.state.background_runs.cancel(run)  # its waiting task ends...
    database: Database = app.state.database
    async with database.transaction() as db:  # ...and is as if its process died
        await RunRepository(db).vouch(run, utcnow() - timedelta(seconds=1))
    state = await finished(client, str(run), 2)
    assert state["status"] in ("failed", "queued")
    answer = await client.post(
        f"/v1/sessions/{session}/run", json={"if_busy": "wait", "wait_seconds": 10}
    )
    assert answer.status_code == 200 and answer.json()["content"] == "after", answer.text
    await recover_lapsed_runs(database)  # the sweep every server makes
    state = (await client.get(f"/v1/runs/{run}")).json()
    assert (state["status"], state["error_type"]) == ("failed", "interrupted")


async def test_interrupt_cancels_the_running_run_and_runs_at_once(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(10, Reply("too late")), Reply("the new answer"))
    first = await hold(client, session)
    deadline = time.monotonic() + 5
    while not llm_server.requests:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    answer = await client.post(
        f"/v1/sessions/{session}/run",
        json={"if_busy": "interrupt", "messages": [said("Actually, this")]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == "the new answer", answer.json()["error_log"]
    state = await finished(client, first, 3)
    assert (state["status"], state["error_type"]) == ("cancelled", "cancelled")
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["First question", "Actually, this", "the new answer"]


async def test_concurrent_interrupts_leave_one_reply_and_a_free_session(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    # The held run's reply takes long enough that the interrupts always come first (its
    # call is closed at once by them); the others answer quickly.
    llm_server.enqueue(Delay(10, Reply("reply 0")))
    llm_server.enqueue(*[Delay(0.3, Reply(f"reply {i}")) for i in range(1, 5)])
    await hold(client, session)
    url = f"/v1/sessions/{session}/run"
    answers = await asyncio.gather(
        *[
            client.post(url, json={"if_busy": "interrupt", "messages": [said(f"now {i}")]})
            for i in range(3)
        ]
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    kinds = sorted(a.json()["error_type"] or "succeeded" for a in answers)
    assert kinds == ["cancelled", "cancelled", "succeeded"], kinds
    replies = [m for m in await stored_messages(client, session) if m["role"] == "assistant"]
    assert len(replies) == 1
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [r["status"] for r in runs].count("succeeded") == 1
    assert not [r for r in runs if r["status"] in ("queued", "running")]
    free = await client.post(url, json={})
    assert free.status_code == 200, free.text


async def called(llm_server: ScriptedLLMServer, count: int, within: float = 5) -> None:
    """Until the upstream has had ``count`` calls (the latest run's model call has begun)."""
    deadline = time.monotonic() + within
    while len(llm_server.requests) < count:
        assert time.monotonic() < deadline, f"{len(llm_server.requests)} call(s) came"
        await asyncio.sleep(0.02)


async def test_interrupts_one_after_another_store_the_last_reply_and_every_message(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """Each interrupt comes once the run before it is calling the model: each cancels that
    one (no reply stored for it, its own message kept), and the last one's reply is the
    session's only reply."""
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(10, Reply("held reply")))
    llm_server.enqueue(*[Delay(1, Reply(f"reply {i}")) for i in range(2)], Reply("reply 2"))
    held = await hold(client, session)
    await called(llm_server, 1)
    url = f"/v1/sessions/{session}/run"
    interrupting = []
    for i in range(2):
        body = {"if_busy": "interrupt", "messages": [said(f"now {i}")]}
        interrupting.append(asyncio.create_task(client.post(url, json=body)))
        await called(llm_server, i + 2)
    last = await client.post(url, json={"if_busy": "interrupt", "messages": [said("now 2")]})
    assert last.status_code == 200, last.text
    assert last.json()["content"] == "reply 2", last.json()["error_log"]

    interrupted = [answer.json() for answer in await asyncio.gather(*interrupting)]
    assert [(a["error"], a["error_type"]) for a in interrupted] == [(True, "cancelled")] * 2
    cancelled = [held] + [a["detail"]["run_uuid"] for a in interrupted]
    for run in cancelled:
        state = await finished(client, run, 3)
        assert (state["status"], state["error_type"], state["message_uuid"]) == (
            "cancelled",
            "cancelled",
            None,
        ), state
    stored = [(m["role"], m["content"]) for m in await stored_messages(client, session)]
    assert stored == [
        ("user", "First question"),
        ("user", "now 0"),
        ("user", "now 1"),
        ("user", "now 2"),
        ("assistant", "reply 2"),
    ]
    stored_reply = (await client.get(f"/v1/runs/{last.json()['detail']['run_uuid']}")).json()
    assert stored_reply["status"] == "succeeded"
    assert stored_reply["message_uuid"] == last.json()["detail"]["message_uuid"]
    # Each call saw its own message last; the last one saw the interrupted ones' too.
    assert [r["messages"][-1]["content"] for r in llm_server.requests] == [
        "First question",
        "now 0",
        "now 1",
        "now 2",
    ]
    user_turns = [m["content"] for m in llm_server.requests[-1]["messages"] if m["role"] == "user"]
    assert user_turns == ["First question", "now 0", "now 1", "now 2"]
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert sorted(r["status"] for r in runs) == ["cancelled"] * 3 + ["succeeded"]
