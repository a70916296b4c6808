"""The scripted OpenAI-compatible server, exercised through the real LiteLLM over HTTP,
set up as the gateway sets it up (its default transport: LiteLLM's own HTTP handler)."""

from __future__ import annotations

import os

from chatmodel_service.config import OPENAI_TRANSPORT_ENV

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported
os.environ[OPENAI_TRANSPORT_ENV] = "true"  # what create_gateway() sets by default

import json
import socket
import time
from typing import Any

import httpx
import litellm
import pytest

from tests.support.llm_server import (
    Delay,
    ErrorReply,
    FunctionCallReply,
    MalformedBody,
    Reply,
    ScriptedLLMServer,
    StreamDrop,
    ToolCall,
    ToolCallsReply,
)

litellm.suppress_debug_info = True

MESSAGES = [{"role": "user", "content": "hi"}]
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


async def _chat(server: ScriptedLLMServer, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", MESSAGES)
    return await litellm.acompletion(
        model="openai/anything",
        api_base=server.base_url,
        api_key="sk-test",
        num_retries=0,
        max_retries=0,
        **kwargs,
    )


@pytest.mark.asyncio
async def test_plain_reply_with_usage_and_recorded_request(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(Reply("Hello there!", prompt_tokens=7, completion_tokens=3))
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "hello"},
    ]
    resp = await _chat(llm_server, messages=messages)

    assert resp.choices[0].message.content == "Hello there!"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (7, 3)
    assert resp.usage.total_tokens == 10
    assert len(llm_server.requests) == 1
    assert llm_server.requests[0]["messages"] == messages
    assert llm_server.requests[0]["model"] == "anything"
    assert not llm_server.requests[0].get("stream")


@pytest.mark.asyncio
async def test_function_call_reply(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(FunctionCallReply("get_weather", '{"city": "Paris"}'))
    functions = [{"name": "get_weather", "parameters": WEATHER_PARAMS}]
    resp = await _chat(llm_server, functions=functions)

    choice = resp.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Paris"}
    assert llm_server.requests[0]["functions"] == functions


@pytest.mark.asyncio
async def test_tool_calls_reply(llm_server: ScriptedLLMServer) -> None:
    calls = (
        ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_2", "get_weather", '{"city": "Oslo"}'),
    )
    llm_server.enqueue(ToolCallsReply(calls))
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": WEATHER_PARAMS},
        }
    ]
    resp = await _chat(llm_server, tools=tools)

    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    got = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert got == [(c.id, c.name, c.arguments) for c in calls]
    assert llm_server.requests[0]["tools"] == tools


@pytest.mark.asyncio
async def test_429_raises_rate_limit_error(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(ErrorReply(429, "slow down", "rate_limit_error", retry_after=1))
    with pytest.raises(litellm.RateLimitError, match="slow down") as info:
        await _chat(llm_server)
    assert info.value.status_code == 429


@pytest.mark.asyncio
async def test_500_raises_internal_server_error(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(ErrorReply(500, "boom"))
    with pytest.raises(litellm.InternalServerError, match="boom") as info:
        await _chat(llm_server)
    assert info.value.status_code == 500


@pytest.mark.asyncio
async def test_empty_queue_fails_loudly(llm_server: ScriptedLLMServer) -> None:
    with pytest.raises(litellm.InternalServerError, match="no scripted reply left"):
        await _chat(llm_server)
    assert len(llm_server.requests) == 1


@pytest.mark.asyncio
async def test_delay_beyond_timeout_raises_timeout(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(Delay(2.0, Reply("too late")))
    started = time.monotonic()
    with pytest.raises(litellm.Timeout):
        await _chat(llm_server, timeout=0.5)
    assert time.monotonic() - started < 1.5


@pytest.mark.asyncio
async def test_delay_within_timeout_succeeds(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(Delay(0.1, Delay(0.1, Reply("eventually"))))
    resp = await _chat(llm_server, timeout=5)
    assert resp.choices[0].message.content == "eventually"


@pytest.mark.asyncio
async def test_malformed_body_raises(llm_server: ScriptedLLMServer) -> None:
    # litellm 1.106.2's own handler maps the JSON decode failure of a 200 body to APIError.
    llm_server.enqueue(MalformedBody())
    with pytest.raises(litellm.APIError, match="Unable to get json response"):
        await _chat(llm_server)


@pytest.mark.asyncio
async def test_connection_refused_on_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # litellm 1.106.2's own handler (aiohttp) reports a refused connection as
    # InternalServerError.
    with pytest.raises(litellm.InternalServerError, match="Cannot connect to host"):
        await litellm.acompletion(
            model="openai/anything",
            api_base=f"http://127.0.0.1:{port}/v1",
            api_key="sk-test",
            messages=MESSAGES,
            num_retries=0,
            max_retries=0,
        )


@pytest.mark.asyncio
async def test_stream_text_assembles_exactly(llm_server: ScriptedLLMServer) -> None:
    text = "  Hello,  streaming world!\nSecond line. "
    llm_server.enqueue(Reply(text))
    stream = await _chat(llm_server, stream=True)
    parts: list[str] = []
    finish: list[str] = []
    async for chunk in stream:
        if not chunk.choices:
            continue
        parts.append(chunk.choices[0].delta.content or "")
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)
    assert "".join(parts) == text
    assert finish == ["stop"]
    assert llm_server.requests[0]["stream"] is True


@pytest.mark.asyncio
async def test_stream_usage_chunk(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(Reply("a b c", prompt_tokens=11, completion_tokens=4))
    stream = await _chat(llm_server, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    usage = [u for c in chunks if (u := getattr(c, "usage", None)) is not None]
    assert usage, "no usage in stream"
    assert (usage[-1].prompt_tokens, usage[-1].completion_tokens) == (11, 4)


@pytest.mark.asyncio
async def test_stream_tool_call_arguments_assemble(llm_server: ScriptedLLMServer) -> None:
    args = '{"city": "Paris", "unit": "celsius", "days": [1, 2, 3]}'
    llm_server.enqueue(ToolCallsReply((ToolCall("call_abc", "get_weather", args),)))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    stream = await _chat(llm_server, stream=True, tools=tools)
    ids: list[str] = []
    names: list[str] = []
    fragments: list[str] = []
    finish: list[str] = []
    async for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            assert tc.index == 0
            if tc.id:
                ids.append(tc.id)
            if tc.function.name:
                names.append(tc.function.name)
            fragments.append(tc.function.arguments or "")
        if choice.finish_reason:
            finish.append(choice.finish_reason)
    assert ids == ["call_abc"]
    assert names == ["get_weather"]
    assert len(fragments) > 3  # really streamed in pieces
    assert "".join(fragments) == args
    assert finish == ["tool_calls"]


@pytest.mark.asyncio
async def test_stream_function_call_assembles_via_chunk_builder(
    llm_server: ScriptedLLMServer,
) -> None:
    args = '{"city": "Oslo"}'
    llm_server.enqueue(FunctionCallReply("get_weather", args))
    functions = [{"name": "get_weather", "parameters": WEATHER_PARAMS}]
    stream = await _chat(llm_server, stream=True, functions=functions)
    chunks = [chunk async for chunk in stream]
    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert built is not None
    message = built.choices[0].message
    assert message.function_call.name == "get_weather"
    assert message.function_call.arguments == args


@pytest.mark.asyncio
async def test_stream_drop_makes_iteration_raise(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(StreamDrop(Reply("one two three four five"), after_chunks=2))
    stream = await _chat(llm_server, stream=True)
    received: list[str] = []
    # litellm 1.106.2 surfaces the broken body as MidStreamFallbackError
    # (a ServiceUnavailableError subclass) wrapping an APIConnectionError.
    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as info:
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two "
    assert isinstance(info.value, litellm.ServiceUnavailableError)
    assert isinstance(info.value.original_exception, litellm.APIConnectionError)


@pytest.mark.asyncio
async def test_stream_error_reply_before_sse(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(ErrorReply(429))
    with pytest.raises(litellm.RateLimitError):
        stream = await _chat(llm_server, stream=True)
        async for _ in stream:
            pass


@pytest.mark.asyncio
async def test_raw_http_stream_shape_and_drop(llm_server: ScriptedLLMServer) -> None:
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    llm_server.enqueue(Reply("x y", prompt_tokens=2, completion_tokens=2))
    llm_server.enqueue(StreamDrop(Reply("x y z"), after_chunks=1))
    url = f"{llm_server.base_url}/chat/completions"
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.post(url, json=body)
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in resp.text.splitlines() if ln]
        assert lines[-1] == "data: [DONE]"
        events = [json.loads(ln.removeprefix("data: ")) for ln in lines[:-1]]
        assert all(e["object"] == "chat.completion.chunk" for e in events)
        assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "x "}
        assert events[-2]["choices"][0]["finish_reason"] == "stop"
        assert events[-1]["choices"] == []
        assert events[-1]["usage"] == {
            "prompt_tokens": 2,
            "completion_tokens": 2,
            "total_tokens": 4,
        }

        seen: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", url, json=body) as stream:
                async for line in stream.aiter_lines():
                    seen.append(line)
        assert next(ln for ln in seen if ln.startswith("data:")).startswith("data: {")
        assert "data: [DONE]" not in seen


@pytest.mark.asyncio
async def test_raw_http_error_body_and_models(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(ErrorReply(503, "busy", "overloaded", retry_after=2.5), MalformedBody())
    async with httpx.AsyncClient(base_url=llm_server.base_url, timeout=5) as client:
        resp = await client.post("/chat/completions", json={"model": "m", "stream": True})
        assert resp.status_code == 503
        assert resp.headers["retry-after"] == "2.5"
        assert resp.json() == {
            "error": {"message": "busy", "type": "overloaded", "param": None, "code": None}
        }
        resp = await client.post("/chat/completions", json={"model": "m"})
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/json")
        with pytest.raises(ValueError):
            resp.json()
        models = (await client.get("/models")).json()
        assert models["object"] == "list" and models["data"]


@pytest.mark.asyncio
async def test_text_completion(llm_server: ScriptedLLMServer) -> None:
    llm_server.enqueue(Reply("once upon a time"), Reply("there was a test"))
    common: dict[str, Any] = {
        "model": "text-completion-openai/anything",
        "api_base": llm_server.base_url,
        "api_key": "sk-test",
        "prompt": "Tell me",
        "num_retries": 0,
        "max_retries": 0,
    }
    resp = await litellm.atext_completion(**common)
    assert resp.choices[0].text == "once upon a time"
    assert resp.usage.total_tokens == 15

    stream = await litellm.atext_completion(stream=True, **common)
    parts = [c.choices[0].text or "" async for c in stream if c.choices]
    assert "".join(parts) == "there was a test"
    assert [r["prompt"] for r in llm_server.requests] == ["Tell me", "Tell me"]


def test_reset_and_context_manager_stop_promptly() -> None:
    with ScriptedLLMServer() as server:
        server.enqueue(Reply("unused"))
        httpx.post(f"{server.base_url}/chat/completions", json={"model": "m"}, timeout=5)
        assert len(server.requests) == 1
        server.reset()
        assert server.requests == []
        resp = httpx.post(f"{server.base_url}/chat/completions", json={"model": "m"}, timeout=5)
        assert resp.status_code == 500
        assert "no scripted reply left" in resp.json()["error"]["message"]
        server.enqueue(Delay(30, Reply("never")))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json={"model": "m"}, timeout=0.2)
        started = time.monotonic()
    assert time.monotonic() - started < 5
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/models", timeout=1)
