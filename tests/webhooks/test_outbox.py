"""The pieces behind delivery: the outbox's cost for a project without endpoints, the
retry schedule, the address policy and the signature."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from standardwebhooks import Webhook

from chatmodel_service.db import Database
from chatmodel_service.webhooks.addresses import AddressPolicy, RefusedAddress, resolve
from chatmodel_service.webhooks.delivery import Attempt, attempt_values
from chatmodel_service.webhooks.outbox import queue_run_webhooks
from chatmodel_service.webhooks.signing import new_secret, signature
from tests.factories import make_chat_model, make_session

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def test_a_project_without_endpoints_pays_one_query(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    ran = await client.post(
        f"/v1/sessions/{session}/run", json={"messages": [{"role": "user", "content": "Hi"}]}
    )
    run_id = uuid.UUID(ran.json()["detail"]["run_uuid"])
    database: Database = app.state.database
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async with database.transaction() as db:
        await db.connection()  # begun before counting
        event.listen(database.engine.sync_engine, "before_cursor_execute", count)
        try:
            await queue_run_webhooks(db, run_id)
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1, statements
    assert "webhook_endpoint" in statements[0]


def test_attempts_follow_the_schedule_then_fail() -> None:
    schedule = [5.0, 300.0]
    failed = Attempt(500, "the receiver answered 500")
    first = attempt_values(failed, 0, schedule, NOW)
    assert (first["attempts"], first["next_attempt_at"]) == (1, NOW + timedelta(seconds=5))
    second = attempt_values(failed, 1, schedule, NOW)
    assert second["next_attempt_at"] == NOW + timedelta(seconds=300)
    last = attempt_values(failed, 2, schedule, NOW)
    assert (last["status"], last["attempts"], last["next_attempt_at"]) == ("failed", 3, None)
    delivered = attempt_values(Attempt(204, None), 2, schedule, NOW)
    assert (delivered["status"], delivered["delivered_at"]) == ("delivered", NOW)
    assert delivered["last_status_code"] == 204 and delivered["last_error"] is None


async def test_names_are_checked_by_the_addresses_they_resolve_to() -> None:
    strict = AddressPolicy.from_settings([])
    with pytest.raises(RefusedAddress, match="not a public address"):
        await resolve("http://localhost:9/hook", strict)  # a rebinding name looks like this
    with pytest.raises(RefusedAddress):
        await resolve("http://[::ffff:127.0.0.1]:9/hook", strict)
    by_name = AddressPolicy.from_settings(["localhost"])
    assert (await resolve("http://localhost:9/hook", by_name)).address in ("127.0.0.1", "::1")
    by_network = AddressPolicy.from_settings(["127.0.0.0/8", "::1"])
    target = await resolve("https://127.0.0.1:8443/hook", by_network)
    assert (target.address, target.host) == ("127.0.0.1", "127.0.0.1")
    public = await resolve("https://93.184.215.14/hook", strict)  # a literal: no lookup
    assert public.address == "93.184.215.14"
    for refused in ("10.0.0.1", "100.64.0.1", "169.254.169.254", "224.0.0.1", "fe80::1"):
        assert not strict.allows(ipaddress.ip_address(refused))


def test_the_signature_is_standard_webhooks() -> None:
    secret = new_secret()
    body = '{"type":"run.completed"}'
    timestamp = int(NOW.timestamp())
    theirs = Webhook(secret).sign("msg_1", NOW, body)
    assert signature(secret, "msg_1", timestamp, body) == theirs
