"""Test runs of an unsaved draft (``POST /v1/chat-models/{name}/versions/draft/test``): the
draft is checked as creating it would be, called once like a saved version's test run, and
nothing of it is stored. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.models import (
    ChatModelRelease,
    ChatModelVersion,
    ChatRun,
    ChatSession,
    SessionMessage,
)
from tests.factories import WEATHER_FUNCTION, expect_error, make_chat_model
from tests.support.auth import AuthWorld, keyed
from tests.support.llm_server import ErrorReply, FunctionCallReply, Reply, ScriptedLLMServer

DRAFT_URL = "/v1/chat-models/bot/versions/draft/test"
REMOTE_MODEL = "openai/scripted-model"
TEMPLATE = "You help {{customer_name}} with the {{plan}} plan."
VALUES = {"customer_name": "Ada", "plan": "pro"}


async def stored_rows(app: FastAPI) -> dict[str, int]:
    """How many versions, releases, sessions, messages and runs the database holds."""
    database: Database = app.state.database
    tables = (ChatModelVersion, ChatModelRelease, ChatSession, SessionMessage, ChatRun)
    async with database.transaction(write=False) as db:
        return {
            table.__tablename__: int(await db.scalar(select(func.count()).select_from(table)) or 0)
            for table in tables
        }


def draft(**fields: Any) -> dict[str, Any]:
    """A draft version's body, as the New-version form would send it."""
    return {"system_prompt": "You are helpful.", "model": OFFLINE_MODEL, **fields}


def remote_draft(server: ScriptedLLMServer, **fields: Any) -> dict[str, Any]:
    return draft(model=REMOTE_MODEL, api_base=server.base_url, **fields)


@pytest.fixture
async def bot(client: httpx.AsyncClient) -> dict[str, Any]:
    """Chat model 'bot' with one published version (so a draft's row count can be checked
    against a non-empty table); returns that version."""
    return await make_chat_model(client, "bot", system_prompt="Saved prompt.")


async def test_a_draft_answers_with_its_rendered_prompt_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, llm_server: ScriptedLLMServer, bot: dict[str, Any]
) -> None:
    before = await stored_rows(app)
    llm_server.enqueue(Reply("Hello Ada, on pro.", prompt_tokens=12, completion_tokens=4))
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Who am I?"},
    ]
    version = remote_draft(
        llm_server,
        system_prompt=TEMPLATE,
        variables=["customer_name", "plan"],
        params={"temperature": 0.3, "max_tokens": 40},
        memo="not kept",
    )

    response = await client.post(
        DRAFT_URL,
        json={"version": version, "messages": history, "variables": VALUES},
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["error"], result["content"]) == (False, "Hello Ada, on pro.")
    assert result["usage"] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    assert result["detail"] is None
    [sent] = llm_server.requests
    system = {"role": "system", "content": "You help Ada with the pro plan."}
    assert sent["messages"] == [system, *history]
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 40)
    assert await stored_rows(app) == before
    versions = (await client.get("/v1/chat-models/bot/versions")).json()["data"]
    assert [v["system_prompt"] for v in versions] == [bot["system_prompt"]]


async def test_a_draft_takes_one_message_on_the_offline_model(
    client: httpx.AsyncClient, bot: dict[str, Any]
) -> None:
    response = await client.post(DRAFT_URL, json={"version": draft(), "message": "Echo me?"})

    assert response.status_code == 200, response.text
    assert response.json()["content"] == "Echo me?"


async def test_a_drafts_functions_reach_the_model_and_a_call_comes_back(
    client: httpx.AsyncClient, app: FastAPI, llm_server: ScriptedLLMServer, bot: dict[str, Any]
) -> None:
    before = await stored_rows(app)
    llm_server.enqueue(FunctionCallReply("get_weather", '{"location": "Boston"}'))

    response = await client.post(
        DRAFT_URL,
        json={
            "version": remote_draft(llm_server, functions=[WEATHER_FUNCTION]),
            "message": "Weather in Boston?",
        },
    )

    assert response.status_code == 200, response.text
    call = response.json()["function_call"]
    assert (call["name"], call["args"]) == ("get_weather", {"location": "Boston"})
    [sent] = llm_server.requests
    assert [f["name"] for f in sent["functions"]] == ["get_weather"]
    assert await stored_rows(app) == before


async def test_run_options_functions_replace_the_drafts_own(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, bot: dict[str, Any]
) -> None:
    lookup = {"name": "lookup_order", "parameters": {"type": "object", "properties": {}}}
    llm_server.enqueue(Reply("ok"))

    response = await client.post(
        DRAFT_URL,
        json={
            "version": remote_draft(llm_server, functions=[WEATHER_FUNCTION]),
            "message": "Where is my order?",
            "functions": [lookup],
        },
    )

    assert response.status_code == 200, response.text
    [sent] = llm_server.requests
    assert [f["name"] for f in sent["functions"]] == ["lookup_order"]


async def test_a_failed_draft_call_is_data_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, llm_server: ScriptedLLMServer, bot: dict[str, Any]
) -> None:
    before = await stored_rows(app)
    llm_server.enqueue(ErrorReply(429, "Slow down"))

    response = await client.post(
        DRAFT_URL, json={"version": remote_draft(llm_server), "message": "Hi"}
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["error"], result["error_type"]) == (True, "rate_limited")
    assert result["error_log"]
    assert await stored_rows(app) == before


HI = {"message": "Hi"}
TEMPLATE_DRAFT = draft(system_prompt=TEMPLATE, variables=["customer_name", "plan"])
BAD_DRAFTS = [
    ({"version": draft(model="")} | HI, "validation_error", "version.model", ""),
    ({"version": draft(model="nope/nothing")} | HI, "invalid_input", "version.model", "nope"),
    ({"version": {"model": OFFLINE_MODEL}} | HI, "validation_error", "version.system_prompt", ""),
    ({"version": draft(colour="red")} | HI, "validation_error", "version.colour", ""),
    (
        {"version": draft(params={"temperature": 5})} | HI,
        "validation_error",
        "version.params.temperature",
        "",
    ),
    (HI, "validation_error", "version", ""),
    ({"version": draft()}, "validation_error", "message", ""),
    (
        {"version": draft(system_prompt="Hi {{name}}")} | HI,
        "invalid_input",
        "version.system_prompt",
        "{{name}}",
    ),
    (
        {"version": draft(system_prompt="Hi", variables=["name"])} | HI,
        "invalid_input",
        "version.variables",
        "never uses",
    ),
    (
        {"version": TEMPLATE_DRAFT, "variables": {"customer_name": "Ada"}} | HI,
        "invalid_input",
        "variables.plan",
        "the draft declares 'plan'",
    ),
    (
        {"version": draft(), "variables": {"tier": "gold"}} | HI,
        "invalid_input",
        "variables.tier",
        "not declared by the draft",
    ),
    ({"version": draft(publish=True)} | HI, "invalid_input", "version.publish", "not stored"),
]


@pytest.mark.parametrize(("body", "error", "field", "says"), BAD_DRAFTS)
async def test_bad_drafts_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    app: FastAPI,
    bot: dict[str, Any],
    body: dict[str, Any],
    error: str,
    field: str,
    says: str,
) -> None:
    before = await stored_rows(app)

    response = await client.post(DRAFT_URL, json=body)

    detail = expect_error(response, 422, error, field)
    assert says in detail
    assert await stored_rows(app) == before


async def test_a_draft_of_an_unknown_chat_model_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat-models/ghost/versions/draft/test", json={"version": draft(), "message": "Hi"}
    )

    expect_error(response, 404, "chat_model_not_found", "chat_model")


async def test_the_numbered_route_still_answers_beside_the_draft_one(
    client: httpx.AsyncClient, bot: dict[str, Any]
) -> None:
    numbered = await client.post("/v1/chat-models/bot/versions/1/test", json={"message": "One"})
    not_a_number = await client.post(
        "/v1/chat-models/bot/versions/drafts/test", json={"message": "Hi"}
    )

    assert numbered.json()["content"] == "One"
    assert numbered.json()["detail"]["version"] == 1
    expect_error(not_a_number, 422, "validation_error", "number")


async def test_only_an_admin_key_of_the_project_may_try_a_draft(world: AuthWorld) -> None:
    """The same answers as the numbered test route, caller by caller."""
    body = {"version": draft(), "message": "Hi"}
    callers = {
        "no key": {},
        "client": keyed(world.client_a),
        "admin": keyed(world.admin_a),
        "other client": keyed(world.client_b),
        "other admin": keyed(world.admin_b),
    }
    draft_statuses = {}
    numbered_statuses = {}
    for caller, headers in callers.items():
        base = "/v1/chat-models/assistant/versions"
        tried = await world.client.post(f"{base}/draft/test", json=body, headers=headers)
        draft_statuses[caller] = tried.status_code
        numbered = await world.client.post(
            f"{base}/1/test", json={"message": "Hi"}, headers=headers
        )
        numbered_statuses[caller] = numbered.status_code
        if caller == "client":
            expect_error(tried, 403, "forbidden", None)

    assert draft_statuses == {
        "no key": 401,
        "client": 403,
        "admin": 200,
        "other client": 403,
        "other admin": 404,
    }
    assert draft_statuses == numbered_statuses
