"""The LLM gateway: the only package that imports LiteLLM (and only lazily).

``gateway.LLMGateway`` is the door (built by ``gateway.create_gateway``; its module
docstring maps the gateway's parts) and ``types`` holds everything that comes out of it.
This module only names the offline model (and the first line of a summary request, which
it answers with a digest), importing nothing, so naming it is free.
"""

OFFLINE_PROVIDER = "chatmodel-offline"
OFFLINE_MODEL = f"{OFFLINE_PROVIDER}/echo"
# The first line of the user message of a request for a session's summary
# (``runs.summaries``); the offline model answers such a request with a digest.
SUMMARY_REQUEST = "[chatmodel summary request]"

__all__ = ["OFFLINE_MODEL", "OFFLINE_PROVIDER", "SUMMARY_REQUEST"]
