"""The LLM gateway: the only package that imports LiteLLM (and only lazily).

``gateway.LLMGateway`` is the door (built by ``gateway.create_gateway``; its module
docstring maps the gateway's parts) and ``types`` holds everything that comes out of it.
This module only names the offline model, importing nothing, so naming it is free.
"""

OFFLINE_PROVIDER = "chatmodel-offline"
OFFLINE_MODEL = f"{OFFLINE_PROVIDER}/echo"

__all__ = ["OFFLINE_MODEL", "OFFLINE_PROVIDER"]
