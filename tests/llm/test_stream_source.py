"""Streams read past LiteLLM's per-chunk wrapper (``llm.streaming.stream_source``) give
exactly what reading through the wrapper gives: the same pieces, in the same order, and
the same outcome (reply, finish reason, usage, cost, or the same failure), for every
shape of stream the scripted OpenAI-compatible server can send."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chatmodel_service.config import OPENAI_TRANSPORT_ENV, OpenAITransport
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from chatmodel_service.llm.streaming import ParsedStream, stream_source
from chatmodel_service.llm.types import LLMCall, StreamEvent
from tests.support.llm_server import (
    ErrorReply,
    FunctionCallReply,
    RawBody,
    Reply,
    ScriptedLLMServer,
    Step,
    StreamDrop,
    ToolCall,
    ToolCallsReply,
    sse_body,
)

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CHUNK = {
    "id": "chatcmpl-raw",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "scripted-model",
}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return CHUNK | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


STEPS: dict[str, Step] = {
    "text": Reply("The weather in Boston is 13 degrees, cloudy with wind.", 21, 12),
    "unicode text": Reply('naïve "quoted" — 日本語 😀\nsecond line', 7, 9),
    "length cut": Reply("It was the best of times", finish_reason="length"),
    "function call": FunctionCallReply("get_weather", '{"city": "Boston", "unit": "C"}'),
    "tool calls": ToolCallsReply(
        (
            ToolCall("call_a", "get_weather", '{"city": "Boston"}'),
            ToolCall("call_b", "get_weather", '{"city": "Paris"}'),
        )
    ),
    "dropped before the end": StreamDrop(Reply("one two three four five six"), after_chunks=2),
    "error before any piece": ErrorReply(503, "scripted outage"),
    "bad request": ErrorReply(400, "scripted refusal", type="invalid_request_error"),
    "error object in a 200 stream": RawBody(
        sse_body({"error": {"message": "overloaded", "type": "server_error", "code": 500}}),
        media_type="text/event-stream",
    ),
    "error object after a piece": RawBody(
        sse_body(
            _chunk({"role": "assistant", "content": "Half"}),
            {"error": {"message": "overloaded", "type": "server_error", "code": 503}},
        ),
        media_type="text/event-stream",
    ),
    "no usage, no [DONE]": RawBody(
        sse_body(
            _chunk({"role": "assistant", "content": "Hello"}),
            _chunk({"content": " there"}),
            _chunk({}, "stop"),
            done=False,
        ),
        media_type="text/event-stream",
    ),
    "empty stream": RawBody(sse_body(), media_type="text/event-stream"),
    "invalid JSON event": RawBody(sse_body("{oops"), media_type="text/event-stream"),
}


def _call(server: ScriptedLLMServer, name: str) -> LLMCall:
    functions = [WEATHER] if name == "function call" else None
    tools = [{"type": "function", "function": WEATHER}] if name == "tool calls" else None
    return LLMCall(
        model="openai/scripted-model",
        messages=[{"role": "user", "content": "Weather?"}],
        params={"temperature": 0.2},
        api_base=server.base_url,
        functions=functions,
        tools=tools,
        timeout=10,
    )


def _comparable(event: StreamEvent) -> Any:
    """The event without what differs between two calls (times, the server's ids)."""
    fields = dataclasses.asdict(event)
    fields.pop("latency_ms", None)
    for attempt in fields.get("attempts", ()):
        attempt.pop("latency_ms")
    response = fields.get("api_response")
    if isinstance(response, dict):
        fields["api_response"] = {k: v for k, v in response.items() if k not in ("id", "created")}
    return type(event).__name__, fields


async def _events(gateway: LLMGateway, call: LLMCall) -> list[Any]:
    return [_comparable(event) async for event in gateway.stream(call)]


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> LLMGateway:
    made = create_gateway("litellm")
    monkeypatch.setenv(OPENAI_TRANSPORT_ENV, "true")  # restored after the test
    return made


@pytest.mark.parametrize("name", list(STEPS))
async def test_past_the_wrapper_is_the_same_as_through_it(
    name: str, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    llm_server.enqueue(STEPS[name])
    gateway.past_wrapper = False
    try:
        wrapped = await _events(gateway, _call(llm_server, name))
    finally:
        gateway.past_wrapper = True
    llm_server.enqueue(STEPS[name])
    direct = await _events(gateway, _call(llm_server, name))
    assert direct == wrapped
    assert wrapped[-1][0] in ("LLMResult", "LLMFailure")


async def test_the_parser_is_read_on_the_default_transport(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    """The equivalence above is not vacuous: with LiteLLM's own handler the gateway does
    read the parser, and with the OpenAI SDK the wrapper."""
    transports: tuple[tuple[OpenAITransport, type | None], ...] = (
        ("openai-sdk", None),
        ("litellm", ParsedStream),
    )
    for transport, expected in transports:
        litellm = create_gateway(transport)._litellm
        llm_server.enqueue(Reply("Hello"))
        response = await litellm.acompletion(
            model="openai/scripted-model",
            messages=[{"role": "user", "content": "hi"}],
            api_base=llm_server.base_url,
            api_key="sk-test",
            stream=True,
        )
        try:
            source = stream_source(response)
            if expected is None:
                assert source is response
            else:
                assert isinstance(source, expected)
            assert [c async for c in source]
        finally:
            await response.aclose()
