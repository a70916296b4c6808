"""promptmodel's own SDK (0.2.1, in a venv of its own) against a real server: the examples
of its ChatModel document, unchanged, with only PROMPTMODEL_BACKEND_PUBLIC_URL and
PROMPTMODEL_API_KEY (a client key of ours) set.

The SDK calls the model itself, with its own LiteLLM: the chat model's version is
``gpt-3.5-turbo`` (a model LiteLLM lists, as the SDK asks LiteLLM for its input limit), and
the SDK process's OPENAI_API_BASE points that LiteLLM at the scripted upstream. What the
SDK logs back must be visible through the native API: messages, and runs with the usage
and model the SDK's reply carried.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatmodel_service.app import create_app
from chatmodel_service.llm.gateway import LLMGateway
from tests.support.auth import auth_settings, keyed, seed_key
from tests.support.llm_server import FunctionCallReply, Reply, ScriptedLLMServer
from tests.support.sdks import run_sdk
from tests.support.servers import serve_in_thread

SDK = "promptmodel-0.2.1"
CHAT_MODEL = "simple_assistant"
MODEL = "gpt-3.5-turbo"
SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass(frozen=True)
class PromptmodelBackend:
    base_url: str
    admin_key: str
    client_key: str
    sdk_env: dict[str, str]

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.base_url}{path}", params=params, headers=keyed(self.admin_key))
        assert response.status_code == 200, response.text
        return response.json()

    def sdk(self, code: str, workdir: Path) -> list[dict[str, Any]]:
        """Run ``code`` in the SDK's venv (from ``workdir``, where the SDK writes its
        ./.promptmodel config); every line it prints starting with ``OUT `` is a result."""
        prelude = f"import os\nos.chdir({str(workdir)!r})\n"
        done = run_sdk(SDK, prelude + textwrap.dedent(code), self.sdk_env)
        assert done.returncode == 0, done.stderr + done.stdout
        return [
            json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("OUT ")
        ]


@pytest.fixture
def backend(
    database_url: str, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> Iterator[PromptmodelBackend]:
    """Our server (keys required) with a published chat model, and the SDK's environment."""
    app = create_app(auth_settings(database_url), gateway)

    async def keys() -> tuple[str, str]:
        async with app.router.lifespan_context(app):
            admin, _ = await seed_key(app, "admin", "ops")
            client, _ = await seed_key(app, "client", "promptmodel-sdk")
        return admin, client

    admin_key, client_key = asyncio.run(keys())
    with serve_in_thread(app) as live:
        headers = keyed(admin_key)
        created = httpx.post(
            f"{live.base_url}/v1/chat-models", json={"name": CHAT_MODEL}, headers=headers
        )
        assert created.status_code == 201, created.text
        version = httpx.post(
            f"{live.base_url}/v1/chat-models/{CHAT_MODEL}/versions",
            json={
                "system_prompt": SYSTEM_PROMPT,
                "model": MODEL,
                "api_base": llm_server.base_url,
                "publish": True,
            },
            headers=headers,
        )
        assert version.status_code == 201, version.text
        env = {
            "PROMPTMODEL_BACKEND_PUBLIC_URL": live.base_url,
            "PROMPTMODEL_API_KEY": client_key,
            # The SDK's own LiteLLM, pointed at the scripted upstream, offline.
            "OPENAI_API_KEY": "sk-scripted",
            "OPENAI_API_BASE": llm_server.base_url,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
        yield PromptmodelBackend(live.base_url, admin_key, client_key, env)


# The document's examples, as written there, with their results printed for the test. One
# change: the document prints ``res.content``, which 0.2.1's LLMResponse does not have (it
# raises AttributeError whatever the server); its text is ``res.raw_output``.
SYNC_EXAMPLES = """
import json
from promptmodel import ChatModel

def out(**values):
    print("OUT " + json.dumps(values, default=str), flush=True)

get_weather_function = {
    "name": "get_weather",
    "description": "Get the current weather in a given location.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}

config = ChatModel("simple_assistant").get_config()
out(system_prompt=config.system_prompt, version_uuid=config.version_uuid,
    model=config.model, message_logs=config.message_logs)

session = ChatModel("simple_assistant")
session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
res = session.run()
out(session=session.session_uuid, content=res.raw_output, error=res.error,
    log_uuid=res.pm_detail.log_uuid)

session.add_messages([{"role": "user", "content": "Hello again."}])
res = session.run(stream=True)
pieces = [r.raw_output for r in res if r.raw_output]
out(pieces=pieces)

session.add_messages([{"role": "user", "content": "What's the weather in Boston?"}])
res = session.run(functions=[get_weather_function])
out(function_call=res.function_call.model_dump(), error=res.error)

session.add_messages([{"role": "function", "content" : "13 degrees celsius"}])
res = session.run()
out(content=res.raw_output, error=res.error)

config = ChatModel("simple_assistant", session.session_uuid).get_config()
out(message_logs=config.message_logs)
"""


def test_the_documented_sync_examples_run_and_are_stored(
    backend: PromptmodelBackend, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    llm_server.enqueue(
        Reply("Hello, I'm a assistant.", prompt_tokens=21, completion_tokens=7),
        Reply("Hello, I'm a streamed assistant."),
        FunctionCallReply("get_weather", '{"location": "Boston"}'),
        Reply("It's 13 degrees celsius in Boston."),
    )

    results = backend.sdk(SYNC_EXAMPLES, tmp_path)

    config, first, streamed, called, answered, replayed = results
    assert config["system_prompt"] == SYSTEM_PROMPT
    assert config["model"] == MODEL
    # A new session's config: its system prompt only.
    assert config["message_logs"] == [{"role": "system", "content": SYSTEM_PROMPT}]
    assert first["content"] == "Hello, I'm a assistant." and not first["error"]
    assert "".join(streamed["pieces"]) == "Hello, I'm a streamed assistant."
    assert called["function_call"]["name"] == "get_weather"
    assert json.loads(called["function_call"]["arguments"]) == {"location": "Boston"}
    assert not called["error"]
    assert answered == {"content": "It's 13 degrees celsius in Boston.", "error": None}

    # The model saw the session's history, replayed from our store, system prompt first.
    last_call = llm_server.requests[-1]["messages"]
    assert last_call[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert last_call[-1]["role"] == "function" and last_call[-1]["name"] == "get_weather"

    session = first["session"]
    messages = backend.get(f"/v1/sessions/{session}/messages")["data"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hello, I'm a user."),
        ("assistant", "Hello, I'm a assistant."),
        ("user", "Hello again."),
        ("assistant", "Hello, I'm a streamed assistant."),
        ("user", "What's the weather in Boston?"),
        ("assistant", None),
        ("function", "13 degrees celsius"),
        ("assistant", "It's 13 degrees celsius in Boston."),
    ]
    reply = messages[1]
    assert reply["uuid"] == first["log_uuid"]  # the SDK's log uuid names our message
    assert reply["model"] == MODEL
    assert reply["usage"] == {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
    assert messages[5]["function_call"]["name"] == "get_weather"
    assert messages[6]["name"] == "get_weather"  # a function result names its call

    runs = backend.get(f"/v1/sessions/{session}/runs")["data"]
    assert [r["status"] for r in runs] == ["succeeded"] * 4
    assert runs[0]["model"] == MODEL and runs[0]["usage"]["total_tokens"] == 28
    assert runs[0]["message_uuid"] == first["log_uuid"]
    assert runs[0]["key_name"] == "promptmodel-sdk"

    # ChatModel(name, session_uuid).get_config() reads the session back.
    assert [m["role"] for m in replayed["message_logs"]][:3] == ["system", "user", "assistant"]
    assert replayed["message_logs"][-1]["content"] == "It's 13 degrees celsius in Boston."


# ``promptmodel.init()`` (nest_asyncio, and the deployment cache's check_update) is how the
# SDK is set up for a running event loop: ChatModel() runs its calls to completion inside it.
ASYNC_EXAMPLES = """
import asyncio, json
import promptmodel
from promptmodel import ChatModel

promptmodel.init()

def out(**values):
    print("OUT " + json.dumps(values, default=str), flush=True)

async def main():
    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = await session.arun()
    out(session=session.session_uuid, content=res.raw_output, error=res.error)

    session.add_messages([{"role": "user", "content": "Stream it."}])
    res = await session.arun(stream=True)
    pieces = [r.raw_output async for r in res if r.raw_output]
    out(pieces=pieces)

asyncio.run(main())
"""


def test_the_documented_async_examples_run_and_are_stored(
    backend: PromptmodelBackend, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    llm_server.enqueue(Reply("Hello, I'm a assistant."), Reply("Streamed asynchronously."))

    awaited, streamed = backend.sdk(ASYNC_EXAMPLES, tmp_path)

    assert awaited["content"] == "Hello, I'm a assistant." and not awaited["error"]
    assert "".join(streamed["pieces"]) == "Streamed asynchronously."
    messages = backend.get(f"/v1/sessions/{awaited['session']}/messages")["data"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Hello, I'm a user."),
        ("assistant", "Hello, I'm a assistant."),
        ("user", "Stream it."),
        ("assistant", "Streamed asynchronously."),
    ]
    runs = backend.get(f"/v1/sessions/{awaited['session']}/runs")["data"]
    assert [(r["status"], r["model"]) for r in runs] == [("succeeded", MODEL)] * 2


def test_log_init_and_scores(backend: PromptmodelBackend, tmp_path: Path) -> None:
    """``init()`` finds no update to fetch; ``log()`` stores messages (metadata on the last)
    and a reply made elsewhere as a run; ``log_score`` and ``log_score_to_session`` store
    each metric as feedback (scoring a metric again updates it), answered 200: the SDK
    prints nothing."""
    code = """
    import asyncio, contextlib, io, json
    import litellm
    import promptmodel
    from promptmodel import ChatModel

    def out(**values):
        print("OUT " + json.dumps(values, default=str), flush=True)

    promptmodel.init()
    session = ChatModel("simple_assistant")
    reply = litellm.completion(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x"}],
        mock_response="Logged by hand.",
    )

    async def main():
        asked = await session.log(
            messages=[{"role": "user", "content": "Hi"}], metadata={"source": "web"}
        )
        answered = await session.log(openai_api_response=reply)
        await session.log_score(score={"quality": 1})  # the last one logged: the reply
        await session.log_score(asked[0], {"quality": 0.5, "tone": "friendly"})
        await session.log_score(score={"quality": 0.9, "helpful": True})
        await session.log_score_to_session({"resolved": True})
        await session.log_score_to_session({"resolved": False, "topic": "greeting"})
        return asked, answered

    printed = io.StringIO()  # what the SDK prints: its complaints about an answer
    with contextlib.redirect_stdout(printed):
        asked, answered = asyncio.run(main())
    out(session=session.session_uuid, asked=asked, answered=answered, printed=printed.getvalue())
    """
    (done,) = backend.sdk(code, tmp_path)

    assert done["printed"] == ""
    messages = backend.get(f"/v1/sessions/{done['session']}/messages")["data"]
    assert [(m["role"], m["content"], m["metadata"]) for m in messages] == [
        ("user", "Hi", {"source": "web"}),
        ("assistant", "Logged by hand.", None),
    ]
    assert [m["uuid"] for m in messages] == done["asked"] + done["answered"]
    (run,) = backend.get(f"/v1/sessions/{done['session']}/runs")["data"]
    assert run["status"] == "succeeded" and run["message_uuid"] == done["answered"][0]
    assert (tmp_path / ".promptmodel" / "config.yaml").read_text().count("version: 0") == 1

    feedback = backend.get(f"/v1/sessions/{done['session']}/feedback")["data"]
    (question,), (answer,) = done["asked"], done["answered"]
    assert {(f["message_uuid"], f["name"]): f["value"] for f in feedback} == {
        (answer, "quality"): 0.9,
        (answer, "helpful"): True,
        (question, "quality"): 0.5,
        (question, "tone"): "friendly",
        (None, "resolved"): False,
        (None, "topic"): "greeting",
    }
    assert {f["key_name"] for f in feedback} == {"promptmodel-sdk"}


def test_a_reply_the_sdk_ran_is_scored(
    backend: PromptmodelBackend, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    """After ``run()``, ``log_score`` scores the reply it got (its ``log_uuid``, our
    message), as the native API lists it."""
    llm_server.enqueue(Reply("Hello, I'm a assistant."))
    code = """
    import asyncio, contextlib, io, json
    from promptmodel import ChatModel

    session = ChatModel("simple_assistant")
    session.add_messages([{"role": "user", "content": "Hello, I'm a user."}])
    res = session.run()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(session.log_score(score={"thumbs_up": True, "rating": 4}))
    values = {"session": session.session_uuid, "log_uuid": res.pm_detail.log_uuid,
              "printed": printed.getvalue()}
    print("OUT " + json.dumps(values), flush=True)
    """
    (done,) = backend.sdk(code, tmp_path)

    assert done["printed"] == ""
    feedback = backend.get(f"/v1/sessions/{done['session']}/feedback")["data"]
    assert [(f["message_uuid"], f["name"], f["kind"], f["value"]) for f in feedback] == [
        (done["log_uuid"], "thumbs_up", "boolean", True),
        (done["log_uuid"], "rating", "number", 4),
    ]


def test_errors_answer_in_the_body_the_sdk_prints(backend: PromptmodelBackend) -> None:
    """A failed model call the SDK reports is a failed run; scores that cannot be stored,
    an unknown session or message and a wrong key answer non-200 with our error body (the
    SDK prints it, never raises)."""
    cli = f"{backend.base_url}/api/cli"
    headers = keyed(backend.client_key)
    versions = httpx.get(
        f"{cli}/chat_model_versions_with_logs",
        params={"chat_model_name": CHAT_MODEL, "session_uuid": "", "version": "deploy"},
        headers=headers,
    ).json()["chat_model_versions"]
    assert [(v["is_published"], v["ratio"], v["version"]) for v in versions] == [(True, 1.0, 1)]
    session = "5d0c3b39-5f7e-4a55-9d43-6b8f6f1d9a01"
    made = httpx.post(
        f"{cli}/make_session",
        params={"session_uuid": session, "version_uuid": versions[0]["uuid"]},
        headers=headers,
    )
    assert made.status_code == 200, made.text
    failed_reply = "0e6b0a51-1f51-4bb0-8a3e-0a8f0f4b6c11"
    failed = {
        "uuid": failed_reply,
        "message": {"role": "assistant", "content": None, "provider_specific_fields": None},
        "metadata": {"error": True, "error_log": "RateLimitError: slow down"},
        "api_response": {"model": MODEL, "choices": [{"message": {}}], "usage": None},
    }
    logged = httpx.post(
        f"{cli}/chat_log",
        params={"session_uuid": session, "version_uuid": versions[0]["uuid"]},
        json=[failed],
        headers=headers,
    )
    assert logged.status_code == 200, logged.text
    (run,) = backend.get(f"/v1/sessions/{session}/runs")["data"]
    assert (run["status"], run["error_type"]) == ("failed", "client_error")
    assert run["error_log"] == "RateLimitError: slow down"
    assert backend.get(f"/v1/sessions/{session}/messages")["data"] == []

    unknown = httpx.post(
        f"{cli}/chat_log",
        params={"session_uuid": "9f1a3c2e-0000-4000-8000-000000000000", "version_uuid": ""},
        json=[{"uuid": None, "message": {"role": "user", "content": "lost?"}}],
        headers=headers,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "session_not_found"
    scored = httpx.post(
        f"{cli}/save_chat_session_score",
        params={"chat_session_uuid": session},
        json={"quality": 1},
        headers=headers,
    )
    assert scored.status_code == 200, scored.text
    refused_scores: list[tuple[str, dict[str, str], dict[str, Any], str]] = [
        ("save_chat_session_score", {"chat_session_uuid": session}, {}, "score"),
        ("save_chat_session_score", {"chat_session_uuid": session}, {"a b": 1}, "score.a b"),
        ("chat_message_score", {"chat_message_uuid": ""}, {"quality": 1}, "chat_message_uuid"),
        ("save_chat_session_score", {"chat_session_uuid": session}, {"q": [1]}, "score.q"),
    ]
    for path, params, score, field in refused_scores:
        refused = httpx.post(f"{cli}/{path}", params=params, json=score, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field, refused.text
    unknown_message = httpx.post(  # the failed reply: no message was stored
        f"{cli}/chat_message_score",
        params={"chat_message_uuid": failed_reply},
        json={"quality": 1},
        headers=headers,
    )
    assert unknown_message.status_code == 404
    assert unknown_message.json()["error"] == "message_not_found"
    assert [
        (f["name"], f["value"]) for f in backend.get(f"/v1/sessions/{session}/feedback")["data"]
    ] == [("quality", 1)]
    wrong_key = httpx.get(
        f"{cli}/check_update", params={"cached_version": 0}, headers=keyed("not-a-key")
    )
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"] == "unauthorized"
