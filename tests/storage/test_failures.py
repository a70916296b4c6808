"""A database that cannot store data (its disk full, its file or server read-only): every
write is a 503 ``storage_unavailable`` with ``Retry-After`` and stores nothing, reads go
on, ``/readyz`` is not ready until a write goes through again, a run whose outcome cannot
be stored frees its session, and ``chatmodel serve`` refuses to start in one line.

The faults are the databases' own: SQLite's ``PRAGMA max_page_count`` fails a write that
needs a new page exactly as a full disk does (``SQLITE_FULL``, "database or disk is
full") and ``PRAGMA query_only`` as a read-only file does (``SQLITE_READONLY``);
PostgreSQL's ``default_transaction_read_only`` refuses writes as a standby does (SQLSTATE
25006)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.migrate import upgrade
from tests.factories import (
    add_messages,
    make_chat_model,
    make_remote_session,
    make_session,
    sse_events,
    stored_messages,
)
from tests.support.databases import sqlite_url
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import free_port

FAULTS = {"sqlite": ("full", "read_only"), "postgresql": ("read_only",)}
CAUSES = {"full": "database or disk is full", "read_only": "read"}
QUESTION = {"role": "user", "content": "Tell me everything."}
BIG_REPLY = "x" * 200_000  # needs many new pages: refused by a full database


@asynccontextmanager
async def storage_fault(app: FastAPI, fault: str) -> AsyncIterator[None]:
    """While inside, the app's database cannot store data (see the module doc); its pooled
    connections are replaced on the way in and out, so every statement meets the fault."""
    engine = app.state.database.engine
    if engine.dialect.name == "sqlite":

        def refuse(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            if fault == "full":
                cursor.execute("PRAGMA page_count")
                row = cursor.fetchone()
                assert row is not None
                pages = row[0]
                cursor.execute(f"PRAGMA max_page_count = {pages}")
            else:
                cursor.execute("PRAGMA query_only = ON")
            cursor.close()

        event.listen(engine.sync_engine, "connect", refuse)
        await engine.dispose()
        try:
            yield
        finally:
            event.remove(engine.sync_engine, "connect", refuse)
            await engine.dispose()
        return
    assert fault == "read_only"
    name = make_url(str(engine.url)).database
    admin = create_async_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
        await engine.dispose()
        try:
            yield
        finally:
            async with admin.connect() as connection:
                await connection.execute(text("SET default_transaction_read_only = off"))
                await connection.execute(
                    text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
                )
            await engine.dispose()
    finally:
        await admin.dispose()


def faults_of(app: FastAPI) -> tuple[str, ...]:
    return FAULTS[app.state.database.dialect]


def expect_unavailable(response: httpx.Response, fault: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "storage_unavailable", body
    assert CAUSES[fault] in body["detail"], body
    assert response.headers["retry-after"] == "5"


async def test_writes_are_503_and_readyz_is_not_ready_until_a_write_goes_through(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    await add_messages(client, session, {"role": "user", "content": "stored before"})
    stored = ["stored before"]
    for fault in faults_of(app):
        async with storage_fault(app, fault):
            expect_unavailable(
                await client.post(
                    f"/v1/sessions/{session}/messages",
                    json={"messages": [{"role": "user", "content": "y" * 100_000}]},
                ),
                fault,
            )
            if fault == "read_only":  # a full disk may still take a write this small
                expect_unavailable(await client.post("/v1/chat-models", json={"name": "n"}), fault)
            # Reads go on, and what was stored before is all there.
            assert [m["content"] for m in await stored_messages(client, session)] == stored
            ready = await client.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["error"] == "not_ready"
            assert "cannot store data" in ready.json()["detail"]
            assert CAUSES[fault] in ready.json()["detail"]
        # Storage is back: the probe write goes through and the process is ready again.
        assert (await client.get("/readyz")).status_code == 200
        await add_messages(client, session, {"role": "user", "content": f"after {fault}"})
        stored.append(f"after {fault}")
    names = [m["name"] for m in (await client.get("/v1/chat-models")).json()["data"]]
    assert names == ["bot"]


async def test_readyz_probes_no_write_while_nothing_failed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A healthy process answers ``/readyz`` with reads only: a read-only database that
    no write has met yet is (still) ready, as its migrations are all it checks."""
    fault = faults_of(app)[-1]
    async with storage_fault(app, fault):
        assert (await client.get("/readyz")).status_code == 200


async def run_meeting_fault(
    app: FastAPI,
    client: httpx.AsyncClient,
    server: ScriptedLLMServer,
    session: str,
    fault: str,
    **body: Any,
) -> httpx.Response:
    """A run whose model answers while the database has lost its storage."""
    server.enqueue(Delay(0.3, Reply(BIG_REPLY)))
    running = asyncio.create_task(client.post(f"/v1/sessions/{session}/run", json=body))
    for _ in range(250):  # until the run has started and its model is answering
        if server.requests:
            break
        await asyncio.sleep(0.02)
    async with storage_fault(app, fault):
        return await running


async def test_a_run_whose_reply_cannot_be_stored_frees_its_session(
    sqlite_app: FastAPI, sqlite_client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """The disk fills while the model answers: the reply cannot be stored, the run's much
    smaller failure can, so the session is free at once and the run says what happened."""
    client = sqlite_client
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    answer = await run_meeting_fault(sqlite_app, client, llm_server, session, "full")
    expect_unavailable(answer, "full")
    [recorded] = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert recorded["status"] == "failed"
    assert recorded["error_type"] == "storage_unavailable"
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    llm_server.enqueue(Reply("Short answer."))
    again = await client.post(f"/v1/sessions/{session}/run")  # not session_busy
    assert again.status_code == 200, again.text
    assert again.json()["content"] == "Short answer."


async def test_a_stream_whose_reply_cannot_be_stored_ends_with_the_error_event(
    sqlite_app: FastAPI, sqlite_client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    client = sqlite_client
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    answer = await run_meeting_fault(sqlite_app, client, llm_server, session, "full", stream=True)
    assert answer.status_code == 200
    last = sse_events(answer.text)[-1]
    assert last["done"] is True and last["error"] is True
    assert last["error_type"] == "storage_unavailable"
    assert "database or disk is full" in last["error_log"]
    assert "message" not in last
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    [recorded] = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert recorded["error_type"] == "storage_unavailable"


async def test_a_run_whose_failure_cannot_be_stored_either_frees_its_session_after_its_lease(
    database_url: str, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    """Read-only through the end of the run: nothing at all can be written, so the session
    stays held only until the run's lease lapses, then the next run takes it over and the
    lost run is marked interrupted (as when a server dies mid-run)."""
    lease = 1.0
    settings = Settings(
        database_url=database_url, seed_demo=False, llm_timeout_seconds=5, run_lease_seconds=lease
    )
    app = create_app(settings, gateway)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as client,
    ):
        session = await make_remote_session(client, llm_server.base_url, QUESTION)
        answer = await run_meeting_fault(app, client, llm_server, session, "read_only")
        expect_unavailable(answer, "read_only")
        assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
        await asyncio.sleep(lease + 0.2)
        llm_server.enqueue(Reply("Back again."))
        again = await client.post(f"/v1/sessions/{session}/run")
        assert again.status_code == 200, again.text
        assert again.json()["content"] == "Back again."
        runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
        assert sorted((r["status"], r["error_type"]) for r in runs) == [
            ("failed", "interrupted"),
            ("succeeded", None),
        ]


@pytest.fixture
async def sqlite_app(tmp_path: Path, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    url = sqlite_url(tmp_path / "chatmodel.db")
    await asyncio.to_thread(upgrade, url)
    application = create_app(Settings(database_url=url, seed_demo=False), gateway)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def sqlite_client(sqlite_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sqlite_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
        yield c


# --- chatmodel serve on a database it cannot use ------------------------------------------


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    yield {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}


def serve(env: dict[str, str], url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chatmodel_service.cli", "serve", "--port", str(free_port())]
    return subprocess.run(
        command,
        env={**env, "CHATMODEL_DATABASE_URL": url, "CHATMODEL_SEED_DEMO": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused_in_one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if not line.startswith("chatmodel 0")]
    for word in words:
        assert word in line, line


def test_serve_on_a_database_file_it_cannot_open_exits_with_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the database's folder should be")
    url = sqlite_url(folder / "chatmodel.db")
    refused_in_one_line(serve(env, url), "cannot use the database", str(folder))


def test_serve_on_a_read_only_database_exits_with_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "chatmodel.db"
    upgrade(sqlite_url(path))
    url = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    refused_in_one_line(
        serve(env, url), "cannot store data", "attempt to write a readonly database", str(path)
    )


def test_serve_on_an_unreachable_postgresql_exits_with_one_line_without_the_password(
    env: dict[str, str],
) -> None:
    url = f"postgresql+asyncpg://chatmodel:s3cret-pw@127.0.0.1:{free_port()}/chatmodel"
    done = serve(env, url)
    refused_in_one_line(done, "cannot use the database", "127.0.0.1")
    assert "s3cret-pw" not in done.stderr + done.stdout
