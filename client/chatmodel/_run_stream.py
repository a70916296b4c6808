"""A streamed run's event lines read into ``LLMStreamResponse`` chunks.

No I/O here either: ``_transport`` reads the lines from ``httpx`` (sync or async) and feeds
them to one :class:`RunStream`, which decodes them (``_sse``) and turns every way a stream
can fail once it started into one last error chunk, so ``run(stream=True)`` never raises
(an answer that is no stream at all goes to ``_protocol.refused_stream``).
"""

from __future__ import annotations

import httpx
import pydantic

from chatmodel._errors import (
    APIConnectionError,
    APIError,
    ChatModelError,
)
from chatmodel._models import LLMStreamResponse
from chatmodel._protocol import failed_chunk
from chatmodel._sse import SSEDecoder


class RunStream:
    """Reads a streamed run's lines into chunks, the same way for sync and async.

    Errors become one last chunk with ``done=True, error=True``; after it (or after
    ``[DONE]``) :attr:`finished` is true and the caller stops reading.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.finished = False
        self._decoder = SSEDecoder()
        self._last_chunk_seen = False

    @staticmethod
    def accepts(response: httpx.Response) -> bool:
        """Whether ``response`` is an event stream; if not, read it and hand it to
        ``_protocol.refused_stream``."""
        content_type = response.headers.get("content-type", "")
        return response.status_code == 200 and content_type.startswith("text/event-stream")

    def feed(self, line: str) -> LLMStreamResponse | None:
        event = self._decoder.decode(line)
        if event is None or self.finished:
            return None
        if event.is_done:
            self.finished = True
            return None
        try:
            chunk = LLMStreamResponse.model_validate_json(event.data)
        except pydantic.ValidationError:
            self.finished = True
            return failed_chunk(
                APIError(200, "invalid_response", f"Unreadable stream event: {event.data[:200]!r}")
            )
        self._last_chunk_seen = self._last_chunk_seen or chunk.done
        return chunk

    def fail(self, exc: ChatModelError) -> LLMStreamResponse | None:
        """The chunk for a failure while reading; none if the last chunk already came."""
        self.finished = True
        return None if self._last_chunk_seen else failed_chunk(exc)

    def end(self) -> LLMStreamResponse | None:
        """At the end of the body: an error chunk if the last chunk never came."""
        reason = APIConnectionError(
            "The chatmodel server closed the stream before its last event.", url=self.url
        )
        return self.fail(reason)
