"""Probes, request ids and log lines: ``/healthz``, ``/readyz``, ``X-Request-ID`` and the
one log line per request, in JSON for ``chatmodel serve``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.migrate import downgrade
from chatmodel_service.observability import router as operator_routes
from chatmodel_service.observability.logs import (
    ACCESS_LOGGER,
    TEXT_FORMAT,
    JsonFormatter,
    RequestIdFilter,
)
from chatmodel_service.observability.metrics import ServiceMetrics
from chatmodel_service.observability.readiness import migration_heads
from chatmodel_service.observability.request_context import (
    RequestContext,
    enter_request,
    leave_request,
)
from tests.factories import expect_error, make_chat_model
from tests.support.auth import keyed, seed_key, started_app
from tests.support.databases import sqlite_url
from tests.support.servers import free_port, serve_logged

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@asynccontextmanager
async def client_for(app: FastAPI, **transport: bool) -> AsyncIterator[httpx.AsyncClient]:
    asgi = httpx.ASGITransport(app=app, **transport)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=asgi, base_url="http://chatmodel.test") as client:
        yield client


@asynccontextmanager
async def database_swapped(app: FastAPI, url: str) -> AsyncIterator[None]:
    """The app reads ``url`` instead of its own database for the block."""
    original: Database = app.state.database
    replacement = Database(create_engine(Settings(database_url=url)))
    app.state.database = replacement
    try:
        yield
    finally:
        app.state.database = original
        await replacement.dispose()


# -- probes -----------------------------------------------------------------------------


async def test_healthz_is_ok_without_touching_the_database(
    app: FastAPI, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with database_swapped(app, sqlite_url(tmp_path / "missing" / "dir" / "x.db")):
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert (await client.get("/health")).json()["status"] == "ok"  # the old probe stays


async def test_readyz_is_ok_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "revision": ", ".join(sorted(migration_heads()))}


async def test_readyz_is_503_when_the_database_is_behind_head(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await asyncio.to_thread(downgrade, database_url, "-1")
    detail = expect_error(await client.get("/readyz"), 503, "not_ready", None)
    assert detail.startswith("migrations: ")
    assert "chatmodel db upgrade" in detail
    (head,) = migration_heads()
    assert f"needs {head}" in detail


async def test_readyz_is_503_on_an_empty_database(
    app: FastAPI, client: httpx.AsyncClient, empty_database_url: str
) -> None:
    async with database_swapped(app, empty_database_url):
        detail = expect_error(await client.get("/readyz"), 503, "not_ready", None)
    assert "none (not migrated)" in detail


async def test_readyz_is_503_when_the_database_is_unreachable(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("postgresql"):
        unreachable = f"postgresql+asyncpg://chatmodel:s3cret-pw@127.0.0.1:{free_port()}/none"
    else:
        unreachable = sqlite_url(tmp_path / "no" / "such" / "dir" / "chat.db")
    async with database_swapped(app, unreachable):
        response = await client.get("/readyz")
    detail = expect_error(response, 503, "not_ready", None)
    assert detail.startswith("database: unreachable")
    assert "s3cret" not in response.text
    assert (await client.get("/readyz")).status_code == 200  # and ready again


# -- request ids ------------------------------------------------------------------------


async def test_a_valid_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    given = "req-42.abc_DEF:/=+~" + "x" * 100
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given", [None, "", "has space", "x" * 201, "tab\there", "caf\u00e9".encode()], ids=repr
)
async def test_a_missing_or_invalid_request_id_is_replaced(
    client: httpx.AsyncClient, given: str | bytes | None
) -> None:
    headers: dict[str, str] | dict[bytes, bytes] = {}
    if isinstance(given, bytes):
        headers = {b"X-Request-ID": given}
    elif given is not None:
        headers = {"X-Request-ID": given}
    first = await client.get("/healthz", headers=headers)
    second = await client.get("/healthz", headers=headers)
    assert GENERATED_ID.fullmatch(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_error_answers_carry_the_request_id(client: httpx.AsyncClient) -> None:
    headers = {"X-Request-ID": "trace-1"}
    unknown_route = await client.get("/no/such/route", headers=headers)
    invalid = await client.post("/v1/chat-models", json={"name": ""}, headers=headers)
    missing = await client.get("/v1/chat-models/nope", headers=headers)
    for response, status in ((unknown_route, 404), (invalid, 422), (missing, 404)):
        assert response.status_code == status
        assert response.headers["X-Request-ID"] == "trace-1"


async def test_an_unexpected_error_is_a_500_with_the_request_id(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_: Database) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(operator_routes, "check_ready", broken)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/readyz", headers={"X-Request-ID": "trace-500"})
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert response.headers["X-Request-ID"] == "trace-500"
    (line,) = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert (line.request_id, line.status) == ("trace-500", 500)  # type: ignore[attr-defined]


# -- log lines --------------------------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The request lines, as the JSON formatter writes them."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]


async def test_one_json_log_line_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await make_chat_model(client, "assistant")
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = await client.get("/v1/chat-models/assistant", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 200
    missing = await client.get("/v1/chat-models/nope")

    first, second = access_lines(caplog)
    assert first["level"] == "info" and first["logger"] == ACCESS_LOGGER
    assert first["message"].startswith("GET /v1/chat-models/assistant 200 ")
    assert {k: first[k] for k in ("method", "route", "path", "status", "request_id")} == {
        "method": "GET",
        "route": "/v1/chat-models/{name}",
        "path": "/v1/chat-models/assistant",
        "status": 200,
        "request_id": "r-1",
    }
    assert first["key_name"] is None  # keys are not required on loopback
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert (second["status"], second["request_id"]) == (404, missing.headers["X-Request-ID"])
    assert str(first["time"]).endswith("+00:00")


async def test_the_log_line_names_the_callers_key(
    database_url: str, gateway: LLMGateway, caplog: pytest.LogCaptureFixture
) -> None:
    async with started_app(database_url, gateway) as app:
        admin, _ = await seed_key(app, "admin", "ops-team")
        caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
        async with client_for(app) as client:
            assert (await client.get("/v1/chat-models", headers=keyed(admin))).status_code == 200
            assert (await client.get("/v1/chat-models")).status_code == 401
    known, refused = access_lines(caplog)
    assert (known["key_name"], known["status"]) == ("ops-team", 200)
    assert (refused["key_name"], refused["status"]) == (None, 401)
    assert admin not in caplog.text


def test_text_lines_show_the_request_id_or_a_dash() -> None:
    formatter = logging.Formatter(TEXT_FORMAT)
    request_ids = RequestIdFilter(outside="-")

    def line(message: str) -> str:
        record = logging.makeLogRecord({"name": "chatmodel_service", "msg": message})
        record.levelname = "WARNING"
        assert request_ids.filter(record)
        return formatter.format(record)

    token = enter_request(RequestContext("abc123", ServiceMetrics()))
    try:
        inside = line("in a request")
    finally:
        leave_request(token)
    assert inside == "WARNING chatmodel_service [abc123]: in a request"
    assert line("at start") == "WARNING chatmodel_service [-]: at start"


async def test_successful_probes_are_logged_at_debug(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=ACCESS_LOGGER)
    await client.get("/healthz")
    await client.get("/readyz")
    levels = [r.levelname for r in caplog.records if r.name == ACCESS_LOGGER]
    assert levels == ["DEBUG", "DEBUG"]


# -- chatmodel serve, for real ----------------------------------------------------------

KEEP_ALIVE = 1  # seconds an idle connection stays open (CHATMODEL_KEEP_ALIVE_SECONDS)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`chatmodel serve` on a fresh SQLite file, its stderr in a file: (base URL, log)."""
    settings = {"CHATMODEL_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE)}
    yield from serve_logged(tmp_path, sqlite_url(tmp_path / "chat.db"), settings)


def test_serve_writes_json_lines_with_the_request_id(serve_process: tuple[str, Path]) -> None:
    base_url, log_path = serve_process
    with httpx.Client(base_url=base_url, timeout=30) as http:
        listed = http.get("/v1/chat-models", headers={"X-Request-ID": "serve-check-1"})
        ready = http.get("/readyz")
        scraped = http.get("/metrics")
        session = http.post("/v1/sessions", json={"chat_model": "simple_assistant"}).json()
        ran = http.post(
            f"/v1/sessions/{session['uuid']}/run",
            json={"messages": [{"role": "user", "content": "Hello."}]},
        )  # a model call, through LiteLLM
    assert ran.status_code == 200 and ran.json()["error"] is False, ran.text
    assert listed.status_code == 200 and listed.headers["X-Request-ID"] == "serve-check-1"
    assert ready.status_code == 200, ready.text
    assert scraped.status_code == 200 and "chatmodel_http_requests_total" in scraped.text

    entries = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{")  # the lines `serve` prints itself before logging starts
    ]
    request = [e for e in entries if e.get("request_id") == "serve-check-1"]
    assert len(request) == 1, entries
    assert request[0]["route"] == "/v1/chat-models" and request[0]["status"] == 200
    loggers = {e["logger"] for e in entries}
    assert "chatmodel_service" in loggers  # the service's own lines (the no-keys warning)
    assert "uvicorn.error" in loggers  # uvicorn's, in the same format
    assert "uvicorn.access" not in loggers  # replaced by the line above
    # LiteLLM's own handler and its line per call are gone; no field of its leaks in.
    lines = log_path.read_text().splitlines()
    assert [line for line in lines if not line.startswith(("{", "chatmodel"))] == []
    assert not [e for e in entries if e["logger"].startswith("LiteLLM")], entries
    assert not [e for e in entries if "litellm_redacted" in e], entries


def _get_health(connection: socket.socket) -> bytes:
    """One GET /health on ``connection``; the whole response (head and body)."""
    connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def test_serve_keeps_idle_connections_for_the_keep_alive_setting(
    serve_process: tuple[str, Path],
) -> None:
    """An idle connection stays usable for CHATMODEL_KEEP_ALIVE_SECONDS, then is closed."""
    host, port = serve_process[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        assert _get_health(connection).startswith(b"HTTP/1.1 200")
        time.sleep(KEEP_ALIVE / 2)
        assert _get_health(connection).startswith(b"HTTP/1.1 200")  # still open
        time.sleep(KEEP_ALIVE * 2)
        assert connection.recv(1) == b""  # the server closed it
