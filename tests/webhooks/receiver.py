"""A webhook receiver on 127.0.0.1 for tests: records every POST and answers as scripted.

Each path has a script of ``Answer`` steps (status, and seconds to sleep first), used up
one per request; a path without steps left answers 200 at once. ``most_at_once`` is the
largest number of requests it was answering at the same time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.servers import free_port


@dataclass(frozen=True)
class Answer:
    status: int = 200
    sleep: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Received] = []
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._answering = 0
        self.most_at_once = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def answering(self) -> int:
        """Requests it is answering now."""
        with self._lock:
            return self._answering

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> None:
        with self._lock:
            self._script[path].extend(answers)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    steps = receiver._script[self.path]
                    answer = steps.popleft() if steps else Answer()
                    receiver._answering += 1
                    receiver.most_at_once = max(receiver.most_at_once, receiver._answering)
                time.sleep(answer.sleep)
                with receiver._lock:  # done before the sender can see the answer
                    receiver.requests.append(Received(self.path, headers, body))
                    receiver._answering -= 1
                self.send_response(answer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _taken(self, count: int, path: str | None) -> list[Received] | None:
        with self._lock:
            found = [r for r in self.requests if path is None or r.path == path]
        return found if len(found) >= count else None

    async def received(
        self, count: int = 1, path: str | None = None, within: float = 5
    ) -> list[Received]:
        """The first ``count`` requests (to ``path``), waiting for them (async tests)."""
        deadline = time.monotonic() + within
        while (found := self._taken(count, path)) is None:
            assert time.monotonic() < deadline, f"{len(self.requests)} request(s) came"
            await asyncio.sleep(0.02)
        return found[:count]

    def received_sync(self, count: int = 1, within: float = 10) -> list[Received]:
        deadline = time.monotonic() + within
        while (found := self._taken(count, None)) is None:
            assert time.monotonic() < deadline, f"{len(self.requests)} request(s) came"
            time.sleep(0.05)
        return found[:count]
