"""Resumable streams under real uvicorn, on SQLite and PostgreSQL: every event of a run
carries ``<run>:<seq>``; ``GET /v1/runs/{uuid}/events`` gives the events after the one a
reader names (``after``, ``Last-Event-ID``), live or after the end, from the server that
runs it or from another one on the same database; a dropped stream resumed so is exactly
the rest (no gap, no duplicate)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import (
    ResponseCreatedEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from chatmodel_service.app import create_app
from chatmodel_service.config import Settings
from chatmodel_service.db import Database, create_engine
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.models.base import utcnow
from chatmodel_service.runs.repository import RunEventRepository
from tests.factories import expect_error, sse_frames
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp, scripted_chat_model, serve_in_thread

WORDS = " ".join(f"w{i}" for i in range(30))
Frame = tuple[str, dict[str, Any]]


@pytest.fixture
def pair(database_url: str, gateway: LLMGateway) -> Iterator[tuple[LiveApp, LiveApp]]:
    """Two servers (each its own event log, as two processes have) on one database; a
    short lease, so a cancel on one reaches the other within half a second."""
    settings = Settings(
        database_url=database_url, seed_demo=False, llm_timeout_seconds=5, run_lease_seconds=1.5
    )
    with (
        serve_in_thread(create_app(settings, gateway)) as first,
        serve_in_thread(create_app(settings, gateway)) as second,
    ):
        yield first, second


def new_session(live: LiveApp, llm_server: ScriptedLLMServer) -> str:
    scripted_chat_model(live, llm_server)
    session = httpx.post(f"{live.base_url}/v1/sessions", json={"chat_model": "remote"})
    uuid: str = session.json()["uuid"]
    httpx.post(
        f"{live.base_url}/v1/sessions/{uuid}/messages",
        json={"messages": [{"role": "user", "content": "Count."}]},
    ).raise_for_status()
    return uuid


def read_some(response: httpx.Response, count: int) -> list[Frame]:
    """The first ``count`` events of a stream being read (then the caller hangs up)."""
    frames: list[Frame] = []
    event_id = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("data: "):
            assert event_id is not None, line
            frames.append((event_id, json.loads(line.removeprefix("data: "))))
            event_id = None
            if len(frames) == count:
                break
    return frames


def events(base_url: str, run: str, **params: Any) -> list[Frame]:
    headers = params.pop("headers", {})
    answer = httpx.get(f"{base_url}/v1/runs/{run}/events", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    frames = sse_frames(answer.text)
    assert all(event_id is not None for event_id, _ in frames)
    return [(str(event_id), event) for event_id, event in frames]


def seqs(frames: list[Frame]) -> list[int]:
    return [int(event_id.rpartition(":")[2]) for event_id, _ in frames]


def text_of(frames: list[Frame]) -> str:
    return "".join(event.get("content") or "" for _, event in frames if not event["done"])


def wait_finished(base_url: str, run: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        state: dict[str, Any] = httpx.get(f"{base_url}/v1/runs/{run}").json()
        if state["status"] not in ("queued", "running"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


@pytest.mark.parametrize("resumed_on", ["the same server", "another server"])
def test_a_dropped_stream_resumes_with_exactly_the_rest(
    pair: tuple[LiveApp, LiveApp], llm_server: ScriptedLLMServer, resumed_on: str
) -> None:
    first, second = pair
    elsewhere = second if resumed_on == "another server" else first
    session = new_session(first, llm_server)
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=0.03))
    cut_at = random.randint(1, 25)
    body = {"stream": True, "on_disconnect": "continue"}
    url = f"{first.base_url}/v1/sessions/{session}/run"
    with httpx.Client(timeout=10) as http, http.stream("POST", url, json=body) as response:
        run = response.headers["X-Run-Id"]
        before = read_some(response, cut_at)  # then hang up mid-reply
    rest = events(elsewhere.base_url, run, headers={"Last-Event-ID": before[-1][0]})
    whole = before + rest
    assert seqs(whole) == list(range(len(whole))), cut_at  # no gap, no duplicate
    assert {event_id.rpartition(":")[0] for event_id, _ in whole} == {run}
    assert text_of(whole) == WORDS and whole[-1][1]["done"] is True
    assert whole[-1][1]["message"]["content"] == WORDS  # the reply went on, and was stored
    assert wait_finished(first.base_url, run)["status"] == "succeeded"
    # Afterwards, from either server: the same events, by ?after too.
    for server in pair:
        assert events(server.base_url, run) == whole
        assert events(server.base_url, run, after=cut_at - 1) == rest


def test_a_stream_started_on_one_server_is_followed_on_another(
    pair: tuple[LiveApp, LiveApp], llm_server: ScriptedLLMServer
) -> None:
    first, second = pair
    session = new_session(first, llm_server)
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=0.05))
    started = httpx.post(
        f"{first.base_url}/v1/sessions/{session}/run", json={"background": True, "stream": True}
    )
    assert started.status_code == 202, started.text
    run = started.json()["uuid"]
    deadline = time.monotonic() + 10
    while not llm_server.requests:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.4)  # some events are written by now, most are still to come
    elsewhere = events(second.base_url, run, after=2)  # live, from the database
    here = events(first.base_url, run)
    assert elsewhere == here[3:]
    assert text_of(here) == WORDS and here[-1][1]["message"]["content"] == WORDS


def test_a_background_run_without_stream_has_its_end_as_its_one_event(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    session = new_session(live_app, llm_server)
    llm_server.enqueue(Delay(0.3, Reply("Forty-two.")))
    started = httpx.post(
        f"{live_app.base_url}/v1/sessions/{session}/run", json={"background": True}
    )
    run = started.json()["uuid"]
    followed = events(live_app.base_url, run)  # waits for the end
    assert [event_id for event_id, _ in followed] == [f"{run}:0"]
    assert followed[0][1]["done"] is True
    assert followed[0][1]["message"]["content"] == "Forty-two."
    # A foreground run keeps no events: its end is read from its stored result.
    llm_server.enqueue(Reply("Again."))
    ran = httpx.post(f"{live_app.base_url}/v1/sessions/{session}/run", json={}).json()
    end = events(live_app.base_url, ran["detail"]["run_uuid"])
    assert [(e["done"], e["message"]["content"]) for _, e in end] == [(True, "Again.")]


def test_cancelling_a_streamed_background_run_from_another_server(
    pair: tuple[LiveApp, LiveApp], llm_server: ScriptedLLMServer
) -> None:
    first, second = pair
    session = new_session(first, llm_server)
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=0.1))
    started = httpx.post(
        f"{first.base_url}/v1/sessions/{session}/run", json={"background": True, "stream": True}
    )
    run = started.json()["uuid"]
    time.sleep(0.5)
    cancelled = httpx.post(f"{second.base_url}/v1/runs/{run}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    followed = events(first.base_url, run)  # ends once the first server has stopped it
    end = followed[-1][1]
    assert (end["done"], end["error_type"]) == (True, "cancelled")
    assert seqs(followed) == list(range(len(followed)))
    assert len(followed) < len(WORDS.split())  # the reply stopped part way
    deadline = time.monotonic() + 5
    while llm_server.open_streams:  # the upstream call is closed early
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert llm_server.abandoned_streams == 1
    messages = httpx.get(f"{first.base_url}/v1/sessions/{session}/messages").json()["data"]
    assert [m["role"] for m in messages] == ["user"]


def test_past_retention_only_the_stored_end_is_replayed(
    live_app: LiveApp, llm_server: ScriptedLLMServer, database_url: str
) -> None:
    session = new_session(live_app, llm_server)
    llm_server.enqueue(Reply("Short and kept."))
    url = f"{live_app.base_url}/v1/sessions/{session}/run"
    answer = httpx.post(url, json={"stream": True})
    run = answer.headers["X-Run-Id"]
    assert len(events(live_app.base_url, run)) > 1

    async def prune() -> None:  # as the sweep does once the retention has passed
        database = Database(create_engine(Settings(database_url=database_url)))
        deadline = time.monotonic() + 5
        while True:  # once the server has written the run's end (within 100 ms)
            now = utcnow()
            async with database.transaction() as db:
                if await RunEventRepository(db).prune(ended_before=now, abandoned_before=now):
                    break
            assert time.monotonic() < deadline, "the run's events were never written"
            await asyncio.sleep(0.05)
        await database.dispose()

    asyncio.run(prune())
    replayed = events(live_app.base_url, run)
    assert [(e["done"], e["message"]["content"]) for _, e in replayed] == [
        (True, "Short and kept.")
    ]


def test_where_to_resume_from_is_checked(live_app: LiveApp, llm_server: ScriptedLLMServer) -> None:
    session = new_session(live_app, llm_server)
    llm_server.enqueue(Reply("Hi."))
    run = httpx.post(
        f"{live_app.base_url}/v1/sessions/{session}/run", json={"stream": True}
    ).headers["X-Run-Id"]
    url = f"{live_app.base_url}/v1/runs/{run}/events"
    for header in ("not-a-seq", f"{run}:x", "00000000-0000-4000-8000-000000000000:1"):
        refused = httpx.get(url, headers={"Last-Event-ID": header})
        expect_error(refused, 422, "invalid_input", "Last-Event-ID")
    expect_error(httpx.get(url, params={"after": "-2"}), 422, "validation_error", "after")
    missing = httpx.get(f"{live_app.base_url}/v1/runs/00000000-0000-4000-8000-000000000000/events")
    expect_error(missing, 404, "run_not_found", "run_uuid")
    bare = events(live_app.base_url, run, headers={"Last-Event-ID": "0"})
    assert seqs(bare)[0] == 1


def test_chat_completion_streams_on_a_session_are_kept_too(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    session = new_session(live_app, llm_server)
    llm_server.enqueue(Reply("Kept as sent."))
    answer = httpx.post(
        f"{live_app.base_url}/v1/chat/completions",
        json={
            "model": "remote",
            "stream": True,
            "messages": [{"role": "user", "content": "Count."}, {"role": "user", "content": "Go"}],
        },
        headers={"X-Session-Id": session},
    )
    assert answer.status_code == 200, answer.text
    sent = sse_frames(answer.text)
    assert all(event_id is not None for event_id, _ in sent)
    assert events(live_app.base_url, answer.headers["X-Run-Id"]) == sent


def test_a_background_response_stream_resumes_with_the_openai_sdk(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=0.03))
    with openai.OpenAI(
        base_url=f"{live_app.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as sdk:
        seen: list[ResponseStreamEvent] = []
        with sdk.responses.create(
            model="remote", input="Count.", background=True, stream=True
        ) as stream:
            for event in stream:
                seen.append(event)
                if event.type == "response.output_text.delta" and len(seen) > 6:
                    break  # the connection drops
        created = seen[0]
        assert isinstance(created, ResponseCreatedEvent)
        response_id = created.response.id
        with sdk.responses.retrieve(
            response_id, stream=True, starting_after=seen[-1].sequence_number
        ) as resumed:
            seen.extend(resumed)
        assert [e.sequence_number for e in seen] == list(range(len(seen)))
        assert seen[-1].type == "response.completed"
        text = "".join(e.delta for e in seen if isinstance(e, ResponseTextDeltaEvent))
        assert text == WORDS
        assert sdk.responses.retrieve(response_id).output_text == WORDS
