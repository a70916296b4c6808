"""An incremental server-sent-events decoder: feed it lines, get events back.

It follows the HTML standard's parsing rules (``data``/``event``/``id``/``retry`` fields,
``:`` comments, several ``data`` lines joined with newlines, an event ends at a blank
line, an unfinished event at the end of the stream is dropped). It does no I/O, so the
sync and the async client feed it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE_DATA = "[DONE]"


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """The ``data: [DONE]`` sentinel that ends an OpenAI-style stream."""
        return self.data == DONE_DATA


class SSEDecoder:
    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        """Take one line (without its line ending); return an event when ``line`` ends one."""
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment, e.g. a keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return ServerSentEvent(
            data="\n".join(data), event=event or "message", id=self._last_id, retry=retry
        )
