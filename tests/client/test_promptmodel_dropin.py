"""promptmodel code keeps working with only its import changed to ``from chatmodel import
ChatModel``, against a real `chatmodel serve` and its demo model.

What such code relies on (promptmodel's ChatModel, seed 004): ``session_uuid`` is a str from
construction, so it can be saved before anything is written; ``ChatModel(name, saved)``
continues that session, or makes it on first use; results carry ``pm_detail`` with
``name``, ``version``, ``version_uuid`` (a str), ``model`` and ``log_uuid`` (the stored
reply); ``get_config().version_uuid`` is a str.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

import chatmodel
from chatmodel import ChatModel  # the one line changed from `from promptmodel import ChatModel`
from tests.factories import WEATHER_FUNCTION

NAME = "simple_assistant"
get_weather_function: dict[str, Any] = WEATHER_FUNCTION


@pytest.fixture(autouse=True)
def point_at_served(served: str) -> None:
    chatmodel.configure(base_url=served)


def stored_session(served: str, session_uuid: str) -> dict[str, Any]:
    """The session as the server has it, with its messages (what promptmodel code saved)."""
    with httpx.Client(base_url=served) as http:
        session = http.get(f"/v1/sessions/{session_uuid}")
        assert session.status_code == 200, session.text
        messages = http.get(f"/v1/sessions/{session_uuid}/messages")
        assert messages.status_code == 200, messages.text
    body: dict[str, Any] = session.json()
    body["messages"] = messages.json()["data"]
    return body


def assert_pm_detail(res: Any, session_uuid: str, served: str) -> None:
    """``res.pm_detail`` is promptmodel's PMDetail: ``log_uuid`` names the stored reply and
    ``version_uuid`` (a str) the version that answered."""
    assert res.pm_detail is not None and res.pm_detail is res.detail
    config = ChatModel(NAME).get_config()
    assert (res.pm_detail.name, res.pm_detail.version, res.pm_detail.model) == (
        NAME,
        config.version,
        "chatmodel-offline/echo",
    )
    assert isinstance(res.pm_detail.version_uuid, str)
    assert res.pm_detail.version_uuid == config.version_uuid == config.version_detail["uuid"]
    assert isinstance(res.pm_detail.log_uuid, str)
    reply = stored_session(served, session_uuid)["messages"][-1]
    assert (reply["role"], reply["uuid"]) == ("assistant", res.pm_detail.log_uuid)
    assert res.pm_detail.log_uuid == str(res.pm_detail.message_uuid)


# -- session_uuid: set at construction, saved, continued ---------------------------------------


def test_a_saved_session_uuid_is_made_on_first_use_under_that_name(served: str) -> None:
    saved: dict[str, str] = {}

    def save(sid: str) -> None:
        saved["sid"] = sid

    sid = ChatModel(NAME).session_uuid
    save(sid)
    assert isinstance(saved["sid"], str) and str(uuid.UUID(saved["sid"])) == saved["sid"]
    assert httpx.get(f"{served}/v1/sessions/{sid}").status_code == 404  # nothing written yet

    session = ChatModel(NAME, saved["sid"])
    assert session.session_uuid == sid
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run()

    assert (res.error, res.content) == (False, "Hello, I'm a user.")
    assert res.pm_detail is not None and str(res.pm_detail.session_uuid) == sid
    stored = stored_session(served, sid)
    assert (stored["uuid"], stored["chat_model"]) == (sid, NAME)
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "Hello, I'm a user."),
        ("assistant", "Hello, I'm a user."),
    ]
    assert_pm_detail(res, sid, served)

    # later, another process continues it
    with pytest.warns(DeprecationWarning):
        chat_logs = ChatModel(NAME, sid).get_messages()
    assert chat_logs == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello, I'm a user."},
        {"role": "assistant", "content": "Hello, I'm a user."},
    ]
    again = ChatModel(NAME, sid)
    again.add_messages([{"role": "user", "content": "Still there?"}])
    assert again.run().content == "Still there?"
    assert len(stored_session(served, sid)["messages"]) == 4


def test_a_run_makes_a_named_session_too(served: str) -> None:
    sid = str(uuid.uuid4())
    res = ChatModel(NAME, sid).run()
    assert res.detail is not None and str(res.detail.session_uuid) == sid
    assert stored_session(served, sid)["chat_model"] == NAME


def test_a_streamed_run_makes_a_named_session_too(served: str) -> None:
    sid = str(uuid.uuid4())
    chunks = list(ChatModel(NAME, sid).run(stream=True))
    assert chunks[-1].done is True and chunks[-1].error is False, chunks[-1].error_log
    assert chunks[-1].pm_detail is not None and str(chunks[-1].pm_detail.session_uuid) == sid
    assert stored_session(served, sid)["chat_model"] == NAME


def test_an_async_streamed_run_makes_a_named_session_too(served: str) -> None:
    sid = str(uuid.uuid4())

    async def main() -> list[chatmodel.LLMStreamResponse]:
        return [r async for r in await ChatModel(NAME, sid).arun(stream=True)]

    chunks = asyncio.run(main())
    assert chunks[-1].done is True and chunks[-1].error is False, chunks[-1].error_log
    assert stored_session(served, sid)["chat_model"] == NAME


def test_the_error_handling_loop_on_a_saved_session(served: str) -> None:
    session_uuid = ChatModel(NAME).session_uuid
    max_retry = 3
    trial = 0
    session = ChatModel(NAME, session_uuid)
    while trial < max_retry:
        session.add_messages([{"role": "user", "content": "..."}])
        res = session.run()
        if res.error:
            print(res.error_log)
            trial += 1
            continue
        break
    assert (trial, res.content) == (0, "...")
    assert [m["content"] for m in stored_session(served, session_uuid)["messages"]] == ["..."] * 2


# -- the seed's examples, with pm_detail and version_uuid --------------------------------------


def test_get_config_version_uuid_is_a_str() -> None:
    config = ChatModel(NAME).get_config()
    assert isinstance(config.version_uuid, str)
    assert config.version_uuid == config.version_detail["uuid"]
    assert str(uuid.UUID(config.version_uuid)) == config.version_uuid


def test_run_and_pm_detail(served: str) -> None:
    session = ChatModel(NAME)
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run()
    assert res.content == "Hello, I'm a user."
    assert_pm_detail(res, session.session_uuid, served)


def test_stream_and_pm_detail_on_the_last_chunk(served: str) -> None:
    session = ChatModel(NAME)
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run(stream=True)
    pieces = []
    cache = None
    for r in res:
        pieces.append(r.content)
        cache = r
    assert "".join(p for p in pieces if p) == "Hello, I'm a user."
    assert cache is not None and cache.done
    assert_pm_detail(cache, session.session_uuid, served)


def test_function_call_then_result(served: str) -> None:
    session = ChatModel(NAME)
    session.add_messages([{"role": "user", "content": "What's the weather in Boston?"}])
    res = session.run(functions=[get_weather_function])
    assert res.function_call is not None
    assert (res.function_call.name, res.function_call.args) == (
        "get_weather",
        {"location": "Boston"},
    )
    assert_pm_detail(res, session.session_uuid, served)
    call_uuid = res.pm_detail.log_uuid if res.pm_detail else None

    session.add_messages([{"role": "function", "content": "13 degrees celsius"}])
    res = session.run()
    assert res.content == "get_weather returned: 13 degrees celsius"
    assert_pm_detail(res, session.session_uuid, served)
    assert res.pm_detail is not None and res.pm_detail.log_uuid != call_uuid
    roles = [m["role"] for m in stored_session(served, session.session_uuid)["messages"]]
    assert roles == ["user", "assistant", "function", "assistant"]


def test_asynchronous_run_stream_and_function_call(served: str) -> None:
    async def main() -> tuple[chatmodel.LLMResponse, list[chatmodel.LLMStreamResponse], str]:
        sid = ChatModel(NAME).session_uuid
        session = ChatModel(NAME, sid)
        await session.aadd_messages([{"role": "user", "content": "Hello, I'm a user."}])
        res = await session.arun()
        await session.aadd_messages([{"role": "user", "content": "What's the weather in Boston?"}])
        chunks = [
            r async for r in await session.arun(functions=[get_weather_function], stream=True)
        ]
        return res, chunks, sid

    res, chunks, sid = asyncio.run(main())
    assert res.content == "Hello, I'm a user."
    assert res.pm_detail is not None and isinstance(res.pm_detail.version_uuid, str)
    last = chunks[-1]
    assert (last.done, last.error) == (True, False), last.error_log
    assert last.message is not None and last.message.function_call is not None
    assert last.message.function_call.args == {"location": "Boston"}
    assert_pm_detail(last, sid, served)
    assert stored_session(served, sid)["chat_model"] == NAME


def test_pm_detail_is_none_when_nothing_answered(closed_port_url: str) -> None:
    res = ChatModel(NAME, base_url=closed_port_url).run()
    assert (res.error, res.error_type, res.pm_detail) == (True, "api_connection_error", None)
