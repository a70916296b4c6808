"""The event log itself, on SQLite and PostgreSQL: a run's events written in batches (one
transaction for every run of the process), read back by another process's log in order,
to the end, whichever way the batches fell; and an end that was never written is told
from the stored result."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from chatmodel_service.db import Database
from chatmodel_service.models import DEFAULT_PROJECT_ID
from chatmodel_service.runs.background import NATIVE_EVENTS
from chatmodel_service.runs.events import EventLog
from tests.factories import (
    add_messages,
    make_chat_model,
    make_remote_session,
    make_session,
    run,
    sse_events,
)
from tests.support.llm_server import Reply, ScriptedLLMServer, SlowStream

FRAMES = [f'data: {{"content":"piece {i}"}}\n\n' for i in range(7)]


async def a_run(client: httpx.AsyncClient) -> uuid.UUID:
    """A finished run (offline model): the log's rows need a run record."""
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    await add_messages(client, session, {"role": "user", "content": "Hello"})
    return uuid.UUID((await run(client, session))["detail"]["run_uuid"])


async def read_all(log: EventLog, run_id: uuid.UUID, after: int = -1) -> str:
    chunks = log.follow(run_id, DEFAULT_PROJECT_ID, after, "native")
    return "".join([chunk async for chunk in chunks])


async def test_batches_read_back_in_order_whichever_way_they_fell(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    database: Database = app.state.database
    run_id = await a_run(client)
    writer, reader = EventLog(database, [NATIVE_EVENTS]), EventLog(database, [NATIVE_EVENTS])
    events = writer.open(run_id)
    sent = [events.add(frame) for frame in FRAMES[:3]]
    await writer.write()  # a batch of three
    sent += [events.add(frame) for frame in FRAMES[3:]]
    await writer.write()  # four more, not yet the end
    events.end()
    await writer.write()  # the end, holding no event
    assert writer.live(run_id) is None  # all written: this process forgets it
    expected = "".join(sent) + "data: [DONE]\n\n"
    whole = await asyncio.wait_for(read_all(reader, run_id), 2)  # no wait for an end
    assert whole == expected
    assert [f"id: {run_id}:{i}\n" for i in range(7)] == [f[: f.index("\n") + 1] for f in sent]
    rest = await asyncio.wait_for(read_all(reader, run_id, after=4), 2)
    assert rest == "".join(sent[5:]) + "data: [DONE]\n\n"
    nothing_left = await asyncio.wait_for(read_all(reader, run_id, after=6), 2)
    assert nothing_left == "data: [DONE]\n\n"


async def test_a_reader_of_a_live_run_gets_each_event_once_as_it_comes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    database: Database = app.state.database
    run_id = await a_run(client)
    log = EventLog(database, [NATIVE_EVENTS])
    events = log.open(run_id)
    reading = asyncio.create_task(read_all(log, run_id))
    sent = []
    for frame in FRAMES:
        sent.append(events.add(frame))
        await asyncio.sleep(0.01)
    events.end()
    assert await asyncio.wait_for(reading, 2) == "".join(sent) + "data: [DONE]\n\n"


async def test_an_end_never_written_is_told_from_the_stored_result(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The run's process wrote some events and died before its end: the reader ends with
    the run's stored result (its stream_format is null here, as for a run that keeps no
    events, so without waiting)."""
    database: Database = app.state.database
    run_id = await a_run(client)
    assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "succeeded"
    dead = EventLog(database, [NATIVE_EVENTS])
    events = dead.open(run_id)
    sent = [events.add(frame) for frame in FRAMES[:2]]
    await dead.write()
    text = await asyncio.wait_for(read_all(EventLog(database, [NATIVE_EVENTS]), run_id), 2)
    assert text.startswith("".join(sent))
    end = text[len("".join(sent)) :]
    assert end.startswith(f"id: {run_id}:2\ndata: ") and '"done":true' in end
    assert end.endswith("data: [DONE]\n\n")


async def test_a_stream_of_many_pieces_is_written_in_a_few_batches(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """40 pieces 5 ms apart (about 0.2 s): the log writes every 100 ms, so a handful of
    INSERTs into run_event_batch, never one per event; read back, they are the stream."""
    database: Database = app.state.database
    session = await make_remote_session(
        client, llm_server.base_url, {"role": "user", "content": "Count."}
    )
    words = " ".join(f"w{i}" for i in range(40))
    llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.005))
    writes: list[str] = []

    def count(*args: Any) -> None:
        statement = " ".join(str(args[2]).split()).lower()
        if "run_event_batch" in statement and statement.startswith(("insert", "update")):
            writes.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        answer = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})
        assert answer.status_code == 200, answer.text
        run_id = uuid.UUID(answer.headers["X-Run-Id"])
        reader = EventLog(database, [NATIVE_EVENTS])  # not the run's process: the database
        stored = await asyncio.wait_for(read_all(reader, run_id), 5)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)

    events = sse_events(answer.text)
    assert "".join(e["content"] or "" for e in events[:-1]) == words
    assert events[-1]["done"] is True and events[-1]["message"]["content"] == words
    assert len(events) > 40
    assert stored == answer.text  # every event, in order, and the end
    assert 1 <= len(writes) <= len(events) // 4, (len(writes), len(events))
