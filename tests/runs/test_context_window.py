"""Long sessions (issue 8): a run sends only what fits the model's input limit, never
splits a call from its results, reports what it sent, and reads its window, not its
history. Against the scripted upstream through the real LiteLLM, on both databases."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast
from unittest.mock import patch

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import event, func, insert, select, text

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.types import LLMCall, ModelLimits
from chatmodel_service.models import ChatModelVersion, ChatRun, SessionMessage
from chatmodel_service.models.base import DEFAULT_PROJECT_ID
from chatmodel_service.runs import prompt_fit as context
from chatmodel_service.runs.prompt_fit import FIRST_PAGE, prompt_budget
from chatmodel_service.runs.window import STRATEGIES
from chatmodel_service.sessions.messages import message_to_openai
from chatmodel_service.sessions.repository import SessionRepository
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.databases import session_row_id
from tests.support.generated_sessions import Generated, sessions
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


SUPERSEDED = "superseded"  # a key of a message given to insert_history: store it superseded


async def insert_history(app: FastAPI, session: str, messages: list[dict[str, Any]]) -> None:
    """Store messages straight into the table, as sessions written before token counts
    existed hold them (``token_count`` null), in one executemany; a message with
    ``SUPERSEDED`` set is stored as a regenerated reply."""
    async with database_of(app).transaction(write=False) as db:
        session_id = await session_row_id(db, session)
    rows = [
        {
            "id": uuid.uuid4(),
            "uuid": uuid.uuid4(),
            "project_id": DEFAULT_PROJECT_ID,
            "session_id": session_id,
            "seq": seq,
            "role": m["role"],
            "content": m.get("content"),
            "name": m.get("name"),
            "function_call": m.get("function_call"),
            "tool_calls": m.get("tool_calls"),
            "tool_call_id": m.get("tool_call_id"),
            "superseded_at": datetime.now(UTC) if m.get(SUPERSEDED) else None,
        }
        for seq, m in enumerate(messages, start=1)
    ]
    async with database_of(app).transaction() as db:
        await db.execute(insert(SessionMessage), rows)


async def counted_messages(app: FastAPI, session: str) -> int:
    async with database_of(app).transaction(write=False) as db:
        value = await db.scalar(
            select(func.count()).where(
                SessionMessage.session_id == await session_row_id(db, session),
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


def with_regenerated_replies(history: list[dict[str, Any]], every: int) -> list[dict[str, Any]]:
    """The history with a superseded reply before every ``every``-th assistant message (as
    a regenerated reply is stored: kept, never sent)."""
    out: list[dict[str, Any]] = []
    replies = 0
    for message in history:
        if message["role"] == "assistant" and message.get("content"):
            replies += 1
            if replies % every == 0:
                out.append({"role": "assistant", "content": "A first try.", SUPERSEDED: True})
        out.append(message)
    return out


def examined_rows(plan: dict[str, Any]) -> int:
    """Rows of session_message a PostgreSQL plan (EXPLAIN ANALYZE, JSON) looked at."""
    rows = 0
    if plan.get("Relation Name") == "session_message":
        looked_at = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        rows += looked_at * plan.get("Actual Loops", 1)
    return rows + sum(examined_rows(child) for child in plan.get("Plans", ()))


async def test_a_run_on_a_long_session_never_walks_its_history(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """What a run asks the database is bounded by its window: pages of the newest
    messages, and how many older ones it dropped without counting them (their seq, less
    the few superseded replies, on a partial index of those only)."""
    await scripted_model(client, llm_server)
    session = await make_session(client, "long")
    history = with_regenerated_replies(long_history(5_000), every=200)
    superseded = sum(1 for m in history if m.get(SUPERSEDED))
    assert superseded > 10
    await insert_history(app, session, history)
    llm_server.enqueue(Reply("Fine."))
    engine = database_of(app).engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM session_message" in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        result = await run(client, session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)

    assert result["error"] is False, result["error_log"]
    sent = result["messages_sent"]
    assert result["messages_dropped"] == 5_000 - sent  # superseded replies are not counted
    assert statements
    if engine.dialect.name == "postgresql":  # statistics, as autovacuum keeps them
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE session_message"))
            await connection.commit()
    examined = 0
    for statement, parameters in statements:
        async with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                plan = await connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", parameters
                )
                details = " ".join(str(row[-1]) for row in plan)
                assert "SCAN session_message" not in details, (statement, details)
                if "LIMIT" not in statement:  # the one count: superseded replies only
                    assert "ix_session_message_superseded" in details, (statement, details)
            else:
                plan = await connection.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
                )
                document = plan.scalar_one()
                [root] = json.loads(document) if isinstance(document, str) else document
                examined += examined_rows(root["Plan"])
    if engine.dialect.name == "postgresql":
        # The pages read (at most twice the window, plus a first page) and the superseded
        # replies; a count of the older history alone would be some 4,800.
        assert examined <= 2 * sent + FIRST_PAGE + superseded + 2, examined


async def test_an_orphan_result_is_not_sent_and_does_not_make_a_run_read_the_history(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server)
    session = await make_session(client, "long")
    history = long_history(3_000)
    await insert_history(app, session, history)
    orphans = [
        {"role": "tool", "tool_call_id": "call_nowhere", "content": "A result of no call."},
        {"role": "function", "name": "lookup", "content": "A result of no call either."},
    ]
    question = {"role": "user", "content": "Go on."}
    await add_messages(client, session, orphans[0], {"role": "assistant", "content": "Ok."})
    await add_messages(client, session, orphans[1], question)
    llm_server.enqueue(Reply("Going on."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    sent = conversation_sent(llm_server)
    assert sent[-2:] == [{"role": "assistant", "content": "Ok."}, question]
    assert not [m for m in sent if m["role"] in ("tool", "function") and "no call" in m["content"]]
    assert_units_whole(sent)
    assert sent[:-2] == as_sent(history[-(len(sent) - 2) :])
    assert result["messages_sent"] == len(sent)
    assert result["messages_dropped"] == 3_004 - len(sent)  # the orphans among them
    # Only the tail was read (the four added and the reply were counted when stored).
    read = await counted_messages(app, session) - 5
    assert len(sent) - 2 <= read < 2 * len(sent) + FIRST_PAGE


async def test_a_call_whose_results_cross_the_first_page_is_sent_with_them(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """The newest user message sits between a call's results, and the first page of
    newest messages holds only part of that unit: the run reads back to the call and
    sends it with every result."""
    ids = [f"call_{i}" for i in range(FIRST_PAGE + 6)]
    calls = [
        {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for i in ids
    ]
    half = len(ids) // 2
    unit: list[dict[str, Any]] = [
        {"role": "assistant", "content": None, "tool_calls": calls},
        *({"role": "tool", "tool_call_id": i, "content": "13 degrees"} for i in ids[:half]),
        {"role": "user", "content": "Any news?"},
        *({"role": "tool", "tool_call_id": i, "content": "13 degrees"} for i in ids[half:]),
    ]
    history = [*long_history(300)[:-1], {"role": "user", "content": "Every city."}, *unit]
    # The first page holds the newest user message and some results, not the call.
    newest_user = unit.index({"role": "user", "content": "Any news?"})
    assert len(unit) - newest_user <= FIRST_PAGE < len(unit)
    await scripted_model(client, llm_server, context_window=8000, tools=[WEATHER_TOOL])
    session = await make_session(client, "long")
    await insert_history(app, session, history)
    llm_server.enqueue(Reply("All 13 degrees."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    sent = conversation_sent(llm_server)
    assert len(sent) > len(unit)
    assert sent[-len(unit) :] == as_sent(unit)
    assert sent == as_sent(history[-len(sent) :])
    assert_units_whole(sent)
    assert (result["messages_sent"], result["messages_dropped"]) == (
        len(sent),
        len(history) - len(sent),
    )


def agent_loop(rounds: int) -> list[dict[str, Any]]:
    """An assistant calling a tool and reading its result, ``rounds`` times over."""
    return [m for i in range(rounds) for m in tool_unit(f"loop_{i}", "12 degrees and rising")]


async def plan_of(engine: Any, statement: str, parameters: Any) -> str:
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " ".join(str(row[-1]) for row in plan)
        await connection.execute(text("ANALYZE session_message"))
        await connection.commit()
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return " ".join(str(row[0]) for row in plan)


async def test_a_tool_loop_past_the_budget_is_refused_without_reading_back_to_its_question(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """After the newest user message, a tool loop outgrew the window: every run must send
    that message, so it is refused, having read one page and probed for an older user
    message on its partial index, not read the loop."""
    await scripted_model(client, llm_server, context_window=300)
    session = await make_session(client, "long")
    history = [*long_history(500), *agent_loop(400)]
    await insert_history(app, session, history)
    engine = database_of(app).engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM session_message" in statement and "'user'" in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        result = await run(client, session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)

    assert result["error_type"] == "context_window_exceeded", result
    assert "The newest user message and what follows it need at least" in result["error_log"]
    assert llm_server.requests == []
    assert (result["messages_sent"], result["messages_dropped"]) == (0, len(history))
    assert await counted_messages(app, session) == FIRST_PAGE  # one page read
    [(statement, parameters)] = statements
    details = await plan_of(engine, statement, parameters)
    assert "ix_session_message_user" in details, details


async def test_a_session_without_user_messages_sends_its_newest_messages(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await scripted_model(client, llm_server, context_window=300)
    session = await make_session(client, "long")
    history = [{"role": "assistant", "content": "I start."}, *agent_loop(400)]
    await insert_history(app, session, history)
    llm_server.enqueue(Reply("Still looping."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    sent = conversation_sent(llm_server)
    assert 0 < len(sent) < FIRST_PAGE and sent == as_sent(history[-len(sent) :])
    assert_units_whole(sent)
    assert (result["messages_sent"], result["messages_dropped"]) == (
        len(sent),
        len(history) - len(sent),
    )
    assert await counted_messages(app, session) - 1 == FIRST_PAGE  # one page, and the reply


async def test_dropped_counts_hold_in_regenerated_and_forked_sessions(
    app: FastAPI, client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """messages_dropped follows from seq: it stays right with superseded replies older
    than what a run reads, after a regeneration, and in a fork (a copied prefix)."""
    await scripted_model(client, llm_server, context_window=400)
    session = await make_session(client, "long")
    history = with_regenerated_replies(long_history(600), every=20)
    await insert_history(app, session, history)
    llm_server.enqueue(Reply("One."), Reply("Two."), Reply("Three."), Reply("Four."))

    async def prompt_count(session: str) -> int:
        return sum(1 for m in await stored_messages(client, session) if not m["superseded"])

    async def assert_counts(session: str, result: dict[str, Any]) -> None:
        assert result["error"] is False, result["error_log"]
        assert result["messages_sent"] == len(conversation_sent(llm_server))
        assert result["messages_sent"] < FIRST_PAGE  # older messages were not read
        total = result["messages_sent"] + result["messages_dropped"]
        assert total == await prompt_count(session) - 1  # the reply came after

    await assert_counts(session, await run(client, session))
    await assert_counts(session, await run(client, session, regenerate=True))
    middle = len(history) // 2
    fork = await client.post(f"/v1/sessions/{session}/fork", json={"at_seq": middle})
    assert fork.status_code == 201, fork.text
    forked = fork.json()["uuid"]
    await add_messages(client, forked, {"role": "user", "content": "From the middle."})
    await assert_counts(forked, await run(client, forked))
    assert await prompt_count(forked) < await prompt_count(session)
    whole = await client.post(f"/v1/sessions/{session}/fork", json={})
    assert whole.status_code == 201, whole.text
    await add_messages(client, whole.json()["uuid"], {"role": "user", "content": "Again."})
    await assert_counts(whole.json()["uuid"], await run(client, whole.json()["uuid"]))


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
    strategies: dict[str, dict[str, Any]] = {
        "truncating": {},
        "last-two": {"context_strategy": "last_n", "context_last_n": 2},
        "failing": {"context_strategy": "fail"},
    }
    for name, fields in strategies.items():
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
                .where(SessionMessage.session_id == await session_row_id(db, session))
                .order_by(SessionMessage.seq)
            )
        ).all()
    reply = {"role": "assistant", "content": "Counted."}
    assert [r.token_count for r in rows] == [count(gateway, question), count(gateway, reply)]


# -- paged reads against the whole history ----------------------------------------------


class StoredSession:
    """A session's rows in memory, read as ``SessionRepository`` reads them (the methods
    ``fit_session_call`` uses), recording how many rows each page returned."""

    def __init__(self, rows: list[SessionMessage]) -> None:
        self.rows = rows
        self.pages: list[int] = []

    def prompt_rows(self) -> list[SessionMessage]:
        return [row for row in self.rows if row.superseded_at is None]

    async def prompt_tail(
        self, session_id: uuid.UUID, before_seq: int | None, limit: int
    ) -> list[SessionMessage]:
        older = [r for r in self.prompt_rows() if before_seq is None or r.seq < before_seq]
        page = older[::-1][:limit]
        self.pages.append(len(page))
        return page

    async def count_prompt_messages_before(self, session_id: uuid.UUID, seq: int) -> int:
        return sum(1 for row in self.prompt_rows() if row.seq < seq)

    async def has_user_message_before(self, session_id: uuid.UUID, seq: int) -> bool:
        return any(row.role == "user" and row.seq < seq for row in self.prompt_rows())


def stored_rows(session: Generated, superseded: list[bool]) -> list[SessionMessage]:
    rows: list[SessionMessage] = []
    for message, tokens, regenerated in zip(
        session.messages, session.tokens, superseded, strict=True
    ):
        if regenerated:  # a superseded reply before this message: stored, never sent
            rows.append(
                SessionMessage(
                    seq=len(rows) + 1,
                    role="assistant",
                    content="A first try.",
                    token_count=7,
                    superseded_at=datetime.now(UTC),
                )
            )
        rows.append(
            SessionMessage(
                seq=len(rows) + 1,
                role=message["role"],
                content=message.get("content"),
                name=message.get("name"),
                function_call=message.get("function_call"),
                tool_calls=message.get("tool_calls"),
                tool_call_id=message.get("tool_call_id"),
                token_count=tokens,
                superseded_at=None,
            )
        )
    return rows


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    session=sessions(max_units=40),
    data=st.data(),
    context_window=st.integers(60, 900),
    strategy=st.sampled_from(STRATEGIES),
    last_n=st.integers(1, 30),
    first_page=st.integers(1, 6),
    max_page=st.integers(1, 12),
)
def test_the_window_of_paged_reads_is_the_window_of_the_whole_history(
    gateway: LLMGateway,
    session: Generated,
    data: st.DataObject,
    context_window: int,
    strategy: Any,
    last_n: int,
    first_page: int,
    max_page: int,
) -> None:
    """Whatever the history and the page sizes, a run sends what building the window on
    the whole history sends, and reports the same figures."""
    superseded = data.draw(
        st.lists(st.booleans(), min_size=len(session.messages), max_size=len(session.messages))
    )
    stored = StoredSession(stored_rows(session, superseded))
    version = ChatModelVersion(
        model=MODEL,
        context_window=context_window,
        context_strategy=strategy,
        context_last_n=last_n if strategy == "last_n" else None,
    )
    call = LLMCall(MODEL, [system_message()], params={"max_tokens": 20})
    settings = Settings(seed_demo=False)

    with (
        patch.object(context, "FIRST_PAGE", first_page),
        patch.object(context, "MAX_PAGE", max(first_page, max_page)),
    ):
        paged = asyncio.run(
            context.fit_session_call(
                cast(SessionRepository, stored), gateway, settings, version, uuid.uuid4(), call
            )
        )
    conversation = [(message_to_openai(r), r.token_count or 0) for r in stored.prompt_rows()]
    whole = context.fit_conversation(gateway, settings, version, call, conversation)

    assert paged.call.messages == whole.call.messages
    assert paged.figures == whole.figures
    assert (paged.failure is None) == (whole.failure is None)
    if paged.failure is not None and whole.failure is not None:
        assert paged.failure.error_type == whole.failure.error_type
        for wording in ("context_strategy is 'fail'", "no user message", "newest user message"):
            assert (wording in paged.failure.error_log) == (wording in whole.failure.error_log)


def test_the_refusal_for_a_session_with_no_user_message_says_so(gateway: LLMGateway) -> None:
    version = ChatModelVersion(model=MODEL, context_window=100, context_strategy="truncate")
    call = LLMCall(MODEL, [system_message()], params={"max_tokens": 20})
    reply = {"role": "assistant", "content": "word " * 200}

    fitted = context.fit_conversation(
        gateway, Settings(seed_demo=False), version, call, [(reply, 200)]
    )

    assert fitted.failure is not None and fitted.figures.messages_sent == 0
    assert "The session has no user message; its newest message" in fitted.failure.error_log
    assert "newest user message" not in fitted.failure.error_log


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
    cases: list[tuple[dict[str, Any], str]] = [
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


def test_a_system_prompts_count_is_kept_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run counts its version's system prompt: counted once per (model, text), the
    same figure every time, in a bounded cache; other messages are counted every time."""
    from chatmodel_service.llm import tokens
    from chatmodel_service.llm.gateway import create_gateway

    fresh = create_gateway()
    asked: list[str] = []
    counter = fresh._token_counter

    def counting(model: str, messages: list[dict[str, Any]], tools: Any) -> int:
        asked.append(messages[0]["role"] if messages else "empty")
        return counter(model, messages, tools)

    monkeypatch.setattr(fresh, "_token_counter", counting)
    monkeypatch.setattr(tokens, "SYSTEM_COUNTS_KEPT", 2)
    prompt = {"role": "system", "content": "You are terse."}
    first = fresh.count_message_tokens(MODEL, prompt)
    assert fresh.count_message_tokens(MODEL, dict(prompt)) == first
    assert asked.count("system") == 1
    user = {"role": "user", "content": "You are terse."}
    fresh.count_message_tokens(MODEL, user)
    fresh.count_message_tokens(MODEL, user)
    assert asked.count("user") == 2

    fresh.count_message_tokens("gpt-4o", prompt)  # another model: counted for it
    fresh.count_message_tokens(MODEL, {"role": "system", "content": "Another prompt."})
    assert asked.count("system") == 3
    assert fresh.count_message_tokens(MODEL, prompt) == first  # pushed out: counted again
    assert asked.count("system") == 4
    long = {"role": "system", "content": "x " * 10_000}
    fresh.count_message_tokens(MODEL, long)
    fresh.count_message_tokens(MODEL, long)
    assert asked.count("system") == 6  # too long to keep
