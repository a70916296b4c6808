"""A TCP proxy on 127.0.0.1 that cuts connections on purpose, for tests of streams that
resume after a dropped connection.

:class:`CuttingProxy` forwards every connection it accepts to a server on 127.0.0.1 and
watches the HTTP/1.1 going through: the request heads (``heads``, as text), and, for a
response to a request whose path contains a :meth:`CuttingProxy.cut` rule's text, the
server-sent-event frames of its body (each ends with a blank line, ``\\n\\n``). Once the
rule's ``after_frames`` frames and ``extra_bytes`` more bytes have gone to the client, the
connection is closed on both sides (or reset, ``reset=True``: the client's read fails with
"connection reset"). The server sees its client go away, as on a real network drop.

::

    with CuttingProxy(server_port) as proxy:
        proxy.cut("/run", after_frames=2, extra_bytes=5)  # the next streamed run, mid-frame
        ...  # a client on proxy.base_url
        assert proxy.cuts == 1

Every connection lives ``max_life`` seconds at most, and ``close()`` ends them all, so a test
never hangs on it. Only 127.0.0.1, both sides. It reads request and response heads by
pattern (``METHOD path HTTP/1.1``, ``HTTP/1.1 NNN``), which is enough for the JSON and
event-stream bodies of this project's tests, not for arbitrary traffic.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType

__all__ = ["CuttingProxy"]

REQUEST_HEAD = re.compile(rb"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1\r\n")
RESPONSE_HEAD = re.compile(rb"HTTP/1\.1 \d{3} ")
HEAD_END = b"\r\n\r\n"
FRAME_END = b"\n\n"
POLL = 0.1  # seconds each pump blocks at most before looking at its flags


@dataclass
class _Rule:
    path: str
    after_frames: int
    extra_bytes: int
    reset: bool
    times: int | None  # how many responses it cuts (None: every one)


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: CuttingProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.paths: deque[str] = deque()  # requests sent, not yet answered
        self.closed = threading.Event()
        self.deadline = time.monotonic() + proxy.max_life
        self._lock = threading.Lock()

    def cut(self, *, reset: bool = False) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
            if reset:  # RST instead of FIN: the client's read fails with "connection reset"
                self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for sock in (self.client, self.server):
                try:
                    if not reset:
                        sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def alive(self) -> bool:
        if time.monotonic() > self.deadline:
            self.cut()
        return not self.closed.is_set()

    def requests(self) -> None:
        """Client to server: forward everything, noting each request's path and head."""
        seen = bytearray()
        scanned = 0
        while self.alive():
            data = _receive(self.client)
            if data is None:
                continue
            if not data:
                break
            seen += data
            while (found := REQUEST_HEAD.search(seen, scanned)) is not None:
                end = seen.find(HEAD_END, found.start())
                if end < 0:
                    break
                self.paths.append(found.group(2).decode())
                self.proxy.heads.append(seen[found.start() : end].decode("latin-1"))
                scanned = end + len(HEAD_END)
            if not _send(self.server, data):
                break
        self.cut()

    def responses(self) -> None:
        """Server to client: forward everything, up to a rule's cut."""
        body = bytearray()
        sent = scanned = 0
        rule: _Rule | None = None
        frames = 0
        cut_at: int | None = None
        while self.alive():
            data = _receive(self.server)
            if data is None:
                continue
            if not data:
                break
            body += data
            while cut_at is None:
                if rule is None:
                    found = RESPONSE_HEAD.search(body, scanned)
                    end = -1 if found is None else body.find(HEAD_END, found.start())
                    if found is None or end < 0:
                        break
                    path = self.paths.popleft() if self.paths else ""
                    scanned = end + len(HEAD_END)
                    rule = self.proxy.take_rule(path)
                    frames = 0
                    if rule is not None and rule.after_frames == 0:
                        cut_at = scanned + rule.extra_bytes
                    continue
                end = body.find(FRAME_END, scanned)
                if end < 0:
                    break
                scanned = end + len(FRAME_END)
                frames += 1
                if frames >= rule.after_frames:
                    cut_at = scanned + rule.extra_bytes
            upto = len(body) if cut_at is None else min(len(body), cut_at)
            if upto > sent and not _send(self.client, bytes(body[sent:upto])):
                break
            sent = upto
            if cut_at is not None and sent >= cut_at:
                assert rule is not None
                self.proxy.count_cut()
                self.cut(reset=rule.reset)
                return
        self.cut()


def _receive(sock: socket.socket) -> bytes | None:
    """What came (``b""``: the other side closed), or ``None`` when nothing came in time."""
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


class CuttingProxy:
    """Forwards 127.0.0.1:``port`` (its own, free) to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int, *, max_life: float = 60.0) -> None:
        self.target_port = target_port
        self.max_life = max_life
        self.heads: list[str] = []  # every request head seen, in order
        self.cuts = 0
        self._rules: list[_Rule] = []
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(POLL)
        self.port = int(self._listener.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._accepting = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)

    # -- what a test asks ---------------------------------------------------------------

    def cut(
        self,
        path: str,
        *,
        after_frames: int = 0,
        extra_bytes: int = 0,
        reset: bool = False,
        times: int | None = 1,
    ) -> None:
        """Cut the next ``times`` responses (``None``: all) to requests whose path contains
        ``path``, after ``after_frames`` event frames of their body and ``extra_bytes``
        more (0 and 0: right after the response head)."""
        with self._lock:
            self._rules.append(_Rule(path, after_frames, extra_bytes, reset, times))

    def cut_all(self) -> None:
        """Close every open connection now."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut()

    def heads_for(self, path: str) -> list[str]:
        return [head for head in self.heads if path in head.split("\r\n", 1)[0]]

    # -- inside -------------------------------------------------------------------------

    def take_rule(self, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.path in path:
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def count_cut(self) -> None:
        with self._lock:
            self.cuts += 1

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(POLL)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            pumps = [
                threading.Thread(target=link.requests, name="proxy-requests", daemon=True),
                threading.Thread(target=link.responses, name="proxy-responses", daemon=True),
            ]
            with self._lock:
                self._links = [known for known in self._links if not known.closed.is_set()]
                self._links.append(link)
                self._threads = [t for t in self._threads if t.is_alive()] + pumps
            for pump in pumps:
                pump.start()

    def start(self) -> CuttingProxy:
        self._accepting.start()
        return self

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        self.cut_all()
        self._accepting.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> CuttingProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
