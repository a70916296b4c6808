"""The SQLite engine runs each statement in one trip to aiosqlite's thread (see
``chatmodel_service/sqlite_driver.py``) and gives SQLAlchemy what its own adapter would:
rows, row counts, the last row id, many-row inserts, and the same exceptions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatmodel_service.config import Settings
from chatmodel_service.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"))
    async with made.begin() as connection:
        await connection.execute(
            text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        )
    yield made
    await made.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The functions sent to aiosqlite's thread, by name, as they are sent."""
    sent: list[str] = []
    # aiosqlite leaves this private method unannotated.
    original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(getattr(fn, "func", fn), "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield sent


async def test_each_statement_is_one_trip_with_what_sqlalchemy_reads(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # after the transaction's BEGIN
        trips.clear()
        inserted = await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
        assert trips == ["_run_statement"]
        assert inserted.rowcount == 1
        assert inserted.lastrowid == 1

        many = await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        assert many.rowcount == 2

        updated = await connection.execute(text("UPDATE item SET name = name || '!'"))
        assert updated.rowcount == 3

        trips.clear()
        rows = (await connection.execute(text("SELECT id, name FROM item ORDER BY id"))).all()
        assert trips == ["_run_statement"]
        assert [tuple(row) for row in rows] == [(1, "a!"), (2, "b!"), (3, "c!")]

        empty = await connection.execute(text("SELECT name FROM item WHERE id > 9"))
        assert list(empty.keys()) == ["name"] and empty.all() == []
        await connection.commit()


async def test_driver_errors_are_sqlalchemys_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
        with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: item\.name"):
            await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
        await connection.rollback()
        await connection.execute(text("INSERT INTO item (name) VALUES ('b')"))
        await connection.commit()
        names = (await connection.execute(text("SELECT name FROM item"))).scalars().all()
    assert names == ["b"]
