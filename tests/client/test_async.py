"""The async methods against the app in-process (httpx ASGITransport), on the offline model."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from chatmodel import ChatModel, LLMStreamResponse
from tests.client.conftest import ASGI_BASE_URL
from tests.factories import (
    WEATHER_FUNCTION,
    add_version,
    make_chat_model,
    stored_messages,
)

WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": WEATHER_FUNCTION}


def over(client: httpx.AsyncClient, name: str = "assistant", **kwargs: Any) -> ChatModel:
    return ChatModel(name, async_http_client=client, base_url=ASGI_BASE_URL, **kwargs)


async def test_a_new_chat_model_makes_its_session_on_first_use(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant", system_prompt="Be brief.")
    session = over(client)

    config = await session.aget_config()
    assert (config.system_prompt, config.version, config.message_logs) == ("Be brief.", 1, [])
    chosen = session.session_uuid  # chosen at once; reading the config makes no session
    assert str(uuid.UUID(chosen)) == chosen and config.session_uuid is None
    assert (await client.get(f"/v1/sessions/{chosen}")).status_code == 404

    added = await session.aadd_messages([{"role": "user", "content": "Hello, I'm a user."}])
    assert session.session_uuid == chosen
    assert [(m.seq, m.role, m.content) for m in added] == [(1, "user", "Hello, I'm a user.")]
    assert (await client.get(f"/v1/sessions/{session.session_uuid}")).status_code == 200

    res = await session.arun()
    assert res.error is False
    assert res.content == res.raw_output == "Hello, I'm a user."
    assert res.detail is not None
    assert str(res.detail.session_uuid) == session.session_uuid
    stored = await stored_messages(client, session.session_uuid)
    assert [m["content"] for m in stored] == ["Hello, I'm a user."] * 2
    assert stored[-1]["uuid"] == str(res.detail.message_uuid)


async def test_run_on_a_new_chat_model_makes_the_session(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant", system_prompt="")
    session = over(client)
    res = await session.arun()  # an empty session: the offline model has nothing to echo
    assert session.session_uuid is not None
    assert res.detail is not None and str(res.detail.session_uuid) == session.session_uuid


async def test_resume_a_session_by_uuid(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    first = over(client)
    await first.aadd_messages([{"role": "user", "content": "Remember me."}])
    await first.arun()

    again = over(client, session_uuid=first.session_uuid)
    assert again.session_uuid == first.session_uuid
    config = await again.aget_config()
    assert str(config.session_uuid) == first.session_uuid
    assert [m["role"] for m in config.message_logs] == ["user", "assistant"]
    await again.aadd_messages([{"role": "user", "content": "Still here?"}])
    res = await again.arun()
    assert res.content == "Still here?"
    assert first.session_uuid is not None
    assert len(await stored_messages(client, first.session_uuid)) == 4


async def test_version_selectors(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant", system_prompt="first")
    await add_version(client, "assistant", system_prompt="second")  # not published

    assert (await over(client).aget_config()).system_prompt == "first"
    assert (await over(client, version="latest").aget_config()).system_prompt == "second"
    assert (await over(client, version=2).aget_config()).version == 2

    pinned = over(client, version="latest")
    await pinned.aadd_messages([{"role": "user", "content": "hi"}])
    res = await pinned.arun()
    assert res.detail is not None and res.detail.version == 2
    # a resumed session keeps its pinned version, whatever the ChatModel asks for
    resumed = over(client, session_uuid=pinned.session_uuid, version=1)
    assert (await resumed.aget_config()).version == 2


async def test_function_call_round_trip(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "simple_assistant")
    session = over(client, "simple_assistant")
    await session.aadd_messages([{"role": "user", "content": "What's the weather in Boston?"}])

    res = await session.arun(functions=[WEATHER_FUNCTION])
    assert res.error is False
    assert res.finish_reason == "function_call"
    assert res.function_call is not None
    assert res.function_call.name == "get_weather"
    assert res.function_call.args == {"location": "Boston"}

    (result,) = await session.aadd_messages([{"role": "function", "content": "13 degrees celsius"}])
    assert result.name == "get_weather"  # linked by the server to the waiting call
    res = await session.arun()
    assert res.content == "get_weather returned: 13 degrees celsius"


async def test_tool_calls_round_trip(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client)
    await session.aadd_messages([{"role": "user", "content": "What's the weather in Paris?"}])

    res = await session.arun(tools=[WEATHER_TOOL], tool_choice="auto")
    assert res.finish_reason == "tool_calls"
    assert res.tool_calls is not None
    (call,) = res.tool_calls
    assert (call.type, call.function.name, call.function.args) == (
        "function",
        "get_weather",
        {"location": "Paris"},
    )

    await session.aadd_messages([{"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    res = await session.arun()
    assert res.error is False
    assert (res.content or "").endswith(" returned: sunny")
    config = await session.aget_config()
    assert config.message_logs[2] == {"role": "tool", "content": "sunny", "tool_call_id": call.id}


async def test_stream(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client)
    await session.aadd_messages([{"role": "user", "content": "Hello, I'm a user streaming."}])

    chunks: list[LLMStreamResponse] = [c async for c in await session.arun(stream=True)]

    assert len(chunks) > 2
    assert all(not c.done for c in chunks[:-1])
    last = chunks[-1]
    assert last.done and not last.error
    text = "".join(c.content or "" for c in chunks[:-1])
    assert text == "".join(c.raw_output or "" for c in chunks[:-1])
    assert last.message is not None and last.message.content == text
    assert last.detail is not None and last.detail.message_uuid is not None
    assert session.session_uuid is not None
    stored = await stored_messages(client, session.session_uuid)
    assert (stored[-1]["content"], stored[-1]["uuid"]) == (text, str(last.detail.message_uuid))


async def test_stream_function_call(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client)
    await session.aadd_messages([{"role": "user", "content": "What's the weather in Boston?"}])

    chunks = [c async for c in await session.arun(functions=[WEATHER_FUNCTION], stream=True)]

    arguments = "".join(c.function_call.arguments for c in chunks if c.function_call)
    names = [c.function_call.name for c in chunks if c.function_call and c.function_call.name]
    assert names == ["get_weather"]
    last = chunks[-1]
    assert last.message is not None and last.message.function_call is not None
    assert last.message.function_call.arguments == arguments
    assert last.message.function_call.args == {"location": "Boston"}


async def test_concurrent_first_calls_share_one_session(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    session = over(client)

    # One run at a time per session: the others queue behind it.
    results = await asyncio.gather(*(session.arun(if_busy="wait") for _ in range(4)))

    assert [r.error for r in results] == [False] * 4
    assert session.session_uuid is not None
    assert {str(r.detail.session_uuid) for r in results if r.detail} == {session.session_uuid}
    stored = await stored_messages(client, session.session_uuid)
    assert [m["role"] for m in stored] == ["assistant"] * 4
