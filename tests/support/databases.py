"""Test databases on both dialects: SQLite files and PostgreSQL databases made from a template.

PostgreSQL: one database is migrated to head per test session; every test gets
``CREATE DATABASE ... TEMPLATE`` of it (a copy inside the server, far cheaper than
migrating), made ahead of time, and it is dropped afterwards, ending any connection the
test left open.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TypeVar

import asyncpg
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from chatmodel_service.migrate import upgrade
from chatmodel_service.models import ChatSession
from tests.support import postgres

DATABASES = ("sqlite", "postgresql")
POSTGRES_URL_VARIABLE = "CHATMODEL_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VARIABLE = "CHATMODEL_TEST_REQUIRE_POSTGRES"

T = TypeVar("T")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on its own loop in a worker thread, so callers may be
    sync code or (blocking briefly) code already inside an event loop."""

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, main()).result()


class PostgresDatabases:
    """Creates and drops test databases on one server, reached with an admin URL.

    Copying the template takes over 0.1 s, so one admin thread keeps the next copies ready
    and drops finished databases while the tests run."""

    READY = 2  # migrated copies kept ready ahead of the tests

    def __init__(self, admin_url: str) -> None:
        admin = make_url(admin_url)
        self._admin_dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        self._base: URL = admin.set(drivername="postgresql+asyncpg")
        self._template: str | None = None
        self._admin = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-admin")
        self._ready: deque[Future[str]] = deque()
        self._drops: list[Future[None]] = []

    def url(self, name: str) -> str:
        return self._base.set(database=name).render_as_string(hide_password=False)

    def _execute(self, *statements: str) -> None:
        async def execute() -> None:
            connection = await asyncpg.connect(self._admin_dsn, timeout=30)
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(execute())

    def _in_background(self, *statements: str) -> Future[None]:
        return self._admin.submit(self._execute, *statements)

    def _copy(self, template: str) -> str:
        name = f"chatmodel_test_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def _template_name(self) -> str:
        """The database migrated to head, made on first use (once per session)."""
        if self._template is None:
            name = f"chatmodel_template_{uuid.uuid4().hex[:12]}"
            self._in_background(f'CREATE DATABASE "{name}"').result()
            upgrade(self.url(name))
            self._template = name
        return self._template

    def create(self, *, migrated: bool = True) -> str:
        """A new database (a copy of the migrated template, or empty); returns its URL."""
        self._raise_failed_drops()
        if not migrated:
            return self._admin.submit(self._copy, "template0").result()
        template = self._template_name()
        while len(self._ready) <= self.READY:
            self._ready.append(self._admin.submit(self._copy, template))
        return self._ready.popleft().result()

    def drop(self, url: str) -> None:
        """Drop the database (in the background), ending any connection still open to it."""
        name = make_url(url).database
        self._drops.append(self._in_background(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def _raise_failed_drops(self) -> None:
        done = [drop for drop in self._drops if drop.done()]
        self._drops = [drop for drop in self._drops if not drop.done()]
        for drop in done:
            drop.result()

    @contextmanager
    def database(self, *, migrated: bool = True) -> Iterator[str]:
        """A fresh database for the block, dropped at its end."""
        url = self.create(migrated=migrated)
        try:
            yield url
        finally:
            self.drop(url)

    def close(self) -> None:
        """Drop the ready copies and the template; wait for every drop."""
        while self._ready:
            self.drop(self._ready.popleft().result())
        if self._template is not None:
            self.drop(self.url(self._template))
            self._template = None
        self._admin.shutdown(wait=True)
        self._raise_failed_drops()


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_POSTGRES_VARIABLE, "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip the PostgreSQL tests, or fail them when PostgreSQL is required (CI)."""
    if postgres_required():
        pytest.fail(f"{REQUIRE_POSTGRES_VARIABLE} is set but {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


@contextmanager
def postgres_server(directory_for_cluster: Callable[[], Path]) -> Iterator[PostgresDatabases]:
    """The server named by CHATMODEL_TEST_POSTGRES_URL, or a throwaway cluster started here
    when the PostgreSQL 15 binaries are installed; otherwise skip (or fail if required)."""
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    if given:
        databases = PostgresDatabases(given)
        try:
            yield databases
        finally:
            databases.close()
        return
    if not postgres.binaries_available():
        unavailable(
            f"{POSTGRES_URL_VARIABLE} is not set and there are no PostgreSQL binaries in "
            f"{postgres.POSTGRES_BIN} (install postgresql-15, or point the variable at a server)"
        )
    directory = directory_for_cluster()
    try:
        cluster = postgres.start_cluster(directory)
    except postgres.ClusterError as exc:
        postgres.stop_cluster(directory)
        unavailable(f"a throwaway cluster did not start: {exc}")
    databases = PostgresDatabases(cluster.url)
    try:
        yield databases
    finally:
        try:
            databases.close()
        finally:
            postgres.stop_cluster(directory)


def table_names(url: str) -> set[str]:
    """The tables in the database at ``url`` (a SQLite file that does not exist has none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return set()

    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    return run_async(lambda: run_sync_on(url, names))


def untouched(url: str) -> bool:
    """Nothing was written to the database at ``url``: no SQLite file, no tables."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return not Path(parsed.database or "").exists()
    return table_names(url) == set()


async def run_sync_on(url: str, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` on a sync-style connection to ``url``, engine disposed after."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


__all__ = [
    "DATABASES",
    "PostgresDatabases",
    "postgres_server",
    "run_async",
    "run_sync_on",
    "sqlite_url",
    "table_names",
    "untouched",
]


async def session_row_id(db: AsyncSession, session_uuid: str) -> uuid.UUID:
    """The row id (what messages and runs reference) of the session the API knows by
    ``session_uuid``: the two differ for every session the service creates."""
    row_id = await db.scalar(
        select(ChatSession.id).where(ChatSession.uuid == uuid.UUID(session_uuid))
    )
    assert row_id is not None, f"no session {session_uuid}"
    return row_id
