"""Chat models, their immutable versions, publishing and seed 004's config, over REST."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatmodel_service.llm import OFFLINE_MODEL
from tests.factories import (
    WEATHER_FUNCTION,
    add_messages,
    add_version,
    expect_error,
    make_chat_model,
    make_session,
    publish,
    run,
    versions_of,
)

TOO_BIG = 2**63  # larger than any INTEGER column


async def chat_model(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.get(f"/v1/chat-models/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- chat models -------------------------------------------------------------------------


async def test_create_list_and_get_chat_models(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/chat-models", json={"name": "zeta", "description": "Z"})
    await client.post("/v1/chat-models", json={"name": "alpha"})

    assert created.status_code == 201, created.text
    assert created.json()["name"] == "zeta"
    listed = (await client.get("/v1/chat-models")).json()["data"]
    assert [cm["name"] for cm in listed] == ["alpha", "zeta"]
    got = await chat_model(client, "zeta")
    assert got["description"] == "Z"
    assert got["latest_version"] is None
    assert got["published_versions"] == {}


async def test_duplicate_name_is_rejected_and_original_kept(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat-models", json={"name": "bot", "description": "first"})

    response = await client.post("/v1/chat-models", json={"name": "bot", "description": "second"})

    expect_error(response, 409, "already_exists", "name")
    assert (await chat_model(client, "bot"))["description"] == "first"
    assert len((await client.get("/v1/chat-models")).json()["data"]) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat-models/ghost"),
        ("GET", "/v1/chat-models/ghost/versions"),
        ("GET", "/v1/chat-models/ghost/versions/1"),
        ("GET", "/v1/chat-models/ghost/config"),
    ],
)
async def test_unknown_chat_model_is_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)

    assert "ghost" in expect_error(response, 404, "chat_model_not_found", "chat_model")


@pytest.mark.parametrize(
    "name", ["", "has space", "a" * 201, "-leading-dash", "slash/name", "trailing\n", "ünïcode"]
)
async def test_bad_chat_model_names_are_rejected(client: httpx.AsyncClient, name: str) -> None:
    response = await client.post("/v1/chat-models", json={"name": name})

    expect_error(response, 422, "validation_error", "name")
    assert (await client.get("/v1/chat-models")).json()["data"] == []


async def test_longest_allowed_name_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat-models", json={"name": "a" * 200})

    assert response.status_code == 201, response.text


async def test_unknown_field_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat-models", json={"name": "bot", "descripton": "typo"})

    assert "descripton" in expect_error(response, 422, "validation_error", "descripton")
    assert (await client.get("/v1/chat-models")).json()["data"] == []


# --- versions ----------------------------------------------------------------------------


async def test_versions_are_numbered_in_order(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", system_prompt="one")
    await add_version(client, "bot", system_prompt="two")
    third = await add_version(client, "bot", system_prompt="three")

    assert third["number"] == 3
    listed = await versions_of(client, "bot")
    prompts = [(v["number"], v["system_prompt"]) for v in listed]
    assert prompts == [(1, "one"), (2, "two"), (3, "three")]
    assert len({v["uuid"] for v in listed}) == 3
    got = (await client.get("/v1/chat-models/bot/versions/2")).json()
    assert (got["number"], got["system_prompt"], got["uuid"]) == (2, "two", listed[1]["uuid"])
    assert (await chat_model(client, "bot"))["latest_version"] == 3


async def test_version_settings_round_trip(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat-models", json={"name": "bot"})
    created = await add_version(
        client,
        "bot",
        api_base="http://127.0.0.1:11434/v1",
        params={"temperature": 0.2, "max_tokens": 50, "stop": ["END"]},
        functions=[WEATHER_FUNCTION],
        memo="tuned",
    )

    got = (await client.get("/v1/chat-models/bot/versions/1")).json()
    assert got == created
    assert got["params"] == {"temperature": 0.2, "max_tokens": 50, "stop": ["END"]}
    assert got["functions"] == [WEATHER_FUNCTION]
    assert got["api_base"] == "http://127.0.0.1:11434/v1"
    assert (got["memo"], got["tools"]) == ("tuned", None)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_versions_cannot_be_edited(client: httpx.AsyncClient, method: str) -> None:
    before = await make_chat_model(client, "bot", system_prompt="original")

    response = await client.request(
        method, "/v1/chat-models/bot/versions/1", json={"system_prompt": "edited", "model": "x"}
    )

    expect_error(response, 405, "method_not_allowed", None)
    assert await versions_of(client, "bot") == [before]


@pytest.mark.parametrize(
    ("number", "status", "error", "field"),
    [
        ("9", 404, "version_not_found", "version"),
        ("0", 422, "validation_error", "number"),
        ("-1", 422, "validation_error", "number"),
        ("two", 422, "validation_error", "number"),
        (str(TOO_BIG), 422, "validation_error", "number"),
    ],
)
async def test_bad_version_numbers(
    client: httpx.AsyncClient, number: str, status: int, error: str, field: str
) -> None:
    await make_chat_model(client, "bot")

    response = await client.get(f"/v1/chat-models/bot/versions/{number}")

    expect_error(response, status, error, field)


DROP = object()


@pytest.mark.parametrize(
    ("change", "field", "named"),
    [
        ({"params": {"temperature": 3}}, "params.temperature", "temperature"),
        ({"params": {"max_tokens": 0}}, "params.max_tokens", "max_tokens"),
        ({"params": {"temprature": 1}}, "params.temprature", "temprature"),
        ({"params": {"stop": 5}}, "params.stop", "stop"),
        ({"params": "hot"}, "params", "params"),
        ({"functions": [{"name": "get weather"}]}, "functions.0.name", "functions.0.name"),
        (
            {"functions": [{"name": "f", "parameters": {"type": "objekt"}}]},
            "functions.0.parameters",
            "JSON Schema",
        ),
        (
            {"functions": [{"name": "f", "parameters": {"type": "string"}}]},
            "functions.0.parameters",
            "object",
        ),
        ({"functions": {"name": "f"}}, "functions", "functions"),
        ({"tools": [{"type": "function"}]}, "tools.0.function", "function"),
        ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools.0.type", "type"),
        ({"tools": [{"function": {"name": "f"}, "extra": 1}]}, "tools.0.extra", "extra"),
        ({"tools": ["get_weather"]}, "tools.0", "tools.0"),
        ({"api_base": "ftp://models.example"}, "api_base", "api_base"),
        ({"api_base": "localhost:11434"}, "api_base", "api_base"),
        ({"model": DROP}, "model", "model"),
        ({"model": ""}, "model", "model"),
        ({"system_prompt": DROP}, "system_prompt", "system_prompt"),
        ({"colour": "blue"}, "colour", "colour"),
    ],
)
async def test_bad_versions_are_rejected_and_nothing_stored(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, named: str
) -> None:
    before = await make_chat_model(client, "bot")
    body = {"system_prompt": "new", "model": OFFLINE_MODEL, "publish": True, **change}
    body = {key: value for key, value in body.items() if value is not DROP}

    response = await client.post("/v1/chat-models/bot/versions", json=body)

    assert named in expect_error(response, 422, "validation_error", field)
    assert await versions_of(client, "bot") == [before]
    assert (await chat_model(client, "bot"))["published_versions"] == {"1": 100}


async def test_version_of_unknown_chat_model_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat-models/ghost/versions", json={"system_prompt": "x", "model": OFFLINE_MODEL}
    )

    expect_error(response, 404, "chat_model_not_found", "chat_model")
    assert (await client.get("/v1/chat-models")).json()["data"] == []


# --- publishing ----------------------------------------------------------------------------


async def test_publish_moves_the_deployed_version(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await add_version(client, "bot")
    assert (await chat_model(client, "bot"))["published_versions"] == {"1": 100}

    release = await publish(client, "bot", 2)

    assert (release["chat_model"], release["versions"]) == ("bot", {"2": 100})
    assert (await chat_model(client, "bot"))["published_versions"] == {"2": 100}


@pytest.mark.parametrize(
    ("version", "status", "error"),
    [
        (5, 404, "version_not_found"),
        (0, 422, "validation_error"),
        (TOO_BIG, 422, "validation_error"),
    ],
)
async def test_publish_bad_version_changes_nothing(
    client: httpx.AsyncClient, version: int, status: int, error: str
) -> None:
    await make_chat_model(client, "bot")

    response = await client.post("/v1/chat-models/bot/publish", json={"version": version})

    expect_error(response, status, error, "version")
    assert (await chat_model(client, "bot"))["published_versions"] == {"1": 100}


async def test_new_sessions_follow_publish_old_ones_stay_pinned(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", system_prompt="old prompt")
    await add_version(client, "bot", system_prompt="new prompt")
    old = await make_session(client, "bot")

    await publish(client, "bot", 2)
    new = await make_session(client, "bot")

    assert (await client.get(f"/v1/sessions/{old}")).json()["version"] == 1
    assert (await client.get(f"/v1/sessions/{new}")).json()["version"] == 2
    await add_messages(client, old, {"role": "user", "content": "hi"})
    assert (await run(client, old))["detail"]["version"] == 1
    config = (await client.get("/v1/chat-models/bot/config", params={"session_uuid": old})).json()
    assert (config["version"], config["system_prompt"]) == (1, "old prompt")


async def test_deploy_needs_a_published_version(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", publish=False)

    config = await client.get("/v1/chat-models/bot/config")
    session = await client.post("/v1/sessions", json={"chat_model": "bot"})

    expect_error(config, 422, "nothing_published", "version")
    expect_error(session, 422, "nothing_published", "version")
    latest = await client.post("/v1/sessions", json={"chat_model": "bot", "version": "latest"})
    pinned = await client.post("/v1/sessions", json={"chat_model": "bot", "version": 1})
    assert (latest.status_code, latest.json()["version"]) == (201, 1)
    assert (pinned.status_code, pinned.json()["version"]) == (201, 1)


async def test_session_version_selectors(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await add_version(client, "bot")
    await add_version(client, "bot")

    versions = {}
    for selector in ["deploy", "latest", 2]:
        response = await client.post(
            "/v1/sessions", json={"chat_model": "bot", "version": selector}
        )
        assert response.status_code == 201, response.text
        versions[selector] = response.json()["version"]

    assert versions == {"deploy": 1, "latest": 3, 2: 2}
    missing = await client.post("/v1/sessions", json={"chat_model": "bot", "version": 4})
    expect_error(missing, 404, "version_not_found", "version")
    for bad in [0, TOO_BIG, "Newest"]:  # a lower-case word names a label (404 if none)
        response = await client.post("/v1/sessions", json={"chat_model": "bot", "version": bad})
        expect_error(response, 422, "validation_error", "version")


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "number"), [("deploy", 2), ("latest", 3), ("1", 1)])
async def test_config_for_a_version(client: httpx.AsyncClient, selector: str, number: int) -> None:
    await make_chat_model(client, "bot", system_prompt="prompt 1", publish=False)
    await add_version(client, "bot", system_prompt="prompt 2", publish=True)
    await add_version(client, "bot", system_prompt="prompt 3", model="openai/gpt-4o-mini")
    version = (await client.get(f"/v1/chat-models/bot/versions/{number}")).json()

    response = await client.get("/v1/chat-models/bot/config", params={"version": selector})

    assert response.status_code == 200, response.text
    config = response.json()
    assert config["name"] == "bot"
    assert (config["version"], config["version_uuid"]) == (number, version["uuid"])
    assert (config["system_prompt"], config["model"]) == (f"prompt {number}", version["model"])
    detail = config["version_detail"]
    assert (detail["model"], detail["version"]) == (version["model"], number)
    assert detail["uuid"] == version["uuid"]
    assert config["message_logs"] == []


async def test_config_for_a_session_has_its_messages(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot", system_prompt="pinned")
    session = await make_session(client, "bot")
    await add_version(client, "bot", system_prompt="newer", publish=True)
    await add_messages(client, session, {"role": "user", "content": "Weather in Paris?"})
    await run(client, session, functions=[WEATHER_FUNCTION])
    await add_messages(client, session, {"role": "function", "content": "20 degrees"})

    response = await client.get(
        "/v1/chat-models/bot/config", params={"session_uuid": session, "version": "latest"}
    )

    assert response.status_code == 200, response.text
    config = response.json()
    assert (config["version"], config["system_prompt"]) == (1, "pinned")
    assert config["session_uuid"] == session
    logs = config["message_logs"]
    assert [m["role"] for m in logs] == ["user", "assistant", "function"]
    assert logs[0] == {"role": "user", "content": "Weather in Paris?"}
    assert logs[1]["function_call"]["name"] == "get_weather"
    assert logs[2] == {"role": "function", "content": "20 degrees", "name": "get_weather"}


async def test_config_rejects_a_session_of_another_chat_model(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")
    await make_chat_model(client, "other")
    session = await make_session(client, "other")

    response = await client.get("/v1/chat-models/bot/config", params={"session_uuid": session})

    expect_error(response, 404, "session_not_found", "session_uuid")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"version": "ABC"}, "version"),  # not a label name
        ({"version": "0"}, "version"),
        ({"version": str(TOO_BIG)}, "version"),
        ({"session_uuid": "not-a-uuid"}, "session_uuid"),
    ],
)
async def test_config_bad_query(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    await make_chat_model(client, "bot")

    response = await client.get("/v1/chat-models/bot/config", params=params)

    expect_error(response, 422, "validation_error", field)


async def test_config_unknown_version_is_404(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "bot")

    response = await client.get("/v1/chat-models/bot/config", params={"version": "2"})

    expect_error(response, 404, "version_not_found", "version")
