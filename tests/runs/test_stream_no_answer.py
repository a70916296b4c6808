"""A streamed run whose upstream answered 200 but sent no answer is a failed run.

A body that is not SSE, an SSE body that closes with no events (and no ``[DONE]``), or
chunks whose ``choices`` are empty carry no text, no function call and no tool call:
LiteLLM makes an empty reply of them, which must not be stored as a success. The run
fails with ``malformed_response`` (as a plain run on the same upstream does), stores no
reply, and is retried as the version's ``num_retries`` say, since nothing reached the
caller yet. Natively and over the OpenAI-compatible API, on both LiteLLM transports.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from chatmodel_service.config import OPENAI_TRANSPORT_ENV, OpenAITransport
from chatmodel_service.llm.gateway import LLMGateway, create_gateway
from tests.factories import (
    make_chat_model,
    make_remote_session,
    run,
    stored_messages,
    stream,
)
from tests.support.llm_server import RawBody, Reply, ScriptedLLMServer, sse_body

TRANSPORTS: tuple[OpenAITransport, ...] = ("litellm", "openai-sdk")
QUESTION = {"role": "user", "content": "Anything there?"}
CHUNK = {"id": "chatcmpl-empty", "object": "chat.completion.chunk", "created": 1, "model": "m"}
WHOLE_REPLY = {
    "id": "chatcmpl-whole",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}
    ],
}

NO_ANSWER = {
    "json_not_sse": RawBody(json.dumps(WHOLE_REPLY)),
    "text_not_sse": RawBody("The model is resting.", media_type="text/plain"),
    "invalid_json_events": RawBody(sse_body("{oops"), media_type="text/event-stream"),
    "no_events_no_done": RawBody("", media_type="text/event-stream"),
    "empty_choices": RawBody(
        sse_body(CHUNK | {"choices": []}, CHUNK | {"choices": []}),
        media_type="text/event-stream",
    ),
    "usage_only": RawBody(
        sse_body(
            CHUNK
            | {
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
            }
        ),
        media_type="text/event-stream",
    ),
}


@pytest.fixture(params=TRANSPORTS)
def gateway(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> LLMGateway:
    """The real gateway on each LiteLLM transport; the process's transport is restored."""
    monkeypatch.setenv(OPENAI_TRANSPORT_ENV, "true")
    return create_gateway(request.param)


async def runs_of(client: httpx.AsyncClient, session: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/sessions/{session}/runs")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.mark.parametrize("body", NO_ANSWER.values(), ids=NO_ANSWER.keys())
async def test_a_stream_without_an_answer_is_a_failed_run(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, body: RawBody
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(body)

    events = await stream(client, session)

    assert len(events) == 1, events  # no pieces: the error event alone, then [DONE]
    last = events[0]
    assert (last["done"], last.get("error"), last.get("error_type")) == (
        True,
        True,
        "malformed_response",
    ), last
    assert "message" not in last
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    runs = await runs_of(client, session)
    assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "malformed_response")]
    assert len(llm_server.requests) == 1


async def test_a_plain_run_on_the_same_upstream_fails_the_same_way(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION)
    llm_server.enqueue(NO_ANSWER["text_not_sse"], NO_ANSWER["no_events_no_done"])

    plain = await run(client, session)
    streamed = (await stream(client, session))[-1]

    assert plain["error_type"] == "malformed_response", plain
    assert streamed.get("error_type") == "malformed_response", streamed
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]


@pytest.mark.parametrize("body", ["no_events_no_done", "empty_choices"])
async def test_a_stream_without_an_answer_is_retried_before_anything_was_sent(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, body: str
) -> None:
    session = await make_remote_session(client, llm_server.base_url, QUESTION, num_retries=1)
    llm_server.enqueue(NO_ANSWER[body], Reply("Here after all."))

    events = await stream(client, session)

    last = events[-1]
    assert last["error"] is False, last
    assert last["message"]["content"] == "Here after all."
    assert "".join(e.get("content") or "" for e in events[:-1]) == "Here after all."
    assert [a["outcome"] for a in last["attempts"]] == ["malformed_response", "succeeded"]
    assert len(llm_server.requests) == 2
    stored = await stored_messages(client, session)
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", QUESTION["content"]),
        ("assistant", "Here after all."),
    ]


@pytest.mark.parametrize("body", ["json_not_sse", "no_events_no_done", "empty_choices"])
async def test_an_openai_compatible_stream_without_an_answer_is_an_error(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer, body: str
) -> None:
    await make_chat_model(
        client, "remote", model="openai/scripted-model", api_base=llm_server.base_url
    )
    session = str(uuid.uuid4())
    llm_server.enqueue(NO_ANSWER[body])

    response = await client.post(
        "/v1/chat/completions",
        json={"model": "remote", "messages": [QUESTION], "stream": True},
        headers={"X-Session-Id": session},
    )

    # Nothing was produced, so the failure is an ordinary OpenAI error answer.
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "malformed_response"
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    runs = await runs_of(client, session)
    assert [(r["status"], r["error_type"]) for r in runs] == [("failed", "malformed_response")]
