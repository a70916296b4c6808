"""Engine and unit-of-work factories. Built by the app's lifespan, never at import."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from chatmodel_service.config import Settings
from chatmodel_service.errors import storage_failure
from chatmodel_service.models.base import utcnow
from chatmodel_service.sqlite_driver import one_trip_dbapi

# Execution option a write transaction carries: on SQLite it begins with BEGIN IMMEDIATE.
WRITE_OPTION = "chatmodel_write"
# How long a SQLite connection waits for another process's write lock before it fails.
SQLITE_BUSY_TIMEOUT_MS = 5000

# The databases whose writer lock the current task holds (see Database.transaction).
_holding_writer: ContextVar[frozenset[int]] = ContextVar("holding_writer", default=frozenset())


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy, not the driver, begins transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """A write transaction takes SQLite's write lock when it begins (BEGIN IMMEDIATE), so
    it waits for another writer (busy_timeout) instead of failing with "database is
    locked" when it upgrades from reading to writing after a concurrent commit. Reads
    begin deferred and never block one another (WAL)."""
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine for ``settings.database_url`` with per-dialect tuning."""
    url = settings.database_url
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if url.startswith("postgresql"):
        kwargs |= {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout,
            "pool_pre_ping": True,
        }
    if url.startswith("sqlite+aiosqlite"):
        kwargs["module"] = one_trip_dbapi()  # one trip to the driver's thread a statement
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


@dataclass(frozen=True)
class WriteFailure:
    """Why the database could not store data (``storage_failure``), and since when."""

    cause: str
    since: datetime


# The write probe's throwaway table, and how much it writes (more than a page, so it needs
# new space on either database).
_PROBE_TABLE = "chatmodel_write_probe"
_PROBE_BYTES = 64 * 1024


class Database:
    """Owns the engine and hands out short transactions (units of work).

    On SQLite, which has one writer at a time, this process's write transactions also
    queue on an ``asyncio.Lock`` before they begin: the next writer starts the moment
    the last one commits, instead of polling SQLite's lock with growing sleeps (its busy
    handler backs off up to 100 ms a try, which under load made writers wait for
    seconds, and gave up with "database is locked" after ``SQLITE_BUSY_TIMEOUT_MS``).
    Other processes on the same file still wait on SQLite's own lock. A task that
    already holds the lock does not queue again, so a write transaction opened inside
    another (authentication inside a request's unit of work) does not wait for itself.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Set by the first transaction that fails for want of storage (disk full, a
        # read-only file); only a successful ``probe_writes`` clears it (``/readyz``).
        self.write_failure: WriteFailure | None = None
        self.dialect = engine.dialect.name
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None
        self._readers = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._writers = async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}),
            expire_on_commit=False,
            autoflush=False,
        )

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits once on success, rolls back on any exception.
        ``write=False`` for transactions that only read (on SQLite they then never wait
        for a writer)."""
        sessions = self._writers if write else self._readers
        try:
            if not write or self._writer is None or id(self) in _holding_writer.get():
                async with sessions() as session, session.begin():
                    yield session
                return
            async with self._writer:
                outside = _holding_writer.get()
                _holding_writer.set(outside | {id(self)})
                try:
                    async with sessions() as session, session.begin():
                        yield session
                finally:
                    _holding_writer.set(outside)
        except Exception as exc:
            cause = storage_failure(exc)
            if cause is not None and self.write_failure is None:
                self.write_failure = WriteFailure(cause, utcnow())
            raise

    async def probe_writes(self, *, always: bool = False) -> WriteFailure | None:
        """After a storage failure (``write_failure``), or ``always``, try a write that
        needs new space (a table made, filled with 64 KiB and dropped in one transaction,
        so nothing stays) and forget the failure when it goes through; the failure that
        remains, if any."""
        if self.write_failure is None and not always:
            return None
        try:
            # A name of its own: probes of several processes never meet.
            table = f"{_PROBE_TABLE}_{uuid.uuid4().hex[:12]}"
            async with self.transaction() as db:
                await db.execute(text(f"CREATE TABLE {table} (payload TEXT)"))
                await db.execute(
                    text(f"INSERT INTO {table} (payload) VALUES (:payload)"),
                    {"payload": "x" * _PROBE_BYTES},
                )
                await db.execute(text(f"DROP TABLE {table}"))
        except Exception as exc:
            cause = storage_failure(exc)
            if cause is None:
                raise
            return self.write_failure or WriteFailure(cause, utcnow())
        self.write_failure = None
        return None

    async def dispose(self) -> None:
        await self.engine.dispose()


async def execute_core(
    session: AsyncSession, statement: Executable, parameters: dict[str, Any] | None = None
) -> CursorResult[Any]:
    """Run a Core statement (built once, with bind parameters) on the session's
    connection, in its transaction. A run's few writes go this way: the ORM's execution
    path (events, compile state, bulk handling) costs more than the statements do."""
    connection = await session.connection()
    return await connection.execute(statement, parameters)
