"""Database errors the API turns into answers: a value only the database refuses (a 422,
the safety net behind the schemas), an exhausted connection pool (a 503), anything else (a
500 that shows no SQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chatmodel_service import db as db_module
from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.deps import DbSession
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.migrate import upgrade
from chatmodel_service.models import DEFAULT_PROJECT_ID, ChatModel, ChatModelVersion
from tests.support.databases import sqlite_url

NUL = "a\x00b"


@pytest.mark.parametrize(
    ("values", "detail"),
    [
        ({"name": "x", "description": NUL}, "cannot store (NUL"),
        ({"name": "n" * 300, "description": ""}, "longer than the database column"),
    ],
    ids=["nul", "too-long"],
)
async def test_a_value_postgresql_refuses_past_the_schemas_is_a_422(
    postgres_url: str, gateway: LLMGateway, values: dict[str, str], detail: str
) -> None:
    """Stands in for a route whose schema misses a limit: PostgreSQL's data exception is a
    422 ``invalid_input``, not a 500, and nothing is stored."""
    app = create_app(Settings(database_url=postgres_url, seed_demo=False), gateway)

    @app.post("/unchecked")
    async def unchecked(db: DbSession) -> None:
        await db.execute(insert(ChatModel).values(project_id=DEFAULT_PROJECT_ID, **values))

    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.post("/unchecked")
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_input"
        assert detail in response.json()["detail"]
        assert (await client.get("/v1/chat-models")).json()["data"] == []


async def test_an_integer_beyond_the_column_is_a_422(
    postgres_url: str, gateway: LLMGateway
) -> None:
    app = create_app(Settings(database_url=postgres_url, seed_demo=False), gateway)

    @app.get("/unchecked")
    async def unchecked(db: DbSession) -> None:
        # asyncpg refuses to encode it for an INTEGER column before sending anything.
        await db.execute(select(ChatModelVersion).where(ChatModelVersion.number == 2**40))

    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/unchecked")
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_input"


async def test_other_database_errors_stay_server_errors(
    database_url: str, gateway: LLMGateway
) -> None:
    app = create_app(Settings(database_url=database_url, seed_demo=False), gateway)

    @app.get("/broken")
    async def broken(db: DbSession) -> None:
        await db.execute(text("SELECT no_such_column FROM chat_model"))

    async with app.router.lifespan_context(app), _client(app) as client:
        response = await client.get("/broken")
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert "no_such_column" not in response.text


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test")


async def test_an_exhausted_pool_is_a_503_with_retry_after(
    postgres_url: str, gateway: LLMGateway
) -> None:
    settings = Settings(
        database_url=postgres_url,
        seed_demo=False,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=0.2,
    )
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app), _client(app) as client:
        async with app.state.database.engine.connect() as held:  # the pool's one connection
            await held.execute(text("SELECT 1"))
            busy = await client.get("/v1/chat-models")
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "database_busy"
        assert busy.headers["retry-after"] == "1"
        assert (await client.get("/v1/chat-models")).status_code == 200


async def test_the_pool_grows_by_max_overflow_and_no_further(
    postgres_url: str, gateway: LLMGateway
) -> None:
    settings = Settings(
        database_url=postgres_url,
        seed_demo=False,
        db_pool_size=1,
        db_max_overflow=2,
        db_pool_timeout=0.2,
    )
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app):
        engine = app.state.database.engine
        async with engine.connect() as a, engine.connect() as b, engine.connect() as c:
            await asyncio.gather(*(conn.execute(text("SELECT 1")) for conn in (a, b, c)))
            with pytest.raises(PoolTimeout):
                async with engine.connect() as d:
                    await d.execute(text("SELECT 1"))


async def test_another_process_holding_sqlites_write_lock_is_a_503(
    tmp_path: Path, gateway: LLMGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two apps on one SQLite file stand in for two server processes: each queues its own
    writers, so they meet at SQLite's lock. One that waits past the busy timeout answers
    503 ``database_busy``, not a 500, and stores nothing; afterwards writes go through."""
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    url = sqlite_url(tmp_path / "shared.db")
    await asyncio.to_thread(upgrade, url)
    holder = create_app(Settings(database_url=url, seed_demo=False), gateway)
    writer = create_app(Settings(database_url=url, seed_demo=False), gateway)
    async with (
        holder.router.lifespan_context(holder),
        writer.router.lifespan_context(writer),
        _client(writer) as client,
    ):
        async with holder.state.database.transaction() as db:  # the other process
            await db.execute(text("UPDATE project SET name = name"))
            busy = await client.post("/v1/chat-models", json={"name": "blocked"})
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "database_busy"
        assert busy.headers["retry-after"] == "1"
        assert (await client.get("/v1/chat-models")).json()["data"] == []
        created = await client.post("/v1/chat-models", json={"name": "later"})
        assert created.status_code == 201, created.text
