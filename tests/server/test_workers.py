"""``chatmodel serve --workers N``: several processes on one port and one PostgreSQL, the
one-run-per-session rule across them, and stopping with SIGTERM while streams are open.

Real processes throughout: ``chatmodel serve`` as a user starts it, uvicorn's own
supervisor, the scripted upstream over real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.factories import sse_events
from tests.support.llm_server import Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import serve_process

QUESTION = {"role": "user", "content": "Talk slowly."}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _wait_for_workers(process: subprocess.Popen[bytes], base_url: str, count: int) -> None:
    """Until ``count`` worker processes exist and every one answers (each new connection
    goes to whichever worker accepts it first, so ask over many)."""
    deadline = time.monotonic() + 60
    while len(_children(process.pid)) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    time.sleep(1.0)  # the last worker's start-up (its lifespan) finishing
    for _ in range(20):
        with httpx.Client(base_url=base_url, timeout=10) as fresh:
            assert fresh.get("/health").status_code == 200


def _chat_model(http: httpx.Client, api_base: str) -> None:
    http.post("/v1/chat-models", json={"name": "remote"}).raise_for_status()
    http.post(
        "/v1/chat-models/remote/versions",
        json={"system_prompt": "s", "model": "openai/slow", "api_base": api_base, "publish": True},
    ).raise_for_status()


def _session(http: httpx.Client) -> str:
    session = http.post("/v1/sessions", json={"chat_model": "remote"}).json()["uuid"]
    http.post(f"/v1/sessions/{session}/messages", json={"messages": [QUESTION]}).raise_for_status()
    return str(session)


class Reader(threading.Thread):
    """One streamed request on a connection of its own, read to its end."""

    def __init__(
        self, base_url: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.base_url, self.path, self.body, self.headers = base_url, path, body, headers
        self.first = threading.Event()
        self.text = ""
        self.status = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=30) as http,
                http.stream("POST", self.path, json=self.body, headers=self.headers) as response,
            ):
                self.status = response.status_code
                for piece in response.iter_text():
                    self.text += piece
                    if "data:" in self.text:
                        self.first.set()
        except BaseException as exc:  # read by the test
            self.error = exc
        finally:
            self.first.set()


def _runs(base_url: str, session: str) -> list[tuple[str, str | None]]:
    runs = httpx.get(f"{base_url}/v1/sessions/{session}/runs").json()["data"]
    return [(r["status"], r["error_type"]) for r in runs]


def _stop(process: subprocess.Popen[bytes], log: Path) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"serve did not stop on SIGTERM\n{log.read_text()[-3000:]}") from None
    assert process.returncode == 0, log.read_text()[-3000:]
    return time.monotonic() - started


def test_two_workers_share_the_rules_and_finish_streams_on_sigterm(
    tmp_path: Path, postgres_url: str, llm_server: ScriptedLLMServer
) -> None:
    words = " ".join(f"word{i}" for i in range(12))
    with serve_process(tmp_path / "serve", postgres_url, arguments=["--workers", "2"]) as (
        base_url,
        process,
    ):
        _wait_for_workers(process, base_url, 2)
        with httpx.Client(base_url=base_url, timeout=30) as http:
            _chat_model(http, llm_server.base_url)
            # One run at a time per session, whichever worker each request reaches.
            busy = _session(http)
            for _ in range(4):
                llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.05))
            first = Reader(base_url, f"/v1/sessions/{busy}/run", {"stream": True})
            first.start()
            first.first.wait(10)
            refused = [
                httpx.post(f"{base_url}/v1/sessions/{busy}/run", json={"if_busy": "reject"})
                for _ in range(4)
            ]
            assert {r.status_code for r in refused} == {409}, [r.text for r in refused]
            first.join(20)
            assert sse_events(first.text)[-1]["done"] is True
            # Streams in flight when SIGTERM comes finish, on every worker.
            sessions = [_session(http) for _ in range(6)]
        llm_server.reset()
        for _ in sessions:
            llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.1))
        readers = [Reader(base_url, f"/v1/sessions/{s}/run", {"stream": True}) for s in sessions]
        for reader in readers:
            reader.start()
        for reader in readers:
            assert reader.first.wait(15)
        took = _stop(process, tmp_path / "serve" / "serve.log")
        for reader in readers:
            reader.join(10)
            assert reader.error is None, reader.error
            last = sse_events(reader.text)[-1]
            assert (last["done"], last["error"]) == (True, False), last
            assert last["message"]["content"] == words
        assert took < 15
    with serve_process(tmp_path / "again", postgres_url) as (again, _):
        for session in [busy, *sessions]:
            assert _runs(again, session) == [("succeeded", None)]


def test_sigterm_past_the_grace_ends_every_stream_with_an_error_event(
    tmp_path: Path, postgres_url: str, llm_server: ScriptedLLMServer
) -> None:
    """Streams that outlast ``shutdown_grace_seconds`` end with an interrupted event in
    their API's framing, then the terminator; their runs are stored ``interrupted`` and
    the server exits: nothing stays ``running``."""
    words = " ".join(f"word{i}" for i in range(60))
    settings = {"CHATMODEL_SHUTDOWN_GRACE_SECONDS": "1"}
    workdir = tmp_path / "serve"
    with serve_process(workdir, postgres_url, settings, ["--workers", "2"]) as (base_url, process):
        _wait_for_workers(process, base_url, 2)
        with httpx.Client(base_url=base_url, timeout=30) as http:
            _chat_model(http, llm_server.base_url)
            native = [_session(http) for _ in range(2)]
            compatible = _session(http)
        for _ in range(4):
            llm_server.enqueue(SlowStream(Reply(words), chunk_delay=0.2))
        readers = {
            "native": [Reader(base_url, f"/v1/sessions/{s}/run", {"stream": True}) for s in native],
            "openai": [
                Reader(
                    base_url,
                    "/v1/chat/completions",
                    {"model": "remote", "messages": [QUESTION], "stream": True},
                ),
                Reader(  # a session's call: its run is recorded on the session
                    base_url,
                    "/v1/chat/completions",
                    {"model": "remote", "stream": True, "messages": [QUESTION]},
                    {"X-Session-Id": compatible},
                ),
            ],
        }
        every = [r for group in readers.values() for r in group]
        for reader in every:
            reader.start()
        for reader in every:
            assert reader.first.wait(15)
        took = _stop(process, workdir / "serve.log")
        for reader in every:
            reader.join(10)
            assert reader.error is None, reader.error
        for reader in readers["native"]:
            last = sse_events(reader.text)[-1]
            assert (last["done"], last["error"], last["error_type"]) == (True, True, "interrupted")
        for reader in readers["openai"]:
            assert reader.text.endswith("data: [DONE]\n\n"), reader.text[-300:]
            last_data = reader.text.rstrip().split("\n\n")[-2].rpartition("data: ")[2]
            assert "error" in json.loads(last_data), last_data
        assert took < 1 + 10  # the grace, then the drain: never uvicorn's hard cancel
    with serve_process(tmp_path / "again", postgres_url) as (again, _):
        for session in native:
            assert _runs(again, session) == [("failed", "interrupted")]
        assert _runs(again, compatible) == [("failed", "interrupted")]
