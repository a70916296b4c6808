"""``/metrics``: what real runs move, against the scripted upstream and the offline model,
with each app counting on its own registry."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import Attempt, LLMFailure
from chatmodel_service.observability.metrics import ServiceMetrics
from tests.factories import add_messages, expect_error, make_chat_model, make_session, run
from tests.support.auth import keyed, seed_key, started_app
from tests.support.llm_server import Delay, ErrorReply, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp

# A model LiteLLM prices, served by the scripted server: runs have a cost.
PRICED_MODEL = "openai/gpt-4o-mini"


class Scrape:
    """One scrape of ``/metrics``, read with Prometheus' own parser."""

    def __init__(self, text: str) -> None:
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` whose labels include ``labels``; 0 if there is none."""
        found = [
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) <= 1, f"{name} {labels} matches {len(found)} samples"
        return found[0] if found else 0.0


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def scripted_session(client: httpx.AsyncClient, server: ScriptedLLMServer) -> str:
    await make_chat_model(
        client, "remote", model=PRICED_MODEL, api_base=server.base_url, system_prompt="Brief."
    )
    session = await make_session(client, "remote")
    await add_messages(client, session, {"role": "user", "content": "Hello?"})
    return session


async def until(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- runs -------------------------------------------------------------------------------


async def test_a_succeeded_and_a_failed_run_move_their_counters(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await scripted_session(client, llm_server)
    llm_server.enqueue(
        Delay(0.2, Reply("Hi.", prompt_tokens=1000, completion_tokens=500)), ErrorReply(500)
    )
    ok = await run(client, session)
    failed = await run(client, session)
    assert ok["error"] is False and ok["cost"] > 0
    assert failed["error"] is True and failed["error_type"] == "provider_error"

    metrics = await scrape(client)
    remote = {"chat_model": "remote", "version": "1"}
    assert metrics.value("chatmodel_runs_total", **remote, outcome="succeeded") == 1
    assert (
        metrics.value(
            "chatmodel_runs_total", **remote, outcome="failed", error_type="provider_error"
        )
        == 1
    )
    assert metrics.value("chatmodel_run_tokens_total", **remote, kind="prompt") == 1000
    assert metrics.value("chatmodel_run_tokens_total", **remote, kind="completion") == 500
    assert metrics.value("chatmodel_run_cost_usd_total", **remote) == pytest.approx(ok["cost"])

    for outcome in ("succeeded", "failed"):
        labels = {"chat_model": "remote", "outcome": outcome}
        assert metrics.value("chatmodel_run_duration_seconds_count", **labels) == 1
        assert metrics.value("chatmodel_run_upstream_duration_seconds_count", **labels) == 1
    ok_labels = {"chat_model": "remote", "outcome": "succeeded"}
    upstream = metrics.value("chatmodel_run_upstream_duration_seconds_sum", **ok_labels)
    total = metrics.value("chatmodel_run_duration_seconds_sum", **ok_labels)
    assert upstream == pytest.approx(ok["latency_ms"] / 1000)  # the gateway's own figure
    assert 0.2 <= upstream <= total  # the whole request includes the model call


async def test_offline_runs_session_and_stateless_are_counted(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "echo", model=OFFLINE_MODEL)
    session = await make_session(client, "echo")
    await add_messages(client, session, {"role": "user", "content": "Hello"})
    assert (await run(client, session))["content"] == "Hello"
    streamed = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})
    assert streamed.status_code == 200 and '"done":true' in streamed.text
    stateless = await client.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert stateless.status_code == 200, stateless.text

    metrics = await scrape(client)
    echo = {"chat_model": "echo", "version": "1", "outcome": "succeeded"}
    assert metrics.value("chatmodel_runs_total", **echo) == 3
    assert metrics.value("chatmodel_active_streams") == 0  # the stream ended


def test_an_outcome_without_a_model_call_has_no_upstream_time() -> None:
    """Outcomes made outside the gateway (a prompt that cannot fit, a client gone
    mid-stream, a shutdown) carry no attempts: counted, but no upstream latency."""
    metrics = ServiceMetrics()
    refused = LLMFailure(
        model="m", error_type="context_window_exceeded", error_log="", latency_ms=0
    )
    metrics.observe_run("tiny", 1, refused, total_seconds=0.01)
    timed_out = (Attempt("m", "timeout", 5000),)
    answered = replace(refused, error_type="timeout", latency_ms=5000, attempts=timed_out)
    metrics.observe_run("tiny", 1, answered, total_seconds=5.1)

    scraped = Scrape(metrics.render().decode())
    failed = {"chat_model": "tiny", "outcome": "failed"}
    assert (
        scraped.value("chatmodel_runs_total", **failed, error_type="context_window_exceeded") == 1
    )
    assert scraped.value("chatmodel_run_duration_seconds_count", **failed) == 2
    assert scraped.value("chatmodel_run_upstream_duration_seconds_count", **failed) == 1
    assert scraped.value("chatmodel_run_upstream_duration_seconds_sum", **failed) == 5.0


async def test_busy_rejections_are_counted_by_code(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await scripted_session(client, llm_server)
    llm_server.enqueue(Delay(2.0, Reply("first")))  # holds the session meanwhile
    url = f"/v1/sessions/{session}/run"
    key = {"Idempotency-Key": "first-run"}
    first = asyncio.create_task(client.post(url, json={}, headers=key))
    await until(lambda: len(llm_server.requests) == 1)
    expect_error(await client.post(url, json={}), 409, "session_busy", None)
    expect_error(await client.post(url, json={"stream": True}), 409, "session_busy", None)
    expect_error(await client.post(url, json={}, headers=key), 409, "run_in_progress", None)
    openai_busy = await client.post(
        "/v1/chat/completions",
        json={"model": "remote", "messages": [{"role": "user", "content": "Hello?"}]},
        headers={"X-Session-Id": session},
    )
    assert openai_busy.status_code == 409
    assert openai_busy.json()["error"]["code"] == "session_busy"
    assert (await first).json()["content"] == "first"

    metrics = await scrape(client)
    assert metrics.value("chatmodel_busy_rejections_total", code="session_busy") == 3
    assert metrics.value("chatmodel_busy_rejections_total", code="run_in_progress") == 1
    assert metrics.value("chatmodel_runs_total", chat_model="remote") == 1
    busy = {"method": "POST", "route": "/v1/sessions/{session_uuid}/run", "status": "409"}
    assert metrics.value("chatmodel_http_requests_total", **busy) == 3


# -- HTTP -------------------------------------------------------------------------------


async def test_http_requests_are_counted_by_route_template(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "echo")
    for name in ("echo", "nope", "other"):
        await client.get(f"/v1/chat-models/{name}")
    await client.get("/no/such/path/123")
    await client.request("BREW", "/healthz")

    metrics = await scrape(client)
    route = {"method": "GET", "route": "/v1/chat-models/{name}"}
    assert metrics.value("chatmodel_http_requests_total", **route, status="200") == 1
    assert metrics.value("chatmodel_http_requests_total", **route, status="404") == 2
    assert metrics.value("chatmodel_http_request_duration_seconds_count", **route) == 3
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert metrics.value("chatmodel_http_requests_total", **unmatched) == 1
    odd_method = {"method": "other", "route": "/healthz", "status": "405"}
    assert metrics.value("chatmodel_http_requests_total", **odd_method) == 1
    paths = {s.labels.get("route") for s in metrics.samples}
    assert not any(p and ("nope" in p or "123" in p) for p in paths)  # no raw paths
    assert metrics.value("process_resident_memory_bytes") > 0  # the process, too


async def test_each_app_counts_on_its_own_registry(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, gateway: LLMGateway
) -> None:
    await client.get("/healthz")
    async with started_app(database_url, gateway, auth="disabled") as other:
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as fresh:
            metrics = await scrape(fresh)
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert metrics.value("chatmodel_http_requests_total", **healthz) == 0
    assert (await scrape(client)).value("chatmodel_http_requests_total", **healthz) == 1


# -- who may scrape ---------------------------------------------------------------------


async def test_metrics_need_an_admin_key_when_keys_are_required(
    database_url: str, gateway: LLMGateway
) -> None:
    async with started_app(database_url, gateway) as app:
        admin, _ = await seed_key(app, "admin", "ops")
        client_key, _ = await seed_key(app, "client", "web")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            expect_error(await http.get("/metrics"), 401, "unauthorized", None)
            expect_error(
                await http.get("/metrics", headers=keyed(client_key)), 403, "forbidden", None
            )
            assert (await http.get("/metrics", headers=keyed(admin))).status_code == 200


async def test_metrics_public_serves_them_without_a_key(
    database_url: str, gateway: LLMGateway
) -> None:
    async with started_app(database_url, gateway, metrics_public=True) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.get("/v1/chat-models")).status_code == 401  # the rest still not


# -- real uvicorn: a stream in flight ---------------------------------------------------


def test_active_streams_while_a_stream_is_in_flight(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    llm_server.enqueue(SlowStream(Reply(" ".join(["word"] * 30)), chunk_delay=0.05))
    with httpx.Client(base_url=live_app.base_url, timeout=30) as http:
        http.post("/v1/chat-models", json={"name": "slow"}).raise_for_status()
        http.post(
            "/v1/chat-models/slow/versions",
            json={
                "system_prompt": "s",
                "model": "openai/slow",
                "api_base": llm_server.base_url,
                "publish": True,
            },
        ).raise_for_status()
        session = http.post("/v1/sessions", json={"chat_model": "slow"}).json()["uuid"]
        http.post(
            f"/v1/sessions/{session}/messages",
            json={"messages": [{"role": "user", "content": "Talk slowly."}]},
        ).raise_for_status()

        during: list[float] = []
        first_event = threading.Event()

        def stream() -> None:
            with httpx.Client(base_url=live_app.base_url, timeout=30) as streaming:
                url = f"/v1/sessions/{session}/run"
                with streaming.stream("POST", url, json={"stream": True}) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: "):
                            first_event.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert first_event.wait(10)
        during.append(Scrape(http.get("/metrics").text).value("chatmodel_active_streams"))
        reader.join(30)
        after = Scrape(http.get("/metrics").text)

    assert during == [1]
    assert after.value("chatmodel_active_streams") == 0
    labels = {"chat_model": "slow", "outcome": "succeeded"}
    assert after.value("chatmodel_runs_total", **labels) == 1
    streamed = after.value("chatmodel_run_duration_seconds_sum", **labels)
    assert streamed >= 29 * 0.05  # until the last event, not the first
