"""The one door to LiteLLM. Every outcome leaves as an ``LLMResult`` or ``LLMFailure``.

Retries and fallbacks are ours (LiteLLM's and the OpenAI SDK's are switched off), so
each attempt is recorded in the outcome's ``attempts`` and ``model`` names the model that
answered. The rule (``llm.retries``): a rate limit, a 5xx/408/409, a timeout, a refused
or dropped connection or an unreadable (or, streamed, empty) answer is retried on the same
model up to ``num_retries`` times, pausing ``retry_backoff * 2**k`` plus jitter, or longer
if the provider's Retry-After asks (at most 30 s); then the next of ``fallbacks`` is tried
with the same retries. A bad request (400, 422, content policy) fails at once, since every
model would refuse it; any other failure (context window, unknown model, credentials)
moves straight on to the next fallback. A stream is only retried before its first piece
reached the caller, and one that ends without any text or call is a failure
(``malformed_response``), never an empty reply. Each attempt gets the call's full
``timeout``; the outcome's latency is the whole wall time.

This module holds that call loop. ``LLMGateway``'s other methods come from its bases,
each in its own module: ``llm.model_info`` (``check_model``, ``model_limits``),
``llm.tokens`` (``count_message_tokens``, ``count_schema_tokens``) and ``llm.replies`` (a
response read into an outcome, with its cost). A failed attempt is read by
``llm.outcomes``; ``create_gateway()`` imports LiteLLM through ``llm.bootstrap``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from chatmodel_service.config import OpenAITransport
from chatmodel_service.llm.bootstrap import import_litellm
from chatmodel_service.llm.key_variables import litellm_key_variables
from chatmodel_service.llm.model_info import ModelInfo
from chatmodel_service.llm.replies import ReplyReading
from chatmodel_service.llm.retries import RetryPlan, Tried
from chatmodel_service.llm.streaming import delta_of, stream_source
from chatmodel_service.llm.tokens import TokenCounting
from chatmodel_service.llm.types import (
    LLMCall,
    LLMFailure,
    LLMOutcome,
    StreamDelta,
    StreamEvent,
)
from chatmodel_service.redaction import SecretRedactor

logger = logging.getLogger(__name__)

# Sent to a version's own api_base (Ollama, vLLM, llama.cpp...) when its provider wants a
# key and the server's environment has none: local servers accept any value.
PLACEHOLDER_API_KEY = "chatmodel-no-key"


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


class LLMGateway(TokenCounting, ReplyReading, ModelInfo):
    """Calls models through LiteLLM. Build it with ``create_gateway()``."""

    def __init__(self, litellm_module: Any) -> None:
        super().__init__(litellm_module)
        # Whether the environment has a key for (model, api_base): the environment is
        # read once per process, as the settings are.
        self._keys: dict[tuple[str, str], bool] = {}
        # Applied to every failure handed out; key shapes only until an app gives it the
        # secrets it holds (``redacting``).
        self._redactor = SecretRedactor()
        # Read streams past LiteLLM's per-chunk wrapper where it only repeats work
        # (``llm.streaming.stream_source``); False reads every stream through it.
        self.past_wrapper = True

    def key_variables(self) -> frozenset[str]:
        """The environment variables LiteLLM names as holding provider credentials
        (``llm.key_variables``), for ``config.server_secrets``."""
        return litellm_key_variables(self._litellm)

    def redacting(self, redactor: SecretRedactor) -> LLMGateway:
        """This gateway (its caches shared) with ``redactor`` applied to the ``error_log``
        of every failure it reports, before anything returns, stores or logs it."""
        gateway = copy.copy(self)
        gateway._redactor = redactor
        return gateway

    def _redacted(self, outcome: LLMOutcome) -> LLMOutcome:
        if isinstance(outcome, LLMFailure):
            return replace(outcome, error_log=self._redactor.redact(outcome.error_log))
        return outcome

    def _kwargs(self, call: LLMCall) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **call.params,
            "model": call.model,
            "messages": call.messages,
            "timeout": call.timeout,
            # We own the retry policy: no hidden retries in LiteLLM or the OpenAI SDK.
            "num_retries": 0,
            "max_retries": 0,
        }
        optional = {
            "api_base": call.api_base,
            "functions": call.functions,
            "function_call": call.function_call,
            "tools": call.tools,
            "tool_choice": call.tool_choice,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if call.api_base and not self._has_key(call.model, call.api_base):
            kwargs["api_key"] = PLACEHOLDER_API_KEY
        return kwargs

    def _has_key(self, model: str, api_base: str) -> bool:
        key = (model, api_base)
        if key not in self._keys:
            try:
                found = self._litellm.validate_environment(model=model, api_base=api_base)
            except Exception:  # unknown provider: let the call itself report it
                found = {}
            self._keys[key] = bool(found.get("keys_in_environment", True))
        return self._keys[key]

    async def complete(self, call: LLMCall) -> LLMOutcome:
        """One non-streamed call, retried and falling back as ``llm.retries`` says; never
        raises for anything the provider or LiteLLM does."""
        plan = RetryPlan(call)
        while True:
            tried = await self._complete_once(plan.current())
            pause = plan.after(tried)
            if pause is None:
                return self._redacted(plan.finish(tried.outcome))
            await self._pause(pause, tried.outcome)

    async def _complete_once(self, call: LLMCall) -> Tried:
        from chatmodel_service.llm.outcomes import retry_after_seconds

        started = time.perf_counter()
        try:
            response = await self._litellm.acompletion(**self._kwargs(call))
        except Exception as exc:  # the gateway's job: every LiteLLM outcome becomes ours
            logger.info("model call failed: %s", type(exc).__name__)
            return Tried(_failure(exc, call, started), retry_after_seconds(exc))
        return Tried(self._reply(call, response, _elapsed_ms(started)))

    async def stream(self, call: LLMCall) -> AsyncGenerator[StreamEvent]:
        """Stream one call: ``StreamDelta`` pieces, then exactly one ``LLMResult`` or
        ``LLMFailure``. Retries and fallbacks happen only before the first piece; closing
        this generator early closes the upstream response."""
        plan = RetryPlan(call)
        while True:
            tried: Tried | None = None
            sent = False
            async with aclosing(self._stream_once(plan.current())) as events:
                async for event in events:
                    if isinstance(event, Tried):
                        tried = event
                    else:
                        sent = True
                        yield event
            assert tried is not None  # _stream_once always ends with one
            pause = plan.after(tried, replayable=not sent)
            if pause is None:
                yield self._redacted(plan.finish(tried.outcome))
                return
            await self._pause(pause, tried.outcome)

    async def _stream_once(self, call: LLMCall) -> AsyncGenerator[StreamDelta | Tried]:
        """One streamed attempt: its pieces, then how it ended."""
        from chatmodel_service.llm.outcomes import retry_after_seconds

        started = time.perf_counter()
        kwargs = self._kwargs(call) | {"stream": True, "stream_options": {"include_usage": True}}
        try:
            response = await self._litellm.acompletion(**kwargs)
        except Exception as exc:  # every LiteLLM outcome becomes ours
            yield Tried(_failure(exc, call, started), retry_after_seconds(exc))
            return
        chunks: list[Any] = []
        relayed = False  # whether any piece of an answer went to the caller
        try:
            async for chunk in stream_source(response, past_wrapper=self.past_wrapper):
                chunks.append(chunk)
                delta = delta_of(chunk)
                if delta is not None:
                    relayed = True
                    yield delta
        except Exception as exc:  # the body of a 200 failed: keep nothing partial
            yield Tried(_stream_failure(_failure(exc, call, started, answered=True), relayed))
            return
        finally:
            await response.aclose()
        if not relayed:  # LiteLLM makes an empty reply of any 200 body, SSE or not
            yield Tried(_no_answer(call, _elapsed_ms(started)))
            return
        yield Tried(self._assembled(call, chunks, _elapsed_ms(started)))

    async def _pause(self, seconds: float, failed: LLMOutcome) -> None:
        error_type = failed.error_type if isinstance(failed, LLMFailure) else "?"
        logger.info("%s failed (%s); next attempt in %.2f s", failed.model, error_type, seconds)
        if seconds > 0:
            await asyncio.sleep(seconds)


def create_gateway(openai_transport: OpenAITransport = "litellm") -> LLMGateway:
    """Import LiteLLM with the local cost map and register the offline model
    (``llm.bootstrap``). ``openai_transport`` (``Settings.litellm_openai_transport``)
    holds for the process."""
    return LLMGateway(import_litellm(openai_transport))


def _failure(
    exc: BaseException, call: LLMCall, started: float, *, answered: bool = False
) -> LLMFailure:
    """``exc``, raised by LiteLLM during an attempt at ``call`` begun at ``started``, as
    our failure (``llm.outcomes.classify_exception``; ``answered``: while a 200 stream's
    body was read)."""
    # Not imported at the top: llm.outcomes imports litellm, which importing this module
    # must not (llm.bootstrap); by the time a call fails, create_gateway() has.
    from chatmodel_service.llm.outcomes import classify_exception

    return classify_exception(
        exc,
        model=call.model,
        api_base=call.api_base,
        timeout=call.timeout,
        latency_ms=_elapsed_ms(started),
        answered=answered,
    )


def _stream_failure(failure: LLMFailure, relayed: bool) -> LLMFailure:
    """How a stream whose body failed ended. Before any piece of the answer reached the
    caller, that is ``failure`` itself (an error object, an unreadable body), except a
    dropped connection: the stream broke off, as it does after the first piece."""
    if not relayed and failure.error_type != "connection_error":
        return failure
    return replace(
        failure,
        error_type="stream_interrupted",
        error_log=f"The stream broke off before the reply was complete. {failure.error_log}",
    )


def _no_answer(call: LLMCall, latency: int) -> LLMFailure:
    """A stream that ended with no text, function call or tool call: a body that was not
    SSE, SSE without events, or chunks with nothing in them."""
    where = f" at {call.api_base}" if call.api_base else ""
    return LLMFailure(
        model=call.model,
        error_type="malformed_response",
        error_log=f"The provider{where} ended the stream without an answer: no text, function "
        "call or tool call came in it",
        latency_ms=latency,
    )
