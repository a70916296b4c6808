"""One run at a time per session, idempotent runs and messages, and lapsed leases.

Every test here runs on SQLite and on PostgreSQL (the ``client`` fixture's database), with
requests really in flight at the same time against the real app.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.models import DEFAULT_PROJECT_ID
from chatmodel_service.runs.lease import recover_lapsed_runs
from chatmodel_service.runs.schemas import RunRequest
from chatmodel_service.runs.service import start_run
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp

REMOTE_MODEL = "openai/scripted-model"


async def remote_session(client: httpx.AsyncClient, server: ScriptedLLMServer) -> str:
    await make_chat_model(
        client, "remote", model=REMOTE_MODEL, api_base=server.base_url, system_prompt="Be brief."
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Hello?"})
    return session


async def until(condition: Any, within: float = 10.0) -> None:
    """Poll ``condition()`` until true (the scripted server has received a request...)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def list_runs(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database


# -- one run at a time -------------------------------------------------------------------


async def test_second_run_on_a_busy_session_gets_409_session_busy(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("first")), Reply("second"))
    first = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    await until(lambda: len(llm_server.requests) == 1)

    busy = await client.post(f"/v1/sessions/{session}/run", json={})
    expect_error(busy, 409, "session_busy", None)
    assert int(busy.headers["Retry-After"]) >= 1
    busy_stream = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})
    expect_error(busy_stream, 409, "session_busy", None)

    assert (await first).json()["content"] == "first"
    assert len(llm_server.requests) == 1  # the refused runs never reached the model
    second = await run(client, session)
    assert second["content"] == "second"
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["Hello?", "first", "second"]
    assert [r["status"] for r in await list_runs(client, session)] == ["succeeded"] * 2


async def test_if_busy_wait_queues_behind_the_running_run(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Delay(0.4, Reply("first")), Reply("second"))
    first = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    await until(lambda: len(llm_server.requests) == 1)
    waited = await client.post(
        f"/v1/sessions/{session}/run",
        json={
            "if_busy": "wait",
            "wait_seconds": 10,
            "messages": [{"role": "user", "content": "And then?"}],
        },
    )
    assert waited.status_code == 200, waited.text
    assert waited.json()["content"] == "second"
    assert (await first).json()["content"] == "first"
    # The waiting run's message was stored only once it held the session: after "first".
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["Hello?", "first", "And then?", "second"]
    # And the second call saw the first reply in its prompt.
    assert llm_server.requests[1]["messages"][-2]["content"] == "first"


async def test_waiting_gives_up_after_wait_seconds_and_stores_nothing(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Delay(1.0, Reply("slow")))
    first = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    await until(lambda: len(llm_server.requests) == 1)
    gave_up = await client.post(
        f"/v1/sessions/{session}/run",
        json={
            "if_busy": "wait",
            "wait_seconds": 0.2,
            "messages": [{"role": "user", "content": "never stored"}],
        },
    )
    expect_error(gave_up, 409, "session_busy", None)
    await first
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["Hello?", "slow"]


async def test_wait_longer_than_the_server_allows_is_a_422(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, settings: Settings
) -> None:
    session = await remote_session(client, llm_server)
    response = await client.post(
        f"/v1/sessions/{session}/run",
        json={"if_busy": "wait", "wait_seconds": settings.max_run_wait_seconds + 1},
    )
    expect_error(response, 422, "invalid_input", "wait_seconds")
    response = await client.post(f"/v1/sessions/{session}/run", json={"if_busy": "later"})
    assert response.status_code == 422
    assert response.json()["field"] == "if_busy"


async def test_a_stream_holds_the_session_until_it_ends(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    """Under real uvicorn (the in-process transport would buffer the whole stream)."""
    async with httpx.AsyncClient(base_url=live_app.base_url, timeout=10) as client:
        session = await remote_session(client, llm_server)
        llm_server.enqueue(SlowStream(Reply("one two three four"), chunk_delay=0.1), Reply("after"))
        url = f"/v1/sessions/{session}/run"
        async with client.stream("POST", url, json={"stream": True}) as stream:
            assert stream.status_code == 200
            chunks = stream.aiter_text()
            first = await anext(chunks)
            assert first.startswith("id: ") and "\ndata: " in first
            busy = await client.post(url, json={})
            expect_error(busy, 409, "session_busy", None)
            body = first + "".join([chunk async for chunk in chunks])
        assert '"done":true' in body
        assert (await run(client, session))["content"] == "after"


async def test_concurrent_runs_on_one_session_each_run_alone(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """Ten simultaneous runs that all wait: each gets the session in turn, each reply is
    stored once, and each call saw every reply before it."""
    session = await remote_session(client, llm_server)
    llm_server.enqueue(*[Delay(0.02, Reply(f"reply {i}")) for i in range(10)])
    responses = await asyncio.gather(
        *[
            client.post(f"/v1/sessions/{session}/run", json={"if_busy": "wait", "wait_seconds": 30})
            for _ in range(10)
        ]
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    failed = [(r.json()["error_type"], r.json()["error_log"]) for r in responses]
    assert not [f for f in failed if f[0] is not None]  # each run answered
    replies = sorted(r.json()["content"] for r in responses)
    assert replies == sorted(f"reply {i}" for i in range(10))
    stored = await stored_messages(client, session)
    assert [m["seq"] for m in stored] == list(range(1, 12))
    assert [m["content"] for m in stored[1:]] == [f"reply {i}" for i in range(10)]
    # The n-th call's prompt held all n-1 earlier replies: nothing ran side by side.
    for n, request in enumerate(llm_server.requests):
        assert len(request["messages"]) == 2 + n  # system + "Hello?" + earlier replies


# -- idempotency --------------------------------------------------------------------------


async def test_idempotency_key_replays_the_stored_result_without_calling_again(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Reply("only once"))
    headers = {"Idempotency-Key": "retry-me-1"}
    url = f"/v1/sessions/{session}/run"
    first = await client.post(url, json={"params": {"temperature": 0}}, headers=headers)
    again = await client.post(url, json={"params": {"temperature": 0}}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(llm_server.requests) == 1
    # A stream asked with the same key gets the stored result as its one event.
    async with client.stream(
        "POST", url, json={"stream": True, "params": {"temperature": 0}}, headers=headers
    ) as replay:
        text = "".join([chunk async for chunk in replay.aiter_text()])
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert '"content":"only once"' in text and text.endswith("data: [DONE]\n\n")
    assert len(llm_server.requests) == 1
    contents = [m["content"] for m in await stored_messages(client, session)]
    assert contents == ["Hello?", "only once"]
    runs = await list_runs(client, session)
    assert len(runs) == 1 and runs[0]["idempotency_key"] == "retry-me-1"


async def test_idempotency_key_with_a_different_body_is_a_422(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Reply("first"))
    url = f"/v1/sessions/{session}/run"
    headers = {"Idempotency-Key": "key-2"}
    assert (await client.post(url, json={}, headers=headers)).status_code == 200
    other = await client.post(url, json={"params": {"temperature": 1}}, headers=headers)
    expect_error(other, 422, "idempotency_key_reused", "Idempotency-Key")
    assert len(llm_server.requests) == 1


async def test_idempotency_key_while_the_first_attempt_runs_is_a_409(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Delay(0.5, Reply("first")))
    url = f"/v1/sessions/{session}/run"
    headers = {"Idempotency-Key": "key-3"}
    first = asyncio.create_task(client.post(url, json={}, headers=headers))
    await until(lambda: len(llm_server.requests) == 1)
    expect_error(await client.post(url, json={}, headers=headers), 409, "run_in_progress", None)
    # With if_busy=wait the retry waits for the first attempt and gets its result.
    waited = await client.post(url, json={"if_busy": "wait", "wait_seconds": 10}, headers=headers)
    assert waited.status_code == 200
    assert waited.json() == (await first).json()
    assert len(llm_server.requests) == 1


async def test_bad_idempotency_keys_are_422_naming_the_header(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    for bad in ["", "x" * 201, "has space"]:
        response = await client.post(
            f"/v1/sessions/{session}/run", json={}, headers={"Idempotency-Key": bad}
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["field"] == "Idempotency-Key"


async def test_concurrent_reposts_of_one_message_store_it_once(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    message = {"role": "user", "content": "once", "uuid": str(uuid.uuid4())}
    responses = await asyncio.gather(
        *[
            client.post(f"/v1/sessions/{session}/messages", json={"messages": [message]})
            for _ in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert {r.json()["data"][0]["uuid"] for r in responses} == {message["uuid"]}
    assert [m["content"] for m in await stored_messages(client, session)] == ["once"]


async def test_concurrent_adds_to_one_session_number_without_gaps(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    responses = await asyncio.gather(
        *[
            client.post(
                f"/v1/sessions/{session}/messages",
                json={"messages": [{"role": "user", "content": f"{i}-{j}"} for j in range(3)]},
            )
            for i in range(12)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    stored = await stored_messages(client, session)
    assert [m["seq"] for m in stored] == list(range(1, 37))
    # Each request's messages are consecutive (all or none, in order).
    for response in responses:
        seqs = [m["seq"] for m in response.json()["data"]]
        assert seqs == list(range(seqs[0], seqs[0] + 3))


async def test_concurrent_first_creates_of_one_session_uuid_agree(
    client: httpx.AsyncClient,
) -> None:
    """Every round: one create answers 201, the others 200 with the same session (a
    create that looked for the uuid while another was committing it must not answer
    409 'taken'). Several rounds, as the race shows only now and then."""
    await make_chat_model(client)
    for _ in range(5):
        session_uuid = str(uuid.uuid4())
        body = {"chat_model": "assistant", "session_uuid": session_uuid}
        responses = await asyncio.gather(
            *[client.post("/v1/sessions", json=body) for _ in range(8)]
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * 7 + [201], [r.text for r in responses]
        assert {r.json()["uuid"] for r in responses} == {session_uuid}


# -- leases of runs whose server died ---------------------------------------------------------


async def _orphan_run(
    app: FastAPI, session: str, idempotency_key: str | None = None, lease: float | None = None
) -> str:
    """A run claimed as a dead server would leave it: ``running``, lease held (``lease``
    seconds, default the app's), never finished (what SIGKILL mid-call leaves behind)."""
    settings = app.state.settings
    if lease is not None:
        settings = settings.model_copy(update={"run_lease_seconds": lease})
    started = await start_run(
        database_of(app),
        app.state.gateway,
        settings,
        DEFAULT_PROJECT_ID,
        uuid.UUID(session),
        RunRequest(),
        idempotency_key=idempotency_key,
    )
    return str(started.run_id)  # type: ignore[union-attr]


# The lease a dead server's run holds in the tests below: short, so it lapses quickly. Live
# runs get the app's lease (``run_lease_seconds``), long enough that a busy machine never
# misses a renewal, except in the one test that is about renewals.
ORPHAN_LEASE = 0.5


@pytest.fixture
def run_lease_seconds() -> float:
    return 10.0


@pytest.fixture
def settings(database_url: str, run_lease_seconds: float) -> Settings:
    return Settings(
        database_url=database_url,
        seed_demo=False,
        llm_timeout_seconds=5,
        run_lease_seconds=run_lease_seconds,
    )


async def test_a_lapsed_lease_is_taken_over_and_the_dead_run_marked_interrupted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    orphan = await _orphan_run(app, session, lease=ORPHAN_LEASE)
    busy = await client.post(f"/v1/sessions/{session}/run", json={})
    expect_error(busy, 409, "session_busy", None)
    await asyncio.sleep(0.6)  # the lease (0.5 s) lapses: nobody renews it
    result = await run(client, session)
    assert result["error"] is False
    runs = {r["uuid"]: r for r in await list_runs(client, session)}
    assert runs[orphan]["status"] == "failed"
    assert runs[orphan]["error_type"] == "interrupted"
    assert runs[orphan]["finished_at"] is not None
    assert runs[result["detail"]["run_uuid"]]["status"] == "succeeded"
    stored = await stored_messages(client, session)
    assert [m["seq"] for m in stored] == [1, 2]


async def test_start_up_recovers_runs_whose_lease_lapsed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    # A lease long enough to outlast a cold first run's prompt fitting (0.5 s did not
    # always), so "still within its lease" holds on a loaded machine too.
    orphan = await _orphan_run(app, session, lease=2.0)
    assert [r["status"] for r in await list_runs(client, session)] == ["running"]
    assert await recover_lapsed_runs(database_of(app)) == 0  # still within its lease
    await asyncio.sleep(2.1)
    assert await recover_lapsed_runs(database_of(app)) == 1
    (record,) = await list_runs(client, session)
    assert (record["uuid"], record["status"], record["error_type"]) == (
        orphan,
        "failed",
        "interrupted",
    )
    assert (await run(client, session))["error"] is False


@pytest.mark.parametrize("run_lease_seconds", [0.5])
async def test_a_live_run_renews_its_lease_past_the_lease_time(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """A call slower than the lease (0.5 s) keeps the session: the heartbeat renews it."""
    session = await remote_session(client, llm_server)
    llm_server.enqueue(Delay(1.5, Reply("slow but alive")))
    first = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    await until(lambda: len(llm_server.requests) == 1)
    await asyncio.sleep(1.0)
    expect_error(
        await client.post(f"/v1/sessions/{session}/run", json={}), 409, "session_busy", None
    )
    result = (await first).json()
    assert result["content"] == "slow but alive"
    assert [r["status"] for r in await list_runs(client, session)] == ["succeeded"]


async def test_a_keyed_retry_after_its_server_died_replays_interrupted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The Python client resends a run whose answer was lost with the same key: once the
    dead run's lease lapsed, that retry learns the run was interrupted (and which run it
    was) instead of a 409 forever, and the session is free again."""
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    orphan = await _orphan_run(app, session, idempotency_key="lost-answer", lease=ORPHAN_LEASE)
    url = f"/v1/sessions/{session}/run"
    headers = {"Idempotency-Key": "lost-answer"}
    # While the dead run's lease is live, nobody can tell it from a slow one.
    expect_error(await client.post(url, json={}, headers=headers), 409, "run_in_progress", None)

    # The client's retry waits, the lease (0.5 s) lapses, the retry gets the failure.
    retry = await client.post(url, json={"if_busy": "wait", "wait_seconds": 10}, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    replayed = retry.json()
    assert (replayed["error"], replayed["error_type"]) == (True, "interrupted")
    detail = replayed["detail"]
    assert (detail["run_uuid"], detail["session_uuid"]) == (orphan, session)
    assert (detail["name"], detail["version"], detail["message_uuid"]) == ("assistant", 1, None)
    runs = {r["uuid"]: r for r in await list_runs(client, session)}
    assert (runs[orphan]["status"], runs[orphan]["error_type"]) == ("failed", "interrupted")

    # The same key keeps replaying that failure; the session runs again at once.
    again = await client.post(url, json={}, headers=headers)
    assert again.status_code == 200 and again.json() == replayed
    fresh = await run(client, session)
    assert fresh["error"] is False and fresh["detail"]["run_uuid"] != orphan
    assert [m["seq"] for m in await stored_messages(client, session)] == [1, 2]


async def test_a_keyed_retry_of_a_run_recovered_at_start_up_names_the_run(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    orphan = await _orphan_run(app, session, idempotency_key="recovered", lease=ORPHAN_LEASE)
    await asyncio.sleep(0.6)
    assert await recover_lapsed_runs(database_of(app)) == 1

    retry = await client.post(
        f"/v1/sessions/{session}/run", json={}, headers={"Idempotency-Key": "recovered"}
    )
    assert retry.status_code == 200, retry.text
    replayed = retry.json()
    assert (replayed["error"], replayed["error_type"]) == (True, "interrupted")
    assert replayed["error_log"]
    assert replayed["detail"]["run_uuid"] == orphan
    assert replayed["detail"]["session_uuid"] == session
