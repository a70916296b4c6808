"""A path under ``/v1/`` that no route serves, outside the native API's own paths, answers
OpenAI's 404 naming the path (an OpenAI client calling ``/v1/embeddings`` or
``/v1/audio/speech`` learns that the server does not serve it, not "Error code: 404"); the
native API keeps its own error body, for missing objects and unmatched paths alike."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.factories import make_chat_model


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/audio/speech"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/threads"),
        ("GET", "/v1/assistants"),
        ("POST", "/v1/threads/thread_1/runs"),
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/models/assistant/extra"),
    ],
)
async def test_an_unserved_v1_path_is_openais_404_naming_it(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json={"model": "assistant", "input": "hi"})
    assert response.status_code == 404, response.text
    assert response.json() == {
        "error": {
            "message": f"{method} {path} is not served by this server.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_path",
        }
    }


async def test_the_native_api_keeps_its_own_404s(client: httpx.AsyncClient) -> None:
    missing_session = await client.get(f"/v1/sessions/{uuid.uuid4()}")
    assert missing_session.status_code == 404
    assert missing_session.json()["error"] == "session_not_found"
    missing_model = await client.get("/v1/chat-models/nobody")
    assert missing_model.json()["error"] == "chat_model_not_found"
    # A path of the native API that no route serves: the chatmodel client reads this body.
    for path in (f"/v1/sessions/{uuid.uuid4()}/nothing", "/v1/chat-models/a/b/c/d", "/nothing"):
        unmatched = await client.get(path)
        assert unmatched.status_code == 404, path
        assert unmatched.json() == {"error": "not_found", "detail": "Not Found", "field": None}


async def test_a_known_path_with_another_method_is_a_405_in_its_apis_shape(
    client: httpx.AsyncClient,
) -> None:
    openai_route = await client.get("/v1/chat/completions")
    assert openai_route.status_code == 405
    assert openai_route.json()["error"]["code"] == "method_not_allowed"
    native_route = await client.put("/v1/chat-models")
    assert native_route.status_code == 405
    assert native_route.json()["error"] == "method_not_allowed"


async def test_the_openai_sdk_reports_the_unserved_path(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "assistant")
    # The SDK on the app in this process: its HTTP client is the test's, closed by the fixture.
    sdk = openai.AsyncOpenAI(
        base_url="http://chatmodel.test/v1",
        api_key="sk-not-checked",
        max_retries=0,
        http_client=client,
    )
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.embeddings.create(model="assistant", input="hello")

    error = raised.value
    assert error.code == "unknown_path"
    assert "POST /v1/embeddings is not served by this server." in str(error)
