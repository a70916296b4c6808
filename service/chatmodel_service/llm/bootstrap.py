"""Importing LiteLLM, set up for this service.

LiteLLM is imported here only, lazily, by ``create_gateway()`` inside the app's
lifespan, so the client, the CLI and plain ``import chatmodel_service`` never pay its
~4 s import. Before the import, ``config.export_litellm_environment`` writes the two
variables LiteLLM reads only from the environment (its cost map is then read from the
installed package instead of fetched from the internet); after it, LiteLLM's telemetry,
debug hints, chatty loggers and tokenizer downloads are switched off and the offline
model is registered as a custom provider.
"""

from __future__ import annotations

import logging
from typing import Any

from chatmodel_service.config import OpenAITransport, export_litellm_environment
from chatmodel_service.llm import OFFLINE_PROVIDER

LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def import_litellm(openai_transport: OpenAITransport) -> Any:
    """The ``litellm`` module, imported with the local cost map and ``openai_transport``
    (both hold for the process), quiet, and serving the offline model."""
    export_litellm_environment(openai_transport)
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
    return litellm
