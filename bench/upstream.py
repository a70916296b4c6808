"""A fast scripted OpenAI-compatible upstream for the benchmarks: raw asyncio, canned answers.

It must never be what limits a measurement, so it does as little as an HTTP/1.1 server can:
keep-alive connections, one ``asyncio.Protocol`` per connection, answers prepared once at
start. ``POST .../chat/completions`` answers the same chat completion every time; with
``"stream": true`` the same reply as server-sent events (chunked transfer encoding), the
first piece at once and each next one ``gap_ms`` later, a usage chunk when
``stream_options.include_usage`` asks, then ``data: [DONE]``. ``GET .../models`` lists
one model; anything else is a 404. It listens on 127.0.0.1 only.

Run it as its own process (the benchmark does), so it has its own interpreter and core::

    python -m bench.upstream [--port 0] [--stream-gap-ms 1] [--chunks 8]

prints ``READY <port>`` once it listens, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from typing import Any

MODEL = "bench-model"
REPLY = "The benchmark upstream answers every request with this same short reply."
PROMPT_TOKENS = 200
COMPLETION_TOKENS = 14
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answers:
    """Every byte the upstream sends, prepared once."""

    completion: bytes  # a whole HTTP response
    stream_head: bytes  # status line and headers of a streamed response
    stream_events: tuple[bytes, ...]  # one HTTP chunk per SSE event, [DONE] included
    usage_event: bytes  # the usage chunk, sent before [DONE] when asked for
    models: bytes
    not_found: bytes
    bad_request: bytes


def _http(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return _chunk(f"data: {text}\n\n".encode())


def _pieces(text: str, count: int) -> list[str]:
    """``text`` cut into at most ``count`` pieces that join back to it; a text of fewer
    words than ``count`` is said again until it fills exactly ``count`` one-word pieces."""
    words = text.split(" ")
    if len(words) < count:
        words = (words * -(-count // len(words)))[:count]
    size = max(1, -(-len(words) // max(1, count)))
    groups = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [g if i == 0 else " " + g for i, g in enumerate(groups)]


def build_answers(chunks: int) -> Answers:
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": REPLY},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    envelope = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
    }
    deltas: list[dict[str, Any]] = [{"content": p} for p in _pieces(REPLY, chunks)]
    deltas[0] = {"role": "assistant", **deltas[0]}
    events = [
        _event({**envelope, "choices": [{"index": 0, "delta": d, "finish_reason": None}]})
        for d in deltas
    ]
    events.append(
        _event({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}
    error = {"error": {"message": "not found", "type": "invalid_request_error"}}
    return Answers(
        completion=_http("200 OK", json.dumps(completion).encode()),
        stream_head=b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n",
        stream_events=(*events, _event("[DONE]")),
        usage_event=_event({**envelope, "choices": [], "usage": usage}),
        models=_http("200 OK", json.dumps(models).encode()),
        not_found=_http("404 Not Found", json.dumps(error).encode()),
        bad_request=_http("400 Bad Request", json.dumps(error).encode()),
    )


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection: parse a request, answer it, repeat."""

    def __init__(self, answers: Answers, gap: float) -> None:
        self.answers = answers
        self.gap = gap
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False  # a streamed answer is being written: parse nothing more yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._serve_buffered()

    def _serve_buffered(self) -> None:
        while not self.streaming and self.transport is not None:
            request = self._next_request()
            if request is None:
                return
            self._answer(*request)

    def _next_request(self) -> tuple[bytes, bytes, bytes] | None:
        """(method, path, body) of the next complete request in the buffer, consumed."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES and self.transport is not None:
                self.transport.close()
            return None
        head = bytes(self.buffer[:end]).split(b"\r\n")
        method, path = head[0].split(b" ", 2)[:2]
        length, chunked = 0, False
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        start = end + 4
        if chunked:
            decoded = _dechunk(self.buffer, start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            if len(self.buffer) < start + length:
                return None
            body, consumed = bytes(self.buffer[start : start + length]), start + length
        del self.buffer[:consumed]
        return method, path, body

    def _answer(self, method: bytes, path: bytes, body: bytes) -> None:
        assert self.transport is not None
        path = path.split(b"?", 1)[0]
        if method == b"GET" and path.endswith(b"/models"):
            self.transport.write(self.answers.models)
            return
        if method != b"POST" or not path.endswith(b"/chat/completions"):
            self.transport.write(self.answers.not_found)
            return
        try:
            request = json.loads(body)
        except ValueError:
            self.transport.write(self.answers.bad_request)
            return
        if not isinstance(request, dict) or not request.get("stream"):
            self.transport.write(self.answers.completion)
            return
        options = request.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        events = list(self.answers.stream_events)
        if usage:
            events.insert(len(events) - 1, self.answers.usage_event)
        events.append(b"0\r\n\r\n")  # the chunked body's end
        if self.gap <= 0:
            self.transport.write(self.answers.stream_head + b"".join(events))
            return
        self.streaming = True
        self.transport.write(self.answers.stream_head + events[0])
        asyncio.get_running_loop().create_task(self._stream_rest(events[1:]))

    async def _stream_rest(self, events: list[bytes]) -> None:
        # Content pieces come gap apart, as a model's tokens do; the closing events at once.
        content, closing = events[: len(events) - 3], events[len(events) - 3 :]
        for event in content:
            await asyncio.sleep(self.gap)
            if self.transport is None:
                return
            self.transport.write(event)
        await asyncio.sleep(self.gap)
        if self.transport is None:
            return
        self.transport.write(b"".join(closing))
        self.streaming = False
        self._serve_buffered()


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """A chunked body starting at ``start``: (body, end offset), or None if incomplete."""
    body = bytearray()
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        at = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", at)
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at : at + size]
        at += size + 2


async def serve(port: int, gap: float, chunks: int) -> None:
    loop = asyncio.get_running_loop()
    answers = build_answers(chunks)
    server = await loop.create_server(
        lambda: UpstreamConnection(answers, gap), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--stream-gap-ms", type=float, default=1.0, help="pause between streamed pieces"
    )
    parser.add_argument("--chunks", type=int, default=8, help="content pieces per stream")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.stream_gap_ms / 1000, args.chunks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
