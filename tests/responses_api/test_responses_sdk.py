"""The official ``openai`` SDK's Responses and Conversations calls against a real server
(the app under uvicorn, the demo chat model on the offline echo model, or a scripted
upstream), checked against what the native API then holds."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall

from tests.factories import WEATHER_FUNCTION
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer, SlowStream, StreamDrop
from tests.support.servers import LiveApp, scripted_chat_model

DEMO = "simple_assistant"
WEATHER_TOOL: FunctionToolParam = {
    "type": "function",
    "name": WEATHER_FUNCTION["name"],
    "description": WEATHER_FUNCTION["description"],
    "parameters": WEATHER_FUNCTION["parameters"],
    "strict": False,
}
ONE_MESSAGE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def extension(response: Response) -> dict[str, Any]:
    """The ``chatmodel`` extension object the SDK keeps as an extra field."""
    extra = response.model_extra or {}
    found: dict[str, Any] = extra["chatmodel"]
    return found


def session_of(response: Response) -> str:
    return str(extension(response)["session_uuid"])


def stored(live_app: LiveApp, session: str) -> list[tuple[str, str | None]]:
    answer = httpx.get(f"{live_app.base_url}/v1/sessions/{session}/messages", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return [(m["role"], m["content"]) for m in answer.json()["data"]]


def runs(live_app: LiveApp, session: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{live_app.base_url}/v1/sessions/{session}/runs")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def make_version(live_app: LiveApp, name: str, **version: Any) -> None:
    created = httpx.post(f"{live_app.base_url}/v1/chat-models", json={"name": name})
    assert created.status_code == 201, created.text
    body = {"model": "chatmodel-offline/echo", "publish": True, **version}
    made = httpx.post(f"{live_app.base_url}/v1/chat-models/{name}/versions", json=body)
    assert made.status_code == 201, made.text


def test_create_retrieve_delete(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model=DEMO, input="Hello, what can you do?")

    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "Hello, what can you do?"
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )
    assert extension(response)["chat_model"] == DEMO

    again = sdk.responses.retrieve(response.id)
    assert (again.id, again.output_text, again.status) == (
        response.id,
        "Hello, what can you do?",
        "completed",
    )

    sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as raised:
        sdk.responses.retrieve(response.id)
    assert raised.value.code == "response_not_found"


def test_three_turns_in_a_conversation(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    conversation = sdk.conversations.create()
    texts = ["First question", "Second question", "Third question"]
    responses = [
        sdk.responses.create(model=DEMO, conversation=conversation.id, input=text) for text in texts
    ]

    assert [r.output_text for r in responses] == texts
    sessions = {session_of(r) for r in responses}
    assert len(sessions) == 1
    (session,) = sessions
    assert conversation.id == f"conv_{uuid.UUID(session).hex}"
    assert stored(live_app, session) == [
        (role, text) for text in texts for role in ("user", "assistant")
    ]


def test_previous_response_chain_and_branch(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    r1 = sdk.responses.create(model=DEMO, input="Root turn")
    r2 = sdk.responses.create(model=DEMO, previous_response_id=r1.id, input="Second turn")
    r2_session = stored(live_app, session_of(r2))
    r3 = sdk.responses.create(model=DEMO, previous_response_id=r1.id, input="Branch turn")

    assert session_of(r2) == session_of(r1)
    assert r2_session == [
        ("user", "Root turn"),
        ("assistant", "Root turn"),
        ("user", "Second turn"),
        ("assistant", "Second turn"),
    ]
    assert r3.output_text == "Branch turn"
    assert session_of(r3) != session_of(r1)
    assert stored(live_app, session_of(r3)) == [
        ("user", "Root turn"),
        ("assistant", "Root turn"),
        ("user", "Branch turn"),
        ("assistant", "Branch turn"),
    ]
    assert stored(live_app, session_of(r2)) == r2_session


def test_not_stored_response(sdk: openai.OpenAI) -> None:
    response = sdk.responses.create(model=DEMO, input="Forget me", store=False)

    assert response.output_text == "Forget me"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model=DEMO, previous_response_id=response.id, input="And now?")


def only_call(response: Response) -> ResponseFunctionToolCall:
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1, response.output
    (call,) = calls
    assert isinstance(call, ResponseFunctionToolCall)
    return call


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_function_tool_round_trip(sdk: openai.OpenAI, streamed: bool) -> None:
    question = "What is the weather in Paris?"
    first: Response
    if streamed:
        with sdk.responses.stream(model=DEMO, input=question, tools=[WEATHER_TOOL]) as stream:
            first = stream.get_final_response()
    else:
        first = sdk.responses.create(model=DEMO, input=question, tools=[WEATHER_TOOL])

    call = only_call(first)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "Paris"}
    assert call.call_id

    second = sdk.responses.create(
        model=DEMO,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}],
        tools=[WEATHER_TOOL],
    )
    assert "22 degrees" in second.output_text
    assert session_of(second) == session_of(first)


def test_streamed_text_events(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    text = "What are some fun things to do in New York?"
    with sdk.responses.stream(model=DEMO, input=text) as stream:
        events = list(stream)
        final = stream.get_final_response()

    types = [event.type for event in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 1
    assert types == (
        ONE_MESSAGE_EVENTS[:4]
        + ["response.output_text.delta"] * len(deltas)
        + ONE_MESSAGE_EVENTS[5:]
    )
    numbers = [event.sequence_number for event in events]
    assert numbers[0] == 0
    assert all(b > a for a, b in itertools.pairwise(numbers))
    assert "".join(d.delta for d in deltas) == text == final.output_text
    added = [e.item.id for e in events if e.type == "response.output_item.added"]
    (message,) = final.output
    assert message.type == "message"
    assert [message.id] == added
    assert final.status == "completed"
    assert stored(live_app, session_of(final)) == [("user", text), ("assistant", text)]


def test_prompt_binds_a_version_and_variables(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    make_version(
        live_app, "helper", system_prompt="You help {{plan}} customers.", variables=["plan"]
    )

    response = sdk.responses.create(
        prompt={"id": "helper", "version": "1", "variables": {"plan": "gold"}},
        input="Which plan am I on?",
    )

    assert response.output_text == "Which plan am I on?"
    assert extension(response)["chat_model"] == "helper"
    assert extension(response)["version"] == 1
    session = httpx.get(f"{live_app.base_url}/v1/sessions/{session_of(response)}")
    assert session.status_code == 200, session.text
    assert session.json()["variables"] == {"plan": "gold"}
    assert session.json()["version"] == 1

    with pytest.raises(openai.NotFoundError) as wrong_version:
        sdk.responses.create(
            prompt={"id": "helper", "version": "7", "variables": {"plan": "gold"}},
            input="Hi",
        )
    assert wrong_version.value.code == "version_not_found"
    assert wrong_version.value.param == "prompt.version"
    with pytest.raises(openai.BadRequestError) as no_value:
        sdk.responses.create(prompt={"id": "helper", "version": "1"}, input="Hi")
    assert isinstance(no_value.value.body, dict)
    assert no_value.value.body["param"] == "prompt.variables.plan"


def test_truncation(sdk: openai.OpenAI, live_app: LiveApp) -> None:
    make_version(live_app, "tiny", system_prompt="Be brief.", context_window=500)
    long_turn = "word " * 40

    refused = sdk.conversations.create()
    with pytest.raises(openai.BadRequestError) as raised:
        for turn in range(10):
            sdk.responses.create(
                model="tiny",
                conversation=refused.id,
                input=f"{turn} {long_turn}",
                max_output_tokens=100,
            )
    assert raised.value.code == "context_length_exceeded"
    assert turn > 0  # the first turns fit; the history is what grows too long

    allowed = sdk.conversations.create()
    for turn in range(10):
        last = sdk.responses.create(
            model="tiny",
            conversation=allowed.id,
            input=f"{turn} {long_turn}",
            max_output_tokens=100,
            truncation="auto",
        )
        assert last.output_text == f"{turn} {long_turn}"
    recorded = runs(live_app, session_of(last))
    assert len(recorded) == 10
    assert all(r["status"] == "succeeded" for r in recorded)
    assert max(r["messages_dropped"] or 0 for r in recorded) > 0


def test_input_items_pages(sdk: openai.OpenAI) -> None:
    texts = [f"Message {n}" for n in range(5)]
    response = sdk.responses.create(
        model=DEMO, input=[{"role": "user", "content": text} for text in texts]
    )

    def text_of(item: Any) -> str:
        assert (item.type, item.role) == ("message", "user")
        return str(item.content[0].text)

    def bounds(page: Any) -> tuple[str, str]:
        extra = page.model_extra or {}
        return (extra["first_id"], extra["last_id"])

    orders: list[tuple[Literal["asc", "desc"], list[str]]] = [
        ("asc", texts),
        ("desc", texts[::-1]),
    ]
    for order, expected in orders:
        page = sdk.responses.input_items.list(response.id, limit=2, order=order)
        assert [text_of(i) for i in page.data] == expected[:2]
        assert page.has_more is True
        assert bounds(page) == (page.data[0].id, page.data[-1].id)
        seen = list(page.data)
        sizes = [len(page.data)]
        while page.has_more:
            page = sdk.responses.input_items.list(
                response.id, limit=2, order=order, after=bounds(page)[1]
            )
            assert bounds(page) == (page.data[0].id, page.data[-1].id)
            seen += page.data
            sizes.append(len(page.data))
        assert sizes == [2, 2, 1]
        assert [text_of(i) for i in seen] == expected
        assert len({i.id for i in seen}) == 5
        everything = sdk.responses.input_items.list(response.id, limit=2, order=order)
        assert [text_of(i) for i in everything] == expected


def test_errors(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model=DEMO, input="Hi")
    conversation = sdk.conversations.create()

    with pytest.raises(openai.BadRequestError) as both:
        sdk.responses.create(
            model=DEMO, conversation=conversation.id, previous_response_id=first.id, input="x"
        )
    assert "not both" in both.value.message
    with pytest.raises(openai.NotFoundError) as unknown_model:
        sdk.responses.create(model="gpt-4o-mini", input="Hi")
    assert unknown_model.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as hosted:
        sdk.responses.create(
            model=DEMO, input="Hi", tools=[{"type": "file_search", "vector_store_ids": ["vs"]}]
        )
    assert isinstance(hosted.value.body, dict)
    assert hosted.value.body["param"] == "tools.0.type"
    with pytest.raises(openai.NotFoundError) as unknown:
        sdk.responses.create(
            model=DEMO, previous_response_id=f"resp_{uuid.uuid4().hex}", input="Hi"
        )
    assert unknown.value.code == "response_not_found"


def test_busy_conversation_is_a_conflict(
    sdk: openai.OpenAI, live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    model = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(SlowStream(Reply("one two three four five six"), chunk_delay=0.4))
    conversation = sdk.conversations.create()
    finished: list[str] = []

    def slow() -> None:
        with sdk.responses.stream(model=model, conversation=conversation.id, input="Slow") as s:
            finished.append(s.get_final_response().output_text)

    worker = threading.Thread(target=slow)
    worker.start()
    session = str(uuid.UUID(conversation.id.removeprefix("conv_")))
    deadline = time.monotonic() + 10
    while not runs(live_app, session) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with pytest.raises(openai.ConflictError) as raised:
            sdk.responses.create(model=model, conversation=conversation.id, input="Too soon")
    finally:
        worker.join(timeout=20)
    assert raised.value.code == "session_busy"
    assert finished == ["one two three four five six"]


async def test_async_client(live_app: LiveApp) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{live_app.base_url}/v1", api_key="sk-not-checked", max_retries=0
    ) as client:
        created = await client.responses.create(model=DEMO, input="What country is Paris in?")
        conversation = await client.conversations.create()
        turns = [
            await client.responses.create(model=DEMO, conversation=conversation.id, input=t)
            for t in ("One", "Two")
        ]
        async with client.responses.stream(
            model=DEMO, conversation=conversation.id, input="Three streamed"
        ) as stream:
            pieces = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
        fetched = await client.responses.retrieve(final.id)

    assert created.output_text == "What country is Paris in?"
    assert [t.output_text for t in turns] == ["One", "Two"]
    assert "".join(pieces) == "Three streamed" == final.output_text == fetched.output_text
    assert session_of(final) == session_of(turns[0])
    assert stored(live_app, session_of(final)) == [
        (role, text) for text in ("One", "Two", "Three streamed") for role in ("user", "assistant")
    ]


@pytest.mark.parametrize(
    ("status", "error_class", "sdk_status", "code"),
    [
        (429, openai.RateLimitError, 429, "rate_limit_exceeded"),
        (500, openai.APIStatusError, 502, "server_error"),
    ],
)
def test_failed_model_call(
    sdk: openai.OpenAI,
    live_app: LiveApp,
    llm_server: ScriptedLLMServer,
    status: int,
    error_class: type[openai.APIStatusError],
    sdk_status: int,
    code: str,
) -> None:
    model = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(ErrorReply(status, "scripted failure"))
    conversation = sdk.conversations.create()

    with pytest.raises(error_class) as raised:
        sdk.responses.create(model=model, conversation=conversation.id, input="Hi")

    assert raised.value.status_code == sdk_status
    session = str(uuid.UUID(conversation.id.removeprefix("conv_")))
    (run,) = runs(live_app, session)
    assert run["status"] == "failed"
    failed = sdk.responses.retrieve(f"resp_{uuid.UUID(run['uuid']).hex}")
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == code
    assert failed.error.message.startswith(f"{run['error_type']}: ")
    assert stored(live_app, session) == [("user", "Hi")]


def test_stream_broken_off_ends_failed(
    sdk: openai.OpenAI, live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    model = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(StreamDrop(Reply("one two three four five six"), after_chunks=3))
    conversation = sdk.conversations.create()

    stream = sdk.responses.create(
        model=model, conversation=conversation.id, input="Break off", stream=True
    )
    events = list(stream)

    types = [event.type for event in events]
    assert "response.output_text.delta" in types
    assert types[-1] == "response.failed"
    assert "response.completed" not in types
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.status == "failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert failed.response.error.message.startswith("stream_interrupted: ")
    session = str(uuid.UUID(conversation.id.removeprefix("conv_")))
    assert stored(live_app, session) == [("user", "Break off")]
    (run,) = runs(live_app, session)
    assert run["status"] == "failed"
