"""Turn LiteLLM exceptions into an ``LLMFailure`` a person can act on.

LiteLLM's ``str(exc)`` can carry a whole traceback and, for some providers, request
headers; only the provider's own message survives here, first line only, scrubbed of
anything that looks like a credential. The gateway then redacts the server's own secrets
from every failure by value, whatever their shape (``chatmodel_service.redaction``).
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import Mapping
from email.utils import mktime_tz, parsedate_tz

import httpx
import litellm
import openai

from chatmodel_service.llm.types import LLMFailure
from chatmodel_service.redaction import scrub_secrets

_MAX_PROVIDER_TEXT = 600
# LiteLLM's wrapping, never the provider's words: "litellm.RateLimitError: ",
# "RateLimitError: ", "litellm.Timeout: ", "OpenAIException - ", "APITimeoutError - ".
# A plain leading "word: " ("messages: field required") belongs to the provider's message.
_PREFIX = re.compile(
    r"^(?:litellm\.[A-Za-z]+:"
    r"|[A-Za-z]*(?:Error|Exception|Timeout):"
    r"|[A-Za-z]*(?:Error|Exception)\s+-)"
    r"(?:\s+|$)"
)


def _without_prefixes(line: str) -> str:
    while True:
        stripped = _PREFIX.sub("", line, count=1)
        if stripped == line:
            return line.strip()
        line = stripped


def provider_text(exc: BaseException) -> str:
    """The provider's message without traceback, litellm prefixes or secrets."""
    raw = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    raw = raw.split("Traceback (most recent call last)")[0]
    lines = (_without_prefixes(line.strip()) for line in raw.splitlines())
    text = next((line for line in lines if line), type(exc).__name__)
    text = scrub_secrets(text)
    if len(text) > _MAX_PROVIDER_TEXT:
        text = text[:_MAX_PROVIDER_TEXT] + "…"
    return text


def _looks_like_refused_connection(text: str) -> bool:
    lowered = text.lower()
    return any(
        marker in lowered
        for marker in (
            "connection refused",
            "connecterror",
            "connection error",
            "cannot connect",
            "name or service not known",
            "nodename nor servname",
            "all connection attempts failed",
        )
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and all(cause is not seen for seen in chain):
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _invalid_json_cause(exc: BaseException) -> json.JSONDecodeError | None:
    """The JSON error behind ``exc`` when the provider's body could not be parsed.

    LiteLLM reports a 200 with a body that is not JSON as an ``InternalServerError``
    with a made-up HTTP 500; the decode error is still in the exception chain.
    """
    text = str(exc)
    for cause in _chain(exc):
        if isinstance(cause, json.JSONDecodeError) and str(cause) in text:
            return cause
    return None


def _is_unreadable_body(exc: BaseException) -> bool:
    """The OpenAI SDK could not make a completion of a 200's body (one that is not JSON,
    for example plain text): LiteLLM reports that as an HTTP 500 of its own."""
    return "Empty or invalid response from LLM endpoint" in str(exc)


def _cut_off(exc: BaseException) -> BaseException | None:
    """The innermost error of a connection that closed while the answer was being read (a
    body shorter than its Content-Length, a stream without its end). LiteLLM reports it
    as an HTTP 500, the OpenAI SDK as "Connection error."; neither came from the provider."""
    chain = _chain(exc)
    if any(isinstance(c, httpx.ReadError | httpx.RemoteProtocolError) for c in chain):
        return chain[-1]
    return None


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(c, openai.APITimeoutError | TimeoutError) for c in _chain(exc))


def _is_connection_failure(exc: BaseException) -> bool:
    """Nothing answered. LiteLLM reports a refused connection as an HTTP 500."""
    return any(
        isinstance(c, openai.APIConnectionError | ConnectionError | socket.gaierror)
        for c in _chain(exc)
    )


def classify_exception(
    exc: BaseException,
    *,
    model: str,
    api_base: str | None,
    timeout: float,
    latency_ms: int,
    answered: bool = False,
) -> LLMFailure:
    """Map one exception raised by a LiteLLM call to our failure vocabulary.

    The provider's HTTP status wins over LiteLLM's exception class where they disagree:
    LiteLLM turns any error whose body says ``invalid_request_error`` into a
    ``BadRequestError`` whatever the status (a 401 from an OpenAI-compatible server, a
    404 for an unknown OpenAI model). ``answered``: the exception came while a stream's
    body was read, so the provider had answered HTTP 200 and any status on the exception
    is LiteLLM's (an error object in the stream, a dropped connection), never reported.
    """
    text = provider_text(exc)
    raw_status = getattr(exc, "status_code", None)
    status = raw_status if isinstance(raw_status, int) and not answered else None
    where = f" at {api_base}" if api_base else ""
    cut_off = _cut_off(exc)
    error_type: str
    summary: str
    if _is_timeout(exc):
        error_type, summary = "timeout", f"The model did not answer within {timeout:g} s"
    elif _invalid_json_cause(exc) is not None or _is_unreadable_body(exc):
        error_type = "malformed_response"
        summary = f"The provider{where} answered with a body that is not valid JSON"
        status = None  # LiteLLM's 500 is invented: the provider said 200
    elif cut_off is not None:
        error_type = "connection_error"
        summary = f"The provider{where} closed the connection before its answer was complete"
        text = provider_text(cut_off)
        status = None  # LiteLLM's 500 is invented: the provider sent no error
    elif isinstance(exc, litellm.ContextWindowExceededError):
        error_type = "context_window_exceeded"
        summary = "The conversation is longer than the model's context window"
    elif isinstance(exc, litellm.BadRequestError) and "LLM Provider NOT provided" in str(exc):
        error_type = "unknown_model"
        summary = (
            f"LiteLLM cannot tell which provider serves '{model}'; prefix it with a provider "
            "(for example 'openai/' with an api_base)"
        )
    elif isinstance(exc, litellm.RateLimitError) or status == 429:
        error_type = "rate_limited"
        said = "" if answered else " (HTTP 429)"  # a 200 stream's error object said 429
        summary = f"The provider rate-limited the request{said}; retry later or lower the rate"
    elif status in (401, 403) or isinstance(
        exc, litellm.AuthenticationError | litellm.PermissionDeniedError
    ):
        error_type = "authentication_error"
        summary = (
            "The provider rejected the credentials; set the provider's API key in the "
            "server's environment (for example OPENAI_API_KEY)"
        )
    elif isinstance(exc, litellm.NotFoundError) or status == 404:
        error_type, summary = "model_not_found", f"The provider does not know the model '{model}'"
    elif _is_connection_failure(exc) or (status is None and _looks_like_refused_connection(text)):
        error_type = "connection_error"
        summary = f"Could not reach the provider{where}; check that it is running and reachable"
        refused = any(isinstance(c, ConnectionRefusedError) for c in _chain(exc))
        if refused or "refused" in str(exc).lower():
            text = "connection refused"
        status = None  # LiteLLM's 500 is invented: nothing answered
    elif status is not None and status >= 500:
        error_type, summary = "provider_error", f"The provider failed (HTTP {status})"
    elif isinstance(exc, litellm.BadRequestError):
        error_type, summary = "bad_request", "The provider rejected the request as invalid"
    elif isinstance(
        exc, litellm.APIError | litellm.InternalServerError | litellm.ServiceUnavailableError
    ):
        error_type = "provider_error"
        if answered:  # an error object in place of (or amid) the stream's chunks
            summary = f"The provider{where} answered with an error"
        else:
            summary = f"The provider failed (HTTP {status})" if status else "The provider failed"
    else:
        error_type, summary = "provider_error", f"The model call failed ({type(exc).__name__})"
    return LLMFailure(
        model=model,
        error_type=error_type,
        error_log=f"{summary}: {text}",
        latency_ms=latency_ms,
        provider_status=status,
    )


def _header_seconds(headers: Mapping[str, str]) -> float | None:
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return float(lowered["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        date = parsedate_tz(value)  # Retry-After may also be an HTTP date
        return mktime_tz(date) - time.time() if date else None


def retry_after_seconds(exc: BaseException) -> float | None:
    """How long the provider asked us to wait before trying again, if it said.

    LiteLLM keeps the provider's response headers on its exceptions as
    ``litellm_response_headers`` (``exc.response`` is often one it made up); the OpenAI
    SDK's error further down the chain has the real response. ``Retry-After`` may be
    seconds or an HTTP date; OpenAI also sends ``retry-after-ms``.
    """
    for cause in _chain(exc):
        response = getattr(cause, "response", None)
        for headers in (
            getattr(cause, "litellm_response_headers", None),
            getattr(response, "headers", None),
        ):
            if isinstance(headers, Mapping):
                seconds = _header_seconds(headers)
                if seconds is not None:
                    return seconds if 0 < seconds < math.inf else None
    return None
