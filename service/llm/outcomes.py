"""Turn LiteLLM exceptions into an ``LLMFailure`` a person can act on.

LiteLLM's ``str(exc)`` can carry a whole traceback and, for some providers, request
headers; only the provider's own message survives here, first line only, scrubbed of
anything that looks like a credential.
"""

from __future__ import annotations

import re
from typing import Any

import litellm

from chatmodel_service.llm.types import LLMFailure

_MAX_PROVIDER_TEXT = 600
_SECRETS = (
    re.compile(r"\b(sk|pk|rk|sess)-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_\-.=]{6,}"),
    re.compile(
        r"(?i)(api[_-]?key|x-api-key|authorization|token|secret)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
    ),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),
)
_PREFIX = re.compile(r"^(litellm\.)?[A-Za-z]+(Error|Exception|Timeout)?:\s*")


def scrub_secrets(text: str) -> str:
    """Replace anything that looks like a key or bearer token with ``[redacted]``."""
    text = _SECRETS[0].sub("[redacted]", text)
    text = _SECRETS[1].sub(r"\1 [redacted]", text)
    text = _SECRETS[2].sub(r"\1\2[redacted]", text)
    return _SECRETS[3].sub("[redacted]", text)


def provider_text(exc: BaseException) -> str:
    """The provider's message without traceback, litellm prefixes or secrets."""
    raw = str(getattr(exc, "message", None) or exc or type(exc).__name__)
    raw = raw.split("Traceback (most recent call last)")[0]
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
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


def classify_exception(
    exc: BaseException, *, model: str, api_base: str | None, timeout: float, latency_ms: int
) -> LLMFailure:
    """Map one exception raised by a LiteLLM call to our failure vocabulary."""
    text = provider_text(exc)
    status: int | None = getattr(exc, "status_code", None)
    where = f" at {api_base}" if api_base else ""
    error_type: str
    summary: str
    if isinstance(exc, litellm.Timeout):
        error_type, summary = "timeout", f"The model did not answer within {timeout:g} s"
    elif isinstance(exc, litellm.RateLimitError):
        error_type = "rate_limited"
        summary = "The provider rate-limited the request (HTTP 429); retry later or lower the rate"
    elif isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        error_type = "authentication_error"
        summary = (
            "The provider rejected the credentials; set the provider's API key in the "
            "server's environment (for example OPENAI_API_KEY)"
        )
    elif isinstance(exc, litellm.ContextWindowExceededError):
        error_type = "context_window_exceeded"
        summary = "The conversation is longer than the model's context window"
    elif isinstance(exc, litellm.NotFoundError):
        error_type, summary = "model_not_found", f"The provider does not know the model '{model}'"
    elif isinstance(exc, litellm.BadRequestError) and "LLM Provider NOT provided" in str(exc):
        error_type = "unknown_model"
        summary = (
            f"LiteLLM cannot tell which provider serves '{model}'; prefix it with a provider "
            "(for example 'openai/' with an api_base)"
        )
    elif isinstance(exc, litellm.BadRequestError):
        error_type, summary = "bad_request", "The provider rejected the request as invalid"
    elif isinstance(exc, litellm.APIConnectionError) or _looks_like_refused_connection(text):
        error_type = "connection_error"
        summary = f"Could not reach the provider{where}; check that it is running and reachable"
        if "refused" in str(exc).lower():
            text = "connection refused"
    elif isinstance(
        exc, litellm.APIError | litellm.InternalServerError | litellm.ServiceUnavailableError
    ):
        error_type = "provider_error"
        summary = f"The provider failed (HTTP {status})" if status else "The provider failed"
    else:
        error_type, summary = "provider_error", f"The model call failed ({type(exc).__name__})"
    return LLMFailure(
        model=model,
        error_type=error_type,
        error_log=f"{summary}: {text}",
        latency_ms=latency_ms,
        provider_status=status if isinstance(status, int) else None,
    )


def api_response_dict(response: Any) -> dict[str, Any]:
    """The provider's OpenAI-format response as plain JSON data."""
    dumped = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    return {k: v for k, v in dumped.items() if not k.startswith("_")}
