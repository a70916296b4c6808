"""The seed 004 conversation over REST on the built-in offline model."""

from __future__ import annotations

import httpx

from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)


async def test_echo_conversation_is_stored_in_order(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "simple_assistant")
    session = await make_session(client, "simple_assistant")
    await add_messages(client, session, {"role": "user", "content": "Hello, I'm a user."})

    result = await run(client, session)

    assert result["error"] is False
    assert result["content"] == result["raw_output"] == "Hello, I'm a user."
    assert result["detail"]["version"] == 1
    assert result["usage"]["total_tokens"] > 0
    messages = await stored_messages(client, session)
    assert [(m["seq"], m["role"], m["content"]) for m in messages] == [
        (1, "user", "Hello, I'm a user."),
        (2, "assistant", "Hello, I'm a user."),
    ]
    assert messages[1]["uuid"] == result["detail"]["message_uuid"]


async def test_seed_004_function_call_round_trip(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "simple_assistant")
    session = await make_session(client, "simple_assistant")
    await add_messages(
        client, session, {"role": "user", "content": "What's the weather in Boston?"}
    )

    call = await run(client, session, functions=[WEATHER_FUNCTION])

    assert call["error"] is False
    assert call["finish_reason"] == "function_call"
    assert call["function_call"]["name"] == "get_weather"
    assert call["function_call"]["args"] == {"location": "Boston"}
    linked = await add_messages(
        client, session, {"role": "function", "content": "13 degrees celsius"}
    )
    assert linked[0]["name"] == "get_weather"

    answer = await run(client, session)

    assert answer["error"] is False
    assert "13 degrees celsius" in answer["content"]
    messages = await stored_messages(client, session)
    assert [m["role"] for m in messages] == ["user", "assistant", "function", "assistant"]
    assert messages[1]["function_call"]["name"] == "get_weather"
    assert [m["seq"] for m in messages] == [1, 2, 3, 4]
