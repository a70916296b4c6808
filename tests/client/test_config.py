"""Where the URL, key and timeout come from: constructor, configure(), environment, default."""

from __future__ import annotations

import httpx
import pytest

import chatmodel
from chatmodel import ChatModel
from tests.client.recording import Recorder


def sent(recorder: Recorder, **settings: object) -> httpx.Request:
    """The request a get_config() sends with these constructor settings."""
    with recorder.client() as http:
        ChatModel("simple_assistant", http_client=http, **settings).get_config()  # type: ignore[arg-type]
    return recorder.requests[-1]


def test_defaults_to_localhost_without_a_key() -> None:
    request = sent(Recorder())
    assert (
        str(request.url)
        == "http://127.0.0.1:8000/v1/chat-models/simple_assistant/config?version=deploy"
    )
    assert "authorization" not in request.headers
    assert request.extensions["timeout"] == {
        "connect": 10.0,
        "read": 600.0,
        "write": 600.0,
        "pool": 600.0,
    }


def test_environment_is_used_when_nothing_else_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMODEL_BASE_URL", "http://env.example:9000/")
    monkeypatch.setenv("CHATMODEL_API_KEY", "env-key")
    request = sent(Recorder())
    assert request.url.host == "env.example" and request.url.port == 9000
    assert request.headers["authorization"] == "Bearer env-key"


def test_configure_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMODEL_BASE_URL", "http://env.example:9000")
    monkeypatch.setenv("CHATMODEL_API_KEY", "env-key")
    chatmodel.configure(base_url="http://configured.example", api_key="configured-key", timeout=5)
    request = sent(Recorder())
    assert request.url.host == "configured.example"
    assert request.headers["authorization"] == "Bearer configured-key"
    assert request.extensions["timeout"]["read"] == 5


def test_constructor_beats_configure() -> None:
    chatmodel.configure(base_url="http://configured.example", api_key="configured-key", timeout=5)
    request = sent(
        Recorder(),
        base_url="https://given.example/prefix",
        api_key="given-key",
        timeout=httpx.Timeout(42, connect=3),
    )
    assert str(request.url).startswith("https://given.example/prefix/v1/chat-models/")
    assert request.headers["authorization"] == "Bearer given-key"
    assert request.extensions["timeout"] == {"connect": 3, "read": 42, "write": 42, "pool": 42}


def test_each_configure_call_replaces_the_previous_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATMODEL_BASE_URL", "http://env.example")
    chatmodel.configure(base_url="http://configured.example")
    chatmodel.configure(api_key="k")
    request = sent(Recorder())
    assert request.url.host == "env.example"
    assert request.headers["authorization"] == "Bearer k"


def test_settings_are_fixed_when_the_chat_model_is_created() -> None:
    session = ChatModel("simple_assistant")
    chatmodel.configure(base_url="http://later.example")
    assert session.base_url == "http://127.0.0.1:8000"
    assert ChatModel("simple_assistant").base_url == "http://later.example"


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://example.com", "http://"])
def test_a_base_url_that_is_not_http_is_refused_up_front(bad: str) -> None:
    with pytest.raises(ValueError, match="http"):
        ChatModel("simple_assistant", base_url=bad)
    with pytest.raises(ValueError, match="http"):
        chatmodel.configure(base_url=bad)
