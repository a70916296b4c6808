"""Error answers become exceptions named after the server's codes, except from run/arun,
which return them as LLMResponse(error=True) instead."""

from __future__ import annotations

import uuid

import httpx
import pytest

import chatmodel
from chatmodel import ChatModel
from tests.client.conftest import ASGI_BASE_URL
from tests.client.recording import Recorder
from tests.factories import make_chat_model


def over(client: httpx.AsyncClient, name: str, **kwargs: object) -> ChatModel:
    return ChatModel(name, async_http_client=client, base_url=ASGI_BASE_URL, **kwargs)  # type: ignore[arg-type]


async def test_unknown_chat_model(client: httpx.AsyncClient) -> None:
    with pytest.raises(chatmodel.ChatModelNotFound) as raised:
        await over(client, "nobody").aget_config()
    assert raised.value.status_code == 404
    assert raised.value.code == "chat_model_not_found"
    assert "nobody" in raised.value.detail

    result = await over(client, "nobody").arun()
    assert result.error is True
    assert result.error_type == "chat_model_not_found"
    assert "nobody" in (result.error_log or "")


async def test_invalid_message_is_a_validation_error_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    await make_chat_model(client, "assistant")
    session = over(client, "assistant")
    with pytest.raises(chatmodel.ValidationError) as raised:
        await session.aadd_messages([{"role": "wizard", "content": "hi"}])
    assert raised.value.status_code == 422
    assert raised.value.field == "messages.0.role"
    assert isinstance(raised.value, chatmodel.InvalidInputError)


async def test_reading_a_named_session_the_server_does_not_have(client: httpx.AsyncClient) -> None:
    """Reads do not make a session: one never written is not found (writes make it, see
    test_promptmodel_dropin), and a session deleted since is gone for good."""
    await make_chat_model(client, "assistant")
    stranger = over(client, "assistant", session_uuid=uuid.uuid4())
    with pytest.raises(chatmodel.SessionNotFound):
        await stranger.aget_config()
    with pytest.raises(chatmodel.SessionNotFound):
        await stranger.alist_messages()
    assert (await client.get(f"/v1/sessions/{stranger.session_uuid}")).status_code == 404

    session = over(client, "assistant")
    await session.aadd_messages([{"role": "user", "content": "hi"}])
    await over(client, "assistant", session_uuid=session.session_uuid).adelete_session()
    with pytest.raises(chatmodel.SessionNotFound):
        await session.aadd_messages([{"role": "user", "content": "again"}])
    result = await session.arun()
    assert (result.error, result.error_type) == (True, "session_not_found")
    chunks = [chunk async for chunk in await session.arun(stream=True)]
    assert [(c.done, c.error, c.error_type) for c in chunks] == [(True, True, "session_not_found")]
    assert (await client.get(f"/v1/sessions/{session.session_uuid}")).status_code == 404


async def test_unknown_version_and_nothing_published(client: httpx.AsyncClient) -> None:
    await make_chat_model(client, "draft", publish=False)
    with pytest.raises(chatmodel.NothingPublished):
        await over(client, "draft").aget_config()
    with pytest.raises(chatmodel.VersionNotFound):
        await over(client, "draft", version=7).aadd_messages([{"role": "user", "content": "x"}])
    assert (await over(client, "draft", version="latest").aget_config()).version == 1


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "gone_fishing", chatmodel.NotFoundError),
        (409, "new_conflict", chatmodel.ConflictError),
        (401, "key_expired", chatmodel.AuthenticationError),
        (429, "quota_used_up", chatmodel.RateLimitError),
        (503, "maintenance", chatmodel.ServiceUnavailableError),
        (409, "already_exists", chatmodel.AlreadyExists),
        (422, "new_rule", chatmodel.InvalidInputError),
        (400, "bad_request", chatmodel.InvalidInputError),
        (413, "payload_too_large", chatmodel.PayloadTooLarge),
        (500, "internal_error", chatmodel.APIError),
    ],
)
def test_codes_this_client_does_not_know_are_mapped_by_status(
    status: int, code: str, expected: type[chatmodel.APIError]
) -> None:
    body = {"error": code, "detail": "told by the server", "field": "x.y"}
    recorder = Recorder(httpx.Response(status, json=body))
    with recorder.client() as http:
        with pytest.raises(expected) as raised:
            ChatModel("assistant", http_client=http).get_config()
        assert type(raised.value) is expected
        assert (raised.value.code, raised.value.detail, raised.value.field) == (
            code,
            "told by the server",
            "x.y",
        )
        result = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).run()
    assert (result.error, result.error_type, result.content) == (True, code, None)
    assert "told by the server" in (result.error_log or "")


def test_a_body_that_is_not_ours() -> None:
    proxy_page = httpx.Response(502, text="<html>Bad Gateway</html>")
    with Recorder(proxy_page).client() as http:
        with pytest.raises(chatmodel.APIError) as raised:
            ChatModel("assistant", http_client=http).get_config()
        assert (raised.value.status_code, raised.value.code) == (502, "http_error")
        result = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).run()
    assert (result.error, result.error_type) == (True, "http_error")

    not_json = httpx.Response(200, text="Welcome to nginx!")
    with Recorder(not_json).client() as http:
        with pytest.raises(chatmodel.APIError) as raised:
            ChatModel("assistant", http_client=http).get_config()
        assert raised.value.code == "invalid_response"
        result = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).run()
        chunks = list(
            ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http).run(stream=True)
        )
    assert (result.error, result.error_type) == (True, "invalid_response")
    assert [(c.done, c.error, c.error_type) for c in chunks] == [(True, True, "invalid_response")]


def test_run_options_that_are_not_json_are_reported_not_raised() -> None:
    recorder = Recorder()
    with recorder.client() as http:
        session = ChatModel("assistant", session_uuid=uuid.uuid4(), http_client=http)
        result = session.run(params={"seed": object()})
        (chunk,) = list(session.run(params={"seed": object()}, stream=True))
    assert (result.error, result.error_type) == (True, "invalid_request")
    assert (chunk.done, chunk.error, chunk.error_type) == (True, True, "invalid_request")
    assert recorder.requests == []
