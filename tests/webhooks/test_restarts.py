"""No webhook is lost with its server: deliveries wait in the database for the next
start, whether the server stopped before sending them or was killed mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from tests.factories import make_chat_model, make_session
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer
from tests.support.servers import background_run_at_the_model, serve_process
from tests.webhooks.receiver import Answer, Receiver

QUESTION = {"role": "user", "content": "What is the answer?"}
BASE = "http://chatmodel.test"


async def delivery_of(client: httpx.AsyncClient, hook: str) -> dict[str, Any]:
    log = await client.get(f"/v1/webhooks/{hook}/deliveries")
    [delivery] = log.json()["data"]
    found: dict[str, Any] = delivery
    return found


async def test_a_delivery_the_server_could_not_make_is_made_after_a_restart(
    settings: Settings, gateway: LLMGateway
) -> None:
    """The receiver is down when the run ends; the server stops before the next attempt
    is due; a server started later on the same database delivers it."""
    receiver = Receiver()  # its port, nobody listening yet
    slow_retries = settings.model_copy(update={"webhook_retry_schedule": [1.0, 1.0]})
    first = create_app(slow_retries, gateway)
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=BASE) as client,
    ):
        made = await client.post(
            "/v1/webhooks", json={"url": receiver.url(), "event_types": ["run.completed"]}
        )
        hook = made.json()
        await make_chat_model(client, "assistant")
        session = await make_session(client, "assistant")
        ran = await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
        deadline = time.monotonic() + 5
        while (delivery := await delivery_of(client, hook["id"]))["attempts"] == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert "Connect" in delivery["last_error"], delivery  # refused: nothing listened

    receiver.start()
    try:
        second = create_app(slow_retries, gateway)
        async with (
            second.router.lifespan_context(second),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=BASE) as again,
        ):
            [received] = await receiver.received(within=5)
            event = Webhook(hook["secret"]).verify(received.body, received.headers)
            assert event["data"]["run_uuid"] == ran.json()["detail"]["run_uuid"]
            assert received.headers["webhook-id"] == delivery["message_id"]
            deadline = time.monotonic() + 5
            while (done := await delivery_of(again, hook["id"]))["status"] == "pending":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert (done["status"], done["attempts"]) == ("delivered", 2)
    finally:
        receiver.stop()


async def test_a_send_cut_short_by_a_stop_is_made_by_the_next_start(
    settings: Settings, gateway: LLMGateway, receiver: Receiver
) -> None:
    """The server stops while the receiver is still answering: the attempt is dropped
    and its claim released, and the next start sends it (at least once)."""
    receiver.script("/hooks", Answer(200, sleep=3))
    first = create_app(settings, gateway)
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=BASE) as client,
    ):
        made = await client.post(
            "/v1/webhooks", json={"url": receiver.url(), "event_types": ["run.completed"]}
        )
        hook = made.json()
        await make_chat_model(client, "assistant")
        session = await make_session(client, "assistant")
        await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
        deadline = time.monotonic() + 5
        while not receiver.answering:  # the attempt is in flight
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    second = create_app(settings, gateway)
    async with (
        second.router.lifespan_context(second),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=BASE) as again,
    ):
        deadline = time.monotonic() + 5
        while (done := await delivery_of(again, hook["id"]))["status"] == "pending":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert done["status"] == "delivered"
    received = await receiver.received(2, within=5)  # the cut-short one answered late
    assert {r.headers["webhook-id"] for r in received} == {done["message_id"]}


def test_a_run_killed_with_its_server_is_told_failed_interrupted(
    tmp_path: Path, database_url: str, llm_server: ScriptedLLMServer, receiver: Receiver
) -> None:
    """SIGKILL mid-run: the next server start gives the run up (its lease lapsed) and
    tells the webhook in the same transaction."""
    env = {
        "CHATMODEL_RUN_LEASE_SECONDS": "2",
        "CHATMODEL_WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
        "CHATMODEL_WEBHOOK_RETRY_SCHEDULE": "[0.2]",
    }
    llm_server.enqueue(Delay(30, Reply("Never.")))
    with serve_process(tmp_path / "first", database_url, env) as (base_url, process):
        hook = httpx.post(
            f"{base_url}/v1/webhooks",
            json={"url": receiver.url(), "event_types": ["run.failed", "run.completed"]},
        ).json()
        _, run_uuid = background_run_at_the_model(base_url, llm_server, QUESTION)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = time.monotonic()
    assert receiver.requests == []
    time.sleep(max(0.0, killed_at + 2.5 - time.monotonic()))  # one lease, and a little
    with serve_process(tmp_path / "second", database_url, env):
        [received] = receiver.received_sync(within=10)
    event = Webhook(hook["secret"]).verify(received.body, received.headers)
    assert event["type"] == "run.failed"
    assert event["data"]["run_uuid"] == run_uuid
    assert (event["data"]["status"], event["data"]["error_type"]) == ("failed", "interrupted")


def test_a_run_killed_beside_a_live_server_is_told_failed_within_a_lease(
    tmp_path: Path, database_url: str, llm_server: ScriptedLLMServer, receiver: Receiver
) -> None:
    """SIGKILL mid-run while another server runs on the database: that server's sweep
    gives the run up when its lease lapses, and the webhook says so, within one lease
    of the kill (and the delivery's retry schedule)."""
    env = {
        "CHATMODEL_RUN_LEASE_SECONDS": "2",
        "CHATMODEL_WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
        "CHATMODEL_WEBHOOK_RETRY_SCHEDULE": "[0.2]",
    }
    llm_server.enqueue(Delay(30, Reply("Never.")))
    with (
        serve_process(tmp_path / "second", database_url, env),
        serve_process(tmp_path / "first", database_url, env) as (base_url, process),
    ):
        hook = httpx.post(
            f"{base_url}/v1/webhooks", json={"url": receiver.url(), "event_types": ["run.failed"]}
        ).json()
        _, run_uuid = background_run_at_the_model(base_url, llm_server, QUESTION)
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(timeout=10)
        [received] = receiver.received_sync(within=10)
        told_after = time.monotonic() - killed_at
    event = Webhook(hook["secret"]).verify(received.body, received.headers)
    assert event["type"] == "run.failed"
    assert event["data"]["run_uuid"] == run_uuid
    assert (event["data"]["status"], event["data"]["error_type"]) == ("failed", "interrupted")
    # One lease (2 s), the sweep's slack and the delivery worker's pick-up.
    assert told_after < 2 + 1, f"told {told_after:.2f} s after the kill"
