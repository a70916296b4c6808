"""Long sessions (issue 8): a run sends only what fits the model's input limit, never
splits a call from its results, reports what it sent, and reads its window, not its
history. Against the scripted upstream through the real LiteLLM, on both databases."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, ModelLimits
from chatmodel_service.models import ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.runs.context import FIRST_PAGE, prompt_budget
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.llm_server import Reply, ScriptedLLMServer

MODEL = "openai/scripted-model"  # unknown to LiteLLM: CHATMODEL_DEFAULT_CONTEXT_WINDOW
SYSTEM_PROMPT = "You are the scripted test assistant."
MAX_TOKENS = 50
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tool_unit(call_id: str, result: str = "13 degrees") -> list[dict[str, Any]]:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


async def scripted_model(
    client: httpx.AsyncClient, server: ScriptedLLMServer, name: str = "long", **fields: Any
) -> dict[str, Any]:
    fields = {"params": {"max_tokens": MAX_TOKENS}, **fields}
    return await make_chat_model(
        client, name, model=MODEL, api_base=server.base_url, system_prompt=SYSTEM_PROMPT, **fields
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A smaller default window than the server's, so a long session's prompt stays a few
    hundred messages (LiteLLM takes a while to send each one)."""
    return Settings(
        database_url=database_url,
        seed_demo=False,
        llm_timeout_seconds=5,
        default_context_window=2048,
    )


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.database
    return database


def count(gateway: LLMGateway, message: dict[str, Any]) -> int:
    return gateway.count_message_tokens(MODEL, message)


def system_message() -> dict[str, Any]:
    return {"role": "system", "content": SYSTEM_PROMPT}


def fixed_tokens(gateway: LLMGateway, tools: list[dict[str, Any]] | None = None) -> int:
    """The system prompt's tokens and the call's overhead (schemas, reply priming)."""
    return count(gateway, system_message()) + gateway.count_schema_tokens(MODEL, None, tools)


def conversation_sent(server: ScriptedLLMServer) -> list[dict[str, Any]]:
    """The last request's messages after the system prompt, as the server received them
    (LiteLLM leaves out a null content)."""
    messages: list[dict[str, Any]] = server.requests[-1]["messages"]
    assert messages[0] == system_message()
    return messages[1:]


def as_sent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the upstream receives them: without null fields."""
    return [{k: v for k, v in m.items() if v is not None} for m in messages]


async def runs_of(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def insert_history(app: FastAPI, session: str, messages: list[dict[str, Any]]) -> None:
    """Store messages straight into the table, as sessions written before token counts
    existed hold them (``token_count`` null), in one executemany."""
    session_id = uuid.UUID(session)
    rows = [
        {
            "id": uuid.uuid4(),
            "session_id": session_id,
            "seq": seq,
            "role": m["role"],
            "content": m.get("content"),
            "tool_calls": m.get("tool_calls"),
            "tool_call_id": m.get("tool_call_id"),
        }
        for seq, m in enumerate(messages, start=1)
    ]
    async with database_of(app).transaction() as db:
        await db.execute(insert(SessionMessage), rows)


async def counted_messages(app: FastAPI, session: str) -> int:
    async with database_of(app).transaction(write=False) as db:
        value = await db.scalar(
            select(func.count()).where(
                SessionMessage.session_id == uuid.UUID(session),
                SessionMessage.token_count.is_not(None),
            )
        )
    return int(value or 0)


def assert_units_whole(sent: list[dict[str, Any]]) -> None:
    """Every tool result sent follows its call, and every call sent has its results."""
    called: set[str] = set()
    for message in sent:
        called |= {c["id"] for c in message.get("tool_calls") or ()}
        if message["role"] == "tool":
            assert message["tool_call_id"] in called, sent
            called.discard(message["tool_call_id"])
    assert not called, sent


def long_history(length: int) -> list[dict[str, Any]]:
    """user/assistant turns with a tool-call round trip every 50 messages; ends with a
    user message."""
    history: list[dict[str, Any]] = []
    while len(history) < length - 1:
        n = len(history)
        if n % 50 == 10:
            history += tool_unit(f"call_{n}")
        else:
            history.append({"role": "user", "content": f"Question number {n}: what next?"})
            history.append({"role": "assistant", "content": f"Answer number {n}, as you asked."})
    history = history[: length - 1]
    history.append({"role": "user", "content": "The newest question."})
    return history


# -- the 10,000-message session --------------------------------------------------------


async def test_a_10000_message_session_sends_only_what_fits_and_reads_only_its_tail(
    app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
    gateway: LLMGateway,
    settings: Settings,
) -> None:
    await scripted_model(client, llm_server)
    session = await make_session(client, "long")
    history = long_history(10_000)
    await insert_history(app, session, history)
    llm_server.enqueue(Reply("Fine."), Reply("Still fine."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    sent = conversation_sent(llm_server)
    assert sent[-1] == {"role": "user", "content": "The newest question."}
    assert sent == as_sent(history[-len(sent) :])  # the newest messages, in order
    assert_units_whole(sent)
    allowed = settings.default_context_window - MAX_TOKENS  # no model info: the default
    estimate = fixed_tokens(gateway) + sum(count(gateway, m) for m in sent)
    assert result["prompt_tokens_estimate"] == estimate <= allowed
    # Nothing more would have fitted: the next older message (or unit) is over the budget.
    older = history[-len(sent) - 1]
    if older["role"] == "tool":
        older_tokens = count(gateway, older) + count(gateway, history[-len(sent) - 2])
    else:
        older_tokens = count(gateway, older)
    assert estimate + older_tokens > allowed
    assert result["messages_sent"] == len(sent) > 50
    assert result["messages_dropped"] == 10_000 - len(sent)
    # Only the tail was read (and counted, once): its pages, not the history. (The reply
    # was counted when stored.)
    read = await counted_messages(app, session) - 1
    assert len(sent) <= read < 2 * len(sent) + FIRST_PAGE
    [record] = await runs_of(client, session)
    assert (record["messages_sent"], record["messages_dropped"]) == (len(sent), 10_000 - len(sent))
    assert record["prompt_tokens_estimate"] == estimate

    await add_messages(client, session, {"role": "user", "content": "And one more."})
    again = await run(client, session)
    assert again["error"] is False
    assert conversation_sent(llm_server)[-3:] == [
        {"role": "user", "content": "The newest question."},
        {"role": "assistant", "content": "Fine."},
        {"role": "user", "content": "And one more."},
    ]
    assert again["messages_sent"] + again["messages_dropped"] == 10_002


# -- strategies --------------------------------------------------------------------------


async def test_fail_strategy_records_the_failure_and_never_calls_the_model(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server, context_strategy="fail", context_window=200)
    session = await make_session(client, "long")
    history = long_history(40)
    await add_messages(client, session, *history)

    result = await run(client, session)

    assert result["error"] is True
    assert result["error_type"] == "context_window_exceeded"
    log = result["error_log"]
    assert "context_strategy is 'fail'" in log and "truncate" in log
    assert f"only {200 - MAX_TOKENS - 3} fit" in log  # 3: the reply's priming
    assert llm_server.requests == []
    assert result["messages_sent"] == 0 and result["messages_dropped"] == 40
    assert result["content"] is None and result["detail"]["message_uuid"] is None
    assert len(await stored_messages(client, session)) == 40  # the history is kept
    [record] = await runs_of(client, session)
    assert record["status"] == "failed"
    assert record["error_type"] == "context_window_exceeded"
    assert record["error_log"] == log


async def test_a_newest_message_too_long_fails_under_every_strategy(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    huge = {"role": "user", "content": "word " * 400}
    for name, fields in {
        "truncating": {},
        "last-two": {"context_strategy": "last_n", "context_last_n": 2},
        "failing": {"context_strategy": "fail"},
    }.items():
        await scripted_model(client, llm_server, name, context_window=300, **fields)
        session = await make_session(client, name)
        result = await run(client, session, messages=[huge])
        assert result["error_type"] == "context_window_exceeded", (name, result)
        assert "The newest user message and what follows it need" in result["error_log"]
        assert "max_tokens" in result["error_log"]
    assert llm_server.requests == []


async def test_last_n_sends_at_most_n_and_drops_a_split_tool_unit_whole(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    history = [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Weather in Boston?"},
        *tool_unit("call_1"),
        {"role": "user", "content": "And tomorrow?"},
    ]
    for n, expected in ((3, history[3:]), (2, history[5:]), (4, history[2:])):
        name = f"last-{n}"
        await scripted_model(client, llm_server, name, context_strategy="last_n", context_last_n=n)
        session = await make_session(client, name)
        await add_messages(client, session, *history)
        llm_server.enqueue(Reply("Sunny."))
        result = await run(client, session)
        assert conversation_sent(llm_server) == as_sent(expected), n  # 2 would orphan a result
        assert (result["messages_sent"], result["messages_dropped"]) == (
            len(expected),
            len(history) - len(expected),
        )


async def test_truncate_drops_a_tool_unit_at_the_boundary_whole(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, gateway: LLMGateway
) -> None:
    history = [
        {"role": "user", "content": "Weather in Boston?"},
        *tool_unit("call_1", "13 degrees celsius and a light breeze from the west"),
        {"role": "user", "content": "Thanks. And in Paris?"},
    ]
    fixed = fixed_tokens(gateway, [WEATHER_TOOL])
    result_and_question = count(gateway, history[2]) + count(gateway, history[3])
    # Room for the tool result and the question, but not for the call as well.
    window = fixed + result_and_question + MAX_TOKENS
    assert count(gateway, history[1]) > 0
    await scripted_model(client, llm_server, context_window=window, tools=[WEATHER_TOOL])
    session = await make_session(client, "long")
    await add_messages(client, session, *history)
    llm_server.enqueue(Reply("Let me check."))

    result = await run(client, session)

    assert conversation_sent(llm_server) == [history[3]]
    assert llm_server.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    assert (result["messages_sent"], result["messages_dropped"]) == (1, 3)
    assert result["prompt_tokens_estimate"] == fixed + count(gateway, history[3]) <= window


async def test_the_figures_reach_the_stream_and_the_run_record(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server, context_window=120)
    session = await make_session(client, "long")
    await add_messages(client, session, *long_history(30))
    llm_server.enqueue(Reply("Streamed."))

    async with client.stream(
        "POST",
        f"/v1/sessions/{session}/run",
        json={"stream": True, "messages": [{"role": "user", "content": "Go on."}]},
    ) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    last = json.loads(lines[-1].removeprefix("data: "))

    assert last["done"] is True and last["message"]["content"] == "Streamed."
    sent = conversation_sent(llm_server)
    assert sent[-1] == {"role": "user", "content": "Go on."}
    assert last["messages_sent"] == len(sent) < 31
    assert last["messages_dropped"] == 31 - len(sent)
    assert last["prompt_tokens_estimate"] <= 120 - MAX_TOKENS
    [record] = await runs_of(client, session)
    assert record["messages_sent"] == last["messages_sent"]
    assert record["prompt_tokens_estimate"] == last["prompt_tokens_estimate"]


async def test_messages_are_counted_once_when_stored(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer, gateway: LLMGateway
) -> None:
    await scripted_model(client, llm_server)
    session = await make_session(client, "long")
    llm_server.enqueue(Reply("Counted."))
    question = {"role": "user", "content": "Count me in."}
    await run(client, session, messages=[question])
    async with database_of(app).transaction(write=False) as db:
        rows = (
            await db.scalars(
                select(SessionMessage)
                .where(SessionMessage.session_id == uuid.UUID(session))
                .order_by(SessionMessage.seq)
            )
        ).all()
    reply = {"role": "assistant", "content": "Counted."}
    assert [r.token_count for r in rows] == [count(gateway, question), count(gateway, reply)]


# -- the OpenAI-compatible API ----------------------------------------------------------


def chat(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "long", "messages": list(messages), **fields}


async def test_openai_compatible_calls_are_fitted_too(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server, context_window=150)
    history = long_history(21)
    llm_server.enqueue(Reply("Stateless."), Reply("With a session."))

    stateless = await client.post("/v1/chat/completions", json=chat(*history))
    assert stateless.status_code == 200, stateless.text
    sent = conversation_sent(llm_server)
    assert sent == as_sent(history[-len(sent) :]) and len(sent) < len(history)

    session = str(uuid.uuid4())
    with_session = await client.post(
        "/v1/chat/completions", json=chat(*history), headers={"X-Session-Id": session}
    )
    assert with_session.status_code == 200, with_session.text
    assert conversation_sent(llm_server) == sent
    assert len(await stored_messages(client, session)) == 22  # all stored, reply included
    run_uuid = with_session.json()["chatmodel"]["run_uuid"]
    async with database_of(app).transaction(write=False) as db:
        record = await db.get(ChatRun, uuid.UUID(run_uuid))
    assert record is not None
    assert (record.messages_sent, record.messages_dropped) == (len(sent), 21 - len(sent))


async def test_openai_compatible_call_that_cannot_fit_is_a_400_and_a_failed_run(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server, context_strategy="fail", context_window=150)
    session = str(uuid.uuid4())

    response = await client.post(
        "/v1/chat/completions", json=chat(*long_history(21)), headers={"X-Session-Id": session}
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert llm_server.requests == []
    [record] = await runs_of(client, session)
    assert (record["status"], record["error_type"]) == ("failed", "context_window_exceeded")
    assert len(await stored_messages(client, session)) == 21  # the messages are kept
    stateless = await client.post("/v1/chat/completions", json=chat(*long_history(21)))
    assert stateless.status_code == 400
    async with database_of(app).transaction(write=False) as db:
        failed = await db.scalar(
            select(func.count()).where(
                ChatRun.session_id.is_(None), ChatRun.error_type == "context_window_exceeded"
            )
        )
    assert failed == 1


# -- versions and the budget -------------------------------------------------------------


async def test_version_context_settings_are_validated_and_shown(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "ctx")
    base = {"system_prompt": "s", "model": OFFLINE_MODEL}
    cases = [
        ({"context_strategy": "last_n"}, "context_last_n"),
        ({"context_last_n": 5}, "context_last_n"),
        ({"context_strategy": "fail", "context_last_n": 5}, "context_last_n"),
        ({"context_strategy": "last_n", "context_last_n": 0}, "context_last_n"),
        ({"context_strategy": "last_n", "context_last_n": 100_001}, "context_last_n"),
        ({"context_strategy": "newest"}, "context_strategy"),
        ({"context_window": 0}, "context_window"),
        ({"context_window": 10_000_001}, "context_window"),
    ]
    for fields, field in cases:
        response = await client.post("/v1/chat-models/ctx/versions", json=base | fields)
        expect_error(response, 422, "validation_error", field)
    created = await client.post(
        "/v1/chat-models/ctx/versions",
        json=base | {"context_strategy": "last_n", "context_last_n": 20, "context_window": 4096},
    )
    assert created.status_code == 201, created.text
    shown = (await client.get(f"/v1/chat-models/ctx/versions/{created.json()['number']}")).json()
    assert (shown["context_strategy"], shown["context_last_n"], shown["context_window"]) == (
        "last_n",
        20,
        4096,
    )
    plain = await client.post("/v1/chat-models/ctx/versions", json=base)
    assert plain.json()["context_strategy"] == "truncate"
    assert plain.json()["context_window"] is None


def test_the_budget_follows_litellm_the_version_and_the_settings(gateway: LLMGateway) -> None:
    settings = Settings(seed_demo=False)
    assert gateway.model_limits("gpt-4o-mini", None) == ModelLimits(128_000, 16_384)
    assert gateway.model_limits(OFFLINE_MODEL, None) == ModelLimits()
    assert gateway.model_limits("openai/unlisted", "http://127.0.0.1:1/v1") == ModelLimits()

    def version(**fields: Any) -> ChatModelVersion:
        return ChatModelVersion(model=fields.pop("model", "gpt-4o-mini"), **fields)

    known = prompt_budget(gateway, settings, version(), LLMCall("gpt-4o-mini", []))
    # No max_tokens: the reply reserve is the smaller of the setting and the model's output.
    assert (known.input_limit, known.reply_reserve) == (128_000, settings.default_reply_reserve)
    overridden = prompt_budget(
        gateway,
        settings,
        version(context_window=5000),
        LLMCall("gpt-4o-mini", [], params={"max_tokens": 700}),
    )
    assert (overridden.input_limit, overridden.reply_reserve) == (5000, 700)
    assert overridden.allowed == 5000 - 700 - overridden.overhead
    offline = prompt_budget(
        gateway, settings, version(model=OFFLINE_MODEL), LLMCall(OFFLINE_MODEL, [])
    )
    assert offline.input_limit == settings.default_context_window
    with_tools = prompt_budget(
        gateway, settings, version(), LLMCall("gpt-4o-mini", [], tools=[WEATHER_TOOL])
    )
    assert with_tools.overhead > known.overhead > 0
