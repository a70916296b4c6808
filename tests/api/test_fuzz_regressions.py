"""Requests tests/api/test_fuzz.py found answered with a 500 or an off-shape error, each pinned
down as the answer a caller should get instead."""

from __future__ import annotations

import httpx

from tests.factories import make_chat_model, make_session


async def test_project_with_a_key_name_no_key_may_have_is_a_422(client: httpx.AsyncClient) -> None:
    # Was a 500: the name passed ProjectCreate and failed KeyCreate inside the service.
    response = await client.post("/v1/projects", json={"name": "team", "admin_key_name": "a b"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "admin_key_name"
    assert (await client.get("/v1/projects")).json()["data"][0]["name"] != "team"


async def test_nul_in_a_body_field_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    # Was a 500 on PostgreSQL, which stores no NUL in text or jsonb.
    response = await client.post(
        "/v1/chat-models", json={"name": "assistant", "description": "a\x00b"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["field"] == "description"
    assert "NUL" in body["detail"]
    assert (await client.get("/v1/chat-models/assistant")).status_code == 404


async def test_nul_deep_in_metadata_and_in_a_message_is_a_422(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    session = await make_session(client, "assistant")
    response = await client.post(
        f"/v1/sessions/{session}/messages",
        json={
            "messages": [{"role": "user", "content": "hi", "metadata": {"tags": ["ok", "\x00"]}}]
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "messages.0.metadata.tags.1"
    stored = await client.get(f"/v1/sessions/{session}/messages")
    assert stored.json()["data"] == []


async def test_unpaired_surrogate_in_a_body_is_a_422(client: httpx.AsyncClient) -> None:
    # Not encodable as UTF-8: a 500 from either database's driver.
    response = await client.post(
        "/v1/chat-models",
        content=b'{"name": "assistant", "description": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "description"


async def test_escaped_backslash_before_u0000_is_ordinary_text(client: httpx.AsyncClient) -> None:
    # "\\u0000" in JSON is a backslash followed by "u0000", which any database stores.
    response = await client.post(
        "/v1/chat-models",
        content=b'{"name": "assistant", "description": "C:\\\\u0000"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "C:\\u0000"


async def test_nul_in_a_path_or_query_parameter_is_a_422(client: httpx.AsyncClient) -> None:
    path = await client.get("/v1/chat-models/a%00b")
    assert path.status_code == 422, path.text
    assert path.json()["field"] == "name"
    query = await client.get("/v1/sessions", params={"chat_model": "a\x00b"})
    assert query.status_code == 422, query.text
    assert query.json()["field"] == "chat_model"


async def test_nul_on_an_openai_route_is_a_400_in_openai_shape(client: httpx.AsyncClient) -> None:
    await make_chat_model(client)
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "assistant", "messages": [{"role": "user", "content": "\x00"}]},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "messages.0.content"
    assert error["type"] == "invalid_request_error"


async def test_wrong_method_on_an_openai_route_answers_in_openai_shape(
    client: httpx.AsyncClient,
) -> None:
    # Was our own {"error": "method_not_allowed", ...}, which OpenAI clients cannot read.
    for method, path in (("GET", "/v1/chat/completions"), ("DELETE", "/v1/models")):
        response = await client.request(method, path)
        assert response.status_code == 405, response.text
        assert response.json() == {
            "error": {
                "message": "Method Not Allowed",
                "type": "invalid_request_error",
                "param": None,
                "code": "method_not_allowed",
            }
        }
        assert method not in response.headers["allow"]
    ours = await client.delete("/v1/chat-models")
    assert ours.status_code == 405
    assert ours.json()["error"] == "method_not_allowed"


async def test_openapi_declares_the_error_bodies_actually_sent(client: httpx.AsyncClient) -> None:
    # Was FastAPI's default 422 HTTPValidationError, a body this service never sends.
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    ours = document["paths"]["/v1/chat-models"]["post"]["responses"]["4XX"]
    assert ours["content"]["application/json"]["schema"]["$ref"].endswith("/ServiceErrorBody")
    openai = document["paths"]["/v1/chat/completions"]["post"]["responses"]["4XX"]
    assert openai["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
