"""The official ``openai`` SDK against a real server (the app under uvicorn, demo chat model
on the offline model), and sessions shared with the ``chatmodel`` client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
)

from chatmodel import ChatModel
from tests.factories import WEATHER_FUNCTION
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer, SlowStream
from tests.support.servers import LiveApp, scripted_chat_model

DEMO = "simple_assistant"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": WEATHER_FUNCTION["name"],
        "description": WEATHER_FUNCTION["description"],
        "parameters": WEATHER_FUNCTION["parameters"],
    },
}


@pytest.fixture
def sdk(live_app: LiveApp) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{live_app.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as client:
        yield client


def stored(live_app: LiveApp, session: str) -> list[tuple[str, str | None]]:
    response = httpx.get(f"{live_app.base_url}/v1/sessions/{session}/messages")
    assert response.status_code == 200, response.text
    return [(m["role"], m["content"]) for m in response.json()["data"]]


def test_chat_completion(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": "Hello, what can you do?"}]
    )

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == DEMO
    (choice,) = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello, what can you do?"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.completion_tokens > 0


def test_streamed_chat_completion_with_usage(sdk: openai.OpenAI) -> None:
    text = "What are some fun things to do in New York?"
    stream = sdk.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == text
    assert len([p for p in pieces if p]) > 1
    assert {c.id for c in chunks} == {chunks[0].id}
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishing[-1] == "stop" and set(finishing[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0


async def test_async_client(live_app: LiveApp) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{live_app.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as client:
        completion = await client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "What country is Paris in?"}]
        )
        stream = await client.chat.completions.create(
            model=DEMO,
            messages=[{"role": "user", "content": "What are the top things to do?"}],
            stream=True,
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream]

    assert completion.choices[0].message.content == "What country is Paris in?"
    assert "".join(pieces) == "What are the top things to do?"


def test_tool_call_round_trip_in_a_session(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    session = str(uuid.uuid4())
    headers = {"X-Session-Id": session}
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Boston?"}]

    first = sdk.chat.completions.create(
        model=DEMO, messages=messages, tools=[WEATHER_TOOL], extra_headers=headers
    )
    reply = first.choices[0]
    assert reply.finish_reason == "tool_calls"
    assert reply.message.tool_calls is not None
    (call,) = reply.message.tool_calls
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Boston"}

    messages += [
        reply.message,  # the SDK's own object, sent back as OpenAI's docs do
        {"role": "tool", "tool_call_id": call.id, "content": "13 degrees celsius"},
    ]
    second = sdk.chat.completions.create(
        model=DEMO, messages=messages, tools=[WEATHER_TOOL], extra_headers=headers
    )

    assert second.choices[0].message.content == "get_weather returned: 13 degrees celsius"
    assert stored(live_app, session) == [
        ("user", "What is the weather in Boston?"),
        ("assistant", None),
        ("tool", "13 degrees celsius"),
        ("assistant", "get_weather returned: 13 degrees celsius"),
    ]


def test_session_continued_across_calls(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    session = str(uuid.uuid4())
    messages: list[Any] = []
    for text in ("What are some fun things to do in New York?", "Where is it?", "Thanks"):
        messages.append({"role": "user", "content": text})
        completion = sdk.chat.completions.create(
            model=DEMO, messages=messages, extra_headers={"X-Session-Id": session}
        )
        messages.append({"role": "assistant", "content": completion.choices[0].message.content})

    assert stored(live_app, session) == [(m["role"], m["content"]) for m in messages]
    assert [role for role, _ in stored(live_app, session)] == ["user", "assistant"] * 3


def test_streamed_reply_is_stored_once(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    session = str(uuid.uuid4())
    messages: list[Any] = [{"role": "user", "content": "Tell me about Rome"}]
    stream = sdk.chat.completions.create(
        model=DEMO, messages=messages, stream=True, extra_headers={"X-Session-Id": session}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "And Milan"}]
    sdk.chat.completions.create(
        model=DEMO, messages=messages, extra_headers={"X-Session-Id": session}
    )

    assert stored(live_app, session) == [
        ("user", "Tell me about Rome"),
        ("assistant", "Tell me about Rome"),
        ("user", "And Milan"),
        ("assistant", "And Milan"),
    ]


def test_unknown_model_is_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )

    error = raised.value
    assert error.status_code == 404
    assert error.code == "model_not_found"
    assert isinstance(error.body, dict)
    assert error.body["param"] == "model"
    assert "'gpt-4o-mini' does not exist" in error.body["message"]


def test_history_that_does_not_match_is_a_conflict(sdk: openai.OpenAI) -> None:
    session = str(uuid.uuid4())
    headers = {"X-Session-Id": session}
    sdk.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": "First"}], extra_headers=headers
    )

    with pytest.raises(openai.ConflictError) as raised:
        sdk.chat.completions.create(
            model=DEMO,
            messages=[
                {"role": "user", "content": "First"},
                {"role": "assistant", "content": "Something else"},
                {"role": "user", "content": "Second"},
            ],
            extra_headers=headers,
        )

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["param"] == "messages"
    assert "messages[1] differs" in raised.value.body["message"]


def test_failed_stream_start_raises_the_sdk_error(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(ErrorReply(429, "slow down"))

    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(
            model="remote", messages=[{"role": "user", "content": "Hi"}], stream=True
        )

    assert raised.value.code == "rate_limit_exceeded"
    assert "slow down" in str(raised.value.message)


def test_closing_a_stream_early_closes_the_upstream_and_stores_no_reply(
    live_app: LiveApp, sdk: openai.OpenAI, llm_server: ScriptedLLMServer
) -> None:
    model = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(SlowStream(Reply("one two three four five six seven"), chunk_delay=0.3))
    session = str(uuid.uuid4())

    stream = sdk.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Talk slowly."}],
        stream=True,
        extra_headers={"X-Session-Id": session},
    )
    next(iter(stream))
    stream.close()

    runs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = httpx.get(f"{live_app.base_url}/v1/sessions/{session}/runs").json()["data"]
        # The upstream is closed first, the run recorded just after: wait for both.
        if runs and runs[0]["status"] != "running" and llm_server.open_streams == 0:
            break
        time.sleep(0.05)
    assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "client_disconnected")]
    assert llm_server.abandoned_streams == 1
    assert stored(live_app, session) == [("user", "Talk slowly.")]


def test_session_from_the_chatmodel_client_continued_with_the_sdk(
    sdk: openai.OpenAI, live_app: LiveApp
) -> None:
    session = ChatModel(DEMO, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    assert session.run().content == "Hello, I'm a user."
    assert session.session_uuid is not None

    completion = sdk.chat.completions.create(
        model=DEMO,
        messages=[
            {"role": "user", "content": "Hello, I'm a user."},
            {"role": "assistant", "content": "Hello, I'm a user."},
            {"role": "user", "content": "What now?"},
        ],
        extra_headers={"X-Session-Id": session.session_uuid},
    )

    assert completion.choices[0].message.content == "What now?"
    assert stored(live_app, session.session_uuid) == [
        ("user", "Hello, I'm a user."),
        ("assistant", "Hello, I'm a user."),
        ("user", "What now?"),
        ("assistant", "What now?"),
    ]


def test_session_from_the_sdk_continued_with_the_chatmodel_client(
    sdk: openai.OpenAI, live_app: LiveApp
) -> None:
    session_uuid = str(uuid.uuid4())
    sdk.chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Started with the SDK"}],
        extra_headers={"X-Session-Id": session_uuid},
    )

    session = ChatModel(DEMO, session_uuid, base_url=live_app.base_url)
    session.add_messages([{"role": "user", "content": "Continued with ChatModel"}])
    result = session.run()

    assert result.content == "Continued with ChatModel"
    assert session.get_config().message_logs == [
        {"role": "user", "content": "Started with the SDK"},
        {"role": "assistant", "content": "Started with the SDK"},
        {"role": "user", "content": "Continued with ChatModel"},
        {"role": "assistant", "content": "Continued with ChatModel"},
    ]


def test_text_completion(sdk: openai.OpenAI) -> None:
    completion = sdk.completions.create(
        model=DEMO, prompt="Hello, my name is", max_tokens=10, temperature=0.2
    )

    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    (choice,) = completion.choices
    assert (choice.text, choice.index, choice.logprobs) == ("Hello, my name is", 0, None)
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_models_list(sdk: openai.OpenAI) -> None:
    models = sdk.models.list()

    assert [m.id for m in models] == [DEMO]
    assert models.data[0].owned_by == "chatmodel"
    assert sdk.models.retrieve(DEMO).id == DEMO
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("nope")
