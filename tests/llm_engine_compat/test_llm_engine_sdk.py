"""Scale LLM Engine's own SDK (``scale-llm-engine`` 0.0.0b45, in a venv of its own) against a
real server: seed 003's examples as written, with only ``model`` changed, and the SDK's
exceptions for our errors. The SDK reaches the server through ``LLM_ENGINE_BASE_PATH``;
``run_sdk`` switches off its version check, so nothing goes to the internet."""

from __future__ import annotations

import json
import textwrap
import uuid
from typing import Any

import httpx

from chatmodel_service.app import create_app
from chatmodel_service.llm.gateway import LLMGateway
from tests.support.auth import auth_settings, seed_key, started_app
from tests.support.llm_server import ErrorReply, Reply, ScriptedLLMServer, StreamDrop
from tests.support.sdks import run_sdk
from tests.support.servers import LiveApp, scripted_chat_model, serve_in_thread

SDK = "llm-engine-0.0.0b45"
DEMO = "simple_assistant"  # the demo chat model, on the offline model: it echoes the prompt


def run(live_app: LiveApp, code: str, key: str = "not-checked") -> list[str]:
    """Run ``code`` with the SDK pointed at ``live_app`` (its ``SCALE_API_KEY``: ``key``);
    its stdout lines."""
    env = {"LLM_ENGINE_BASE_PATH": f"{live_app.base_url}/", "SCALE_API_KEY": key}
    finished = run_sdk(SDK, textwrap.dedent(code), env)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.splitlines()


def usage(live_app: LiveApp) -> dict[str, Any]:
    response = httpx.get(f"{live_app.base_url}/v1/usage")
    assert response.status_code == 200, response.text
    total: dict[str, Any] = response.json()["total"]
    return total


def test_create_as_the_seed_writes_it(live_app: LiveApp) -> None:
    printed = run(
        live_app,
        """
        from llmengine import Completion
        response = Completion.create(
            model="simple_assistant",
            prompt="Hello, my name is",
            max_new_tokens=10,
            temperature=0.2,
        )
        print(response.json())
        print(response.output.text)
        """,
    )

    body = json.loads(printed[0])
    assert printed[1] == "Hello, my name is"
    assert body["output"]["text"] == "Hello, my name is"
    assert body["output"]["tokens"] is None
    counts = (body["output"]["num_prompt_tokens"], body["output"]["num_completion_tokens"])
    assert counts[0] > 0 and counts[1] > 0
    # The call is recorded as a run without a session; request_id is its uuid.
    uuid.UUID(body["request_id"])
    total = usage(live_app)
    assert (total["runs"], total["errors"]) == (1, 0)
    assert (total["prompt_tokens"], total["completion_tokens"]) == counts


def test_streamed_create_as_the_seed_writes_it(live_app: LiveApp) -> None:
    prompt = "Give me a 200 word summary on the current economic events in the US."
    printed = run(
        live_app,
        """
        import sys
        from llmengine import Completion
        stream = Completion.create(
            model="simple_assistant",
            prompt="Give me a 200 word summary on the current economic events in the US.",
            max_new_tokens=1000,
            temperature=0.2,
            stream=True,
        )
        events = []
        for response in stream:
            if response.output:
                print(response.output.text, end="")
                sys.stdout.flush()
            events.append(response.json())
        print()
        for event in events:
            print(event)
        """,
    )

    assert printed[0] == prompt
    events = [json.loads(line) for line in printed[1:]]
    assert len(events) > 1, "the reply arrives in pieces"
    assert [e["output"]["finished"] for e in events] == [False] * (len(events) - 1) + [True]
    assert "".join(e["output"]["text"] for e in events) == prompt
    assert {e["request_id"] for e in events} == {events[0]["request_id"]}
    assert all(e["error"] is None for e in events)
    last = events[-1]["output"]
    total = usage(live_app)
    assert (total["runs"], total["errors"]) == (1, 0)
    assert last["num_completion_tokens"] == total["completion_tokens"] > 0


def test_acreate_and_its_stream(live_app: LiveApp) -> None:
    printed = run(
        live_app,
        """
        import asyncio
        from llmengine import Completion

        async def main():
            response = await Completion.acreate(
                model="simple_assistant",
                prompt="Hello, my name is",
                max_new_tokens=10,
                temperature=0.2,
            )
            print(response.json())
            stream = await Completion.acreate(
                model="simple_assistant",
                prompt="Why is the sky blue?",
                max_new_tokens=5,
                temperature=0.2,
                stream=True,
            )
            pieces = []
            async for response in stream:
                if response.output:
                    pieces.append(response.output.text)
                    finished = response.output.finished
            print("|".join(pieces))
            print(finished)

        asyncio.run(main())
        """,
    )

    body = json.loads(printed[0])
    assert body["output"]["text"] == "Hello, my name is"
    pieces = printed[1].split("|")
    assert len(pieces) > 1 and "".join(pieces) == "Why is the sky blue?"
    assert printed[2] == "True"
    assert usage(live_app)["runs"] == 2


def test_errors_are_the_sdks_exceptions(live_app: LiveApp, llm_server: ScriptedLLMServer) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(ErrorReply(429, "slow down"))
    printed = run(
        live_app,
        f"""
        from llmengine import Completion

        def attempt(**kwargs):
            try:
                stream = kwargs.pop("stream", False)
                response = Completion.create(max_new_tokens=5, temperature=0.2, **kwargs)
                if stream:
                    list(Completion.create(
                        max_new_tokens=5, temperature=0.2, stream=True, **kwargs
                    ))
            except Exception as exc:
                print(type(exc).__name__, "::", exc)
            else:
                print("no error", response)

        attempt(model="nobody", prompt="Hi")
        attempt(model="{DEMO}", prompt="Hi", guided_json={{"type": "object"}})
        attempt(model="{DEMO}", prompt="Hi", return_token_log_probs=True)
        attempt(model="{remote}", prompt="Hi")
        """,
    )

    not_found, guided, log_probs, rate_limited = printed
    assert not_found.startswith("NotFoundError :: The model 'nobody' does not exist")
    assert guided == (
        "BadRequestError :: guided_json: guided decoding is not supported by this server; "
        "leave it out."
    )
    assert log_probs.startswith("BadRequestError :: return_token_log_probs: ")
    assert rate_limited.startswith("RateLimitExceededError :: ")
    assert "slow down" in rate_limited
    # The refused requests made no run; the rate-limited call is a failed run.
    assert (usage(live_app)["runs"], usage(live_app)["errors"]) == (1, 1)


def test_a_failure_mid_stream_is_the_sdks_error_event(
    live_app: LiveApp, llm_server: ScriptedLLMServer
) -> None:
    remote = scripted_chat_model(live_app, llm_server)
    llm_server.enqueue(StreamDrop(Reply("one two three four five six"), after_chunks=3))
    printed = run(
        live_app,
        f"""
        from llmengine import Completion
        for response in Completion.create(
            model="{remote}", prompt="Count.", max_new_tokens=10, temperature=0.2, stream=True
        ):
            if response.output:
                print("text", repr(response.output.text), response.output.finished)
            else:
                print("error", response.error.status_code, response.error.content.error)
                print("timestamp", response.error.content.timestamp)
        """,
    )

    assert printed[:3] == ["text 'one ' False", "text 'two ' False", "text 'three ' False"]
    assert printed[3].startswith("error 502 ")
    assert printed[4].startswith("timestamp 20")
    assert len(printed) == 5, "nothing follows the error event"
    total = usage(live_app)
    assert (total["runs"], total["errors"]) == (1, 1)


async def test_the_scale_api_key_is_the_callers_key(database_url: str, gateway: LLMGateway) -> None:
    """With keys required: ``SCALE_API_KEY`` goes as ``x-api-key`` (and as HTTP Basic, not
    read); an unknown key is a 401, the SDK's ``UnauthorizedError``."""
    async with started_app(database_url, gateway, seed_demo=True) as app:
        key, _ = await seed_key(app, "client", "llm-engine")
    served = create_app(auth_settings(database_url, seed_demo=True), gateway)
    with serve_in_thread(served) as live:
        printed = run(
            live,
            """
            from llmengine import Completion
            from llmengine.api_engine import set_api_key
            response = Completion.create(model="simple_assistant", prompt="Hi", max_new_tokens=5)
            print(response.output.text)
            set_api_key("cm_0123abcd_" + "x" * 43)
            try:
                Completion.create(model="simple_assistant", prompt="Hi", max_new_tokens=5)
            except Exception as exc:
                print(type(exc).__name__, "::", exc)
            """,
            key=key,
        )

    assert printed[0] == "Hi"
    assert printed[1].startswith("UnauthorizedError :: ")
