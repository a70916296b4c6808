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

Token figures for fitting a prompt to a model also come from here, without the network:
``model_limits`` reads the model's entry in LiteLLM's model map (the data
``litellm.get_model_info`` returns; its provider lookups over HTTP are never made), and
``count_message_tokens`` / ``count_schema_tokens`` use ``litellm.token_counter`` (tiktoken;
Hugging Face tokenizers are never downloaded). What LiteLLM cannot count is estimated as
one token per 4 characters of the JSON sent (``estimated_tokens``); counting never raises.

LiteLLM is imported lazily, by ``create_gateway()`` inside the app's lifespan, so the
client, the CLI and plain ``import chatmodel_service`` never pay its ~4 s import, and
its cost map is read from the installed package instead of fetched from the internet.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Collection
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from chatmodel_service.config import OpenAITransport
from chatmodel_service.llm import OFFLINE_PROVIDER
from chatmodel_service.llm.key_variables import litellm_key_variables
from chatmodel_service.llm.retries import RetryPlan, Tried
from chatmodel_service.llm.streaming import delta_of
from chatmodel_service.llm.types import (
    LLMCall,
    LLMFailure,
    LLMOutcome,
    LLMResult,
    ModelLimits,
    ModelProblem,
    StreamDelta,
    StreamEvent,
)
from chatmodel_service.redaction import SecretRedactor

logger = logging.getLogger(__name__)

# Modes in LiteLLM's model map for models that cannot answer a chat completion.
NOT_CHAT_MODES = frozenset(
    {
        "audio_speech",
        "audio_transcription",
        "embedding",
        "image_edit",
        "image_generation",
        "moderation",
        "ocr",
        "rerank",
        "search",
        "vector_store",
        "video_generation",
    }
)

# Sent to a version's own api_base (Ollama, vLLM, llama.cpp...) when its provider wants a
# key and the server's environment has none: local servers accept any value.
PLACEHOLDER_API_KEY = "chatmodel-no-key"

LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
SYSTEM_COUNTS_KEPT = 256  # system prompts whose token counts are kept, per process
SYSTEM_COUNT_MAX_CHARS = 16_384  # longer ones are counted every time


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def estimated_tokens(value: Any) -> int:
    """The fallback count: one token per 4 characters of ``value`` as JSON, rounded up."""
    return math.ceil(len(json.dumps(value, ensure_ascii=False, default=str)) / 4)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class LLMGateway:
    """Calls models through LiteLLM. Build it with ``create_gateway()``."""

    def __init__(self, litellm_module: Any) -> None:
        self._litellm = litellm_module
        # Per-model figures that never change while the process runs (the model map is
        # the installed package's): limits per (model, api_base), empty-prompt tokens.
        self._limits: dict[tuple[str, str | None], ModelLimits] = {}
        self._empty_prompt: dict[str, int] = {}
        # Whether the environment has a key for (model, api_base): the environment is
        # read once per process, as the settings are.
        self._keys: dict[tuple[str, str], bool] = {}
        # Models LiteLLM's price table cannot price: asking again would fail again.
        self._unpriced: set[str] = set()
        # Token counts of system prompts by (model, text), least recently used first.
        self._system_counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        # Applied to every failure handed out; key shapes only until an app gives it the
        # secrets it holds (``redacting``).
        self._redactor = SecretRedactor()

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

    def check_model(
        self, model: str, api_base: str | None, params: Collection[str] = ()
    ) -> list[ModelProblem]:
        """What would make every call of this model fail, found without the network.

        The model must be one LiteLLM can route: a name it knows (``gpt-4o-mini``) or
        ``provider/model`` with a provider it knows (``anthropic/...``, ``openai/...`` with
        an ``api_base``). Each name in ``params`` must be a parameter LiteLLM supports for
        that model; when LiteLLM has no list for the provider, every parameter passes.
        The offline model accepts every parameter.
        """
        try:
            bare, provider, _, _ = self._litellm.get_llm_provider(model=model, api_base=api_base)
        except Exception:  # LiteLLM raises BadRequestError("LLM Provider NOT provided")
            return [ModelProblem("model", _unknown_model_detail(model, api_base))]
        if not bare:
            return [ModelProblem("model", f"'{model}' names no model after '{provider}/'.")]
        if provider == OFFLINE_PROVIDER:
            return []
        mode = self._mode(model, bare, provider)
        if mode in NOT_CHAT_MODES:
            return [
                ModelProblem(
                    "model",
                    f"LiteLLM lists '{model}' with mode '{mode}', not 'chat'; a version "
                    "needs a chat model.",
                )
            ]
        supported = self._supported_params(bare, provider)
        if supported is None:
            return []
        return [
            ModelProblem(
                f"params.{name}",
                f"LiteLLM does not support '{name}' for '{model}' (provider {provider}); "
                "remove it from params.",
            )
            for name in params
            if name not in supported
        ]

    def _mode(self, model: str, bare: str, provider: str) -> str | None:
        mode = self._model_entry(model, bare, provider).get("mode")
        return str(mode) if mode else None

    def _model_entry(self, model: str, bare: str, provider: str) -> dict[str, Any]:
        """The model's entry in LiteLLM's model map ({} when it has none)."""
        cost_map: dict[str, dict[str, Any]] = self._litellm.model_cost
        for key in (model, f"{provider}/{bare}", bare):
            info = cost_map.get(key)
            if info and (key == model or info.get("litellm_provider") == provider):
                return info
        return {}

    def model_limits(self, model: str, api_base: str | None) -> ModelLimits:
        """The model's input and output token limits from LiteLLM's model map
        (``max_input_tokens``, ``max_output_tokens``; never ``max_tokens``, which is the
        output limit for some models and the whole window for others). Unknown models
        (the offline model, ``openai/<name>`` on an api_base) get ``ModelLimits()``."""
        key = (model, api_base)
        if key not in self._limits:
            try:
                bare, provider, _, _ = self._litellm.get_llm_provider(
                    model=model, api_base=api_base
                )
                entry = self._model_entry(model, bare, provider)
            except Exception:  # a model LiteLLM cannot route has no known limits
                entry = {}
            self._limits[key] = ModelLimits(
                max_input_tokens=_positive_int(entry.get("max_input_tokens")),
                max_output_tokens=_positive_int(entry.get("max_output_tokens")),
            )
        return self._limits[key]

    def _token_counter(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> int:
        count = self._litellm.token_counter(model=model, messages=messages, tools=tools)
        return int(count)

    def _empty_prompt_tokens(self, model: str) -> int:
        """What LiteLLM counts for a prompt with no messages (the reply's priming)."""
        if model not in self._empty_prompt:
            try:
                self._empty_prompt[model] = self._token_counter(model, [], None)
            except Exception:  # LiteLLM cannot count for this model: no fixed part
                self._empty_prompt[model] = 0
        return self._empty_prompt[model]

    def count_message_tokens(self, model: str, message: dict[str, Any]) -> int:
        """The tokens one OpenAI-format message adds to a prompt for ``model`` (its
        role, content, name and calls). Never raises: what LiteLLM cannot count is
        ``estimated_tokens(message)``. A plain system message's count is kept (a few
        hundred of them, up to 16k characters each): every run counts its version's
        system prompt, which never changes."""
        content = message.get("content")
        key = None
        if message.get("role") == "system" and len(message) == 2 and isinstance(content, str):
            key = (model, content) if len(content) <= SYSTEM_COUNT_MAX_CHARS else None
        if key is not None and key in self._system_counts:
            self._system_counts.move_to_end(key)
            return self._system_counts[key]
        try:
            count = max(
                1, self._token_counter(model, [message], None) - self._empty_prompt_tokens(model)
            )
        except Exception:  # a message or model LiteLLM cannot tokenize: estimate
            count = max(1, estimated_tokens(message))
        if key is not None:
            self._system_counts[key] = count
            if len(self._system_counts) > SYSTEM_COUNTS_KEPT:
                self._system_counts.popitem(last=False)
        return count

    def count_schema_tokens(
        self,
        model: str,
        functions: list[dict[str, Any]] | None,
        tools: list[dict[str, Any]] | None,
    ) -> int:
        """The tokens a call adds besides its messages: the function or tool schemas
        (functions are counted as the tools they are sent as) and the few tokens that
        prime the reply. Never raises (estimated when LiteLLM cannot count)."""
        schemas = list(tools or []) + [{"type": "function", "function": f} for f in functions or []]
        try:
            return self._token_counter(model, [], schemas or None)
        except Exception:  # LiteLLM cannot count for this model: estimate
            return estimated_tokens(schemas) if schemas else 0

    def _supported_params(self, bare: str, provider: str) -> frozenset[str] | None:
        try:
            names = self._litellm.get_supported_openai_params(
                model=bare, custom_llm_provider=provider
            )
        except Exception:  # LiteLLM cannot tell: accept rather than guess
            return None
        return frozenset(names) if names else None

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
        from chatmodel_service.llm.outcomes import (
            api_response_dict,
            classify_exception,
            retry_after_seconds,
        )

        started = time.perf_counter()
        try:
            response = await self._litellm.acompletion(**self._kwargs(call))
        except Exception as exc:  # the gateway's job: every LiteLLM outcome becomes ours
            logger.info("model call failed: %s", type(exc).__name__)
            failure = classify_exception(
                exc,
                model=call.model,
                api_base=call.api_base,
                timeout=call.timeout,
                latency_ms=_elapsed_ms(started),
            )
            return Tried(failure, retry_after_seconds(exc))
        latency = _elapsed_ms(started)
        try:
            api_response = api_response_dict(response)
            return Tried(self._result(call, response, api_response, latency))
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            return Tried(
                LLMFailure(
                    model=call.model,
                    error_type="malformed_response",
                    error_log=f"The provider's response could not be read: {type(exc).__name__}",
                    latency_ms=latency,
                )
            )

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
        from chatmodel_service.llm.outcomes import classify_exception, retry_after_seconds

        started = time.perf_counter()
        kwargs = self._kwargs(call) | {"stream": True, "stream_options": {"include_usage": True}}
        try:
            response = await self._litellm.acompletion(**kwargs)
        except Exception as exc:  # every LiteLLM outcome becomes ours
            failure = classify_exception(
                exc,
                model=call.model,
                api_base=call.api_base,
                timeout=call.timeout,
                latency_ms=_elapsed_ms(started),
            )
            yield Tried(failure, retry_after_seconds(exc))
            return
        chunks: list[Any] = []
        relayed = False  # whether any piece of an answer went to the caller
        try:
            async for chunk in response:
                chunks.append(chunk)
                delta = delta_of(chunk)
                if delta is not None:
                    relayed = True
                    yield delta
        except Exception as exc:  # the body of a 200 failed: keep nothing partial
            failure = classify_exception(
                exc,
                model=call.model,
                api_base=call.api_base,
                timeout=call.timeout,
                latency_ms=_elapsed_ms(started),
                answered=True,
            )
            yield Tried(_stream_failure(failure, relayed))
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

    def _assembled(self, call: LLMCall, chunks: list[Any], latency: int) -> LLMOutcome:
        from chatmodel_service.llm.outcomes import api_response_dict

        try:
            response = self._litellm.stream_chunk_builder(chunks, messages=call.messages)
            return self._result(call, response, api_response_dict(response), latency)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            return LLMFailure(
                model=call.model,
                error_type="malformed_response",
                error_log=f"The streamed reply could not be assembled: {type(exc).__name__}",
                latency_ms=latency,
            )

    def _result(
        self, call: LLMCall, response: Any, api_response: dict[str, Any], latency: int
    ) -> LLMOutcome:
        choice = response.choices[0]
        message = choice.message
        function_call = None
        if getattr(message, "function_call", None):
            function_call = {
                "name": str(message.function_call.name),
                "arguments": str(message.function_call.arguments or ""),
            }
        tool_calls = None
        if getattr(message, "tool_calls", None):
            tool_calls = [
                {
                    "id": str(tc.id),
                    "type": "function",
                    "function": {
                        "name": str(tc.function.name),
                        "arguments": str(tc.function.arguments or ""),
                    },
                }
                for tc in message.tool_calls
            ]
        usage = getattr(response, "usage", None)
        answered = str(getattr(response, "model", None) or call.model)
        if answered == call.model.split("/", 1)[-1]:
            answered = call.model  # keep the provider prefix the version asked for
        bad_json = _first_invalid_arguments(function_call, tool_calls)
        if bad_json is not None:
            return LLMFailure(
                model=answered,
                error_type="malformed_tool_call",
                error_log=(
                    f"The model called '{bad_json[0]}' with arguments that are not valid JSON "
                    f"({bad_json[1]}); nothing was stored, run again"
                ),
                latency_ms=latency,
                api_response=api_response,
            )
        return LLMResult(
            model=answered,
            content=(message.content or None) if (function_call or tool_calls) else message.content,
            function_call=function_call,
            tool_calls=tool_calls,
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost=self._cost(call, response),
            latency_ms=latency,
            api_response=api_response,
        )

    def _cost(self, call: LLMCall, response: Any) -> float | None:
        if call.model.startswith(f"{OFFLINE_PROVIDER}/"):
            return 0.0
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        if cost is None and call.model not in self._unpriced:
            try:
                cost = self._litellm.completion_cost(completion_response=response)
            except Exception:  # LiteLLM raises for models missing from its price table
                if not self._in_price_table(call.model, call.api_base):
                    self._unpriced.add(call.model)
                return None
        return float(cost) if cost is not None else None

    def _in_price_table(self, model: str, api_base: str | None) -> bool:
        try:
            bare, provider, _, _ = self._litellm.get_llm_provider(model=model, api_base=api_base)
        except Exception:  # a model LiteLLM cannot route has no price either
            return False
        return "input_cost_per_token" in self._model_entry(model, bare, provider)


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


def _unknown_model_detail(model: str, api_base: str | None) -> str:
    provider, slash, name = model.partition("/")
    if slash and provider and name:
        return (
            f"LiteLLM does not know the provider '{provider}' in '{model}'; use one it knows "
            f"(openai/, anthropic/, ollama/, ...), or 'openai/{name}' with an api_base for an "
            "OpenAI-compatible server."
        )
    name = model.strip("/") or model
    if api_base:
        return (
            f"LiteLLM cannot tell which provider serves '{model}' at {api_base}; name it, for "
            f"example 'openai/{name}' for an OpenAI-compatible server."
        )
    return (
        f"LiteLLM does not know '{model}'; prefix a provider (for example 'openai/{name}' or "
        f"'anthropic/{name}'), or give 'openai/{name}' with an api_base for an "
        "OpenAI-compatible server."
    )


def _first_invalid_arguments(
    function_call: dict[str, str] | None, tool_calls: list[dict[str, Any]] | None
) -> tuple[str, str] | None:
    calls = [function_call] if function_call else [tc["function"] for tc in tool_calls or []]
    for call in calls:
        try:
            json.loads(call["arguments"] or "{}")
        except json.JSONDecodeError as exc:
            return call["name"], exc.msg
    return None


# LiteLLM reads this on every call to an OpenAI-compatible provider: "true" sends it
# through LiteLLM's own HTTP handler instead of the OpenAI SDK (whose request transform
# walks every message's TypedDict annotations: most of a call's CPU on a long prompt).
OPENAI_TRANSPORT_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"


def create_gateway(openai_transport: OpenAITransport = "litellm") -> LLMGateway:
    """Import LiteLLM with the local cost map and register the offline model.
    ``openai_transport`` (``Settings.litellm_openai_transport``) holds for the process."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ[OPENAI_TRANSPORT_ENV] = "true" if openai_transport == "litellm" else "false"
    import litellm

    from chatmodel_service.llm.offline import OfflineModel

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    # LiteLLM's loggers get a handler of their own at import and log a line per call at
    # INFO: without its handler their records reach the service's handlers once, in the
    # service's format with the request id; below WARNING they are noise (and CPU).
    for name in LITELLM_LOGGERS:
        logger_of_litellm = logging.getLogger(name)
        logger_of_litellm.handlers.clear()
        logger_of_litellm.setLevel(logging.WARNING)
    # Token counts use tiktoken: a run never waits for a tokenizer download.
    litellm.disable_hf_tokenizer_download = True
    if not any(item.get("provider") == OFFLINE_PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map = [
            *litellm.custom_provider_map,
            {"provider": OFFLINE_PROVIDER, "custom_handler": OfflineModel()},
        ]
    return LLMGateway(litellm)
