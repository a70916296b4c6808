"""Test harness: a freshly migrated database per test, on SQLite and on PostgreSQL (every
test that uses ``database_url`` runs once per database, ids ``[sqlite]`` / ``[postgresql]``),
the real app with its lifespan, the real LiteLLM gateway (imported once), and a scripted
OpenAI-compatible server on 127.0.0.1 for upstream behaviour. Nothing here reaches the
internet.

PostgreSQL comes from ``CHATMODEL_TEST_POSTGRES_URL`` (an admin URL, as ``.ci/run`` sets it),
or from a throwaway cluster started for the session when the PostgreSQL 15 binaries are
installed; otherwise the ``[postgresql]`` tests are skipped, or fail when
``CHATMODEL_TEST_REQUIRE_POSTGRES=1``.

Under pytest-xdist (``-n auto`` in pyproject.toml) every worker is a session of its own and
starts its own throwaway cluster, on a free port and in a directory of its own, and stops
it at its end: initdb and start take about a second, and each worker would migrate a
template of its own on a shared server anyway. On a ``CHATMODEL_TEST_POSTGRES_URL`` server
the workers' templates and databases have names of their own.

Markers, set here from the fixtures a test uses: ``postgres`` on every test that reaches
PostgreSQL (each ``[postgresql]`` case, every user of ``postgres_databases``), ``browser``
on every test that takes ``browser``; ``-m "not postgres and not browser"`` is the quick
subset that needs neither."""

from __future__ import annotations

import os

# Before anything imports LiteLLM: read its cost map from the package, not the internet,
# and give the OpenAI provider a key (the scripted server ignores it).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("OPENAI_API_KEY", "sk-test-not-a-real-key")

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from chatmodel_service.migrate import upgrade
from tests.support.auth import auth_app, world
from tests.support.browser import chromium
from tests.support.databases import DATABASES, PostgresDatabases, postgres_server, sqlite_url
from tests.support.llm_server import llm_server, llm_server_session
from tests.support.servers import live_app, served

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["auth_app", "live_app", "llm_server", "llm_server_session", "served", "world"]

# Fixtures parametrized over DATABASES: a test whose case of one of them is "postgresql"
# runs on PostgreSQL. ``postgres_databases`` covers every other way of reaching it.
DATABASE_FIXTURES = ("database_url", "empty_database_url", "served")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` and ``browser`` tests from their fixtures, so no test is forgotten."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        if "postgres_databases" in fixtures or any(
            params.get(name) == "postgresql" for name in DATABASE_FIXTURES
        ):
            item.add_marker(pytest.mark.postgres)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database migrated to head; each test gets its own copy of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """The PostgreSQL server of the session (skips or fails when there is none)."""
    # Not under pytest's tmp dir: as root, the server runs as `postgres`, which must reach it.
    # Named after the xdist worker, if any, to tell the clusters of a parallel run apart.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    prefix = f"chatmodel-pg-{worker}-" if worker else "chatmodel-pg-"
    with postgres_server(lambda: Path(tempfile.mkdtemp(prefix=prefix))) as databases:
        yield databases


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database of each kind, dropped after the test."""
    if request.param == "sqlite":
        path = tmp_path / "chatmodel.db"
        shutil.copyfile(request.getfixturevalue("migrated_template"), path)
        yield sqlite_url(path)
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database() as url:
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no tables yet (SQLite: a file not created yet)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.db")
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    with databases.database(migrated=False) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A freshly migrated PostgreSQL database (``postgresql+asyncpg://``), for tests that
    need PostgreSQL itself; outside a fixture use ``postgres_databases.database()``."""
    with postgres_databases.database() as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium (see ``tests/support/browser.py``), closed after the test."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def gateway() -> LLMGateway:
    return create_gateway()


@pytest.fixture(autouse=True)
def _litellm_clients_of_this_test_only() -> Iterator[None]:
    """LiteLLM caches its HTTP clients by ``id()`` of the event loop. Every test has a
    loop of its own, and a new loop can be allocated where a closed one was: the cache is
    emptied after each test, so no test is handed a client bound to a closed loop (a
    server runs one loop for its whole life and never meets this)."""
    yield
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        litellm.in_memory_llm_clients_cache.flush_cache()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, seed_demo=False, llm_timeout_seconds=5)


@pytest.fixture
async def app(settings: Settings, gateway: LLMGateway) -> AsyncIterator[FastAPI]:
    application = create_app(settings, gateway)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
        yield c
