"""API keys end to end: create/list/revoke, hashing, last use, who did what, bootstrapping
from the command line, the loopback-only no-auth mode, limits, and secrets kept out of
responses, run records and logs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from chatmodel import APIError, ChatModel
from chatmodel_service.app import create_app
from chatmodel_service.auth.startup import AuthRefused, auth_required, check_serve_auth
from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models import ApiKey, ChatRun
from tests.support.auth import BASE_URL, AuthWorld, auth_settings, keyed, seed_key, started_app
from tests.support.databases import untouched
from tests.support.llm_server import ErrorReply, ScriptedLLMServer
from tests.support.servers import serve_in_thread

HINT = "chatmodel keys create --project default --scope admin --name ops"
PROVIDER_SECRET = "sk-live-abc123secret"
USER = {"role": "user", "content": "Hello?"}


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


async def _rows(app: FastAPI, statement: Any) -> list[Any]:
    database: Database = app.state.database
    async with database.transaction() as db:
        return list((await db.execute(statement)).scalars())


async def _message_count(app: FastAPI) -> int:
    database: Database = app.state.database
    async with database.transaction() as db:
        return int(await db.scalar(text("SELECT count(*) FROM session_message")) or 0)


async def make_model(client: httpx.AsyncClient, key: str, **version: Any) -> None:
    made = await client.post("/v1/chat-models", json={"name": "assistant"}, headers=keyed(key))
    assert made.status_code == 201, made.text
    fields = {"system_prompt": "Be brief.", "model": OFFLINE_MODEL, "publish": True} | version
    created = await client.post(
        "/v1/chat-models/assistant/versions", json=fields, headers=keyed(key)
    )
    assert created.status_code == 201, created.text


# -- keys over the API ------------------------------------------------------------------


async def test_a_key_is_shown_once_stored_hashed_and_revocable(world: AuthWorld) -> None:
    admin = keyed(world.admin_a)
    created = await world.client.post(
        "/v1/keys", json={"name": "batch", "scope": "client"}, headers=admin
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(f"cm_{body['prefix']}_") and len(key) > 40
    assert (body["name"], body["scope"], body["project"]) == ("batch", "client", "default")

    listed = (await world.client.get("/v1/keys", headers=admin)).json()["data"]
    assert "key" not in next(k for k in listed if k["name"] == "batch")
    assert key not in str(listed)

    [stored] = await _rows(world.app, select(ApiKey).where(ApiKey.name == "batch"))
    assert stored.hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str([getattr(stored, c) for c in ("name", "prefix", "hash", "scope")])

    assert (await world.client.get("/v1/sessions/x/runs", headers=keyed(key))).status_code == 422
    revoked = await world.client.delete(f"/v1/keys/{body['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await world.client.get("/v1/chat-models", headers=keyed(key))
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"


async def test_last_used_at_is_written_at_most_once_a_minute(world: AuthWorld) -> None:
    def used() -> Any:
        return select(ApiKey.last_used_at).where(ApiKey.name == "web")

    assert (await world.client.get("/v1/models", headers=keyed(world.client_a))).status_code == 200
    [first] = await _rows(world.app, used())
    assert first is not None  # the world's fixture already used the key once
    await world.client.get("/v1/models", headers=keyed(world.client_a))
    assert await _rows(world.app, used()) == [first]

    database: Database = world.app.state.database
    async with database.transaction() as db:
        stale = first - timedelta(minutes=2)
        await db.execute(update(ApiKey).where(ApiKey.name == "web").values(last_used_at=stale))
    await world.client.get("/v1/models", headers=keyed(world.client_a))
    [later] = await _rows(world.app, used())
    assert later > first


async def test_a_new_project_comes_with_its_own_admin_key(world: AuthWorld) -> None:
    made = await world.client.post(
        "/v1/projects", json={"name": "team-c"}, headers=keyed(world.admin_a)
    )
    assert made.status_code == 201, made.text
    key = made.json()["admin_key"]["key"]
    own = await world.client.get("/v1/projects", headers=keyed(key))
    assert [p["name"] for p in own.json()["data"]] == ["team-c"]
    assert (
        await world.client.get("/v1/chat-models/assistant", headers=keyed(key))
    ).status_code == 404
    again = await world.client.post(
        "/v1/projects", json={"name": "team-c"}, headers=keyed(world.admin_a)
    )
    assert again.status_code == 409


# -- who did it -------------------------------------------------------------------------


async def test_key_names_are_recorded_on_releases_and_runs(world: AuthWorld) -> None:
    admin, client = keyed(world.admin_a), keyed(world.client_a)
    published = await world.client.post(
        "/v1/chat-models/assistant/publish", json={"version": 1}, headers=admin
    )
    assert (published.json()["published_by"], published.json()["key_name"]) == ("ops", "ops")
    by_alice = await world.client.post(
        "/v1/chat-models/assistant/publish", json={"version": 2, "by": "alice"}, headers=admin
    )
    assert (by_alice.json()["published_by"], by_alice.json()["key_name"]) == ("alice", "ops")

    session = world.session_a
    await world.client.post(
        f"/v1/sessions/{session}/messages", json={"messages": [USER]}, headers=client
    )
    ran = await world.client.post(f"/v1/sessions/{session}/run", json={}, headers=client)
    assert ran.status_code == 200, ran.text
    runs = (await world.client.get(f"/v1/sessions/{session}/runs", headers=client)).json()
    assert [run["key_name"] for run in runs["data"]] == ["web"]

    completion = await world.client.post(
        "/v1/chat/completions", json={"model": "assistant", "messages": [USER]}, headers=client
    )
    assert completion.status_code == 200, completion.text
    names = await _rows(world.app, select(ChatRun.key_name).where(ChatRun.session_id.is_(None)))
    assert names == ["web"]


# -- bootstrapping and the no-auth mode --------------------------------------------------


def _cli(*args: str, database: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    return subprocess.run(
        [sys.executable, "-m", "chatmodel._cli", *args],
        env=clean | {"CHATMODEL_DATABASE_URL": database} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_keys_create_prints_a_working_key_on_the_last_line(
    empty_database_url: str, gateway: LLMGateway
) -> None:
    database = empty_database_url
    done = await asyncio.to_thread(
        _cli,
        "keys",
        "create",
        "--project",
        "default",
        "--scope",
        "admin",
        "--name",
        "ops",
        database=database,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("cm_")

    async with started_app(database, gateway) as app, client_for(app) as client:
        assert (await client.get("/v1/keys")).status_code == 401
        keys = await client.get("/v1/keys", headers={"x-api-key": key})
        assert keys.status_code == 200
        assert [k["name"] for k in keys.json()["data"]] == ["ops"]

    listed = await asyncio.to_thread(_cli, "keys", "list", database=database)
    assert listed.returncode == 0, listed.stderr
    assert "ops" in listed.stdout and key[:11] in listed.stdout and key not in listed.stdout


def test_auth_is_off_only_on_loopback_and_refused_elsewhere() -> None:
    assert check_serve_auth(Settings(host="127.0.0.1")) is False
    assert check_serve_auth(Settings(host="::1")) is False
    assert check_serve_auth(Settings(host="localhost")) is False
    assert check_serve_auth(Settings(host="0.0.0.0")) is True  # auto: keys required
    assert check_serve_auth(Settings(host="127.0.0.1", auth="required")) is True
    assert auth_required(Settings(host="10.1.2.3", auth="auto")) is True
    with pytest.raises(AuthRefused, match=HINT):
        check_serve_auth(Settings(host="0.0.0.0", auth="disabled"))


def test_serve_on_a_public_address_without_auth_refuses_to_start(
    empty_database_url: str,
) -> None:
    database = empty_database_url
    done = _cli("serve", "--host", "0.0.0.0", database=database, CHATMODEL_AUTH="disabled")
    assert done.returncode != 0
    assert HINT in done.stderr
    assert untouched(database)  # refused before touching anything


def test_serve_on_a_public_address_with_no_key_yet_refuses_to_start(
    empty_database_url: str,
) -> None:
    database = empty_database_url
    done = _cli("serve", "--host", "0.0.0.0", "--port", "9", database=database)
    assert done.returncode == 2
    assert "none exists yet" in done.stderr and HINT in done.stderr


async def test_no_auth_mode_logs_a_warning_at_start(
    database_url: str, gateway: LLMGateway, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=database_url, seed_demo=False), gateway)
    with caplog.at_level(logging.WARNING, logger="chatmodel_service"):
        async with app.router.lifespan_context(app), client_for(app) as client:
            assert (await client.get("/v1/keys")).status_code == 200
    assert "API keys are NOT required" in caplog.text


# -- limits -----------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after_and_stores_nothing(
    database_url: str, gateway: LLMGateway
) -> None:
    async with started_app(database_url, gateway, rate_limit_per_minute=3) as app:
        admin, _ = await seed_key(app, "admin", "ops")
        client_key, _ = await seed_key(app, "client", "web")
        async with client_for(app) as client:
            await make_model(client, admin)
            headers = keyed(client_key)
            made = await client.post(
                "/v1/sessions", json={"chat_model": "assistant"}, headers=headers
            )
            session = made.json()["uuid"]
            add = {"messages": [USER]}
            assert (
                await client.post(f"/v1/sessions/{session}/messages", json=add, headers=headers)
            ).status_code == 201
            assert (
                await client.post(f"/v1/sessions/{session}/messages", json=add, headers=headers)
            ).status_code == 201
            before = await _message_count(app)
            limited = await client.post(
                f"/v1/sessions/{session}/messages", json=add, headers=headers
            )
            assert limited.status_code == 429
            assert limited.json()["error"] == "rate_limited"
            assert int(limited.headers["retry-after"]) >= 1
            assert await _message_count(app) == before
            openai_limited = await client.post(
                "/v1/chat/completions",
                json={"model": "assistant", "messages": [USER]},
                headers=headers,
            )
            assert openai_limited.status_code == 429
            assert openai_limited.json()["error"]["type"] == "rate_limit_error"
            assert "retry-after" in openai_limited.headers
            # another key has its own bucket
            assert (await client.get("/v1/chat-models", headers=keyed(admin))).status_code == 200


async def test_over_limit_content_messages_and_tools_are_refused_and_store_nothing(
    database_url: str, gateway: LLMGateway
) -> None:
    limits = {"max_content_chars": 10, "max_messages_per_add": 2, "max_functions_per_run": 1}
    async with started_app(database_url, gateway, **limits) as app:
        admin, _ = await seed_key(app, "admin", "ops")
        async with client_for(app) as client:
            headers = keyed(admin)
            await make_model(client, admin)
            made = await client.post(
                "/v1/sessions", json={"chat_model": "assistant"}, headers=headers
            )
            messages = f"/v1/sessions/{made.json()['uuid']}/messages"

            long = await client.post(
                messages,
                json={"messages": [{"role": "user", "content": "x" * 11}]},
                headers=headers,
            )
            assert long.status_code == 413, long.text
            assert long.json()["field"] == "messages.0.content"
            many = await client.post(messages, json={"messages": [USER] * 3}, headers=headers)
            assert many.status_code == 422
            assert many.json()["field"] == "messages"
            tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            run = await client.post(
                messages.replace("/messages", "/run"), json={"tools": [tool, tool]}, headers=headers
            )
            assert run.status_code == 422 and run.json()["field"] == "tools"
            openai_long = await client.post(
                "/v1/chat/completions",
                json={"model": "assistant", "messages": [{"role": "user", "content": "y" * 11}]},
                headers=headers,
            )
            assert openai_long.status_code == 413
            assert "error" in openai_long.json()
            assert await _message_count(app) == 0
            assert await _rows(app, select(ChatRun.id)) == []


# -- secrets ----------------------------------------------------------------------------


async def test_provider_and_our_keys_never_reach_responses_records_or_logs(
    database_url: str,
    gateway: LLMGateway,
    llm_server: ScriptedLLMServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [PROVIDER_SECRET, os.environ["OPENAI_API_KEY"]]
    async with started_app(database_url, gateway) as app:
        admin, _ = await seed_key(app, "admin", "ops")
        client_key, _ = await seed_key(app, "client", "web")
        secrets += [admin, client_key]
        async with client_for(app) as client:
            await make_model(
                client, admin, model="openai/scripted-model", api_base=llm_server.base_url
            )
            headers = keyed(client_key)
            made = await client.post(
                "/v1/sessions", json={"chat_model": "assistant"}, headers=headers
            )
            session = made.json()["uuid"]
            await client.post(
                f"/v1/sessions/{session}/messages", json={"messages": [USER]}, headers=headers
            )
            failure = f"Incorrect API key provided: {PROVIDER_SECRET}"
            llm_server.enqueue(ErrorReply(401, failure), ErrorReply(401, failure))
            ran = await client.post(f"/v1/sessions/{session}/run", json={}, headers=headers)
            assert ran.status_code == 200 and ran.json()["error"] is True
            openai_failed = await client.post(
                "/v1/chat/completions",
                json={"model": "assistant", "messages": [USER]},
                headers=headers,
            )
            assert openai_failed.status_code >= 400
            runs = await client.get(f"/v1/sessions/{session}/runs", headers=headers)
            bad = await client.get("/v1/chat-models", headers=keyed(client_key + "x"))
            assert bad.status_code == 401
        error_logs = await _rows(app, select(ChatRun.error_log))
    assert len(error_logs) == 2 and all(error_logs)
    assert "Incorrect API key provided" in error_logs[0]  # the provider's words survive
    seen = [ran.text, openai_failed.text, runs.text, bad.text, *error_logs, caplog.text]
    for secret in secrets:
        for where in seen:
            assert secret not in where


# -- clients ----------------------------------------------------------------------------


async def test_the_python_client_sends_its_key(world: AuthWorld) -> None:
    async with client_for(world.app) as http:
        chat = ChatModel(
            "assistant", async_http_client=http, base_url=BASE_URL, api_key=world.client_a
        )
        added = await chat.aadd_messages([USER])
        assert [m.content for m in added] == ["Hello?"]
        result = await chat.arun()
        assert result.error is False
        anonymous = ChatModel("assistant", async_http_client=http, base_url=BASE_URL)
        with pytest.raises(APIError) as refused:
            await anonymous.aget_config()
        assert (refused.value.status_code, refused.value.code) == (401, "unauthorized")


def test_the_openai_sdk_works_with_a_key(database_url: str, gateway: LLMGateway) -> None:
    settings = auth_settings(database_url, seed_demo=True)

    async def new_key() -> str:
        database = Database(create_engine(settings))
        try:
            async with database.transaction() as db:
                from chatmodel_service.auth.schemas import KeyCreate
                from chatmodel_service.auth.service import create_key
                from chatmodel_service.models import DEFAULT_PROJECT_ID

                made = await create_key(db, DEFAULT_PROJECT_ID, KeyCreate(name="sdk"))
                return made.key
        finally:
            await database.dispose()

    key = asyncio.run(new_key())
    with serve_in_thread(create_app(settings, gateway)) as live:
        with openai.OpenAI(base_url=f"{live.base_url}/v1", api_key=key, max_retries=0) as sdk:
            completion = sdk.chat.completions.create(
                model="simple_assistant", messages=[{"role": "user", "content": "Hi"}]
            )
            assert completion.choices[0].message.content == "Hi"
        with (
            openai.OpenAI(
                base_url=f"{live.base_url}/v1", api_key="sk-wrong", max_retries=0
            ) as wrong,
            pytest.raises(openai.AuthenticationError),
        ):
            wrong.models.list()


def test_admin_cli_works_with_a_key_and_refuses_without(
    database_url: str, gateway: LLMGateway
) -> None:
    created = _cli(
        "keys",
        "create",
        "--project",
        "default",
        "--scope",
        "admin",
        "--name",
        "cli",
        database=database_url,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    settings = auth_settings(database_url, seed_demo=True)
    with serve_in_thread(create_app(settings, gateway)) as live:
        listed = _cli(
            "--base-url",
            live.base_url,
            "--api-key",
            key,
            "models",
            "list",
            "--json",
            database=database_url,
        )
        assert listed.returncode == 0, listed.stderr
        assert [m["name"] for m in json.loads(listed.stdout)["data"]] == ["simple_assistant"]
        from_env = _cli(
            "--base-url",
            live.base_url,
            "releases",
            "simple_assistant",
            database=database_url,
            CHATMODEL_API_KEY=key,
        )
        assert from_env.returncode == 0, from_env.stderr
        refused = _cli("--base-url", live.base_url, "models", "list", database=database_url)
        assert refused.returncode == 1
        assert "API key" in refused.stderr and "Traceback" not in refused.stderr
