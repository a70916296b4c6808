"""Sessions that remember (context_strategy summarize): what falls out of a run's window is
sent as a stored summary, extended run after run with only the newly dropped messages,
never splitting a call from its results; a failed summary falls back to truncation.
Against the scripted upstream through the real LiteLLM (and the offline model as the
summary model, whose digest shows exactly what each summary was given), on both
databases."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from chatmodel_service.config import Settings
from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL, SUMMARY_REQUEST
from chatmodel_service.llm.offline import SUMMARY_WORDS
from chatmodel_service.models import SessionMessage
from chatmodel_service.models.base import DEFAULT_PROJECT_ID
from chatmodel_service.runs.prompt_fit import FIRST_PAGE
from chatmodel_service.runs.summaries import MAX_NEW_TURNS, SUMMARY_PREFIX
from chatmodel_service.sessions.repository import SessionRepository
from chatmodel_service.sessions.summary_repository import SummaryRepository
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
)
from tests.support.databases import session_row_id
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer

MODEL = "openai/scripted-model"
SYSTEM_PROMPT = "You are the scripted test assistant."
WINDOW = 420  # tokens: some 20 of these tests' messages, and room for a summary


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, seed_demo=False, llm_timeout_seconds=5)


async def summarizing_model(
    client: httpx.AsyncClient, server: ScriptedLLMServer, name: str = "remembers", **fields: Any
) -> dict[str, Any]:
    fields = {
        "params": {"max_tokens": 20},
        "context_strategy": "summarize",
        "context_window": WINDOW,
        **fields,
    }
    return await make_chat_model(
        client, name, model=MODEL, api_base=server.base_url, system_prompt=SYSTEM_PROMPT, **fields
    )


def turns(start: int, count: int) -> list[dict[str, Any]]:
    """user/assistant messages numbered from ``start``."""
    return [
        {
            "role": "user" if n % 2 == 0 else "assistant",
            "content": f"Turn {n} says something worth keeping, number {n}.",
        }
        for n in range(start, start + count)
    ]


def tool_unit(call_id: str) -> list[dict[str, Any]]:
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": f"13 degrees for {call_id}"},
    ]


def sent_after_system(server: ScriptedLLMServer, index: int = -1) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = server.requests[index]["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    return messages[1:]


async def summaries_of(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/summaries")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def digest(message: dict[str, Any]) -> str:
    """What the offline summary model makes of one turn."""
    text = " ".join(str(message.get("content") or "").split())
    for call in message.get("tool_calls") or ():
        text = f"{text} [calls {call['function']['name']}({call['function']['arguments']})]"
    return f"{message['role']}: {' '.join(text.split()[:SUMMARY_WORDS])}"


def as_sent(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the upstream receives it."""
    keep = ("role", "content", "tool_calls", "tool_call_id", "name", "function_call")
    sent = {k: message[k] for k in keep if message.get(k) is not None}
    if "tool_calls" in sent:
        sent["tool_calls"] = [
            {"id": c["id"], "type": c["type"], "function": c["function"]}
            for c in sent["tool_calls"]
        ]
    return sent


async def test_summaries_cover_exactly_what_each_run_dropped_and_grow_incrementally(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    # A larger window: room for a summary of every turn this test drops, in full.
    await summarizing_model(client, llm_server, summary_model=OFFLINE_MODEL, context_window=2400)
    session = await make_session(client, "remembers")
    await add_messages(client, session, *turns(0, 150))
    previous: dict[str, Any] | None = None
    for round_ in range(5):
        llm_server.enqueue(Reply(f"Reply of round {round_}, as the model wrote it."))
        result = await run(client, session)
        assert result["error"] is False, result["error_log"]
        assert result["summary_error"] is None
        stored = await stored_messages(client, session)
        newest, *_ = await summaries_of(client, session)
        covers = newest["covers_through_seq"]
        # The model got the system prompt, the summary, then every message after it.
        summary, *kept = sent_after_system(llm_server)
        assert summary == {"role": "system", "content": SUMMARY_PREFIX + newest["content"]}
        prompt_messages = stored[:-1]  # not the reply this run stored
        assert kept == [as_sent(m) for m in prompt_messages if m["seq"] > covers]
        assert kept[0]["role"] != "tool"
        assert result["messages_summarised"] == covers == result["messages_dropped"]
        assert result["messages_sent"] == len(kept)
        assert result["summary_id"] == newest["uuid"]
        assert result["summary_tokens"] == newest["tokens"]
        # Incremental: the previous summary, then only the turns dropped since it.
        dropped_now = [m for m in prompt_messages if m["seq"] <= covers]
        assert not newest["content"].startswith("...")  # the digest was not cut
        if previous is None:
            assert newest["content"] == "; ".join(digest(m) for m in dropped_now)
        else:
            assert covers > previous["covers_through_seq"]
            new = [m for m in dropped_now if m["seq"] > previous["covers_through_seq"]]
            assert newest["content"] == "; ".join([previous["content"], *map(digest, new)])
        previous = newest
        await add_messages(client, session, *turns(100 + 10 * round_, 3))
    # Each round wrote one summary, kept and listed newest first; none is a message.
    assert len(await summaries_of(client, session)) == 5
    roles = {m["role"] for m in await stored_messages(client, session)}
    assert roles == {"user", "assistant"}
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert previous is not None
    assert [r["summary_id"] for r in runs][-1] == previous["uuid"]
    assert all(r["messages_summarised"] for r in runs)


async def test_a_summary_is_reused_when_nothing_new_was_dropped(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    """The summary model is the version's own (the scripted one): a regenerate drops
    nothing new, so it is sent the same summary without a summary call."""
    await summarizing_model(client, llm_server)
    session = await make_session(client, "remembers")
    await add_messages(client, session, *turns(0, 41))
    llm_server.enqueue(Reply("The first summary."), Reply("An answer."))
    first = await run(client, session)
    assert first["error"] is False, first["error_log"]
    request = llm_server.requests[0]["messages"]
    assert request[1]["content"].startswith(SUMMARY_REQUEST)
    assert llm_server.requests[0]["max_tokens"] > 0
    assert sent_after_system(llm_server)[0]["content"] == SUMMARY_PREFIX + "The first summary."

    llm_server.enqueue(Reply("Another answer."))
    again = await run(client, session, regenerate=True)
    assert again["error"] is False, again["error_log"]
    assert len(llm_server.requests) == 3  # no summary call
    assert sent_after_system(llm_server)[0]["content"] == SUMMARY_PREFIX + "The first summary."
    assert again["summary_id"] == first["summary_id"]
    assert again["messages_summarised"] == first["messages_summarised"]
    assert len(await summaries_of(client, session)) == 1

    # The next summary request holds the previous summary and only the new turns.
    await add_messages(client, session, *turns(500, 9))
    llm_server.enqueue(Reply("The second summary."), Reply("A third answer."))
    third = await run(client, session)
    assert third["error"] is False, third["error_log"]
    summary_request = llm_server.requests[3]["messages"][1]["content"]
    assert "Previous summary:\nThe first summary." in summary_request
    new_turns = summary_request.split("New turns:\n", 1)[1].splitlines()
    stored = await stored_messages(client, session)
    newly = [
        m for m in stored if first["messages_summarised"] < m["seq"] <= third["messages_summarised"]
    ]
    assert new_turns == [f"{m['role']}: {m['content']}" for m in newly]
    assert "Turn 0 " not in summary_request


async def test_a_tool_call_and_its_result_are_summarised_or_sent_together(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await summarizing_model(client, llm_server, summary_model=OFFLINE_MODEL)
    session = await make_session(client, "remembers")
    history: list[dict[str, Any]] = []
    for n in range(12):
        history += [*tool_unit(f"call_{n}"), *turns(2 * n, 2)]
    await add_messages(client, session, *history)
    for round_ in range(6):
        llm_server.enqueue(Reply(f"Round {round_}."))
        result = await run(client, session)
        assert result["error"] is False, result["error_log"]
        assert result["summary_error"] is None, result
        stored = await stored_messages(client, session)
        covers = (await summaries_of(client, session))[0]["covers_through_seq"]
        by_seq = {m["seq"]: m for m in stored}
        # The boundary is between units: the first kept message is no result, and the
        # last summarised one is no call waiting for its result.
        assert by_seq[covers + 1]["role"] != "tool"
        assert not by_seq[covers].get("tool_calls")
        kept = sent_after_system(llm_server)[1:]
        assert kept[0]["role"] != "tool"
        await add_messages(client, session, *tool_unit(f"late_{round_}"))
        await add_messages(client, session, {"role": "user", "content": f"Again {round_}?"})


async def test_a_failed_summary_falls_back_to_truncation_and_says_so(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await summarizing_model(client, llm_server)
    session = await make_session(client, "remembers")
    await add_messages(client, session, *turns(0, 41))
    llm_server.enqueue(ErrorReply(400, "the summary model is out of order"), Reply("Still here."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    assert result["content"] == "Still here."
    assert "summary model failed" in result["summary_error"]
    assert result["messages_summarised"] is None and result["summary_id"] is None
    kept = sent_after_system(llm_server)
    assert all(m["role"] != "system" for m in kept)  # no summary sent
    assert result["messages_dropped"] > 0
    assert await summaries_of(client, session) == []
    [record] = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert record["status"] == "succeeded"
    assert record["summary_error"] == result["summary_error"]

    # The next run tries again, from nothing.
    llm_server.enqueue(Reply("A summary at last."), Reply("Fine."))
    again = await run(client, session)
    assert again["summary_error"] is None
    assert again["summary_id"] is not None


async def test_a_streamed_run_sends_and_reports_its_summary(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await summarizing_model(client, llm_server, summary_model=OFFLINE_MODEL)
    session = await make_session(client, "remembers")
    await add_messages(client, session, *turns(0, 41))
    llm_server.enqueue(Reply("Streamed answer."))
    response = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})
    assert response.status_code == 200, response.text
    assert '"summary_id"' in response.text and '"messages_summarised"' in response.text
    [summary] = await summaries_of(client, session)
    assert sent_after_system(llm_server)[0]["content"] == SUMMARY_PREFIX + summary["content"]


async def test_a_summary_of_a_short_session_is_not_written(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await summarizing_model(client, llm_server)
    session = await make_session(client, "remembers")
    await add_messages(client, session, *turns(0, 3))
    llm_server.enqueue(Reply("Short."))
    result = await run(client, session)
    assert result["messages_dropped"] == 0
    assert result["messages_summarised"] is None and result["summary_error"] is None
    assert len(llm_server.requests) == 1


async def test_a_10000_message_session_reads_its_window_not_its_history(
    app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first summary reads at most MAX_NEW_TURNS dropped messages (the newest); the
    next run reads its window and what it newly dropped."""
    await summarizing_model(client, llm_server, summary_model=OFFLINE_MODEL)
    session = await make_session(client, "remembers")
    database: Database = app.state.database
    async with database.transaction() as db:
        session_id = await session_row_id(db, session)
        rows = [
            {
                "id": uuid.uuid4(),
                "uuid": uuid.uuid4(),
                "project_id": DEFAULT_PROJECT_ID,
                "session_id": session_id,
                "seq": seq,
                **message,
            }
            for seq, message in enumerate(turns(0, 10_001), start=1)
        ]
        await db.execute(insert(SessionMessage), rows)
    read: list[int] = []
    tail, between = SessionRepository.prompt_tail, SummaryRepository.dropped_between

    async def counted_tail(self: SessionRepository, *args: Any) -> list[SessionMessage]:
        page = await tail(self, *args)
        read.append(len(page))
        return page

    async def counted_between(self: SummaryRepository, *args: Any) -> list[SessionMessage]:
        found = await between(self, *args)
        read.append(len(found))
        return found

    monkeypatch.setattr(SessionRepository, "prompt_tail", counted_tail)
    monkeypatch.setattr(SummaryRepository, "dropped_between", counted_between)

    llm_server.enqueue(Reply("First."))
    first = await run(client, session)
    assert first["error"] is False, first["error_log"]
    assert first["messages_summarised"] == first["messages_dropped"] > 9_900
    [summary] = await summaries_of(client, session)
    assert summary["covers_through_seq"] == first["messages_summarised"]
    assert summary["content"].startswith("... ")  # the newest of the dropped turns
    assert sum(read) <= 2 * first["messages_sent"] + FIRST_PAGE + MAX_NEW_TURNS

    read.clear()
    await add_messages(client, session, *turns(20_000, 5))
    llm_server.enqueue(Reply("Second."))
    second = await run(client, session)
    assert second["error"] is False, second["error_log"]
    assert second["summary_id"] != first["summary_id"]
    assert sum(read) <= 2 * second["messages_sent"] + FIRST_PAGE


async def test_summarize_versions_are_validated_and_shown(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "ctx")
    base = {"system_prompt": "s", "model": OFFLINE_MODEL}
    summarize = base | {"context_strategy": "summarize", "context_window": 4096}
    cases: list[tuple[dict[str, Any], str]] = [
        (base | {"context_strategy": "summarize"}, "context_window"),
        (base | {"summary_model": OFFLINE_MODEL}, "summary_model"),
        (base | {"summary_prompt": "Be brief."}, "summary_prompt"),
        (summarize | {"summary_model": ""}, "summary_model"),
        (summarize | {"summary_model": "no-such-provider/no-such-model"}, "summary_model"),
    ]
    for fields, field in cases:
        response = await client.post("/v1/chat-models/ctx/versions", json=fields)
        assert response.status_code == 422, (fields, response.text)
        assert response.json()["field"] == field, (fields, response.text)
    expect_error(
        await client.post("/v1/chat-models/ctx/versions", json=base | {"context_strategy": "x"}),
        422,
        "validation_error",
        "context_strategy",
    )
    created = await client.post(
        "/v1/chat-models/ctx/versions",
        json=summarize | {"summary_model": OFFLINE_MODEL, "summary_prompt": "Be brief."},
    )
    assert created.status_code == 201, created.text
    shown = (await client.get(f"/v1/chat-models/ctx/versions/{created.json()['number']}")).json()
    assert (shown["context_strategy"], shown["summary_model"], shown["summary_prompt"]) == (
        "summarize",
        OFFLINE_MODEL,
        "Be brief.",
    )
    missing = await client.get(f"/v1/sessions/{uuid.uuid4()}/summaries")
    expect_error(missing, 404, "session_not_found", "session_uuid")
