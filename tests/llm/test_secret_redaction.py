"""Secrets redacted by value: a key of any shape that the provider echoes in its error (raw,
URL-encoded, JSON-escaped, cut short) never reaches a run's result, a stream's error event,
an OpenAI-compatible error, a version test, a stored run record or a log line.

Each test puts its key in the environment before the app starts, as an operator would:
the app builds its set of secrets at start, and LiteLLM sends ``OPENAI_API_KEY`` to the
scripted server, which answers 401 with the key in its message.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings, server_secrets
from chatmodel_service.db import Database
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import ChatRun
from chatmodel_service.observability.logs import JsonFormatter
from chatmodel_service.redaction import REDACTED, SecretRedactor
from tests.factories import (
    add_messages,
    make_chat_model,
    make_session,
    run,
    sse_events,
)
from tests.support.llm_server import ErrorReply, ScriptedLLMServer

USER = {"role": "user", "content": "Hello?"}


@dataclass(frozen=True)
class Echo:
    """A key held in the environment variable ``variable``, and the provider's error
    message that echoes it."""

    variable: str
    key: str
    message: str


def every_byte_encoded(text: str) -> str:
    """``text`` URL-encoded as some servers do it: everything but letters and digits."""
    return "".join(c if c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def lower_hex(encoded: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)


def every_byte_json_escaped(text: str) -> str:
    """``text`` as some JSON encoders write it: everything but letters and digits \\u-escaped."""
    return "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in text)


HEX_KEY = "3f9a0c2e7b14d86a5c0e9f1b2d4a6c8e"
PUNCTUATED_KEY = "hQ7x-9ZtB_w3Vr.K8mP-x2Lq"
SK_KEY = "sk-SECRET123abcDEF456"
JSON_KEY = 'Qx7pL9"mR3vT2\\Zk8wY5/Hn4q'
ECHOES = {
    "32-hex": Echo(
        "OPENAI_API_KEY",
        HEX_KEY,
        f"Incorrect API key provided: {HEX_KEY}. You can find your API key elsewhere.",
    ),
    "dash-underscore-dot": Echo(
        "OPENAI_API_KEY",
        PUNCTUATED_KEY,
        f"This server does not accept {PUNCTUATED_KEY} (check the server's tokens)",
    ),
    "url-encoded": Echo(
        "OPENAI_API_KEY",
        SK_KEY,
        "Unknown key sk%2DSECRET123abcDEF456 in /v1/check?k=sk%2dSECRET123abcDEF456",
    ),
    # A self-hosted gateway's own token, in a variable LiteLLM does not know, echoed
    # inside a JSON document (quote, backslash and slash escaped) within the message.
    "json-escaped": Echo(
        "SELF_HOSTED_GATEWAY_TOKEN",
        JSON_KEY,
        "upstream answered "
        + json.dumps({"detail": f"denied {JSON_KEY}"}).replace("/", "\\/")
        + " to the proxy",
    ),
}


def fragments(key: str) -> list[str]:
    """The key's runs of letters and digits of 4 or more: whatever escaping the echo went
    through, none of them may show."""
    return [run for run in re.split(r"[^A-Za-z0-9]+", key) if len(run) >= 4]


def assert_no_key(key: str, *texts: str) -> None:
    for text in texts:
        for fragment in fragments(key):
            assert fragment not in text, f"{fragment!r} of the key leaked into {text!r}"


@asynccontextmanager
async def started(
    settings: Settings, gateway: LLMGateway
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings, gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chatmodel.test") as c:
            yield app, c


async def remote_model(client: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    await make_chat_model(client, "remote", model="openai/scripted-model", api_base=server.base_url)


async def remote_session(client: httpx.AsyncClient, server: ScriptedLLMServer) -> str:
    await remote_model(client, server)
    session = await make_session(client, "remote")
    await add_messages(client, session, USER)
    return session


async def stored_error_logs(app: FastAPI) -> list[str]:
    database: Database = app.state.database
    async with database.transaction() as db:
        return [str(log) for log in (await db.execute(select(ChatRun.error_log))).scalars()]


async def recorded_error_logs(client: httpx.AsyncClient, session: str) -> list[str]:
    response = await client.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    return [str(record["error_log"]) for record in response.json()["data"]]


# -- what a run returns and stores --------------------------------------------------------


@pytest.mark.parametrize("echo", ECHOES.values(), ids=ECHOES.keys())
async def test_a_failed_run_returns_and_stores_no_echoed_key(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    echo: Echo,
) -> None:
    monkeypatch.setenv(echo.variable, echo.key)
    async with started(settings, gateway) as (app, client):
        session = await remote_session(client, llm_server)
        llm_server.enqueue(ErrorReply(401, echo.message))

        result = await run(client, session)
        records = await recorded_error_logs(client, session)
        stored = await stored_error_logs(app)

    assert (result["error"], result["error_type"]) == (True, "authentication_error")
    assert REDACTED in result["error_log"], result["error_log"]
    assert echo.message.split()[0] in result["error_log"]  # the provider's words survive
    assert records == stored == [result["error_log"]]
    assert_no_key(echo.key, result["error_log"], *records, *stored)


async def test_a_streamed_run_sends_and_stores_no_echoed_key(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    echo = ECHOES["32-hex"]
    monkeypatch.setenv(echo.variable, echo.key)
    async with started(settings, gateway) as (app, client):
        session = await remote_session(client, llm_server)
        llm_server.enqueue(ErrorReply(401, echo.message))

        response = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})
        records = await recorded_error_logs(client, session)
        stored = await stored_error_logs(app)

    assert response.status_code == 200, response.text
    last = sse_events(response.text)[-1]
    assert (last["error"], last["error_type"]) == (True, "authentication_error")
    assert REDACTED in last["error_log"], last["error_log"]
    assert records == stored == [last["error_log"]]
    assert_no_key(echo.key, response.text, last["error_log"], *records, *stored)


async def test_a_key_cut_short_by_the_length_limit_is_redacted_too(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Provider texts are cut at 600 characters: a key straddling the cut leaves no part."""
    monkeypatch.setenv("OPENAI_API_KEY", HEX_KEY)
    async with started(settings, gateway) as (_, client):
        session = await remote_session(client, llm_server)
        # The text kept is the provider's JSON body, '{"error":{"message":"' first (21
        # characters): the cut falls about 16 characters into the key.
        llm_server.enqueue(ErrorReply(401, "x" * (600 - 21 - 16) + HEX_KEY + " was refused"))

        result = await run(client, session)

    error_log = result["error_log"]
    assert "…" in error_log and "was refused" not in error_log, error_log
    assert HEX_KEY[:6] not in error_log, error_log
    assert REDACTED in error_log


# -- the OpenAI-compatible API and version tests -------------------------------------------


async def test_openai_compatible_errors_carry_no_echoed_key(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    echo = ECHOES["dash-underscore-dot"]
    monkeypatch.setenv(echo.variable, echo.key)
    async with started(settings, gateway) as (app, client):
        await remote_model(client, llm_server)
        llm_server.enqueue(ErrorReply(401, echo.message), ErrorReply(401, echo.message))
        body = {"model": "remote", "messages": [USER]}

        plain = await client.post("/v1/chat/completions", json=body)
        streamed = await client.post("/v1/chat/completions", json=body | {"stream": True})
        stored = await stored_error_logs(app)

    messages = []
    for response in (plain, streamed):
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "authentication_error"
        assert REDACTED in error["message"], error
        messages.append(error["message"])
    assert len(stored) == 2
    assert_no_key(echo.key, plain.text, streamed.text, *messages, *stored)


async def test_a_version_test_returns_no_echoed_key(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    echo = ECHOES["url-encoded"]
    monkeypatch.setenv(echo.variable, echo.key)
    async with started(settings, gateway) as (_, client):
        await remote_model(client, llm_server)
        llm_server.enqueue(ErrorReply(401, echo.message))

        response = await client.post(
            "/v1/chat-models/remote/versions/1/test", json={"message": "Echo?"}
        )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["error"], result["error_type"]) == (True, "authentication_error")
    assert REDACTED in result["error_log"], result["error_log"]
    assert_no_key(echo.key, response.text, result["error_log"])


# -- log lines --------------------------------------------------------------------------------


async def test_log_lines_carry_no_secret_while_the_app_runs(
    settings: Settings,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever logs a secret (a message argument, an extra field, an exception's text),
    neither pytest's handlers nor the JSON lines of ``chatmodel serve`` show it."""
    echo = ECHOES["json-escaped"]
    monkeypatch.setenv("OPENAI_API_KEY", HEX_KEY)
    monkeypatch.setenv(echo.variable, echo.key)
    caplog.set_level(logging.DEBUG)
    json_lines = io.StringIO()
    json_handler = logging.StreamHandler(json_lines)
    json_handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(json_handler)
    logger = logging.getLogger("chatmodel_service.test_secret_redaction")
    try:
        async with started(settings, gateway) as (_, client):
            session = await remote_session(client, llm_server)
            llm_server.enqueue(ErrorReply(401, echo.message))
            await run(client, session)
            logger.warning("the provider said %s", echo.message)
            logger.info("calling with key %s", HEX_KEY, extra={"key_used": HEX_KEY})
            try:
                raise RuntimeError(f"refused {echo.key!r}")
            except RuntimeError:
                logger.exception("the call failed")
    finally:
        logging.getLogger().removeHandler(json_handler)

    assert "the call failed" in caplog.text and "RuntimeError" in caplog.text
    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert any(e["message"] == "the call failed" and "exception" in e for e in entries)
    logged = [caplog.text, json_lines.getvalue(), *(r.getMessage() for r in caplog.records)]
    assert_no_key(HEX_KEY, *logged)
    assert_no_key(echo.key, *logged)


# -- which values are secrets -----------------------------------------------------------------


def test_the_server_secrets_are_its_key_variables_and_its_database_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VLLM_SERVER_TOKEN", "tok-0123456789")
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "0123456789abcdef")
    monkeypatch.setenv("CUSTOM_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("SHORT_TOKEN", "abc")  # too short to redact without harm
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example/T0/B0/abcdef")
    monkeypatch.setenv("PLAIN_SETTING", "not-a-secret-value")
    settings = Settings(database_url="postgresql+asyncpg://app:pa%24%24w0rd-x@db.example/app")

    secrets = server_secrets(settings, key_variables={"SLACK_WEBHOOK_URL"})

    assert {
        "tok-0123456789",
        "0123456789abcdef",
        "hunter2hunter2",
        "https://hooks.example/T0/B0/abcdef",
        "pa$$w0rd-x",
    } <= secrets
    assert "not-a-secret-value" not in secrets
    assert SecretRedactor(secrets).redact("abc, a word") == "abc, a word"


def test_the_redactor_knows_every_spelling_of_a_secret() -> None:
    secret = 'ab-cd_ef.gh/ij+kl"mn\\op qr'
    redactor = SecretRedactor({secret, "short"})
    spellings = [
        secret,
        quote(secret, safe=""),
        lower_hex(quote(secret, safe="")),
        quote_plus(secret, safe=""),
        every_byte_encoded(secret),
        lower_hex(every_byte_encoded(secret)),
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        json.dumps(json.dumps(secret))[3:-3],  # a JSON string inside a JSON string
        every_byte_json_escaped(secret),
    ]
    for spelling in spellings:
        assert redactor.redact(f"echo: {spelling}!") == f"echo: {REDACTED}!", spelling
    assert redactor.redact("a short word stays") == "a short word stays"
