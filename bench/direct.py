"""The floor: ``litellm.acompletion`` from the benchmark process to the same upstream, with
the arguments the service's gateway passes (no retries, a placeholder key, the api_base).

By default through LiteLLM's default transport (the OpenAI SDK), as a user calling
LiteLLM directly would; ``own_handler=True`` sends it through LiteLLM's own HTTP handler,
as the server's gateway does by default (``litellm_openai_transport``). LiteLLM reads
that switch from the environment on every call, so it is set around each call: use
``own_handler`` only where calls do not overlap (concurrency 1)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.api import BENCH_MODEL, StreamTimes
from bench.rawhttp import Paced

# The switch the server's gateway sets (chatmodel_service.config.OPENAI_TRANSPORT_ENV).
OWN_HANDLER_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"


def load_litellm() -> Any:
    """LiteLLM set up as the service's gateway sets it up (local cost map, no telemetry)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    return litellm


@contextmanager
def transport(own_handler: bool) -> Iterator[None]:
    before = os.environ.get(OWN_HANDLER_ENV)
    os.environ[OWN_HANDLER_ENV] = "true" if own_handler else "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[OWN_HANDLER_ENV]
        else:
            os.environ[OWN_HANDLER_ENV] = before


class DirectLiteLLM:
    def __init__(self, api_base: str, *, own_handler: bool = False) -> None:
        self.litellm = load_litellm()
        self.api_base = api_base
        self.own_handler = own_handler

    def _kwargs(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": BENCH_MODEL,
            "messages": messages,
            "api_base": self.api_base,
            "api_key": "chatmodel-no-key",
            "timeout": 120.0,
            "num_retries": 0,
            "max_retries": 0,
        }

    async def complete(self, messages: list[dict[str, Any]]) -> bool:
        with transport(self.own_handler):
            response = await self.litellm.acompletion(**self._kwargs(messages))
        return bool(response.choices[0].message.content)

    async def stream(self, messages: list[dict[str, Any]]) -> StreamTimes:
        started = time.perf_counter()
        kwargs = self._kwargs(messages) | {
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with transport(self.own_handler):
            response = await self.litellm.acompletion(**kwargs)
            first = 0.0
            async for _chunk in response:
                if not first:
                    first = time.perf_counter() - started
        return StreamTimes(first, time.perf_counter() - started, bool(first))

    async def paced(self, messages: list[dict[str, Any]]) -> Paced:
        """One stream, each chunk's arrival noted. Sets no transport: many of these run at
        once, so the caller holds ``transport(...)`` around all of them."""
        started = time.perf_counter()
        options = {"stream": True, "stream_options": {"include_usage": True}}
        kwargs = self._kwargs(messages) | options
        arrivals: list[float] = []
        try:
            response = await self.litellm.acompletion(**kwargs)
            async for _chunk in response:
                arrivals.append(time.perf_counter() - started)
        except Exception:  # a failed stream is counted, not raised
            return Paced(0, tuple(arrivals), True)
        return Paced(200, tuple(arrivals), not arrivals)
