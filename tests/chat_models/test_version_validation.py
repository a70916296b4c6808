"""What a new version is checked for (model, parameters, schemas, template variables), how
sessions fill in the variables, and test runs of a version that store nothing."""

from __future__ import annotations

from typing import Any

import httpx
import litellm
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from chatmodel_service.db import Database
from chatmodel_service.llm import OFFLINE_MODEL
from chatmodel_service.models import ChatRun, ChatSession, SessionMessage
from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    add_version,
    expect_error,
    make_chat_model,
    make_session,
    run,
    versions_of,
)
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer

TEMPLATE = "You help {{customer_name}} with the {{ plan }} plan."
REMOTE_MODEL = "openai/scripted-model"
ALL_PARAMS: dict[str, Any] = {
    "temperature": 0.5,
    "top_p": 0.9,
    "max_tokens": 20,
    "stop": ["END"],
    "presence_penalty": 0.1,
    "frequency_penalty": 0.1,
    "seed": 7,
    "response_format": {"type": "text"},
    "timeout": 5,
}


async def create_version(client: httpx.AsyncClient, name: str, **body: Any) -> httpx.Response:
    body = {"system_prompt": "You are helpful.", "model": OFFLINE_MODEL, **body}
    return await client.post(f"/v1/chat-models/{name}/versions", json=body)


@pytest.fixture
async def bot(client: httpx.AsyncClient) -> str:
    """An empty chat model named 'bot'."""
    response = await client.post("/v1/chat-models", json={"name": "bot"})
    assert response.status_code == 201, response.text
    return "bot"


async def stored_rows(app: FastAPI) -> dict[str, int]:
    """How many sessions, messages and runs the database holds."""
    database: Database = app.state.database
    async with database.transaction() as db:
        return {
            table.__tablename__: int(await db.scalar(select(func.count()).select_from(table)) or 0)
            for table in (ChatSession, SessionMessage, ChatRun)
        }


# --- the model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("gpt-4o-mini", {}),
        ("anthropic/claude-3-5-sonnet-20240620", {}),
        ("openai/anything", {"api_base": "http://127.0.0.1:11434/v1"}),
        ("ollama/llama3", {}),
        (OFFLINE_MODEL, {}),
    ],
)
async def test_models_litellm_can_route_are_accepted(
    client: httpx.AsyncClient, bot: str, model: str, extra: dict[str, Any]
) -> None:
    response = await create_version(client, bot, model=model, **extra)

    assert response.status_code == 201, response.text
    assert response.json()["model"] == model


@pytest.mark.parametrize(
    ("model", "extra", "hint"),
    [
        ("gpt-5-turbo-xyz", {}, "'openai/gpt-5-turbo-xyz'"),
        ("claude-3-5-sonnet", {}, "'anthropic/claude-3-5-sonnet'"),
        ("nosuchprovider/some-model", {}, "'nosuchprovider'"),
        ("llama3", {"api_base": "http://127.0.0.1:11434/v1"}, "'openai/llama3'"),
        ("openai/", {}, "names no model"),
        ("text-embedding-3-small", {}, "'embedding'"),
    ],
)
async def test_models_litellm_cannot_serve_are_refused_and_nothing_stored(
    client: httpx.AsyncClient, bot: str, model: str, extra: dict[str, Any], hint: str
) -> None:
    response = await create_version(client, bot, model=model, publish=True, **extra)

    detail = expect_error(response, 422, "invalid_input", "model")
    assert f"'{model}'" in detail
    assert hint in detail
    assert await versions_of(client, bot) == []
    assert (await client.get(f"/v1/chat-models/{bot}")).json()["published_versions"] == {}


# --- parameters ------------------------------------------------------------------------------


def test_litellm_premise_anthropic_and_o1_lack_some_parameters() -> None:
    """The refusals below follow LiteLLM's own tables (litellm 1.106.2)."""
    anthropic = litellm.get_supported_openai_params(
        model="claude-3-5-sonnet-20240620", custom_llm_provider="anthropic"
    )
    o1 = litellm.get_supported_openai_params(model="o1", custom_llm_provider="openai")

    assert anthropic is not None and o1 is not None
    assert {"temperature", "top_p", "max_tokens", "stop"} <= set(anthropic)
    assert not {"presence_penalty", "frequency_penalty", "seed"} & set(anthropic)
    assert "top_p" not in o1 and "max_tokens" in o1
    # ... and LiteLLM refuses such a call before sending it:
    with pytest.raises(litellm.UnsupportedParamsError):
        litellm.utils.get_optional_params(
            model="claude-3-5-sonnet-20240620", custom_llm_provider="anthropic", seed=1
        )


@pytest.mark.parametrize(
    ("model", "params", "field"),
    [
        ("anthropic/claude-3-5-sonnet-20240620", {"presence_penalty": 0.5}, "presence_penalty"),
        ("anthropic/claude-3-5-sonnet-20240620", {"temperature": 0.2, "seed": 1}, "seed"),
        ("o1", {"max_tokens": 100, "top_p": 0.5}, "top_p"),
        ("ollama/llama3", {"presence_penalty": 0.5}, "presence_penalty"),
    ],
)
async def test_a_parameter_the_model_does_not_support_is_named(
    client: httpx.AsyncClient, bot: str, model: str, params: dict[str, Any], field: str
) -> None:
    response = await create_version(client, bot, model=model, params=params)

    detail = expect_error(response, 422, "invalid_input", f"params.{field}")
    assert f"'{field}'" in detail
    assert await versions_of(client, bot) == []


async def test_every_problem_is_reported_the_first_is_the_field(
    client: httpx.AsyncClient, bot: str
) -> None:
    response = await create_version(
        client,
        bot,
        model="anthropic/claude-3-5-sonnet-20240620",
        params={"presence_penalty": 0.5, "seed": 1},
    )

    detail = expect_error(response, 422, "invalid_input", "params.presence_penalty")
    assert "'seed'" in detail


async def test_supported_parameters_are_accepted(client: httpx.AsyncClient, bot: str) -> None:
    params = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 300, "stop": ["END"], "timeout": 30}

    response = await create_version(
        client, bot, model="anthropic/claude-3-5-sonnet-20240620", params=params
    )

    assert response.status_code == 201, response.text
    assert response.json()["params"] == params


async def test_the_offline_model_accepts_every_parameter(
    client: httpx.AsyncClient, bot: str
) -> None:
    response = await create_version(client, bot, params=ALL_PARAMS, publish=True)

    assert response.status_code == 201, response.text
    assert response.json()["params"] == ALL_PARAMS
    session = await make_session(client, bot)
    await add_messages(client, session, {"role": "user", "content": "still works"})
    assert (await run(client, session))["content"] == "still works"


# --- function and tool schemas ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"functions": [{"name": "f", "parameters": {"type": "object", "required": "x"}}]},
            "functions.0.parameters",
        ),
        (
            {"tools": [{"function": {"name": "f", "parameters": {"properties": {"a": 3}}}}]},
            "tools.0.function.parameters",
        ),
    ],
)
async def test_invalid_json_schema_is_refused(
    client: httpx.AsyncClient, bot: str, change: dict[str, Any], field: str
) -> None:
    response = await create_version(client, bot, **change)

    assert "JSON Schema" in expect_error(response, 422, "validation_error", field)
    assert await versions_of(client, bot) == []


# --- template variables at version creation ------------------------------------------------


async def test_a_template_version_is_stored_with_its_variables(
    client: httpx.AsyncClient, bot: str
) -> None:
    response = await create_version(
        client, bot, system_prompt=TEMPLATE, variables=["customer_name", "plan"]
    )

    assert response.status_code == 201, response.text
    got = (await client.get(f"/v1/chat-models/{bot}/versions/1")).json()
    assert got == response.json()
    assert (got["system_prompt"], got["variables"]) == (TEMPLATE, ["customer_name", "plan"])


async def test_a_version_without_variables_shows_none(client: httpx.AsyncClient, bot: str) -> None:
    response = await create_version(client, bot)

    assert response.status_code == 201, response.text
    assert response.json()["variables"] is None


@pytest.mark.parametrize(
    ("prompt", "variables", "field", "named"),
    [
        (TEMPLATE, ["customer_name"], "system_prompt", "{{plan}}"),
        (TEMPLATE, None, "system_prompt", "{{customer_name}}"),
        (TEMPLATE, ["customer_name", "plan", "tier"], "variables", "'tier'"),
        ("Hi {{customer-name}}", ["customer"], "system_prompt", "{{customer-name}}"),
        ("Hi {{name}}", ["name", "name"], "variables", "name"),
        ("Hi {{name}}", ["name", "9lives"], "variables.1", "variables.1"),
        ("Hi {{name}}", "name", "variables", "variables"),
    ],
)
async def test_template_mistakes_are_refused_and_nothing_stored(
    client: httpx.AsyncClient, bot: str, prompt: str, variables: Any, field: str, named: str
) -> None:
    response = await create_version(client, bot, system_prompt=prompt, variables=variables)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field, body
    assert named in body["detail"]
    assert await versions_of(client, bot) == []


# --- filling the variables in a session ------------------------------------------------------


async def template_bot(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    return await make_chat_model(
        client, "bot", system_prompt=TEMPLATE, variables=["customer_name", "plan"], **fields
    )


async def test_a_session_stores_its_variables(client: httpx.AsyncClient) -> None:
    await template_bot(client)
    values = {"customer_name": "Ada", "plan": "pro"}

    session = await make_session(client, "bot", variables=values)

    got = (await client.get(f"/v1/sessions/{session}")).json()
    assert got["variables"] == values


@pytest.mark.parametrize(
    ("variables", "field", "starts"),
    [
        ({"customer_name": "Ada"}, "variables.plan", "missing"),
        (None, "variables.customer_name", "missing"),
        (
            {"customer_name": "Ada", "plan": "pro", "nickname": "A"},
            "variables.nickname",
            "not declared by version 1",
        ),
    ],
)
async def test_missing_or_extra_variables_are_refused_and_nothing_stored(
    client: httpx.AsyncClient,
    app: FastAPI,
    variables: dict[str, str] | None,
    field: str,
    starts: str,
) -> None:
    await template_bot(client)
    before = await stored_rows(app)
    chosen = "6f1d4c3e-1111-4b1a-9c33-0123456789ab"

    response = await client.post(
        "/v1/sessions", json={"chat_model": "bot", "session_uuid": chosen, "variables": variables}
    )

    assert expect_error(response, 422, "invalid_input", field).startswith(starts)
    assert await stored_rows(app) == before
    expect_error(
        await client.get(f"/v1/sessions/{chosen}"), 404, "session_not_found", "session_uuid"
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [(42, "variables.plan"), (None, "variables.plan"), ("x" * 10_001, "variables.plan")],
)
async def test_values_are_strings_of_bounded_length(
    client: httpx.AsyncClient, value: Any, field: str
) -> None:
    await template_bot(client)

    response = await client.post(
        "/v1/sessions",
        json={"chat_model": "bot", "variables": {"customer_name": "Ada", "plan": value}},
    )

    expect_error(response, 422, "validation_error", field)


async def test_sessions_of_a_version_without_variables_take_none(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot")

    refused = await client.post(
        "/v1/sessions", json={"chat_model": "bot", "variables": {"customer_name": "Ada"}}
    )
    session = await make_session(client, "bot")

    detail = expect_error(refused, 422, "invalid_input", "variables.customer_name")
    assert "declares no variables" in detail
    assert (await client.get(f"/v1/sessions/{session}")).json()["variables"] is None


async def test_variables_are_checked_against_the_pinned_version(
    client: httpx.AsyncClient,
) -> None:
    await template_bot(client)
    await add_version(client, "bot", system_prompt="Hi {{nickname}}", variables=["nickname"])

    pinned = await client.post(
        "/v1/sessions",
        json={"chat_model": "bot", "version": 2, "variables": {"customer_name": "Ada"}},
    )
    latest = await make_session(client, "bot", version="latest", variables={"nickname": "Ada"})

    assert "version 2" in expect_error(pinned, 422, "invalid_input", "variables.nickname")
    assert (await client.get(f"/v1/sessions/{latest}")).json()["version"] == 2


# --- the rendered prompt ---------------------------------------------------------------------


async def test_a_run_sends_the_rendered_prompt(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    await template_bot(client, model=REMOTE_MODEL, api_base=llm_server.base_url)
    session = await make_session(
        client, "bot", variables={"customer_name": "Ada {{plan}}", "plan": "pro"}
    )
    await add_messages(client, session, {"role": "user", "content": "Hi"})
    llm_server.enqueue(Reply("Hello Ada."), Reply("Hello again."))

    plain = await run(client, session)
    streamed = await client.post(f"/v1/sessions/{session}/run", json={"stream": True})

    assert plain["content"] == "Hello Ada."
    assert streamed.status_code == 200 and "Hello" in streamed.text
    rendered = "You help Ada {{plan}} with the pro plan."
    for sent in llm_server.requests:
        assert sent["messages"][0] == {"role": "system", "content": rendered}
        assert sent["messages"][1] == {"role": "user", "content": "Hi"}


async def test_config_renders_for_a_session_and_shows_the_template_without(
    client: httpx.AsyncClient,
) -> None:
    await template_bot(client)
    session = await make_session(client, "bot", variables={"customer_name": "Ada", "plan": "pro"})

    with_session = (
        await client.get("/v1/chat-models/bot/config", params={"session_uuid": session})
    ).json()
    without = (await client.get("/v1/chat-models/bot/config")).json()

    assert with_session["system_prompt"] == "You help Ada with the pro plan."
    assert without["system_prompt"] == TEMPLATE
    assert without["version_detail"]["variables"] == ["customer_name", "plan"]


async def test_literal_braces_reach_the_model_unescaped(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    prompt = r"Answer as \{{json}} for {{name}}."
    await make_chat_model(
        client,
        "bot",
        model=REMOTE_MODEL,
        api_base=llm_server.base_url,
        system_prompt=prompt,
        variables=["name"],
    )
    session = await make_session(client, "bot", variables={"name": "Ada"})
    await add_messages(client, session, {"role": "user", "content": "Hi"})
    llm_server.enqueue(Reply("ok"))

    await run(client, session)

    [sent] = llm_server.requests
    assert sent["messages"][0]["content"] == "Answer as {{json}} for Ada."


# --- test runs of a version ------------------------------------------------------------------


async def test_a_test_run_answers_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, llm_server: ScriptedLLMServer
) -> None:
    version = await template_bot(client, model=REMOTE_MODEL, api_base=llm_server.base_url)
    before = await stored_rows(app)
    llm_server.enqueue(Reply("Hello Ada, how can I help?"))
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Who am I?"},
    ]

    response = await client.post(
        "/v1/chat-models/bot/versions/1/test",
        json={
            "messages": history,
            "variables": {"customer_name": "Ada", "plan": "pro"},
            "params": {"temperature": 0.1},
        },
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["error"], result["content"]) == (False, "Hello Ada, how can I help?")
    assert result["detail"] == {
        "name": "bot",
        "version": 1,
        "version_uuid": version["uuid"],
        "model": REMOTE_MODEL,
        "session_uuid": None,
        "message_uuid": None,
        "run_uuid": None,
    }
    [sent] = llm_server.requests
    system = {"role": "system", "content": "You help Ada with the pro plan."}
    assert sent["messages"] == [system, *history]
    assert sent["temperature"] == 0.1
    assert await stored_rows(app) == before


async def test_a_test_run_takes_one_message_on_the_offline_model(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot", publish=False)

    response = await client.post("/v1/chat-models/bot/versions/1/test", json={"message": "Echo?"})

    assert response.status_code == 200, response.text
    assert response.json()["content"] == "Echo?"


async def test_a_test_run_links_a_function_result_like_a_session(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "bot", functions=[WEATHER_FUNCTION])
    call = {"name": "get_weather", "arguments": '{"location": "Boston"}'}
    messages = [
        {"role": "user", "content": "Weather in Boston?"},
        {"role": "assistant", "content": None, "function_call": call},
        {"role": "function", "content": "13 degrees celsius"},
    ]

    response = await client.post("/v1/chat-models/bot/versions/1/test", json={"messages": messages})
    orphan = await client.post(
        "/v1/chat-models/bot/versions/1/test", json={"messages": messages[2:]}
    )

    assert response.json()["content"] == "get_weather returned: 13 degrees celsius"
    expect_error(orphan, 422, "invalid_input", "messages.0.name")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"customer_name": "Ada"}, "variables.plan"),
        (None, "variables.customer_name"),
        ({"customer_name": "Ada", "plan": "pro", "tier": "gold"}, "variables.tier"),
    ],
)
async def test_a_test_run_checks_variables_like_a_session(
    client: httpx.AsyncClient,
    app: FastAPI,
    llm_server: ScriptedLLMServer,
    variables: dict[str, str] | None,
    field: str,
) -> None:
    await template_bot(client, model=REMOTE_MODEL, api_base=llm_server.base_url)
    before = await stored_rows(app)

    response = await client.post(
        "/v1/chat-models/bot/versions/1/test", json={"message": "Hi", "variables": variables}
    )

    expect_error(response, 422, "invalid_input", field)
    assert llm_server.requests == []
    assert await stored_rows(app) == before


async def test_a_failed_test_run_is_reported_as_data_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, llm_server: ScriptedLLMServer
) -> None:
    await make_chat_model(client, "bot", model=REMOTE_MODEL, api_base=llm_server.base_url)
    before = await stored_rows(app)
    llm_server.enqueue(ErrorReply(429, "Slow down"))

    response = await client.post("/v1/chat-models/bot/versions/1/test", json={"message": "Hi"})

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["error"], result["error_type"]) == (True, "rate_limited")
    assert result["detail"]["run_uuid"] is None
    assert await stored_rows(app) == before


@pytest.mark.parametrize(
    ("path", "body", "status", "error", "field"),
    [
        ("bot/versions/2/test", {"message": "Hi"}, 404, "version_not_found", "version"),
        ("ghost/versions/1/test", {"message": "Hi"}, 404, "chat_model_not_found", "chat_model"),
        ("bot/versions/0/test", {"message": "Hi"}, 422, "validation_error", "number"),
        ("bot/versions/1/test", {}, 422, "validation_error", "message"),
        (
            "bot/versions/1/test",
            {"message": "Hi", "messages": [{"role": "user", "content": "Hi"}]},
            422,
            "validation_error",
            "message",
        ),
        ("bot/versions/1/test", {"messages": []}, 422, "validation_error", "messages"),
        (
            "bot/versions/1/test",
            {"messages": [{"role": "user", "content": "x"}] * 51},
            422,
            "validation_error",
            "messages",
        ),
        (
            "bot/versions/1/test",
            {"message": "Hi", "stream": True},
            422,
            "validation_error",
            "stream",
        ),
    ],
)
async def test_bad_test_runs_are_refused(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    status: int,
    error: str,
    field: str,
) -> None:
    await make_chat_model(client, "bot")

    response = await client.post(f"/v1/chat-models/{path}", json=body)

    expect_error(response, status, error, field)
