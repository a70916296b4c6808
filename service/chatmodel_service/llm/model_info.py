"""What LiteLLM knows about a model, read without the network.

``ModelInfo`` holds the LiteLLM module the gateway calls and answers from its model map
(the data ``litellm.get_model_info`` returns; its provider lookups over HTTP are never
made): whether a version's model and parameters can be called at all (``check_model``),
the model's token limits (``model_limits``) and whether LiteLLM can price it. It is the
base of the gateway's other parts (``llm.tokens``, ``llm.replies``), which share the
module through it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from chatmodel_service.llm import OFFLINE_PROVIDER
from chatmodel_service.llm.types import ModelLimits, ModelProblem

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


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class ModelInfo:
    """The LiteLLM module, and what its model map says about each model."""

    def __init__(self, litellm_module: Any) -> None:
        self._litellm = litellm_module
        # Limits per (model, api_base): they never change while the process runs (the
        # model map is the installed package's).
        self._limits: dict[tuple[str, str | None], ModelLimits] = {}

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

    def _supported_params(self, bare: str, provider: str) -> frozenset[str] | None:
        try:
            names = self._litellm.get_supported_openai_params(
                model=bare, custom_llm_provider=provider
            )
        except Exception:  # LiteLLM cannot tell: accept rather than guess
            return None
        return frozenset(names) if names else None

    def _in_price_table(self, model: str, api_base: str | None) -> bool:
        try:
            bare, provider, _, _ = self._litellm.get_llm_provider(model=model, api_base=api_base)
        except Exception:  # a model LiteLLM cannot route has no price either
            return False
        return "input_cost_per_token" in self._model_entry(model, bare, provider)


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
