"""SQLite statements in one trip to aiosqlite's thread each.

SQLAlchemy's aiosqlite adapter makes three or four trips per statement to the thread that
owns the SQLite connection (open a cursor, execute, fetch the rows, close the cursor),
and a trip costs more CPU than the statement itself: a queue hand-off, a thread switch
and a future resolved back on the event loop. A run makes about ten statements, so on
SQLite those trips were a quarter of a run's CPU.

The cursor here runs the whole statement as one function on that thread and keeps what
SQLAlchemy reads afterwards (the rows, ``description``, ``rowcount``, ``lastrowid``).
Everything else (connections, transactions, server-side cursors, error mapping) is
SQLAlchemy's own. It relies on two things beyond the public APIs, the same two
SQLAlchemy's adapter relies on: aiosqlite's ``Connection._execute`` (run a function on
the connection's thread) and ``Connection._conn`` (the ``sqlite3`` connection there);
pyproject pins the versions it was written against.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT


class FinishedStatement:
    """What a statement left for SQLAlchemy to read, in place of a live driver cursor."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(
        self,
        description: Any = None,
        rowcount: int = -1,
        lastrowid: int | None = None,
    ) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1


def _run_statement(
    raw: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[FinishedStatement, list[Any] | None]:
    """On aiosqlite's thread: execute, fetch every row (if it returns rows), close."""
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else None
        finished = FinishedStatement(cursor.description, cursor.rowcount, cursor.lastrowid)
        return finished, rows
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def __init__(self, adapt_connection: Any) -> None:  # no driver cursor opened here
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = FinishedStatement()  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _run(self, operation: str, parameters: Any, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
            finished, rows = await connection._execute(  # type: ignore[no-untyped-call]
                _run_statement, connection._conn, operation, parameters, many
            )
        self._cursor = finished
        if rows is not None:
            self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        await self._run(operation, seq_of_parameters, many=True)

    def close(self) -> None:  # the driver cursor was closed on its thread already
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy adapts it, with one-trip cursors (pass as ``module=``)."""

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*args, **kwargs)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
