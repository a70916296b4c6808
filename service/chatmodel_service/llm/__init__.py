"""The LLM gateway: the only package that imports LiteLLM (and only lazily)."""

OFFLINE_PROVIDER = "chatmodel-offline"
OFFLINE_MODEL = f"{OFFLINE_PROVIDER}/echo"

__all__ = ["OFFLINE_MODEL", "OFFLINE_PROVIDER"]
