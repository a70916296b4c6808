"""Resuming a stream from another `chatmodel serve` process on the same PostgreSQL: a
reader that drops a run's stream on process A and resumes it on process B gets exactly
the rest (no gap, no duplicate), for the native run stream (``Last-Event-ID``,
``?after``) and for a background Responses stream (``starting_after``).

Real processes throughout (``tests/support/servers.py::serve_process``), each with its own
event log in memory, so B can only answer from what A writes to the database; the scripted
upstream is paced, so the run is still live when B is asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import sse_frames
from tests.support.llm_server import Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import serve_process

WORDS = " ".join(f"w{i}" for i in range(30))
CHUNK_DELAY = 0.05  # 30 chunks: the reply takes 1.5 s, so every cut below is mid-run
TIMEOUT = httpx.Timeout(10)  # per read: a stream that stalls fails the test
Frame = tuple[str, dict[str, Any]]


@pytest.fixture
def processes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, str]]:
    """Two `chatmodel serve` processes (A, B) on one migrated PostgreSQL database; both
    stopped (killed if need be) when the test ends."""
    with (
        serve_process(tmp_path / "a", postgres_url) as (first, _),
        serve_process(tmp_path / "b", postgres_url) as (second, _),
    ):
        yield first, second


def remote_chat_model(base_url: str, upstream: ScriptedLLMServer) -> None:
    """Chat model "remote", its published version calling the scripted upstream."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as http:
        http.post("/v1/chat-models", json={"name": "remote"}).raise_for_status()
        http.post(
            "/v1/chat-models/remote/versions",
            json={
                "system_prompt": "Be brief.",
                "model": "openai/scripted",
                "api_base": upstream.base_url,
                "publish": True,
            },
        ).raise_for_status()


def new_session(base_url: str) -> str:
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as http:
        session = http.post("/v1/sessions", json={"chat_model": "remote"})
        session.raise_for_status()
        uuid: str = session.json()["uuid"]
        http.post(
            f"/v1/sessions/{uuid}/messages",
            json={"messages": [{"role": "user", "content": "Count."}]},
        ).raise_for_status()
    return uuid


def read_events(response: httpx.Response, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The first ``count`` SSE events of a stream being read, as (id, event, data); every
    one must carry an ``id:`` line. The caller then hangs up."""
    read: list[tuple[str, str, dict[str, Any]]] = []
    event_id: str | None = None
    event_type = ""
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = line.removeprefix("id: ")
        elif line.startswith("event: "):
            event_type = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert event_id is not None, f"an event without an id: {line}"
            read.append((event_id, event_type, json.loads(line.removeprefix("data: "))))
            event_id, event_type = None, ""
            if len(read) == count:
                break
    assert len(read) == count, read  # the stream ended before the cut
    return read


def run_events(base_url: str, run: str, **params: Any) -> list[Frame]:
    """``GET /v1/runs/{run}/events`` read to its end (live while the run goes on)."""
    headers = params.pop("headers", {})
    answer = httpx.get(
        f"{base_url}/v1/runs/{run}/events", params=params, headers=headers, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    frames = sse_frames(answer.text)
    assert all(event_id is not None for event_id, _ in frames), frames
    return [(str(event_id), event) for event_id, event in frames]


def seq_of(event_id: str) -> int:
    return int(event_id.rpartition(":")[2])


def text_of(frames: list[Frame]) -> str:
    return "".join(event.get("content") or "" for _, event in frames if not event["done"])


def response_events(text: str) -> list[tuple[int, dict[str, Any]]]:
    """The (id's seq, data) of each event of a Responses stream body, checking that each
    has an ``id:`` line and an ``event:`` line naming its type and numbered as its id."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert fields.keys() == {"id", "event", "data"}, block
        data: dict[str, Any] = json.loads(fields["data"])
        seq = seq_of(fields["id"])
        assert (fields["event"], seq) == (data["type"], data["sequence_number"]), block
        events.append((seq, data))
    return events


# Where the reader hangs up: after the first event, early, and past the middle (a third
# of the reply still to come, so the run is live when B is asked).
CUTS = (1, 8, 16)


def test_a_dropped_run_stream_resumes_on_another_process_with_exactly_the_rest(
    processes: tuple[str, str], llm_server: ScriptedLLMServer
) -> None:
    first, second = processes
    remote_chat_model(first, llm_server)
    for cut_at in CUTS:
        drop_a_run_stream_and_resume_it(first, second, llm_server, cut_at)


def drop_a_run_stream_and_resume_it(
    first: str, second: str, llm_server: ScriptedLLMServer, cut_at: int
) -> None:
    """A run streamed on ``first``, dropped after ``cut_at`` events, resumed on ``second``
    by Last-Event-ID while it runs; once it has ended, by ?after on both."""
    session = new_session(first)
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=CHUNK_DELAY))
    body = {"stream": True, "on_disconnect": "continue"}
    with (
        httpx.Client(base_url=first, timeout=TIMEOUT) as http,
        http.stream("POST", f"/v1/sessions/{session}/run", json=body) as response,
    ):
        assert response.status_code == 200
        run = response.headers["X-Run-Id"]
        before = [(event_id, data) for event_id, _, data in read_events(response, cut_at)]
    assert not before[-1][1]["done"], cut_at  # cut mid-reply
    state = httpx.get(f"{second}/v1/runs/{run}", timeout=TIMEOUT).json()
    assert state["status"] == "running", (cut_at, state)  # B resumes it live
    rest = run_events(second, run, headers={"Last-Event-ID": before[-1][0]})
    assert [seq_of(event_id) for event_id, _ in rest] == list(range(cut_at, cut_at + len(rest))), (
        cut_at
    )
    whole = before + rest
    assert [seq_of(event_id) for event_id, _ in whole] == list(range(len(whole))), cut_at
    assert {event_id.rpartition(":")[0] for event_id, _ in whole} == {run}
    assert [event["done"] for _, event in whole] == [False] * (len(whole) - 1) + [True]
    assert text_of(whole) == WORDS, cut_at
    end = whole[-1][1]
    assert (end["error"], end["message"]["content"]) == (False, WORDS), cut_at
    state = httpx.get(f"{second}/v1/runs/{run}", timeout=TIMEOUT).json()
    assert state["status"] == "succeeded", (cut_at, state)
    # Once it has ended, either process gives the same rest, by ?after too.
    for server in (second, first):
        assert run_events(server, run, after=cut_at - 1) == rest, (cut_at, server)
        assert run_events(server, run) == whole, (cut_at, server)


def test_a_dropped_response_stream_resumes_on_another_process_with_exactly_the_rest(
    processes: tuple[str, str], llm_server: ScriptedLLMServer
) -> None:
    first, second = processes
    remote_chat_model(first, llm_server)
    for cut_at in CUTS:
        drop_a_response_stream_and_resume_it(first, second, llm_server, cut_at)


def drop_a_response_stream_and_resume_it(
    first: str, second: str, llm_server: ScriptedLLMServer, cut_at: int
) -> None:
    """A background Responses stream created on ``first``, dropped after ``cut_at``
    events, resumed on ``second`` with starting_after while it runs; then on ``first``."""
    llm_server.enqueue(SlowStream(Reply(WORDS), chunk_delay=CHUNK_DELAY))
    body = {"model": "remote", "input": "Count.", "background": True, "stream": True}
    with (
        httpx.Client(base_url=first, timeout=TIMEOUT) as http,
        http.stream("POST", "/v1/responses", json=body) as response,
    ):
        assert response.status_code == 200
        before = read_events(response, cut_at)
    for event_id, event_type, data in before:  # every event: its id, its type, its number
        assert (event_type, seq_of(event_id)) == (data["type"], data["sequence_number"])
    assert before[0][1] == "response.created"
    assert before[-1][1] != "response.completed", cut_at  # cut mid-response
    response_id = before[0][2]["response"]["id"]
    last = before[-1][2]["sequence_number"]
    assert last == cut_at - 1
    url = f"{second}/v1/responses/{response_id}"
    state = httpx.get(url, timeout=TIMEOUT).json()
    assert state["status"] == "in_progress", (cut_at, state)  # B resumes it live
    resumed = httpx.get(url, params={"stream": "true", "starting_after": last}, timeout=TIMEOUT)
    assert resumed.status_code == 200, resumed.text
    rest = response_events(resumed.text)
    assert [seq for seq, _ in rest] == list(range(cut_at, cut_at + len(rest))), cut_at
    assert rest[-1][1]["type"] == "response.completed", cut_at
    whole = [data for _, _, data in before] + [data for _, data in rest]
    assert [data["sequence_number"] for data in whole] == list(range(len(whole)))
    deltas = [data["delta"] for data in whole if data["type"] == "response.output_text.delta"]
    assert "".join(deltas) == WORDS, cut_at
    stored = httpx.get(url, timeout=TIMEOUT).json()
    texts = [part["text"] for item in stored["output"] for part in item.get("content", [])]
    assert (stored["status"], texts) == ("completed", [WORDS]), (cut_at, stored)
    # Once it has ended, A gives the same rest as B did.
    again = httpx.get(
        f"{first}/v1/responses/{response_id}",
        params={"stream": "true", "starting_after": last},
        timeout=TIMEOUT,
    )
    assert again.status_code == 200, again.text
    assert response_events(again.text) == rest, cut_at
