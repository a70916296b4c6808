"""An httpx MockTransport that records requests and answers from a script."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

Answer = httpx.Response | Exception
CONFIG_BODY: dict[str, Any] = {
    "name": "simple_assistant",
    "system_prompt": "You are a helpful assistant.",
    "model": "chatmodel-offline/echo",
    "version": 1,
    "version_uuid": str(uuid.UUID(int=1)),
    "version_detail": {"model": "chatmodel-offline/echo"},
    "message_logs": [],
}


class Recorder:
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer | Callable[[httpx.Request], Answer]) -> None:
        self.requests: list[httpx.Request] = []
        self._answers = list(answers) or [httpx.Response(200, json=CONFIG_BODY)]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        index = min(len(self.requests), len(self._answers)) - 1
        answer = self._answers[index]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._handle))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))
