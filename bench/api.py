"""What the benchmark asks of a server: set-up calls and the timed requests, over httpx.

The chat model a benchmark runs is a version on ``openai/bench-model`` whose ``api_base``
is the bench upstream, so a run goes through LiteLLM and real HTTP exactly as a run on
a self-hosted model would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

BENCH_MODEL = "openai/bench-model"
SYSTEM_PROMPT = "You are the benchmark's assistant. Answer briefly and stay on topic."
USER_TEXT = (
    "Question {n}: could you summarise what we discussed so far about the quarterly "
    "figures, the open invoices and the schedule for next week in a few sentences?"
)
ASSISTANT_TEXT = (
    "Answer {n}: revenue grew slightly, two invoices are still open and the review "
    "meeting moved to Thursday afternoon; nothing else changed since the last summary."
)


def conversation(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` alternating user/assistant messages that end with a user message."""
    first_role = "user" if count % 2 else "assistant"
    other = {"user": "assistant", "assistant": "user"}
    messages, role = [], first_role
    for n in range(start, start + count):
        text = USER_TEXT if role == "user" else ASSISTANT_TEXT
        messages.append({"role": role, "content": text.format(n=n)})
        role = other[role]
    return messages


def prompt(count: int) -> list[dict[str, Any]]:
    """What a run of a ``count``-message session sends: the system prompt, then them."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *conversation(count)]


def client(base_url: str, concurrency: int, key: str | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120, headers=headers)


SETUP_ATTEMPTS = 4


async def _post(http: httpx.AsyncClient, url: str, body: Any) -> dict[str, Any]:
    """A set-up call (not timed), resent after a 5xx (SQLite answers 'database is
    locked' when a write waits too long on a starved machine): every set-up body is
    safe to resend (uuids chosen here)."""
    for attempt in range(SETUP_ATTEMPTS):
        response = await http.post(url, json=body)
        if response.status_code < 500 or attempt + 1 == SETUP_ATTEMPTS:
            break
        await asyncio.sleep(0.5 * (attempt + 1))
    if response.status_code == 409 and attempt:  # the first try was stored after all
        return {}
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return dict(response.json())


async def create_chat_model(
    http: httpx.AsyncClient, name: str, api_base: str, **version: Any
) -> None:
    """A chat model with one published version on the bench upstream."""
    await _post(http, "/v1/chat-models", {"name": name})
    body = {
        "system_prompt": SYSTEM_PROMPT,
        "model": BENCH_MODEL,
        "api_base": api_base,
        "publish": True,
        **version,
    }
    await _post(http, f"/v1/chat-models/{name}/versions", body)


async def create_session(http: httpx.AsyncClient, chat_model: str, messages: int) -> str:
    body = {"chat_model": chat_model, "session_uuid": str(uuid.uuid4())}
    session = await _post(http, "/v1/sessions", body)
    if messages:
        await add_messages(http, session["uuid"], conversation(messages))
    return str(session["uuid"])


async def create_sessions(
    http: httpx.AsyncClient, chat_model: str, count: int, messages: int
) -> list[str]:
    gate = asyncio.Semaphore(4)

    async def one() -> str:
        async with gate:
            return await create_session(http, chat_model, messages)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def add_messages(
    http: httpx.AsyncClient, session: str, messages: list[dict[str, Any]]
) -> None:
    body = {"messages": [{**m, "uuid": str(uuid.uuid4())} for m in messages]}
    await _post(http, f"/v1/sessions/{session}/messages", body)


async def run(http: httpx.AsyncClient, session: str) -> bool:
    """One plain run; raises (with what came back) unless it answered 200 with a reply."""
    response = await http.post(f"/v1/sessions/{session}/run")
    if response.status_code != 200 or response.json().get("error"):
        raise RuntimeError(f"run answered {response.status_code}: {response.text[:300]}")
    return True


def response_body(chat_model: str, session: str, n: int, stream: bool = False) -> dict[str, Any]:
    """A Responses API request that runs ``session`` as its conversation, with one new user
    message (the native run sends none: its session already ends with one)."""
    body: dict[str, Any] = {
        "model": chat_model,
        "conversation": session,
        "input": USER_TEXT.format(n=n),
    }
    if stream:
        body["stream"] = True
    return body


async def respond(http: httpx.AsyncClient, chat_model: str, session: str, n: int) -> bool:
    """One ``POST /v1/responses`` on ``session``; raises (with what came back) unless it
    answered 200 with a completed response."""
    response = await http.post("/v1/responses", json=response_body(chat_model, session, n))
    if response.status_code != 200 or response.json().get("status") != "completed":
        raise RuntimeError(f"response answered {response.status_code}: {response.text[:300]}")
    return True


async def run_with_message(http: httpx.AsyncClient, session: str, n: int) -> bool:
    """One run that brings a new user message in its body, as a Responses run's ``input``
    does; raises (with what came back) unless it answered 200 with a reply."""
    body = {"messages": [{"role": "user", "content": USER_TEXT.format(n=n)}]}
    response = await http.post(f"/v1/sessions/{session}/run", json=body)
    if response.status_code != 200 or response.json().get("error"):
        raise RuntimeError(f"run answered {response.status_code}: {response.text[:300]}")
    return True


async def run_figures(http: httpx.AsyncClient, session: str) -> dict[str, Any]:
    """One run's whole answer (for what it reports it sent)."""
    response = await http.post(f"/v1/sessions/{session}/run")
    if response.status_code != 200:
        raise RuntimeError(f"run answered {response.status_code}: {response.text[:300]}")
    return dict(response.json())


@dataclass(frozen=True)
class StreamTimes:
    first: float  # seconds from sending to the first event
    last: float  # to the stream's end ([DONE], or a Responses stream's last event)
    ok: bool


RESPONSES_END = {"response.completed", "response.incomplete", "response.failed"}


async def sse_times(
    http: httpx.AsyncClient, method: str, url: str, body: Any, started: float | None = None
) -> StreamTimes:
    """Send a streaming request; time the first ``data:`` event and the ``[DONE]`` (a
    Responses stream has none: it ends with ``event: response.completed``, or
    ``response.incomplete`` / ``response.failed``, which count as failed), from
    ``started`` (default: now)."""
    started = time.perf_counter() if started is None else started
    first, ok, event = 0.0, True, ""
    async with http.stream(method, url, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return StreamTimes(0, 0, False)
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                continue
            if not line.startswith("data:"):
                continue
            if not first:
                first = time.perf_counter() - started
            data = line[5:].strip()
            if data == "[DONE]":
                break
            if event in RESPONSES_END:
                ok = ok and event == "response.completed"
                break
            if '"error":true' in data.replace(" ", "") and json.loads(data).get("error"):
                ok = False
    return StreamTimes(first, time.perf_counter() - started, ok and bool(first))


async def followed_times(http: httpx.AsyncClient, session: str) -> StreamTimes:
    """A streamed background run (``202`` at once), its events followed on
    ``GET /v1/runs/{uuid}/events``: timed from the run's request."""
    started = time.perf_counter()
    answer = await http.post(
        f"/v1/sessions/{session}/run", json={"stream": True, "background": True}
    )
    if answer.status_code != 202:
        return StreamTimes(0, 0, False)
    run = answer.json()["uuid"]
    return await sse_times(http, "GET", f"/v1/runs/{run}/events", None, started)
