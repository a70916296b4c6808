"""The sync methods over a real socket (the app under uvicorn, demo model seeded), plus what
only a real socket shows: early breaks close the response, upstream drops mid-stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from chatmodel import ChatModel
from tests.factories import WEATHER_FUNCTION, make_chat_model, stored_messages
from tests.support.llm_server import Reply, ScriptedLLMServer, StreamDrop
from tests.support.servers import LiveApp

DEMO = "simple_assistant"
LONG_TEXT = " ".join(f"word{i}" for i in range(200))


def test_conversation(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    config = session.get_config()
    assert (config.name, config.system_prompt) == (DEMO, "You are a helpful assistant.")
    assert config.version_detail["model"] == config.model == "chatmodel-offline/echo"

    (added,) = session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    assert added.seq == 1
    res = session.run()
    assert (res.error, res.content, res.raw_output) == (
        False,
        "Hello, I'm a user.",
        "Hello, I'm a user.",
    )
    assert res.usage is not None and res.usage.total_tokens
    assert res.detail is not None and res.detail.name == DEMO

    resumed = ChatModel(DEMO, session.session_uuid, base_url=live_app.base_url)
    logs = resumed.get_config().message_logs
    assert logs == [
        {"role": "user", "content": "Hello, I'm a user."},
        {"role": "assistant", "content": "Hello, I'm a user."},
    ]


def test_stream(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": LONG_TEXT}])

    chunks = list(session.run(stream=True))

    assert len(chunks) > 10
    text = "".join(c.content or "" for c in chunks)
    last = chunks[-1]
    assert last.done and not last.error
    assert last.message is not None and last.message.content == text == LONG_TEXT
    assert last.finish_reason == "stop"
    assert last.detail is not None and last.detail.message_uuid is not None
    logs = session.get_config().message_logs
    assert logs[-1] == {"role": "assistant", "content": text}


def test_function_call_round_trip(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "What's the weather in Boston?"}])
    res = session.run(functions=[WEATHER_FUNCTION])
    assert res.function_call is not None
    assert (res.function_call.name, res.function_call.args) == (
        "get_weather",
        {"location": "Boston"},
    )

    session.add_messages([{"role": "function", "content": "13 degrees celsius"}])
    res = session.run()
    assert res.content == "get_weather returned: 13 degrees celsius"


def test_deprecated_readers_warn_and_work(live_app: LiveApp) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    with pytest.warns(DeprecationWarning, match="get_prompts"):
        prompts = session.get_prompts()
    assert prompts == [{"role": "system", "content": "You are a helpful assistant."}]
    with pytest.warns(DeprecationWarning, match="get_messages"):
        assert session.get_messages() == prompts  # no session yet

    session.add_messages([{"role": "user", "content": "What's the weather in Boston?"}])
    session.run(functions=[WEATHER_FUNCTION])
    session.add_messages([{"role": "function", "content": "13 degrees celsius"}])
    session.run()
    with pytest.warns(DeprecationWarning) as warned:
        chat_log = ChatModel(DEMO, session.session_uuid, base_url=live_app.base_url).get_messages()
    assert warned[0].filename == __file__  # points at the caller
    assert [m["role"] for m in chat_log] == ["system", "user", "assistant", "function", "assistant"]
    assert chat_log[2]["function_call"]["name"] == "get_weather"
    assert chat_log[3] == {
        "role": "function",
        "content": "13 degrees celsius",
        "name": "get_weather",
    }


def responses_seen() -> tuple[list[httpx.Response], Callable[[httpx.Response], None]]:
    seen: list[httpx.Response] = []
    return seen, seen.append


def test_breaking_out_of_a_stream_closes_the_response(live_app: LiveApp) -> None:
    seen, hook = responses_seen()
    with httpx.Client(event_hooks={"response": [hook]}) as http:
        session = ChatModel(DEMO, base_url=live_app.base_url, http_client=http)
        session.add_messages([{"role": "user", "content": LONG_TEXT}])

        chunks = session.run(stream=True)
        assert next(chunks).content
        streamed = seen[-1]
        assert streamed.url.path.endswith("/run")
        assert not streamed.is_closed
        chunks.close()
        assert streamed.is_closed

        # The server ends the abandoned run a moment later; until then the session is busy.
        for chunk in session.run(stream=True, if_busy="wait"):
            assert chunk.content
            break
        assert seen[-1] is not streamed and seen[-1].is_closed

        session.add_messages([{"role": "user", "content": "still there?"}])
        assert session.run(if_busy="wait").content == "still there?"


async def test_breaking_out_of_an_async_stream_closes_the_response(live_app: LiveApp) -> None:
    seen: list[httpx.Response] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(response)

    async with httpx.AsyncClient(event_hooks={"response": [hook]}) as http:
        session = ChatModel(DEMO, base_url=live_app.base_url, async_http_client=http)
        await session.aadd_messages([{"role": "user", "content": LONG_TEXT}])

        chunks = await session.arun(stream=True)
        assert (await anext(chunks)).content
        assert not seen[-1].is_closed
        await chunks.aclose()
        assert seen[-1].is_closed

        # The server ends each abandoned run a moment later; until then the session is busy.
        async with aclosing(await session.arun(stream=True, if_busy="wait")) as closing:
            async for chunk in closing:
                assert chunk.content
                break
        assert seen[-1].is_closed

        async for chunk in await session.arun(stream=True, if_busy="wait"):
            assert chunk.content
            break

        streamed = seen[-1]
        # the dropped generator is closed by the event loop's async-generator finalizer
        for _ in range(100):
            if streamed.is_closed:
                break
            await asyncio.sleep(0.01)
        assert streamed.is_closed
        await session.aadd_messages([{"role": "user", "content": "still there?"}])
        assert (await session.arun(if_busy="wait")).content == "still there?"


async def test_upstream_drop_mid_stream(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        live_admin, "remote", model="openai/scripted", api_base=llm_server.base_url
    )
    llm_server.enqueue(StreamDrop(Reply("one two three four"), after_chunks=2))
    session = ChatModel("remote", base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "count"}])

    chunks = list(session.run(stream=True))

    *pieces, last = chunks
    assert all(not c.done and not c.error for c in pieces)
    assert (last.done, last.error, last.message) == (True, True, None)
    assert last.error_type == "stream_interrupted"
    assert last.error_log
    assert session.session_uuid is not None
    stored = await stored_messages(live_admin, session.session_uuid)
    assert [m["role"] for m in stored] == ["user"]  # nothing stored for the reply


async def test_upstream_drop_mid_stream_async(
    live_app: LiveApp, live_admin: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(
        live_admin, "remote", model="openai/scripted", api_base=llm_server.base_url
    )
    llm_server.enqueue(StreamDrop(Reply("one two three four"), after_chunks=2))
    session = ChatModel("remote", base_url=live_app.base_url)
    await session.aadd_messages([{"role": "user", "content": "count"}])

    chunks: list[Any] = [c async for c in await session.arun(stream=True)]

    assert (chunks[-1].done, chunks[-1].error) == (True, True)
    assert chunks[-1].error_log
    assert session.session_uuid is not None
    assert [m["role"] for m in await stored_messages(live_admin, session.session_uuid)] == ["user"]
