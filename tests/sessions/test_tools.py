"""Session tools: fork at a message, delete with everything, message pages both ways, and
retention (``chatmodel gc``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, text, update

from chatmodel_service import cli as server_cli
from chatmodel_service.db import Database
from chatmodel_service.models import ChatRun, ChatSession, SessionMessage
from chatmodel_service.models.base import utcnow
from chatmodel_service.sessions.gc import collect_garbage
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.databases import session_row_id
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer

# -- helpers -------------------------------------------------------------------------------


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database


async def rows_of(app: FastAPI, session: str) -> tuple[int, int, int]:
    """(sessions, messages, runs) stored under this session's uuid; once it is gone,
    (0, messages and runs left without a session)."""
    async with database_of(app).transaction(write=False) as db:
        sessions = await db.scalar(
            select(func.count())
            .select_from(ChatSession)
            .where(ChatSession.uuid == uuid.UUID(session))
        )
        if sessions:
            session_id = await session_row_id(db, session)
            messages = await db.scalar(
                select(func.count()).where(SessionMessage.session_id == session_id)
            )
            runs = await db.scalar(select(func.count()).where(ChatRun.session_id == session_id))
        else:  # gone: so must its messages and runs be, counted as those of no session
            rows = select(ChatSession.id)
            messages = await db.scalar(
                select(func.count()).where(SessionMessage.session_id.not_in(rows))
            )
            runs = await db.scalar(
                select(func.count()).where(
                    ChatRun.session_id.is_not(None), ChatRun.session_id.not_in(rows)
                )
            )
    return int(sessions or 0), int(messages or 0), int(runs or 0)


async def hold_with_a_run(app: FastAPI, session: str) -> None:
    """Give the session to a run in progress: a lease that lapses only in a minute."""
    async with database_of(app).transaction() as db:
        await db.execute(
            update(ChatSession)
            .where(ChatSession.uuid == uuid.UUID(session))
            .values(lease_run_id=uuid.uuid4(), lease_expires_at=utcnow() + timedelta(minutes=1))
        )


async def backdate(app: FastAPI, session: str, days: float) -> None:
    """Make the session and its messages look ``days`` old."""
    then = utcnow() - timedelta(days=days)
    async with database_of(app).transaction() as db:
        session_id = await session_row_id(db, session)
        await db.execute(
            update(ChatSession).where(ChatSession.id == session_id).values(created_at=then)
        )
        await db.execute(
            update(SessionMessage)
            .where(SessionMessage.session_id == session_id)
            .values(created_at=then)
        )


async def fork(client: httpx.AsyncClient, session: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/sessions/{session}/fork", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def without(message: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in keys}


async def conversation(client: httpx.AsyncClient) -> str:
    """A session (variables, metadata) whose history has runs, a regenerated (superseded)
    reply, a function call and its result, and message metadata: seqs 1..7."""
    await make_chat_model(
        client, "bot", system_prompt="You help {{user}}.", variables=["user"], publish=True
    )
    session = await make_session(
        client, "bot", variables={"user": "Ada"}, metadata={"user_id": "ada"}
    )
    await add_messages(client, session, {"role": "user", "content": "one", "metadata": {"n": 1}})
    await run(client, session)
    await run(client, session, regenerate=True)
    await add_messages(
        client,
        session,
        {"role": "user", "content": "Weather in Boston?"},
        {"role": "assistant", "function_call": {"name": "get_weather", "arguments": "{}"}},
        {"role": "function", "content": "13 degrees"},
    )
    await add_messages(client, session, {"role": "user", "content": "thanks"})
    return session


# -- fork ----------------------------------------------------------------------------------


async def test_fork_at_a_message_copies_that_prefix_into_a_new_session(
    client: httpx.AsyncClient,
) -> None:
    session = await conversation(client)
    original = (await client.get(f"/v1/sessions/{session}")).json()
    history = await stored_messages(client, session)
    assert [m["superseded"] for m in history] == [False, True, False, False, False, False, False]
    result = next(m for m in history if m["role"] == "function")

    forked = await fork(client, session, at_message_uuid=result["uuid"])

    assert forked["uuid"] != session
    assert (forked["parent_session_uuid"], forked["parent_seq"]) == (session, result["seq"])
    same = ("chat_model", "version", "version_uuid", "model", "variables", "metadata")
    assert {k: forked[k] for k in same} == {k: original[k] for k in same}
    assert (await client.get(f"/v1/sessions/{forked['uuid']}")).json() == forked
    copies = await stored_messages(client, forked["uuid"])
    prefix = history[: result["seq"]]
    assert [m["seq"] for m in copies] == list(range(1, result["seq"] + 1))
    assert [without(m, "uuid", "run_uuid") for m in copies] == [
        without(m, "uuid", "run_uuid") for m in prefix
    ]
    assert not {m["uuid"] for m in copies} & {m["uuid"] for m in history}
    assert [m["run_uuid"] for m in copies] == [None] * len(copies)
    assert [m["run_uuid"] is not None for m in prefix[:3]] == [False, True, True]
    # The original is untouched, and the runs stayed with it.
    assert await stored_messages(client, session) == history
    assert len((await client.get(f"/v1/sessions/{session}/runs")).json()["data"]) == 2
    assert (await client.get(f"/v1/sessions/{forked['uuid']}/runs")).json()["data"] == []
    # The fork goes on by itself: its next message follows the copied ones.
    [added] = await add_messages(client, forked["uuid"], {"role": "user", "content": "more"})
    assert added["seq"] == result["seq"] + 1
    assert (await run(client, forked["uuid"]))["content"] == "more"
    assert len(await stored_messages(client, session)) == len(history)
    # at_seq names the same point.
    by_seq = await fork(client, session, at_seq=result["seq"])
    assert [without(m, "uuid") for m in await stored_messages(client, by_seq["uuid"])] == [
        without(m, "uuid") for m in copies
    ]


async def test_fork_copies_the_whole_history_by_default_and_once_per_uuid(
    client: httpx.AsyncClient,
) -> None:
    session = await conversation(client)
    history = await stored_messages(client, session)
    chosen = str(uuid.uuid4())

    forked = await fork(client, session, session_uuid=chosen, metadata={"branch": "b"})
    again = await client.post(
        f"/v1/sessions/{session}/fork",
        json={"session_uuid": chosen, "metadata": {"branch": "b"}},
    )
    elsewhere = await client.post(
        f"/v1/sessions/{session}/fork", json={"session_uuid": chosen, "at_seq": 2}
    )

    assert (forked["uuid"], forked["parent_seq"], forked["metadata"]) == (
        chosen,
        len(history),
        {"branch": "b"},
    )
    assert (again.status_code, again.json()) == (200, forked)
    expect_error(elsewhere, 409, "conflict", "session_uuid")
    copies = await stored_messages(client, chosen)
    assert [m["content"] for m in copies] == [m["content"] for m in history]
    # A session with no messages yet forks into an empty session.
    empty = await make_session(client, "bot", variables={"user": "Bo"})
    forked_empty = await fork(client, empty)
    assert (forked_empty["parent_seq"], forked_empty["variables"]) == (0, {"user": "Bo"})
    assert await stored_messages(client, forked_empty["uuid"]) == []


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"at_message_uuid": "unknown"}, 422, "invalid_input", "at_message_uuid"),
        ({"at_message_uuid": "other session"}, 422, "invalid_input", "at_message_uuid"),
        ({"at_seq": 3}, 422, "invalid_input", "at_seq"),
        ({"at_seq": 0}, 422, "validation_error", "at_seq"),
        ({"at_seq": 1, "at_message_uuid": "own"}, 422, "validation_error", "at_seq"),
        ({"session_uuid": "taken"}, 409, "conflict", "session_uuid"),
        ({"fork_at": 1}, 422, "validation_error", "fork_at"),
    ],
)
async def test_fork_points_that_name_no_message_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    other = await make_session(client, "bot")
    [own, _] = await add_messages(
        client, session, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}
    )
    [foreign] = await add_messages(client, other, {"role": "user", "content": "c"})
    stand_ins = {
        "unknown": str(uuid.uuid4()),
        "other session": foreign["uuid"],
        "own": own["uuid"],
        "taken": other,
    }
    body = {k: stand_ins.get(v, v) if isinstance(v, str) else v for k, v in body.items()}

    response = await client.post(f"/v1/sessions/{session}/fork", json=body)

    expect_error(response, status, error, field)
    listed = (await client.get("/v1/sessions", params={"chat_model": "bot"})).json()["data"]
    assert {s["uuid"] for s in listed} == {session, other}  # nothing was created
    missing = await client.post(f"/v1/sessions/{uuid.uuid4()}/fork", json={})
    expect_error(missing, 404, "session_not_found", "session_uuid")


async def test_a_session_a_run_holds_can_be_forked(app: FastAPI, client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    await hold_with_a_run(app, session)
    expect_error(
        await client.post(f"/v1/sessions/{session}/run", json={}), 409, "session_busy", None
    )

    forked = await fork(client, session)

    assert [m["content"] for m in await stored_messages(client, forked["uuid"])] == ["hi"]
    assert (await run(client, forked["uuid"]))["content"] == "hi"  # the fork is free


# -- delete --------------------------------------------------------------------------------


async def test_delete_removes_the_session_its_messages_and_runs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    session = await conversation(client)
    kept = await make_session(client, "bot", variables={"user": "Bo"})
    await add_messages(client, kept, {"role": "user", "content": "stay"})
    await run(client, kept)
    assert await rows_of(app, session) == (1, 7, 2)

    deleted = await client.delete(f"/v1/sessions/{session}")

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert await rows_of(app, session) == (0, 0, 0)
    for suffix in ("", "/messages", "/runs"):
        expect_error(
            await client.get(f"/v1/sessions/{session}{suffix}"),
            404,
            "session_not_found",
            "session_uuid",
        )
    expect_error(
        await client.delete(f"/v1/sessions/{session}"), 404, "session_not_found", "session_uuid"
    )
    assert await rows_of(app, kept) == (1, 2, 1)
    assert len(await stored_messages(client, kept)) == 2


async def test_a_session_a_run_holds_is_deleted_only_with_force(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "hi"})
    await hold_with_a_run(app, session)

    busy = await client.delete(f"/v1/sessions/{session}")
    forced = await client.delete(f"/v1/sessions/{session}", params={"force": "true"})

    expect_error(busy, 409, "session_busy", None)
    assert forced.status_code == 204, forced.text
    assert await rows_of(app, session) == (0, 0, 0)


async def test_a_run_cut_short_by_a_forced_delete_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Slow?"})
    llm_server.enqueue(Delay(0.5, Reply("Too late.")))
    running = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json={}))
    for _ in range(500):  # until the model has been called
        if llm_server.requests:
            break
        await asyncio.sleep(0.01)

    forced = await client.delete(f"/v1/sessions/{session}", params={"force": True})
    answered = await running

    assert forced.status_code == 204, forced.text
    assert answered.status_code == 200, answered.text
    assert (answered.json()["error"], answered.json()["error_type"]) == (True, "interrupted")
    assert await rows_of(app, session) == (0, 0, 0)


async def test_forks_outlive_the_session_they_came_from(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    session = await conversation(client)
    forked = await fork(client, session, at_seq=3)
    copies = await stored_messages(client, forked["uuid"])

    assert (await client.delete(f"/v1/sessions/{session}")).status_code == 204

    assert (await client.get(f"/v1/sessions/{forked['uuid']}")).json() == forked
    assert forked["parent_session_uuid"] == session  # pointing nowhere now
    assert await stored_messages(client, forked["uuid"]) == copies
    grandchild = await fork(client, forked["uuid"], at_seq=1)
    assert grandchild["parent_session_uuid"] == forked["uuid"]
    assert (await client.delete(f"/v1/sessions/{forked['uuid']}")).status_code == 204
    assert len(await stored_messages(client, grandchild["uuid"])) == 1


# -- message pages in both directions ----------------------------------------------------------


async def read_page(client: httpx.AsyncClient, session: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/sessions/{session}/messages", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    page["seqs"] = [m["seq"] for m in page.pop("data")]
    return page


@pytest.fixture
async def long_session(client: httpx.AsyncClient) -> str:
    """A session of 300 messages, seq 1..300."""
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, *({"role": "user", "content": f"m{i}"} for i in range(300)))
    return session


async def test_pages_read_backwards_from_the_newest_and_forwards_from_the_oldest(
    client: httpx.AsyncClient, long_session: str
) -> None:
    backwards, cursor = [], None
    while True:
        params = {"order": "desc", "limit": 70} | ({"before": cursor} if cursor else {})
        page = await read_page(client, long_session, **params)
        assert page["seqs"] == sorted(page["seqs"])  # oldest first within a page
        assert page["next_after"] is None
        backwards.append(page["seqs"])
        cursor = page["next_before"]
        if cursor is None:
            assert page["has_more"] is False
            break
        assert page["has_more"] is True and cursor == page["seqs"][0]
    assert [(p[0], p[-1]) for p in backwards] == [
        (231, 300),
        (161, 230),
        (91, 160),
        (21, 90),
        (1, 20),
    ]

    forwards, after = [], 0
    while after is not None:
        page = await read_page(client, long_session, after=after, limit=128)
        assert page["next_before"] is None
        forwards.append(page["seqs"])
        after = page["next_after"]
    assert [s for p in forwards for s in p] == list(range(1, 301))
    assert [len(p) for p in forwards] == [128, 128, 44]


async def test_page_bounds_and_defaults(client: httpx.AsyncClient, long_session: str) -> None:
    # Without parameters: the first 100, as before; before alone reads backwards.
    first = await read_page(client, long_session)
    assert (first["seqs"][0], first["seqs"][-1], first["has_more"]) == (1, 100, True)
    assert (first["next_after"], first["next_before"]) == (100, None)
    before = await read_page(client, long_session, before=200, limit=30)
    assert (before["seqs"], before["next_before"]) == (list(range(170, 200)), 170)
    # Both bounds: a range, read from the end order names.
    newest = await read_page(client, long_session, after=100, before=200, order="desc", limit=30)
    oldest = await read_page(client, long_session, after=100, before=200, limit=30)
    assert (newest["seqs"], newest["next_before"]) == (list(range(170, 200)), 170)
    assert (oldest["seqs"], oldest["next_after"]) == (list(range(101, 131)), 130)
    last = await read_page(client, long_session, after=100, before=200, order="desc", limit=99)
    assert (last["seqs"], last["has_more"], last["next_before"]) == (
        list(range(101, 200)),
        False,
        None,
    )
    assert (await read_page(client, long_session, before=1))["seqs"] == []
    tail = await read_page(client, long_session, order="desc", after=295)
    assert (tail["seqs"], tail["has_more"]) == ([296, 297, 298, 299, 300], False)


@pytest.mark.parametrize(
    ("params", "error", "field"),
    [
        ({"after": 10, "before": 10}, "invalid_input", "before"),
        ({"after": 10, "before": 3, "order": "desc"}, "invalid_input", "before"),
        ({"before": 0}, "validation_error", "before"),
        ({"before": 2**31}, "validation_error", "before"),
        ({"order": "newest"}, "validation_error", "order"),
    ],
)
async def test_bad_page_bounds_name_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], error: str, field: str
) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")

    response = await client.get(f"/v1/sessions/{session}/messages", params=params)

    expect_error(response, 422, error, field)


async def test_a_page_is_one_range_read_of_the_session_seq_index(
    app: FastAPI, client: httpx.AsyncClient, long_session: str
) -> None:
    """No count, no sort, no scan: the database walks the (session_id, seq) index."""
    engine = database_of(app).engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM session_message" in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await read_page(client, long_session, before=250, limit=20)
        await read_page(client, long_session, after=50, limit=20)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)

    assert len(statements) == 2
    for statement, parameters in statements:
        assert "count(" not in statement.lower() and "LIMIT" in statement
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                plan = await connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters
                )
                details = " ".join(str(row[-1]) for row in plan)
                # The unique (session_id, seq) constraint's index: SQLite's autoindex.
                assert "USING INDEX sqlite_autoindex_session_message" in details, details
                assert "(session_id=? AND seq" in details, details
                assert "TEMP B-TREE" not in details, details
            else:
                await connection.execute(text("SET enable_seqscan = off"))
                plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                details = " ".join(str(row[0]) for row in plan)
                assert "uq_session_message_session_id_seq" in details, details
                assert "Sort" not in details, details


# -- retention -------------------------------------------------------------------------------


async def test_retention_days_is_set_on_create_and_changed_with_patch(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/chat-models", json={"name": "brief", "retention_days": 30})
    assert created.status_code == 201, created.text
    assert created.json()["retention_days"] == 30
    await make_chat_model(client, "forever")
    assert (await client.get("/v1/chat-models/forever")).json()["retention_days"] is None

    longer = await client.patch("/v1/chat-models/brief", json={"retention_days": 90})
    described = await client.patch("/v1/chat-models/brief", json={"description": "short chats"})
    cleared = await client.patch("/v1/chat-models/brief", json={"retention_days": None})

    assert longer.json()["retention_days"] == 90
    assert (described.json()["retention_days"], described.json()["description"]) == (
        90,
        "short chats",
    )
    assert cleared.json()["retention_days"] is None
    assert (await client.get("/v1/chat-models/brief")).json() == cleared.json()
    assert cleared.json()["updated_at"] > created.json()["updated_at"]
    for body, field in [
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": 36_501}, "retention_days"),
        ({"name": "renamed"}, "name"),
        ({"description": None}, "description"),
    ]:
        response = await client.patch("/v1/chat-models/brief", json=body)
        expect_error(response, 422, "validation_error", field)
    bad_create = await client.post("/v1/chat-models", json={"name": "x", "retention_days": -1})
    expect_error(bad_create, 422, "validation_error", "retention_days")
    missing = await client.patch("/v1/chat-models/ghost", json={"retention_days": 1})
    expect_error(missing, 404, "chat_model_not_found", "chat_model")


async def retention_world(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """Chat model "brief" (30 days) with sessions of every kind, and "forever" (none)."""
    await make_chat_model(client, "brief")
    await client.patch("/v1/chat-models/brief", json={"retention_days": 30})
    await make_chat_model(client, "forever")
    world = {
        "idle": await make_session(client, "brief"),  # messages and runs, 40 days old
        "empty": await make_session(client, "brief"),  # no messages, created 40 days ago
        "active": await make_session(client, "brief"),  # old, but a message today
        "recent": await make_session(client, "brief"),  # new
        "busy": await make_session(client, "brief"),  # old, but a run holds it
        "forever": await make_session(client, "forever"),  # old, no retention
    }
    for name in ("idle", "active", "busy", "forever"):
        await add_messages(client, world[name], {"role": "user", "content": name})
        await run(client, world[name])
    for name in ("idle", "empty", "active", "busy", "forever"):
        await backdate(app, world[name], 40)
    world["fork"] = (await fork(client, world["idle"]))["uuid"]  # new, holding old messages
    await add_messages(client, world["active"], {"role": "user", "content": "back again"})
    await hold_with_a_run(app, world["busy"])
    return world


async def test_gc_deletes_sessions_idle_past_retention_and_dry_run_only_counts(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await retention_world(app, client)

    planned = await collect_garbage(database_of(app), dry_run=True, batch_size=2)
    [sweep] = planned
    assert (sweep.project, sweep.chat_model, sweep.retention_days) == ("default", "brief", 30)
    assert (sweep.deleted.sessions, sweep.deleted.messages, sweep.deleted.runs) == (2, 2, 1)
    assert sweep.busy == 1
    assert sweep.describe(dry_run=True) == (
        "default/brief (retention 30 days): would delete 2 sessions (2 messages, 1 run); "
        "skipped 1 session a run holds"
    )
    for session in world.values():
        assert (await client.get(f"/v1/sessions/{session}")).status_code == 200

    done = await collect_garbage(database_of(app), batch_size=2)

    assert [s.deleted for s in done] == [sweep.deleted]
    gone = {name for name, s in world.items() if (await rows_of(app, s))[0] == 0}
    assert gone == {"idle", "empty"}
    assert await rows_of(app, world["idle"]) == (0, 0, 0)
    assert [m["content"] for m in await stored_messages(client, world["fork"])] == ["idle", "idle"]
    [again] = await collect_garbage(database_of(app))
    assert (again.deleted.sessions, again.busy) == (0, 1)
    await client.patch("/v1/chat-models/brief", json={"retention_days": None})
    assert await collect_garbage(database_of(app)) == []


async def test_gc_from_the_command_line(
    app: FastAPI,
    client: httpx.AsyncClient,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = await retention_world(app, client)

    dry = await asyncio.to_thread(gc_cli, database_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "default/brief (retention 30 days): would delete 2 sessions (2 messages, 1 run); "
        "skipped 1 session a run holds"
    ]
    assert (await rows_of(app, world["idle"]))[0] == 1

    done = await asyncio.to_thread(gc_cli, database_url, "--batch-size", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "default/brief (retention 30 days): deleted 2 sessions (2 messages, 1 run); "
        "skipped 1 session a run holds"
    ]
    assert await rows_of(app, world["idle"]) == (0, 0, 0)
    assert (await client.get(f"/v1/sessions/{world['recent']}")).status_code == 200

    with pytest.raises(SystemExit) as refused:
        server_cli.main(["gc", "--batch-size", "0"])
    assert refused.value.code == 2
    assert "--batch-size: must be 1 to 10000" in capsys.readouterr().err


def gc_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    return subprocess.run(
        [sys.executable, "-m", "chatmodel._cli", "gc", *args],
        env=env | {"CHATMODEL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
