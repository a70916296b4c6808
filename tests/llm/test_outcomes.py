"""Unit tests of how LiteLLM exceptions become a person-readable, secret-free failure."""

from __future__ import annotations

import json

import litellm
import pytest

from chatmodel_service.llm.outcomes import classify_exception, provider_text
from chatmodel_service.redaction import scrub_secrets

API_BASE = "http://127.0.0.1:9/v1"


# -- scrub_secrets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Incorrect API key provided: sk-abcdef1234567890.", "sk-abcdef", "provided: [redacted]."),
        ("key sk-proj-AbC_12-345678xyz used", "AbC_12", "key [redacted] used"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "eyJhbGci", "Bearer [redacted]"),
        ("bearer abc+def/ghijklmnop==", "ghijklmnop", "bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpw", "Basic [redacted]"),
        ("request failed: api_key=abc123def&x=1", "abc123def", "api_key=[redacted]"),
        ('{"api_key": "abc123def", "model": "m"}', "abc123def", '"api_key": "[redacted]"'),
        ("headers={'x-api-key': 'ant-12345678'}", "ant-12345678", "'x-api-key': '[redacted]'"),
        ("access_token=ya29.a0AfH6 expired", "ya29", "access_token=[redacted] expired"),
        ("client_secret: s3cr3t-value", "s3cr3t", "client_secret: [redacted]"),
        ("see ?key=AIzaSyA1234567890abcdefghijklmno", "AIzaSyA123", "?key=[redacted]"),
    ],
)
def test_scrub_secrets_redacts_credentials(text: str, secret: str, kept: str) -> None:
    scrubbed = scrub_secrets(text)

    assert secret not in scrubbed
    assert kept in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=50 is larger than allowed",
        "This model's maximum context length is 4097 tokens",
        "prompt_tokens: 12, completion_tokens: 5",
        "risk-assessment-model is not available",
        "Basic authentication is not supported",
        "Authorization header missing",
        "Rate limit reached for gpt-4o in organization on requests per min",
    ],
)
def test_scrub_secrets_leaves_ordinary_text_alone(text: str) -> None:
    assert scrub_secrets(text) == text


def test_scrub_secrets_is_idempotent() -> None:
    once = scrub_secrets("Authorization: Bearer abcdefghijkl, api_key=sk-1234567890")

    assert scrub_secrets(once) == once
    assert once == "Authorization: Bearer [redacted], api_key=[redacted]"


# -- provider_text ------------------------------------------------------------------------


def test_provider_text_drops_the_traceback() -> None:
    exc = RuntimeError(
        "Connection reset by peer\n"
        "Traceback (most recent call last):\n"
        '  File "/venv/litellm/main.py", line 12, in acompletion\n'
        "    raise e\n"
    )

    assert provider_text(exc) == "Connection reset by peer"


def test_provider_text_of_a_bare_traceback_is_the_exception_type() -> None:
    exc = ValueError('Traceback (most recent call last):\n  File "x.py", line 1\nValueError')

    assert provider_text(exc) == "ValueError"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached",
            "Rate limit reached",
        ),
        ("litellm.Timeout: APITimeoutError - Request timed out.", "Request timed out."),
        ("litellm.BadRequestError: OpenAIException - max_tokens too large", "max_tokens too large"),
        ("litellm.APIError: APIError: OpenAIException - \nupstream said no", "upstream said no"),
        # A leading "word: " is the provider's own text, not a LiteLLM prefix.
        ("messages: field required", "messages: field required"),
        ("Unauthorized: token expired", "Unauthorized: token expired"),
    ],
)
def test_provider_text_removes_litellm_prefixes_only(message: str, expected: str) -> None:
    assert provider_text(Exception(message)) == expected


def test_provider_text_prefers_the_exception_message_attribute() -> None:
    exc = litellm.RateLimitError(
        message="OpenAIException - Slow down", llm_provider="openai", model="gpt-4o"
    )

    assert provider_text(exc) == "Slow down"


def test_provider_text_truncates_long_messages() -> None:
    text = provider_text(Exception("x" * 5000))

    assert len(text) == 601
    assert text.endswith("…")


def test_provider_text_redacts_secrets() -> None:
    exc = Exception(
        "litellm.AuthenticationError: AuthenticationError: OpenAIException - "
        "Incorrect API key provided: sk-abcdef1234567890. Header Authorization: Bearer abcdefghij"
    )

    assert provider_text(exc) == (
        "Incorrect API key provided: [redacted]. Header Authorization: Bearer [redacted]"
    )


def test_provider_text_of_an_empty_message_is_the_exception_type() -> None:
    assert provider_text(KeyError()) == "KeyError"


# -- classify_exception -------------------------------------------------------------------


def classify(exc: BaseException, api_base: str | None = API_BASE) -> tuple[str, str, int | None]:
    failure = classify_exception(
        exc, model="openai/m", api_base=api_base, timeout=2.5, latency_ms=7
    )
    assert failure.model == "openai/m"
    assert failure.latency_ms == 7
    return failure.error_type, failure.error_log, failure.provider_status


def bad_request(status: int, message: str = "OpenAIException - nope") -> litellm.BadRequestError:
    """What LiteLLM raises for any error body typed ``invalid_request_error``."""
    exc = litellm.BadRequestError(message=message, model="m", llm_provider="openai")
    exc.status_code = status
    return exc


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "bad_request"),
        (401, "authentication_error"),
        (403, "authentication_error"),
        (404, "model_not_found"),
        (429, "rate_limited"),
        (500, "provider_error"),
        (503, "provider_error"),
    ],
)
def test_the_provider_status_wins_over_litellms_class(status: int, error_type: str) -> None:
    kind, _, provider_status = classify(bad_request(status))

    assert kind == error_type
    assert provider_status == status


def test_timeout_names_the_limit() -> None:
    exc = litellm.Timeout(message="Request timed out.", model="m", llm_provider="openai")

    kind, log, _ = classify(exc)

    assert kind == "timeout"
    assert log.startswith("The model did not answer within 2.5 s")


def test_refused_connection_reported_as_http_500_is_a_connection_error() -> None:
    # LiteLLM 1.106 raises InternalServerError(500, "Connection error.") for a refused port.
    exc = litellm.InternalServerError(
        message="OpenAIException - Connection error.", llm_provider="openai", model="m"
    )
    exc.__cause__ = ConnectionRefusedError(111, "Connect call failed")

    kind, log, status = classify(exc)

    assert kind == "connection_error"
    assert API_BASE in log
    assert log.endswith("connection refused")
    assert status is None


def test_api_connection_error_is_a_connection_error() -> None:
    exc = litellm.APIConnectionError(
        message="Name or service not known", llm_provider="openai", model="m"
    )

    assert classify(exc, api_base=None)[0] == "connection_error"


def test_body_that_is_not_json_is_a_malformed_response() -> None:
    decode = json.JSONDecodeError("Expecting value", "{oops", 1)
    exc = litellm.InternalServerError(
        message=f"OpenAIException - {decode}", llm_provider="openai", model="m"
    )
    exc.__context__ = decode

    kind, log, status = classify(exc)

    assert kind == "malformed_response"
    assert "not valid JSON" in log
    assert "Expecting value" in log
    assert status is None  # LiteLLM's 500 is invented: the provider answered 200


def test_unrelated_json_error_in_the_chain_does_not_change_the_class() -> None:
    exc = litellm.RateLimitError(message="OpenAIException - slow", llm_provider="openai", model="m")
    exc.__context__ = json.JSONDecodeError("Expecting value", "", 0)

    assert classify(exc)[0] == "rate_limited"


def test_model_without_provider_is_an_unknown_model() -> None:
    exc = litellm.BadRequestError(
        message="LLM Provider NOT provided. Pass in the LLM provider you are trying to call.",
        model="definitely-not-a-model",
        llm_provider="",
    )

    kind, log, _ = classify(exc, api_base=None)

    assert kind == "unknown_model"
    assert "'openai/m'" in log


def test_context_window_is_recognised_before_bad_request() -> None:
    exc = litellm.ContextWindowExceededError(
        message="maximum context length is 8192 tokens", model="m", llm_provider="openai"
    )

    assert classify(exc)[0] == "context_window_exceeded"


def test_anything_else_is_a_provider_error_named_by_type() -> None:
    kind, log, status = classify(RuntimeError("boom"))

    assert kind == "provider_error"
    assert log == "The model call failed (RuntimeError): boom"
    assert status is None


def test_error_log_is_scrubbed_and_has_no_traceback() -> None:
    exc = bad_request(
        401,
        "OpenAIException - Incorrect API key provided: sk-live-0123456789abcdef\n"
        'Traceback (most recent call last):\n  File "openai/_client.py", line 1\n',
    )

    kind, log, _ = classify(exc)

    assert kind == "authentication_error"
    assert "sk-live" not in log
    assert "Traceback" not in log
    assert 'File "' not in log
    assert log.endswith("Incorrect API key provided: [redacted]")
