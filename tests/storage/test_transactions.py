"""Units of work (``Database.transaction``): on SQLite this process's writers queue on a
lock and start one after another, however long the one before holds SQLite's write lock
(SQLite's own wait gives up after its busy timeout); reads never wait for them; a write
transaction opened inside another one (as authentication does within a request's unit
of work) does not wait for itself. PostgreSQL writers do not queue in the process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update

from chatmodel_service import db as db_module
from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.models import Project

LIMIT = 10  # seconds: a wait this long means a writer waits for itself


@pytest.fixture
async def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Database]:
    # SQLite connections give up on a lock after 0.2 s here, so a writer that waited on
    # SQLite's lock instead of this process's queue would fail with "database is locked".
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    db = Database(create_engine(Settings(database_url=database_url)))
    yield db
    await db.dispose()


async def test_writers_queue_in_this_process_on_sqlite_and_reads_do_not(
    database: Database,
) -> None:
    order: list[str] = []
    first_inside, let_first_commit = asyncio.Event(), asyncio.Event()

    async def first_writer() -> None:
        async with database.transaction() as db:
            await db.execute(update(Project).values(name=Project.name))  # holds the write
            order.append("first writes")
            first_inside.set()
            await let_first_commit.wait()
            order.append("first commits")

    async def second_writer() -> None:
        await first_inside.wait()
        async with database.transaction():
            order.append("second begins")

    async def reader() -> None:
        await first_inside.wait()
        async with database.transaction(write=False) as db:
            await db.execute(select(Project.id))
            order.append("read")

    tasks = [asyncio.create_task(job()) for job in (first_writer, second_writer, reader)]
    await first_inside.wait()
    await asyncio.sleep(0.5)  # longer than SQLite's busy timeout: the second must queue here
    let_first_commit.set()
    await asyncio.wait_for(asyncio.gather(*tasks), LIMIT)

    assert order[0] == "first writes"
    assert order.index("read") < order.index("first commits")
    if database.dialect == "sqlite":
        assert order[-2:] == ["first commits", "second begins"]
    else:  # PostgreSQL: writers of different rows never queue behind one another
        assert order.index("second begins") < order.index("first commits")


async def test_a_write_transaction_inside_another_does_not_wait_for_itself(
    database: Database,
) -> None:
    """As authentication inside a request's unit of work: the inner transaction commits
    before the outer one has sent anything (on SQLite it could not begin after that)."""

    async def nested() -> None:
        async with database.transaction() as outer:
            async with database.transaction() as inner:
                await inner.execute(update(Project).values(name=Project.name + "-inner"))
            await outer.execute(update(Project).values(name=Project.name + "-outer"))

    async with database.transaction(write=False) as db:
        before = list(await db.scalars(select(Project.name)))
    await asyncio.wait_for(nested(), LIMIT)

    async with database.transaction(write=False) as db:
        after = list(await db.scalars(select(Project.name)))
    assert before  # the migrated database has its default project
    assert after == [f"{name}-inner-outer" for name in before]
