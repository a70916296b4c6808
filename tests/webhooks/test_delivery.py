"""Runs that finish are told to their project's endpoints: signed (verified here with the
``standardwebhooks`` package, as a receiver would), filtered by event type, retried, and
logged; a redelivery sends the same message again."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from standardwebhooks import Webhook

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from tests.factories import (
    expect_error,
    make_chat_model,
    make_remote_session,
    make_session,
    sse_events,
    stored_messages,
)
from tests.support.llm_server import Delay, ErrorReply, Reply, ScriptedLLMServer, SlowStream
from tests.webhooks.receiver import Answer, Received, Receiver

QUESTION = {"role": "user", "content": "What is the answer?"}
BASE = "http://chatmodel.test"


async def register(
    client: httpx.AsyncClient, url: str, *event_types: str, **fields: Any
) -> dict[str, Any]:
    made = await client.post(
        "/v1/webhooks", json={"url": url, "event_types": list(event_types), **fields}
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def deliveries(client: httpx.AsyncClient, hook: str, **params: Any) -> list[dict[str, Any]]:
    log = await client.get(f"/v1/webhooks/{hook}/deliveries", params=params)
    assert log.status_code == 200, log.text
    data: list[dict[str, Any]] = log.json()["data"]
    return data


async def settled(client: httpx.AsyncClient, hook: str, within: float = 5) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending."""
    deadline = time.monotonic() + within
    while True:
        log = await deliveries(client, hook)
        if log and all(d["status"] != "pending" for d in log):
            return log
        assert time.monotonic() < deadline, log
        await asyncio.sleep(0.05)


def verified(secret: str, received: Received) -> dict[str, Any]:
    """The event, its signature checked as a Standard Webhooks receiver checks it."""
    event: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return event


async def test_a_completed_run_is_told_signed(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await register(client, receiver.url(), "run.completed", "run.failed")
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    ran = await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
    assert ran.status_code == 200, ran.text

    [received] = await receiver.received()
    event = verified(hook["secret"], received)
    assert event["type"] == "run.completed"
    data = event["data"]
    run = ran.json()
    assert data["run_uuid"] == run["detail"]["run_uuid"]
    assert (data["session_uuid"], data["chat_model"], data["version"]) == (session, "assistant", 1)
    assert (data["status"], data["error_type"], data["response_id"]) == ("succeeded", None, None)
    assert data["usage"]["total_tokens"] == (
        data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]
    )
    assert data["latency_ms"] >= 0 and event["timestamp"].endswith("Z")
    assert received.headers["content-type"] == "application/json"

    [delivery] = await settled(client, hook["id"])
    assert received.headers["webhook-id"] == delivery["message_id"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["event_type"] == "run.completed" and delivery["run_uuid"] == data["run_uuid"]
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None
    assert delivery["last_error"] is None
    tampered = Received(received.path, received.headers, received.body.replace("1", "2"))
    try:
        verified(hook["secret"], tampered)
    except Exception as exc:
        assert type(exc).__name__ == "WebhookVerificationError"
    else:
        raise AssertionError("a changed body passed the signature check")


async def test_a_failed_run_is_told_only_to_endpoints_that_want_it(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    failures = await register(client, receiver.url("/failures"), "run.failed")
    successes = await register(client, receiver.url("/successes"), "run.completed")
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(ErrorReply(400, "no such thing", type="invalid_request_error"))
    ran = await client.post(f"/v1/sessions/{session}/run", json={})
    assert ran.json()["error"] is True, ran.text

    [received] = await receiver.received(path="/failures")
    event = verified(failures["secret"], received)
    assert event["type"] == "run.failed"
    assert event["data"]["status"] == "failed" and event["data"]["error_type"]
    assert event["data"]["error_type"] == ran.json()["error_type"]
    await asyncio.sleep(0.3)
    assert [r.path for r in receiver.requests] == ["/failures"]
    assert await deliveries(client, successes["id"]) == []


async def test_a_cancelled_background_run_is_told_cancelled(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    hook = await register(client, receiver.url(), "run.completed", "run.cancelled")
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(Delay(3, Reply("Too late.")))
    started = await client.post(f"/v1/sessions/{session}/run", json={"background": True})
    assert started.status_code == 202, started.text
    await asyncio.sleep(0.2)
    cancelled = await client.post(f"/v1/runs/{started.json()['uuid']}/cancel")
    assert cancelled.json()["status"] == "cancelled", cancelled.text

    [received] = await receiver.received()
    event = verified(hook["secret"], received)
    assert event["type"] == "run.cancelled"
    assert event["data"]["run_uuid"] == started.json()["uuid"]
    assert (event["data"]["status"], event["data"]["usage"]) == ("cancelled", None)
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1  # nothing more for it


async def test_a_responses_api_run_is_told_as_a_run_and_as_a_response(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    every = await register(
        client, receiver.url("/all"), "run.completed", "response.completed", "response.incomplete"
    )
    await register(client, receiver.url("/runs"), "run.completed")
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    llm_server.enqueue(Reply("Forty-two."), Reply("Forty", finish_reason="length"))
    answer = await client.post("/v1/responses", json={"model": "remote", "input": "Hi"})
    assert answer.status_code == 200, answer.text
    response_id = answer.json()["id"]

    received = await receiver.received(2, path="/all")
    events = sorted((verified(every["secret"], r) for r in received), key=lambda e: e["type"])
    assert [e["type"] for e in events] == ["response.completed", "run.completed"]
    assert {e["data"]["response_id"] for e in events} == {response_id}
    [only_run] = await receiver.received(path="/runs")
    assert only_run.event["type"] == "run.completed"

    cut = await client.post(
        "/v1/responses",
        json={"model": "remote", "input": "Again", "previous_response_id": response_id},
    )
    assert cut.json()["status"] == "incomplete", cut.text
    received = await receiver.received(4, path="/all")
    kinds = sorted(verified(every["secret"], r)["type"] for r in received[2:])
    assert kinds == ["response.incomplete", "run.completed"]


async def test_a_failing_receiver_is_retried_then_given_up(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Attempts at once, then 0.2 s and 0.2 s later (these tests' schedule)."""
    receiver.script("/flaky", Answer(500), Answer(503))
    receiver.script("/broken", Answer(500), Answer(502), Answer(404))
    flaky = await register(client, receiver.url("/flaky"), "run.completed")
    broken = await register(client, receiver.url("/broken"), "run.completed")
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})

    tries = await receiver.received(3, path="/flaky")
    assert len({t.headers["webhook-id"] for t in tries}) == 1  # one message, three attempts
    assert all(verified(flaky["secret"], t)["type"] == "run.completed" for t in tries)
    [delivered] = await settled(client, flaky["id"])
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    [failed] = await settled(client, broken["id"])
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 3, 404)
    assert "404" in failed["last_error"] and failed["next_attempt_at"] is None
    await asyncio.sleep(0.5)
    assert len([r for r in receiver.requests if r.path == "/broken"]) == 3  # no fourth


async def test_redelivery_sends_the_same_message_again(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script("/hooks", Answer(500), Answer(500), Answer(500))
    hook = await register(client, receiver.url(), "run.completed")
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
    [failed] = await settled(client, hook["id"])
    assert failed["status"] == "failed"

    again = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
    tries = await receiver.received(4)
    assert tries[3].headers["webhook-id"] == tries[0].headers["webhook-id"]
    assert verified(hook["secret"], tries[3]) == verified(hook["secret"], tries[0])
    [delivered] = await settled(client, hook["id"])
    assert (delivered["id"], delivered["status"], delivered["attempts"]) == (
        failed["id"],
        "delivered",
        1,
    )
    missing = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{hook['id']}/redeliver")
    expect_error(missing, 404, "delivery_not_found", "delivery_id")


async def test_the_delivery_log_is_newest_first_in_pages(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await register(client, receiver.url(), "run.completed")
    await make_chat_model(client, "assistant")
    session = await make_session(client, "assistant")
    runs = []
    for _ in range(5):
        ran = await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
        runs.append(ran.json()["detail"]["run_uuid"])
    await receiver.received(5)
    first = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 2})
    page = first.json()
    seen = [d["run_uuid"] for d in page["data"]]
    while page["next_before"] is not None:
        page = (
            await client.get(
                f"/v1/webhooks/{hook['id']}/deliveries",
                params={"limit": 2, "before": page["next_before"]},
            )
        ).json()
        seen += [d["run_uuid"] for d in page["data"]]
    assert seen == runs[::-1]
    unknown = await client.get(
        f"/v1/webhooks/{hook['id']}/deliveries", params={"before": hook["id"]}
    )
    expect_error(unknown, 422, "invalid_input", "before")


async def test_a_slow_receiver_does_not_slow_runs(
    settings: Settings, gateway: LLMGateway, receiver: Receiver
) -> None:
    """The receiver takes 2.5 s an answer: the runs finish while it is still answering
    the first of their webhooks, and the process never sends more than its limit (3 here)
    at once."""
    receiver.script("/hooks", *[Answer(200, sleep=2.5)] * 4)
    limited = settings.model_copy(update={"webhook_max_concurrent_deliveries": 3})
    app = create_app(limited, gateway)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        await register(client, receiver.url(), "run.completed")
        await make_chat_model(client, "assistant")
        session = await make_session(client, "assistant")
        for _ in range(4):
            ran = await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
            assert ran.status_code == 200
            await asyncio.sleep(0.05)  # each webhook on its way before the next run
        assert receiver.answering > 0, "no webhook was being sent while the runs ran"
        assert not receiver.requests, "a run waited for the receiver's answer"
        await receiver.received(4, within=10)
    assert receiver.most_at_once == 3


async def test_a_receiver_that_answers_too_late_is_tried_again(
    settings: Settings, gateway: LLMGateway, receiver: Receiver
) -> None:
    receiver.script("/hooks", Answer(200, sleep=1.5))
    impatient = settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    app = create_app(impatient, gateway)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        hook = await register(client, receiver.url(), "run.completed")
        await make_chat_model(client, "assistant")
        session = await make_session(client, "assistant")
        await client.post(f"/v1/sessions/{session}/run", json={"messages": [QUESTION]})
        [delivered] = await settled(client, hook["id"])
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 2)
    assert delivered["last_error"] is None


async def upstream_stream_open(llm_server: ScriptedLLMServer, within: float = 5) -> None:
    """Until the upstream has a stream open (the run's model call has begun)."""
    deadline = time.monotonic() + within
    while not llm_server.open_streams:
        assert time.monotonic() < deadline, "the model call never began"
        await asyncio.sleep(0.02)


async def test_a_run_cancelled_mid_stream_is_closed_upstream_stores_nothing_and_is_told(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    hook = await register(client, receiver.url(), "run.completed", "run.failed", "run.cancelled")
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    words = [f"w{i}" for i in range(30)]
    llm_server.enqueue(SlowStream(Reply(" ".join(words)), chunk_delay=0.1))
    streaming = asyncio.create_task(
        client.post(f"/v1/sessions/{session}/run", json={"stream": True})
    )
    await upstream_stream_open(llm_server)
    await asyncio.sleep(0.35)  # a few pieces on their way
    [running] = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert running["status"] == "running", running
    cancelled = await client.post(f"/v1/runs/{running['uuid']}/cancel")
    assert cancelled.json()["status"] == "cancelled", cancelled.text

    answer = await asyncio.wait_for(streaming, 5)
    assert answer.headers["X-Run-Id"] == running["uuid"]
    *pieces, end = sse_events(answer.text)
    assert (end["done"], end["error_type"]) == (True, "cancelled"), end
    text = "".join(piece["content"] for piece in pieces)
    assert 0 < len(pieces) < len(words) and " ".join(words).startswith(text), text
    deadline = time.monotonic() + 5
    while llm_server.open_streams:  # the upstream call is closed early
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert llm_server.abandoned_streams == 1
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    state = (await client.get(f"/v1/runs/{running['uuid']}")).json()
    assert (state["status"], state["error_type"], state["message_uuid"]) == (
        "cancelled",
        "cancelled",
        None,
    )

    [received] = await receiver.received()
    event = verified(hook["secret"], received)
    assert event["type"] == "run.cancelled"
    assert (event["data"]["run_uuid"], event["data"]["session_uuid"]) == (running["uuid"], session)
    assert (event["data"]["status"], event["data"]["error_type"]) == ("cancelled", "cancelled")
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1  # told once, as cancelled only


async def test_a_failed_responses_api_run_is_told_as_response_failed(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    hook = await register(
        client, receiver.url(), "run.failed", "response.completed", "response.failed"
    )
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    llm_server.enqueue(ErrorReply(400, "no such thing", type="invalid_request_error"))
    answer = await client.post("/v1/responses", json={"model": "remote", "input": "Hi"})
    assert answer.status_code >= 400, answer.text

    received = await receiver.received(2)
    events = sorted((verified(hook["secret"], r) for r in received), key=lambda e: e["type"])
    assert [e["type"] for e in events] == ["response.failed", "run.failed"]
    assert len({e["data"]["run_uuid"] for e in events}) == 1
    response_id = events[0]["data"]["response_id"]
    assert response_id == f"resp_{uuid.UUID(events[0]['data']['run_uuid']).hex}"
    assert {(e["data"]["status"], e["data"]["response_id"]) for e in events} == {
        ("failed", response_id)
    }
    assert events[0]["data"]["error_type"]
    stored = await client.get(f"/v1/responses/{response_id}")
    assert stored.json()["status"] == "failed", stored.text
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 2


async def test_a_cancelled_background_response_is_told_as_response_cancelled(
    client: httpx.AsyncClient, receiver: Receiver, llm_server: ScriptedLLMServer
) -> None:
    hook = await register(
        client, receiver.url(), "run.cancelled", "response.completed", "response.cancelled"
    )
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    llm_server.enqueue(Delay(3, Reply("Too late.")))
    started = await client.post(
        "/v1/responses", json={"model": "remote", "input": "Hi", "background": True}
    )
    assert started.json()["status"] == "in_progress", started.text
    response_id = started.json()["id"]
    deadline = time.monotonic() + 5
    while not llm_server.requests:  # the model has the call
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    cancelled = await client.post(f"/v1/responses/{response_id}/cancel")
    assert cancelled.json()["status"] == "cancelled", cancelled.text

    received = await receiver.received(2)
    events = sorted((verified(hook["secret"], r) for r in received), key=lambda e: e["type"])
    assert [e["type"] for e in events] == ["response.cancelled", "run.cancelled"]
    assert {(e["data"]["status"], e["data"]["response_id"]) for e in events} == {
        ("cancelled", response_id)
    }
    assert response_id == f"resp_{uuid.UUID(events[0]['data']['run_uuid']).hex}"
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 2
