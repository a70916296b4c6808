"""Retries and fallbacks of a failing provider, through the real LiteLLM over HTTP.

A version's ``params.num_retries`` retries a rate limit, a 5xx, a timeout or a refused
connection on the same model; ``params.fallbacks`` are tried in order after that. A bad
request is neither retried nor sent to a fallback. Every attempt is recorded in the
gateway's outcome, and the run's ``detail.model`` names the model that answered.
"""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from chatmodel_service.config import Settings
from chatmodel_service.llm.gateway import LLMGateway
from chatmodel_service.llm.outcomes import retry_after_seconds
from chatmodel_service.llm.retries import MAX_RETRY_PAUSE, retry_pause
from chatmodel_service.llm.types import Attempt, LLMCall, LLMFailure, LLMResult
from tests.factories import (
    add_messages,
    expect_error,
    make_chat_model,
    make_session,
    run,
    stored_messages,
    stream,
)
from tests.support.llm_server import (
    Delay,
    ErrorReply,
    Reply,
    ScriptedLLMServer,
    StreamDrop,
)

PRIMARY = "openai/primary-model"
BACKUP = "openai/backup-model"
QUESTION = {"role": "user", "content": "Tell me a fact."}
BACKOFF = 0.01


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The harness's settings with a tiny backoff, so retries cost milliseconds."""
    return settings.model_copy(update={"retry_backoff_seconds": BACKOFF})


async def remote_session(
    client: httpx.AsyncClient, server: ScriptedLLMServer, **params: Any
) -> str:
    """A session on a published ``PRIMARY`` version at the scripted server, one question in."""
    await make_chat_model(client, "remote", model=PRIMARY, api_base=server.base_url, params=params)
    session = await make_session(client, "remote")
    await add_messages(client, session, QUESTION)
    return session


def asked_models(server: ScriptedLLMServer) -> list[str]:
    """The model of every request the scripted server received, in order."""
    return [str(request["model"]) for request in server.requests]


def gateway_call(server: ScriptedLLMServer, **fields: Any) -> LLMCall:
    defaults: dict[str, Any] = {
        "model": PRIMARY,
        "messages": [QUESTION],
        "api_base": server.base_url,
        "timeout": 5.0,
        "retry_backoff": BACKOFF,
    }
    return LLMCall(**(defaults | fields))


def outcomes(attempts: tuple[Attempt, ...]) -> list[tuple[str, str, int | None]]:
    return [(a.model, a.outcome, a.provider_status) for a in attempts]


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- retries on the same model ------------------------------------------------------------------


async def test_rate_limited_run_is_retried_and_answers(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=1)
    llm_server.enqueue(ErrorReply(429, "slow down", "rate_limit_error"), Reply("Snails sleep."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    assert result["content"] == "Snails sleep."
    assert result["detail"]["model"] == PRIMARY
    assert asked_models(llm_server) == ["primary-model", "primary-model"]
    stored = await stored_messages(client, session)
    assert [m["content"] for m in stored] == [QUESTION["content"], "Snails sleep."]


async def test_two_server_errors_then_success_takes_three_attempts(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    llm_server.enqueue(ErrorReply(500), ErrorReply(502), Reply("Third time lucky."))

    outcome = await gateway.complete(gateway_call(llm_server, num_retries=2))

    assert isinstance(outcome, LLMResult)
    assert outcome.content == "Third time lucky."
    assert outcome.model == PRIMARY
    assert outcomes(outcome.attempts) == [
        (PRIMARY, "provider_error", 500),
        (PRIMARY, "provider_error", 502),
        (PRIMARY, "succeeded", None),
    ]
    assert outcome.latency_ms >= sum(a.latency_ms for a in outcome.attempts)


async def test_exhausted_retries_fail_with_every_attempt(
    client: httpx.AsyncClient, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=2)
    llm_server.enqueue(*[ErrorReply(503, "overloaded")] * 3, Reply("never sent"))

    result = await run(client, session)

    assert result["error"] is True
    assert result["error_type"] == "provider_error"
    assert "HTTP 503" in result["error_log"] and "3 attempts" in result["error_log"]
    assert len(llm_server.requests) == 3
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]
    tried = [(PRIMARY, "provider_error", 503)] * 3
    assert [(a["model"], a["outcome"], a["provider_status"]) for a in result["attempts"]] == tried
    (record,) = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert record["status"] == "failed"
    assert record["attempts"] == result["attempts"]

    llm_server.reset()
    llm_server.enqueue(*[ErrorReply(503, "overloaded")] * 3)
    outcome = await gateway.complete(gateway_call(llm_server, num_retries=2))
    assert isinstance(outcome, LLMFailure)
    assert outcomes(outcome.attempts) == [(PRIMARY, "provider_error", 503)] * 3


async def test_timeout_is_retried(client: httpx.AsyncClient, llm_server: ScriptedLLMServer) -> None:
    session = await remote_session(client, llm_server, num_retries=1, timeout=0.5)
    llm_server.enqueue(Delay(2, Reply("too late")), Reply("On time."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    assert result["content"] == "On time."
    assert len(llm_server.requests) == 2


async def test_refused_connection_is_retried(gateway: LLMGateway) -> None:
    call = LLMCall(
        model=PRIMARY,
        messages=[QUESTION],
        api_base=f"http://127.0.0.1:{closed_port()}/v1",
        timeout=5.0,
        num_retries=2,
        retry_backoff=BACKOFF,
    )

    outcome = await gateway.complete(call)

    assert isinstance(outcome, LLMFailure)
    assert outcome.error_type == "connection_error"
    assert outcomes(outcome.attempts) == [(PRIMARY, "connection_error", None)] * 3


async def test_without_num_retries_a_rate_limit_is_tried_once(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(ErrorReply(429, "slow down", "rate_limit_error"), Reply("not asked"))

    result = await run(client, session)

    assert result["error_type"] == "rate_limited"
    assert "attempts" not in result["error_log"]
    assert len(llm_server.requests) == 1


# -- failures that are not retried --------------------------------------------------------------


async def test_bad_request_is_not_retried_nor_sent_to_fallbacks(
    client: httpx.AsyncClient, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=2, fallbacks=[BACKUP])
    llm_server.enqueue(ErrorReply(400, "messages: bad role", "invalid_request_error"), Reply("x"))

    result = await run(client, session)

    assert result["error_type"] == "bad_request"
    assert asked_models(llm_server) == ["primary-model"]
    assert [(a["model"], a["outcome"]) for a in result["attempts"]] == [(PRIMARY, "bad_request")]

    llm_server.reset()
    llm_server.enqueue(ErrorReply(400, "messages: bad role", "invalid_request_error"))
    outcome = await gateway.complete(gateway_call(llm_server, num_retries=2, fallbacks=(BACKUP,)))
    assert isinstance(outcome, LLMFailure)
    assert outcomes(outcome.attempts) == [(PRIMARY, "bad_request", 400)]


async def test_context_window_goes_to_the_fallback_without_retrying(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    too_long = ErrorReply(
        400,
        "This model's maximum context length is 4097 tokens. However, your messages "
        "resulted in 9000 tokens.",
        "invalid_request_error",
    )
    llm_server.enqueue(too_long, Reply("I have room."))

    outcome = await gateway.complete(gateway_call(llm_server, num_retries=2, fallbacks=(BACKUP,)))

    assert isinstance(outcome, LLMResult)
    assert outcome.model == BACKUP
    assert outcomes(outcome.attempts) == [
        (PRIMARY, "context_window_exceeded", 400),
        (BACKUP, "succeeded", None),
    ]


# -- fallbacks ----------------------------------------------------------------------------------


async def test_fallback_answers_after_the_primary_keeps_failing(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=1, fallbacks=[BACKUP])
    llm_server.enqueue(ErrorReply(500), ErrorReply(500), Reply("Backup here."))

    result = await run(client, session)

    assert result["error"] is False, result["error_log"]
    assert result["content"] == "Backup here."
    assert result["detail"]["model"] == BACKUP
    assert asked_models(llm_server) == ["primary-model", "primary-model", "backup-model"]
    sent = llm_server.requests[-1]
    assert "fallbacks" not in sent and "num_retries" not in sent
    runs = (await client.get(f"/v1/sessions/{session}/runs")).json()["data"]
    assert [r["status"] for r in runs] == ["succeeded"]
    tried = [(PRIMARY, "provider_error"), (PRIMARY, "provider_error"), (BACKUP, "succeeded")]
    assert [(a["model"], a["outcome"]) for a in result["attempts"]] == tried
    assert runs[0]["attempts"] == result["attempts"]
    assert runs[0]["model"] == BACKUP


async def test_fallbacks_are_tried_in_order_each_with_the_same_retries(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    third = "openai/third-model"
    llm_server.enqueue(
        ErrorReply(429, type="rate_limit_error"),
        ErrorReply(429, type="rate_limit_error"),
        ErrorReply(503),
        ErrorReply(404, "no such model", "invalid_request_error"),
        Reply("Third model answers."),
    )

    outcome = await gateway.complete(
        gateway_call(llm_server, num_retries=1, fallbacks=(BACKUP, third))
    )

    assert isinstance(outcome, LLMResult)
    assert outcome.model == third
    assert outcomes(outcome.attempts) == [
        (PRIMARY, "rate_limited", 429),
        (PRIMARY, "rate_limited", 429),
        (BACKUP, "provider_error", 503),
        (BACKUP, "model_not_found", 404),
        (third, "succeeded", None),
    ]


async def test_every_model_failing_reports_the_last_failure(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    llm_server.enqueue(ErrorReply(500), ErrorReply(503, "backup down"))

    outcome = await gateway.complete(gateway_call(llm_server, fallbacks=(BACKUP,)))

    assert isinstance(outcome, LLMFailure)
    assert outcome.model == BACKUP
    assert outcome.provider_status == 503
    assert "backup down" in outcome.error_log
    assert f"2 attempts on {PRIMARY}, {BACKUP}" in outcome.error_log
    assert [a.model for a in outcome.attempts] == [PRIMARY, BACKUP]


async def test_run_params_may_set_retries_and_fallbacks(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)
    llm_server.enqueue(ErrorReply(502), ErrorReply(502), Reply("Saved by the run."))

    result = await run(client, session, params={"num_retries": 1, "fallbacks": [BACKUP]})

    assert result["content"] == "Saved by the run."
    assert result["detail"]["model"] == BACKUP
    assert asked_models(llm_server) == ["primary-model", "primary-model", "backup-model"]


# -- streams ------------------------------------------------------------------------------------


async def test_stream_is_retried_before_its_first_piece(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=2)
    llm_server.enqueue(
        ErrorReply(503),
        StreamDrop(Reply("lost before anything"), after_chunks=0),
        Reply("Streamed after all."),
    )

    events = await stream(client, session)

    assert "".join(e.get("content") or "" for e in events[:-1]) == "Streamed after all."
    last = events[-1]
    assert last["done"] is True and last["error"] is False
    assert last["message"]["content"] == "Streamed after all."
    assert len(llm_server.requests) == 3
    assert [a["outcome"] for a in last["attempts"]] == [
        "provider_error",
        "stream_interrupted",
        "succeeded",
    ]
    assert [m["content"] for m in await stored_messages(client, session)][-1] == (
        "Streamed after all."
    )


async def test_stream_falls_back_before_its_first_piece(
    gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    llm_server.enqueue(ErrorReply(500), Reply("From the backup."))

    events = [e async for e in gateway.stream(gateway_call(llm_server, fallbacks=(BACKUP,)))]

    final = events[-1]
    assert isinstance(final, LLMResult)
    assert final.content == "From the backup."
    assert final.model == BACKUP
    assert outcomes(final.attempts) == [
        (PRIMARY, "provider_error", 500),
        (BACKUP, "succeeded", None),
    ]


async def test_stream_drop_after_the_first_piece_is_not_retried(
    client: httpx.AsyncClient, gateway: LLMGateway, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=2, fallbacks=[BACKUP])
    llm_server.enqueue(StreamDrop(Reply("one two three four"), after_chunks=2), Reply("x"))

    events = await stream(client, session)

    assert events[-1]["error"] is True
    assert events[-1]["error_type"] == "stream_interrupted"
    assert len(llm_server.requests) == 1
    assert [m["role"] for m in await stored_messages(client, session)] == ["user"]

    llm_server.reset()
    llm_server.enqueue(StreamDrop(Reply("one two three four"), after_chunks=2))
    call = gateway_call(llm_server, num_retries=2, fallbacks=(BACKUP,))
    final = [e async for e in gateway.stream(call)][-1]
    assert isinstance(final, LLMFailure)
    assert [(a.model, a.outcome) for a in final.attempts] == [(PRIMARY, "stream_interrupted")]


# -- pauses -------------------------------------------------------------------------------------


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server, num_retries=1)
    llm_server.enqueue(ErrorReply(429, type="rate_limit_error", retry_after=0.4), Reply("Waited."))

    started = time.perf_counter()
    result = await run(client, session)
    elapsed = time.perf_counter() - started

    assert result["content"] == "Waited."
    assert elapsed >= 0.4  # the backoff alone would have waited ~0.01 s


def test_backoff_doubles_with_bounded_jitter() -> None:
    for retry in range(4):
        pause = retry_pause(retry, 0.5)
        assert 0.5 * 2**retry <= pause <= 0.75 * 2**retry


def test_retry_after_wins_only_when_longer_and_is_capped() -> None:
    assert retry_pause(0, 0.5, retry_after=2.0) == 2.0
    assert 0.5 <= retry_pause(0, 0.5, retry_after=0.1) <= 0.75
    assert retry_pause(0, 0.5, retry_after=3600) == MAX_RETRY_PAUSE
    assert retry_pause(10, 30) == MAX_RETRY_PAUSE


class HeaderError(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("scripted")
        self.litellm_response_headers = httpx.Headers(headers)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "0"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_is_read(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(HeaderError(headers)) == seconds


def test_retry_after_may_be_an_http_date() -> None:
    seconds = retry_after_seconds(HeaderError({"retry-after": formatdate(time.time() + 60)}))

    assert seconds is not None and 55 <= seconds <= 61


# -- validation ---------------------------------------------------------------------------------


async def version_with(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    created = await client.post("/v1/chat-models", json={"name": "bot"})
    assert created.status_code in (201, 409), created.text
    return await client.post(
        "/v1/chat-models/bot/versions",
        json={
            "system_prompt": "You help.",
            "model": PRIMARY,
            "api_base": "http://127.0.0.1:11434/v1",
            "params": params,
        },
    )


async def test_version_keeps_retries_and_fallbacks(client: httpx.AsyncClient) -> None:
    response = await version_with(client, num_retries=3, fallbacks=[BACKUP, "gpt-4o-mini"])

    assert response.status_code == 201, response.text
    assert response.json()["params"] == {"num_retries": 3, "fallbacks": [BACKUP, "gpt-4o-mini"]}


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"num_retries": 6}, "params.num_retries", "less than or equal to 5"),
        ({"num_retries": -1}, "params.num_retries", "greater than or equal to 0"),
        ({"fallbacks": ["a/b", "c/d", "e/f", "g/h"]}, "params.fallbacks", "at most 3"),
        ({"fallbacks": [BACKUP, BACKUP]}, "params.fallbacks", "more than once"),
        ({"fallbacks": ["  "]}, "params.fallbacks", "names no model"),
        ({"fallbacks": ["x" * 201]}, "params.fallbacks.0", "at most 200"),
        ({"fallbacks": "openai/backup-model"}, "params.fallbacks", "list"),
    ],
)
async def test_malformed_retries_or_fallbacks_are_refused(
    client: httpx.AsyncClient, params: dict[str, Any], field: str, words: str
) -> None:
    detail = expect_error(await version_with(client, **params), 422, "validation_error", field)

    assert words in detail


async def test_fallback_models_are_checked_like_the_model(client: httpx.AsyncClient) -> None:
    response = await version_with(client, fallbacks=[BACKUP, "no-such-provider/model"])

    detail = expect_error(response, 422, "invalid_input", "params.fallbacks.1")
    assert "no-such-provider" in detail


async def test_fallback_cannot_repeat_the_model(client: httpx.AsyncClient) -> None:
    response = await version_with(client, fallbacks=[PRIMARY])

    detail = expect_error(response, 422, "invalid_input", "params.fallbacks.0")
    assert "num_retries" in detail


async def test_run_params_are_validated_too(
    client: httpx.AsyncClient, llm_server: ScriptedLLMServer
) -> None:
    session = await remote_session(client, llm_server)

    response = await client.post(f"/v1/sessions/{session}/run", json={"params": {"num_retries": 9}})

    expect_error(response, 422, "validation_error", "params.num_retries")
    assert llm_server.requests == []
