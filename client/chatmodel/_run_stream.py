"""A run's event stream read into ``LLMStreamResponse`` chunks, resumed when it breaks.

No I/O here either: ``_transport`` reads the lines from ``httpx`` (sync or async) and feeds
them to one :class:`RunStream`, which decodes them (``_sse``), and asks it what to send next
when a connection breaks or an answer is no stream. Both a streamed run
(``run(stream=True)``) and a run's events (``RunHandle.events()``) are read this way.

Every event of a run carries an id, ``<run uuid>:<seq>`` (seq 0, 1, 2, ...). When the
connection drops before the run's last event (a transport error, or a body that ends
without it), the stream is resumed from ``GET /v1/runs/{uuid}/events`` with
``Last-Event-ID`` set to the last event given out: the server sends the events after it.
An event at or before that one is never given out again, so the caller gets every event
once, in order. Up to ``STREAM_RESUMES`` reconnections in a row that bring no new event,
after pauses of 0.2, 0.4, 0.8, 1.6 and 3.2 s; then the stream ends with an error chunk, as
every failure does: neither ``run(stream=True)`` nor ``events()`` raises.

A streamed run's uuid comes from the ``X-Run-Id`` header or the first event's id; when the
run's answer never came (the connection broke after sending it), the run is looked for in
the session's runs by its Idempotency-Key, and followed from its first event if found.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import httpx
import pydantic

from chatmodel import _runs as runs
from chatmodel._errors import (
    APIConnectionError,
    APIError,
    ChatModelError,
    api_error,
)
from chatmodel._models import LLMStreamResponse
from chatmodel._protocol import Operation, Request, SessionState, failed_chunk, refused_stream
from chatmodel._sse import SSEDecoder

# Reconnections in a row without a new event before a broken stream is given up.
STREAM_RESUMES = 5
FIRST_RESUME_PAUSE = 0.2  # seconds before the first reconnection; doubled for each next one
# Answers to a resume that say "try again soon" (a proxy or a restarting server).
RESUMABLE_STATUSES = frozenset({502, 503, 504})

# What to send next: a request, the stream's last chunk, or nothing (it has ended).
Next = Operation[Request | LLMStreamResponse | None]


@dataclass(frozen=True)
class StreamStart:
    """The streamed run's own request, and its session: a refusal may make the session and
    send it again (``_protocol.refused_stream``), and its Idempotency-Key finds the run
    when its answer never came."""

    session: SessionState
    request: Request


class RunStream:
    """One stream's reading, over as many connections as it takes, sync or async alike.

    ``start``: the streamed run that is being read (``None``: some run's events are being
    followed, ``run_uuid``). :attr:`finished` says to stop reading; :attr:`pause` is how
    long to wait before sending the request just returned by :meth:`broke`.
    """

    def __init__(
        self, url: str, *, run_uuid: str | None = None, start: StreamStart | None = None
    ) -> None:
        self.url = url
        self.run_uuid = run_uuid
        self.start = start
        self.finished = False
        self.pause = 0.0
        self.last_seq: int | None = None
        self._decoder = SSEDecoder()
        self._connection_last_id: str | None = None
        self._run_ended = False  # the server's last chunk (or [DONE]) came
        self._resumes_in_a_row = 0
        self._resuming = start is None  # the request in flight is a GET .../events
        self._abandon_sent = False

    @staticmethod
    def accepts(response: httpx.Response) -> bool:
        """Whether ``response`` is an event stream; if not, read it and hand it to
        :meth:`refused`."""
        content_type = response.headers.get("content-type", "")
        return response.status_code == 200 and content_type.startswith("text/event-stream")

    def opened(self, response: httpx.Response) -> None:
        """A connection's event stream begins: its lines are read afresh."""
        self._decoder = SSEDecoder()
        self._connection_last_id = None
        if self.run_uuid is None:
            self.run_uuid = response.headers.get(runs.RUN_ID_HEADER) or None
        if self.start is not None:
            self.start.session.created = True  # it has the session: see SessionState

    def feed(self, line: str) -> LLMStreamResponse | None:
        """The chunk ``line`` completes, if any (and if not given out before)."""
        event = self._decoder.decode(line)
        if event is None or self.finished:
            return None
        if event.is_done:
            self.finished = self._run_ended = True
            return None
        seq = None
        if event.id is not None and event.id != self._connection_last_id:  # its own id
            self._connection_last_id = event.id
            seq = self._seq(event.id)
            if seq is not None and self.last_seq is not None and seq <= self.last_seq:
                return None  # given out before the connection broke
        try:
            chunk = LLMStreamResponse.model_validate_json(event.data)
        except pydantic.ValidationError:
            self.finished = True
            return failed_chunk(
                APIError(200, "invalid_response", f"Unreadable stream event: {event.data[:200]!r}")
            )
        if seq is not None:
            self.last_seq = seq
            self._resumes_in_a_row = 0
        self._run_ended = self._run_ended or chunk.done
        return chunk

    def _seq(self, event_id: str) -> int | None:
        run, _, seq = event_id.rpartition(":")
        if run and self.run_uuid is None:
            self.run_uuid = run
        return int(seq) if seq.isdigit() else None

    @property
    def last_event_id(self) -> str | None:
        if self.run_uuid is None or self.last_seq is None:
            return None
        return f"{self.run_uuid}:{self.last_seq}"

    # -- what next ----------------------------------------------------------------------

    def broke(self, exc: ChatModelError | None) -> Next:
        """The connection failed (``exc``) or its body ended (``None``) before the run's
        last event: the request that resumes the stream, or its last chunk (an error)."""
        self.pause = 0.0
        if self._run_ended:
            self.finished = True
            return None
        reason = exc or APIConnectionError(
            "The chatmodel server closed the stream before its last event.", url=self.url
        )
        if self.run_uuid is None and self.start is not None and _maybe_sent(exc):
            key = runs.stream_key(self.start.request)
            # A lookup that fails finds nothing: the stream is given up below.
            with suppress(ChatModelError):
                if key is not None:
                    self.run_uuid = yield from runs.find_run_by_key(self.start.session, key)
        if self.run_uuid is None or self._resumes_in_a_row >= STREAM_RESUMES:
            return self._give_up(reason)
        self._resumes_in_a_row += 1
        self.pause = FIRST_RESUME_PAUSE * 2 ** (self._resumes_in_a_row - 1)
        self._resuming = True
        return runs.events_request(self.run_uuid, self.last_event_id)

    def refused(self, response: httpx.Response) -> Next:
        """An answer that is no event stream (read in full): to the run's own request,
        ``_protocol.refused_stream``'s decision; to a resume, another try if the server
        asked for one (``RESUMABLE_STATUSES``), else the error chunk (``run_not_found``,
        ...)."""
        self.pause = 0.0
        if not self._resuming and self.start is not None:
            following = yield from refused_stream(self.start.session, self.start.request, response)
            if isinstance(following, LLMStreamResponse):
                self.finished = True
            return following
        exc = api_error(response) if response.is_error else None
        if exc is None:
            exc = APIError(response.status_code, "invalid_response", "The answer is no stream.")
        if response.status_code in RESUMABLE_STATUSES:
            return (yield from self.broke(exc))
        return self._give_up(exc)

    def _give_up(self, reason: ChatModelError) -> LLMStreamResponse:
        self.finished = True
        return failed_chunk(reason)

    def abandoned_run(self) -> str | None:
        """The streamed run to cancel now that the caller no longer reads it (it stopped
        early, or the stream was given up): once, and only a run this stream started that
        has not ended. A followed run's events (``start`` is ``None``) are only watched."""
        if self.start is None or self._run_ended or self._abandon_sent or self.run_uuid is None:
            return None
        self._abandon_sent = True
        return self.run_uuid


def _maybe_sent(exc: ChatModelError | None) -> bool:
    """Whether the request may have reached the server: not when the connection could
    not even be made."""
    return not isinstance(exc, APIConnectionError) or not isinstance(
        exc.__cause__, httpx.ConnectError
    )
