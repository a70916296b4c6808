"""Seed 004's examples as written, against a real `chatmodel serve` and its demo model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import chatmodel
from chatmodel import ChatModel, ChatModelConfig
from tests.factories import WEATHER_FUNCTION

get_weather_function: dict[str, Any] = WEATHER_FUNCTION


@pytest.fixture(autouse=True)
def point_at_served(served: str) -> None:
    chatmodel.configure(base_url=served)


def test_get_config() -> None:
    config: ChatModelConfig = ChatModel("simple_assistant").get_config()
    assert config.system_prompt == "You are a helpful assistant."
    assert config.version_detail["model"] == "chatmodel-offline/echo"
    assert config.version_detail["uuid"] == str(config.version_uuid)
    assert config.message_logs == []


def test_add_messages_and_run() -> None:
    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run()
    assert res.content == "Hello, I'm a user."

    session = ChatModel("simple_assistant", session.session_uuid)
    session.add_messages([{"role": "user", "content": "Hello again."}])
    assert session.run().content == "Hello again."


def test_stream() -> None:
    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run(stream=True)
    pieces = [r.content for r in res]
    assert "".join(p for p in pieces if p) == "Hello, I'm a user."


def test_function_call() -> None:
    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "What's the weather in Boston?"}])
    res = session.run(functions=[get_weather_function])
    assert res.function_call is not None
    assert (res.function_call.name, res.function_call.args) == (
        "get_weather",
        {"location": "Boston"},
    )

    session.add_messages([{"role": "function", "content": "13 degrees celsius"}])
    res = session.run()
    assert res.content == "get_weather returned: 13 degrees celsius"


def test_error_handling_loop() -> None:
    max_retry = 3
    trial = 0
    session = ChatModel("simple_assistant")
    while trial < max_retry:
        session.add_messages([{"role": "user", "content": "..."}])
        res = session.run()
        if res.error:
            trial += 1
            continue
        break
    assert (trial, res.content) == (0, "...")


def test_asynchronous() -> None:
    async def main() -> str | None:
        session = ChatModel("simple_assistant")
        await session.aadd_messages([{"role": "user", "content": "Hello, I'm a user."}])
        res = await session.arun()
        return res.content

    assert asyncio.run(main()) == "Hello, I'm a user."


def test_get_prompts_and_get_messages() -> None:
    with pytest.warns(DeprecationWarning):
        prompts = ChatModel("simple_assistant").get_prompts()
    assert prompts == [{"role": "system", "content": "You are a helpful assistant."}]

    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    session.run()
    session_uuid = session.session_uuid
    with pytest.warns(DeprecationWarning):
        chat_logs = ChatModel("simple_assistant", session_uuid).get_messages()
    assert chat_logs == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello, I'm a user."},
        {"role": "assistant", "content": "Hello, I'm a user."},
    ]


def test_the_readme_python_example_runs_as_written(
    served: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[2] / "docs" / "client.md").read_text()
    section = readme.split("## Python client", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    chatmodel.configure()
    monkeypatch.setenv("CHATMODEL_BASE_URL", served)

    exec(compile(example, "README.md", "exec"), {})

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "Hello, I'm a user."
    assert "get_weather {'location': 'Boston'}" in printed
    assert printed[-1] == "get_weather returned: 13 degrees celsius"
