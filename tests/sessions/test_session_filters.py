"""The admin listing's filters (version, user_id, created_after/before, has_errors, q):
each alone and every combination, paged, against an oracle over known sessions; the
figures each row shows; the indexes the filters read; and the 422s naming the field."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from chatmodel_service.migrate import downgrade, upgrade
from chatmodel_service.sessions.metadata import metadata_user_id
from tests.factories import (
    add_messages,
    add_version,
    expect_error,
    make_chat_model,
    make_session,
    run,
)
from tests.sessions.test_listing import all_pages, list_page
from tests.sessions.test_tools import database_of
from tests.support.databases import run_sync_on
from tests.support.llm_server import Delay, ErrorReply, Reply, ScriptedLLMServer

SCRIPTED = "openai/scripted-model"


@dataclass(frozen=True)
class Known:
    """A session as the test made it: what each filter looks at."""

    uuid: str
    chat_model: str
    version: int
    user_id: str | None
    created_at: datetime
    failed: bool
    contents: tuple[str, ...]


async def _chat_models(client: httpx.AsyncClient, server: ScriptedLLMServer) -> None:
    for name in ("other", "bot"):
        await make_chat_model(client, name, model=SCRIPTED, api_base=server.base_url)
    await add_version(client, "bot", model=SCRIPTED, api_base=server.base_url, publish=True)


async def _cancelled_run(
    client: httpx.AsyncClient, server: ScriptedLLMServer, session: str
) -> None:
    server.enqueue(Delay(3, Reply("Too late.")))
    started = await client.post(f"/v1/sessions/{session}/run", json={"background": True})
    assert started.status_code == 202, started.text
    await asyncio.sleep(0.3)  # the model has the call by now
    cancelled = await client.post(f"/v1/runs/{started.json()['uuid']}/cancel")
    assert cancelled.json()["status"] == "cancelled", cancelled.text


async def _known_session(
    client: httpx.AsyncClient,
    server: ScriptedLLMServer,
    chat_model: str,
    version: int,
    metadata: dict[str, Any],
    contents: list[str],
    runs: str,
) -> Known:
    """A session with these user messages, then its runs, one letter each: ``o`` succeeds
    (the reply "ok"), ``f`` fails (a 503), ``c`` is cancelled."""
    response = await client.post(
        "/v1/sessions", json={"chat_model": chat_model, "version": version, "metadata": metadata}
    )
    assert response.status_code == 201, response.text
    session = response.json()
    await add_messages(client, session["uuid"], *({"role": "user", "content": c} for c in contents))
    replies = []
    for outcome in runs:
        if outcome == "c":
            await _cancelled_run(client, server, session["uuid"])
            continue
        server.enqueue(Reply("ok") if outcome == "o" else ErrorReply(503, "overloaded"))
        result = await run(client, session["uuid"])
        assert result["error"] is (outcome == "f"), result
        if outcome == "o":
            replies.append("ok")
    return Known(
        uuid=session["uuid"],
        chat_model=chat_model,
        version=version,
        user_id=metadata_user_id(metadata),
        created_at=datetime.fromisoformat(session["created_at"]),
        failed="f" in runs,
        contents=(*contents, *replies),
    )


async def known_sessions(client: httpx.AsyncClient, server: ScriptedLLMServer) -> list[Known]:
    """Seven sessions, oldest first, covering each filter's both sides."""
    await _chat_models(client, server)
    specs: list[tuple[str, int, dict[str, Any], list[str], str]] = [
        ("other", 1, {"user_id": "ada"}, ["Order status?"], "f"),
        ("bot", 1, {"user_id": "ada"}, ["Where is my ORDER?"], "o"),
        ("bot", 1, {"user_id": "bob"}, ["hello"], "fo"),
        ("bot", 2, {"user_id": "ada", "plan": "pro"}, ["order again"], "c"),
        ("bot", 2, {}, ["nothing here", "100%_done order"], ""),
        ("bot", 2, {"user_id": "ada"}, ["late ORDER"], "f"),
        ("bot", 1, {"user_id": 42}, ["hi"], "f"),
    ]
    return [await _known_session(client, server, *spec) for spec in specs]


def _matches(known: Known, filters: dict[str, Any]) -> bool:
    """What the listing should answer, worked out here from what the test made."""
    checks = [
        filters.get("chat_model") in (None, known.chat_model),
        filters.get("version") in (None, known.version),
        filters.get("user_id") in (None, known.user_id),
        "created_after" not in filters
        or known.created_at >= datetime.fromisoformat(filters["created_after"]),
        "created_before" not in filters
        or known.created_at < datetime.fromisoformat(filters["created_before"]),
        filters.get("has_errors") in (None, known.failed),
        "q" not in filters or any(filters["q"].lower() in c.lower() for c in known.contents),
    ]
    return all(checks)


async def test_every_filter_and_combination_pages_as_the_oracle_says(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    sessions = await known_sessions(client, llm_server)
    window = {
        "created_after": sessions[2].created_at.isoformat(),
        "created_before": sessions[5].created_at.isoformat(),
    }
    scopes: list[dict[str, Any]] = [{}, {"chat_model": "bot"}, {"chat_model": "bot", "version": 2}]
    choices: list[list[dict[str, Any]]] = [
        scopes,
        [{}, {"user_id": "ada"}],
        [{}, {"created_after": window["created_after"]}],
        [{}, {"created_before": window["created_before"]}],
        [{}, {"has_errors": True}, {"has_errors": False}],
        [{}, {"q": "order"}],
    ]
    wrong = []
    non_empty = 0
    for parts in itertools.product(*choices):
        filters = {k: v for part in parts for k, v in part.items()}
        expected = [s.uuid for s in reversed(sessions) if _matches(s, filters)]
        pages = await all_pages(client, **filters, limit=2)
        if [u for page in pages for u in page] != expected or any(len(p) > 2 for p in pages):
            wrong.append((filters, expected, pages))
        non_empty += bool(expected)
    assert wrong == []
    assert non_empty > 30  # most combinations select something


async def test_each_row_shows_its_user_first_message_and_run_figures(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    sessions = await known_sessions(client, llm_server)
    long_question = "Why? " * 60  # 300 characters
    wordy = await make_session(client, "bot", metadata={"user_id": "x" * 201})
    await add_messages(
        client,
        wordy,
        {"role": "system", "content": "Context first."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": long_question},
        {"role": "user", "content": "And then?"},
    )

    rows = {s["uuid"]: s for s in (await list_page(client, limit=200))["data"]}

    def figures(uuid: str) -> tuple[Any, ...]:
        row = rows[uuid]
        return (row["user_id"], row["first_user_message"], row["run_count"], row["failed_runs"])

    assert figures(sessions[2].uuid) == ("bob", "hello", 2, 1)
    assert figures(sessions[3].uuid) == ("ada", "order again", 1, 0)  # cancelled: no failure
    assert figures(sessions[4].uuid) == (None, "nothing here", 0, 0)
    assert figures(sessions[6].uuid) == ("42", "hi", 1, 1)
    by_number = await list_page(client, user_id="42")
    assert [s["uuid"] for s in by_number["data"]] == [sessions[6].uuid]
    assert figures(wordy) == (None, long_question[:200], 0, 0)
    assert rows[wordy]["message_count"] == 4
    assert rows[sessions[6].uuid]["metadata"] == {"user_id": 42}
    empty = await make_session(client, "bot")
    (row,) = (await list_page(client, chat_model="bot", limit=1))["data"]
    assert (row["uuid"], row["first_user_message"], row["run_count"]) == (empty, None, 0)


async def test_text_search_takes_percent_and_underscore_literally(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    sessions = await known_sessions(client, llm_server)
    done = [sessions[4].uuid]

    for query, expected in [("%", done), ("_", done), ("0%_D", done), ("r%a", []), ("o_d", [])]:
        found = [s["uuid"] for s in (await list_page(client, q=query))["data"]]
        assert found == expected, query


async def test_user_id_follows_the_metadata_of_forks_and_conversations(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot")
    original = await make_session(client, "bot", metadata={"user_id": "ada"})
    fork = await client.post(f"/v1/sessions/{original}/fork", json={"metadata": {"user_id": "cy"}})
    same = await client.post(f"/v1/sessions/{original}/fork", json={})
    conversation = await client.post(
        "/v1/conversations", json={"model": "bot", "metadata": {"user_id": "ada"}}
    )
    assert conversation.status_code == 200, conversation.text
    renamed = await client.post(
        f"/v1/conversations/{conversation.json()['id']}", json={"metadata": {"user_id": "dee"}}
    )
    assert renamed.status_code == 200, renamed.text

    def users(page: dict[str, Any]) -> list[str | None]:
        return [s["user_id"] for s in page["data"]]

    ada = await list_page(client, user_id="ada")
    assert [s["uuid"] for s in ada["data"]] == [same.json()["uuid"], original]
    assert [s["uuid"] for s in (await list_page(client, user_id="cy"))["data"]] == [
        fork.json()["uuid"]
    ]
    assert users(await list_page(client, user_id="dee")) == ["dee"]
    assert users(await list_page(client)) == ["dee", "ada", "cy", "ada"]


def _column_and_metadata(connection: Connection) -> list[tuple[Any, Any]]:
    rows = connection.execute(text("SELECT user_id, metadata FROM chat_session"))
    return [(user_id, metadata) for user_id, metadata in rows]


async def test_revision_0018_fills_user_id_by_the_service_s_rule(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """Sessions stored before the column existed get the value a new session would."""
    await make_chat_model(client, "bot")
    values: list[Any] = ["ada", 42, -7, True, 4.5, "", "x" * 200, "x" * 201, {"a": 1}, None]
    values += [["ada"], "Zoë 💬", "0042"]
    for value in values:
        await make_session(client, "bot", metadata={"user_id": value, "other": "kept"})
    await make_session(client, "bot", metadata={})

    await asyncio.to_thread(downgrade, database_url, "0017")
    await asyncio.to_thread(upgrade, database_url)

    rows = await run_sync_on(database_url, _column_and_metadata)
    assert len(rows) == len(values) + 1
    for user_id, metadata in rows:
        stored = metadata if isinstance(metadata, dict) else json.loads(metadata)
        assert user_id == metadata_user_id(stored), stored
    assert sorted(u for u, _ in rows if u is not None) == sorted(
        ["ada", "42", "-7", "x" * 200, "Zoë 💬", "0042"]
    )


# -- the indexes each filter reads --------------------------------------------------------


async def _plan(app: FastAPI, statement: str, parameters: Any) -> str:
    engine = database_of(app).engine
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " ".join(str(row[-1]) for row in plan)
        await connection.execute(text("SET enable_seqscan = off"))
        plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return " ".join(str(row[0]) for row in plan)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"user_id": "ada"}, "ix_chat_session_user_id"),
        ({"chat_model": "bot", "version": 2}, "ix_chat_session_version_id_created_at"),
        ({"has_errors": True}, "ix_chat_run_failed"),
        ({"has_errors": False}, "ix_chat_run_failed"),
    ],
)
async def test_a_filtered_page_reads_its_index(
    app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: ScriptedLLMServer,
    filters: dict[str, Any],
    index: str,
) -> None:
    await known_sessions(client, llm_server)
    engine = database_of(app).engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "ORDER BY chat_session.created_at" in (
            statement
        ):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await list_page(client, **filters)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)

    ((statement, parameters),) = statements
    details = await _plan(app, statement, parameters)
    assert index in details, details
    if engine.dialect.name == "sqlite" and "has_errors" not in filters:
        assert "TEMP B-TREE FOR ORDER BY" not in details, details  # read in order


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "error", "field"),
    [
        ({"chat_model": "bot", "version": "two"}, 422, "validation_error", "version"),
        ({"chat_model": "bot", "version": 0}, 422, "validation_error", "version"),
        ({"version": 1}, 422, "invalid_input", "version"),
        ({"chat_model": "bot", "version": 9}, 404, "version_not_found", "version"),
        ({"chat_model": "ghost", "version": 1}, 404, "chat_model_not_found", "chat_model"),
        ({"q": "x" * 201}, 422, "validation_error", "q"),
        ({"q": ""}, 422, "validation_error", "q"),
        ({"user_id": "x" * 201}, 422, "validation_error", "user_id"),
        ({"user_id": ""}, 422, "validation_error", "user_id"),
        ({"created_after": "yesterday"}, 422, "validation_error", "created_after"),
        ({"created_before": "2026-13-01T00:00:00Z"}, 422, "validation_error", "created_before"),
        (
            {"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-02T00:00:00Z"},
            422,
            "invalid_input",
            "created_before",
        ),
        ({"created_after": "0001-01-01T00:00:00+01:00"}, 422, "invalid_input", "created_after"),
        ({"has_errors": "maybe"}, 422, "validation_error", "has_errors"),
        ({"user_id": "ada", "cursor": "not-a-cursor"}, 422, "invalid_input", "cursor"),
    ],
)
async def test_bad_filters_name_the_field(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")

    expect_error(await client.get("/v1/sessions", params=params), status, error, field)


async def test_a_bound_without_an_offset_is_utc(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    session = await make_session(client, "bot")
    created = datetime.fromisoformat(
        (await client.get(f"/v1/sessions/{session}")).json()["created_at"]
    )
    naive = created.replace(tzinfo=None).isoformat()

    assert [s["uuid"] for s in (await list_page(client, created_after=naive))["data"]] == [session]
    assert (await list_page(client, created_before=naive))["data"] == []
