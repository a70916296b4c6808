"""The floor: ``litellm.acompletion`` from the benchmark process to the same upstream, with
the arguments the service's gateway passes (no retries, a placeholder key, the api_base)."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.api import BENCH_MODEL, StreamTimes


def load_litellm() -> Any:
    """LiteLLM set up as the service's gateway sets it up (local cost map, no telemetry)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.disable_hf_tokenizer_download = True
    return litellm


class DirectLiteLLM:
    def __init__(self, api_base: str) -> None:
        self.litellm = load_litellm()
        self.api_base = api_base

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
        response = await self.litellm.acompletion(**self._kwargs(messages))
        return bool(response.choices[0].message.content)

    async def stream(self, messages: list[dict[str, Any]]) -> StreamTimes:
        started = time.perf_counter()
        kwargs = self._kwargs(messages) | {
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        response = await self.litellm.acompletion(**kwargs)
        first = 0.0
        async for _chunk in response:
            if not first:
                first = time.perf_counter() - started
        return StreamTimes(first, time.perf_counter() - started, bool(first))
