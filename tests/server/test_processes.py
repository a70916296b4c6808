"""Real `chatmodel serve` processes: killed with SIGKILL mid-run, and two of them sharing
one PostgreSQL database under concurrent load. Everything stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.databases import PostgresDatabases
from tests.support.llm_server import Delay, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import free_port, wait_healthy

REMOTE_MODEL = "openai/scripted-model"


@dataclass
class ServeProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no cleanup, as when a machine loses power."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@contextmanager
def chatmodel_serve(database_url: str, workdir: Path, **settings: str) -> Iterator[ServeProcess]:
    """`chatmodel serve` on ``database_url`` (migrated on start) until the block ends."""
    with chatmodel_serves(1, database_url, workdir, **settings) as (served,):
        yield served


@contextmanager
def chatmodel_serves(
    count: int, database_url: str, workdir: Path, **settings: str
) -> Iterator[list[ServeProcess]]:
    """``count`` `chatmodel serve` processes on one database, started at the same time
    (so they also race to migrate it), until the block ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMODEL_")}
    env |= {"CHATMODEL_DATABASE_URL": database_url, "CHATMODEL_SEED_DEMO": "false"}
    env |= {f"CHATMODEL_{name.upper()}": value for name, value in settings.items()}
    workdir.mkdir(parents=True, exist_ok=True)
    started = []
    try:
        for _ in range(count):
            port = free_port()
            log = workdir / f"serve-{port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "chatmodel_service.cli", "serve", "--port", str(port)],
                    cwd=workdir,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(ServeProcess(f"http://127.0.0.1:{port}", process, log))
        for served in started:
            try:
                wait_healthy(served.url, served.running, timeout=120)
            except RuntimeError as exc:
                pytest.fail(f"{exc}\n{served.log.read_text()}")
        yield started
    finally:
        for served in started:
            if served.process.poll() is None:
                served.process.terminate()
        for served in started:
            try:
                served.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                served.process.kill()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


# -- SIGKILL mid-run ----------------------------------------------------------------------


def _runs(client: httpx.Client, session: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ok(client.get(f"/v1/sessions/{session}/runs"))["data"]
    return data


def _messages(client: httpx.Client, session: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ok(client.get(f"/v1/sessions/{session}/messages"))["data"]
    return data


def test_sigkill_mid_run_and_mid_stream_leaves_sessions_consistent_and_usable(
    empty_database_url: str, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    """A plain run waiting on the model and a stream half-way through, when the server is
    killed: the callers' connections drop; after a restart both runs are recorded as
    failed (``interrupted``), nothing partial was stored, and both sessions run again."""
    settings = {"run_lease_seconds": "1"}
    with chatmodel_serve(empty_database_url, tmp_path, **settings) as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        ok(client.post("/v1/chat-models", json={"name": "remote"}), 201)
        version = {
            "system_prompt": "Be brief.",
            "model": REMOTE_MODEL,
            "api_base": llm_server.base_url,
            "publish": True,
        }
        ok(client.post("/v1/chat-models/remote/versions", json=version), 201)
        sessions = []
        for text in ("plain?", "streamed?"):
            session = ok(client.post("/v1/sessions", json={"chat_model": "remote"}), 201)["uuid"]
            message = {"role": "user", "content": text}
            ok(client.post(f"/v1/sessions/{session}/messages", json={"messages": [message]}), 201)
            sessions.append(session)
        plain, streamed = sessions
        llm_server.enqueue(
            Delay(30, Reply("never delivered")),
            SlowStream(Reply("one two three four five six"), chunk_delay=0.5),
        )
        outcome: dict[str, BaseException] = {}

        def plain_run() -> None:
            try:
                client.post(f"/v1/sessions/{plain}/run", json={})
            except httpx.TransportError as exc:
                outcome["plain"] = exc

        caller = threading.Thread(target=plain_run)
        caller.start()
        while len(llm_server.requests) < 1:
            threading.Event().wait(0.01)
        stream_url = f"/v1/sessions/{streamed}/run"
        with (
            pytest.raises(httpx.TransportError),
            client.stream("POST", stream_url, json={"stream": True}) as stream,
        ):
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert '"content"' in first
            server.kill()
            for _ in lines:  # the rest of the stream never comes
                pass
        caller.join(timeout=10)
        assert isinstance(outcome.get("plain"), httpx.TransportError)

    threading.Event().wait(1.2)  # the dead server's leases (1 s) lapse
    with chatmodel_serve(empty_database_url, tmp_path, **settings) as restarted:
        client = httpx.Client(base_url=restarted.url, timeout=30)
        for session, text in ((plain, "plain?"), (streamed, "streamed?")):
            (record,) = _runs(client, session)
            assert record["status"] == "failed"
            assert record["error_type"] == "interrupted"
            assert record["finished_at"] is not None
            messages = _messages(client, session)
            assert [(m["seq"], m["role"], m["content"]) for m in messages] == [(1, "user", text)]
        llm_server.enqueue(Reply("back again"), Reply("streams too"))
        assert ok(client.post(f"/v1/sessions/{plain}/run", json={}))["content"] == "back again"
        body = client.post(stream_url, json={"stream": True}).text
        assert '"done":true' in body and body.endswith("data: [DONE]\n\n")
        assert [m["seq"] for m in _messages(client, streamed)] == [1, 2]
        assert "interrupted" not in {r["error_type"] for r in _runs(client, plain)[1:]}


# -- two processes on one PostgreSQL --------------------------------------------------------

SESSIONS = 20
RUNS = 500
DUPLICATE_EVERY = 10  # every tenth run is also sent to the other server with the same key


@dataclass(frozen=True)
class Planned:
    index: int
    session: str
    server: int
    body: dict[str, Any]
    key: str | None


def _plan(sessions: list[str]) -> list[Planned]:
    """500 runs over 20 sessions, alternating servers and busy policies; each run carries
    its user message (stored only if the run gets the session). Sessions are drawn at
    random so that many runs hit one session at the same moment."""
    rng = random.Random(7)
    planned = []
    for index in range(RUNS):
        duplicated = index % DUPLICATE_EVERY == 0
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": f"m{index}", "uuid": str(uuid.uuid4())}],
            "if_busy": "wait" if duplicated or index % 2 else "reject",
            "wait_seconds": 60,
        }
        planned.append(
            Planned(
                index=index,
                session=rng.choice(sessions),
                server=index % 2,
                body=body,
                key=f"run-{index}" if duplicated else None,
            )
        )
    return planned


async def _fire(
    clients: list[httpx.AsyncClient], planned: list[Planned]
) -> list[tuple[Planned, httpx.Response]]:
    gate = asyncio.Semaphore(64)

    async def send(item: Planned, server: int) -> tuple[Planned, httpx.Response]:
        headers = {"Idempotency-Key": item.key} if item.key else {}
        async with gate:
            response = await clients[server].post(
                f"/v1/sessions/{item.session}/run", json=item.body, headers=headers
            )
        return item, response

    sends = [send(item, item.server) for item in planned]
    sends += [send(item, 1 - item.server) for item in planned if item.key]  # the duplicates
    return await asyncio.gather(*sends)


def test_two_server_processes_on_one_postgresql_lose_and_duplicate_nothing(
    postgres_databases: PostgresDatabases, tmp_path: Path
) -> None:
    with (
        postgres_databases.database(migrated=False) as url,
        chatmodel_serves(2, url, tmp_path) as (first, second),
    ):
        setup = httpx.Client(base_url=first.url, timeout=30)
        ok(setup.post("/v1/chat-models", json={"name": "echo"}), 201)
        version = {"system_prompt": "Echo.", "model": "chatmodel-offline/echo", "publish": True}
        ok(setup.post("/v1/chat-models/echo/versions", json=version), 201)
        sessions = [
            ok(setup.post("/v1/sessions", json={"chat_model": "echo"}), 201)["uuid"]
            for _ in range(SESSIONS)
        ]
        planned = _plan(sessions)

        async def load() -> list[tuple[Planned, httpx.Response]]:
            limits = httpx.Limits(max_connections=64)
            async with (
                httpx.AsyncClient(base_url=first.url, timeout=120, limits=limits) as a,
                httpx.AsyncClient(base_url=second.url, timeout=120, limits=limits) as b,
            ):
                return await _fire([a, b], planned)

        results = asyncio.run(load())
        assert len(results) == RUNS + RUNS // DUPLICATE_EVERY

        # Every request got a result or a clear 409 session_busy (only reject runs may).
        accepted: dict[str, dict[str, Any]] = {}  # message uuid -> LLMResponse
        for item, response in results:
            uuid_sent = item.body["messages"][0]["uuid"]
            if response.status_code == 409:
                assert response.json()["error"] == "session_busy", response.text
                assert item.body["if_busy"] == "reject"
                continue
            result = ok(response)
            assert result["error"] is False, result
            assert result["content"] == f"m{item.index}"  # echo of its own message
            if uuid_sent in accepted:  # the duplicate: the same run, replayed
                assert result == accepted[uuid_sent]
            accepted[uuid_sent] = result
        statuses = Counter(response.status_code for _, response in results)
        assert statuses[200] > RUNS // 2 and statuses[409] > 0, statuses  # real contention

        check = httpx.Client(base_url=second.url, timeout=30)
        stored_users: set[str] = set()
        for session in sessions:
            messages = ok(check.get(f"/v1/sessions/{session}/messages", params={"limit": 1000}))[
                "data"
            ]
            # Strictly ordered, no gaps, no duplicates; each run's reply right after its
            # own message (one run at a time per session).
            assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
            assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
            for user, reply in zip(messages[::2], messages[1::2], strict=True):
                assert reply["content"] == user["content"]
                assert accepted[user["uuid"]]["detail"]["message_uuid"] == reply["uuid"]
            uuids = [m["uuid"] for m in messages]
            assert len(set(uuids)) == len(uuids)
            stored_users |= set(uuids[::2])
            runs = ok(check.get(f"/v1/sessions/{session}/runs"))["data"]
            assert {r["status"] for r in runs} <= {"succeeded"}
            assert len(runs) == len(messages) // 2
        # Exactly the accepted runs' messages were stored; a refused run stored nothing.
        assert stored_users == set(accepted)
