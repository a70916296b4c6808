"""Which environment variables LiteLLM reads provider credentials from.

``config.server_secrets`` already treats every variable whose name ends like a secret's
(``_KEY``, ``_TOKEN``, ``_SECRET``, ...) as one: that covers nearly all of them
(``OPENAI_API_KEY``, ``OPENROUTER_KEY``, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``...). What
LiteLLM itself lists is added to that: the upper-case names in its Sentry deny list (its
own list of the provider key and webhook variables to keep out of error reports), and the
few credential variables its code reads whose names end otherwise.
"""

from __future__ import annotations

from typing import Any

# Found by reading LiteLLM's ``get_secret`` / ``os.environ`` calls: credentials whose
# names do not end like a secret's.
CREDENTIALS_NAMED_OTHERWISE = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_BEARER_TOKEN_BEDROCK",
        "CIRCLE_OIDC_TOKEN_V2",
        "HCP_VAULT_APPROLE_SECRET_ID",
    }
)


def litellm_key_variables(litellm_module: Any) -> frozenset[str]:
    """The credential variables LiteLLM names (see module doc)."""
    constants = getattr(litellm_module, "constants", None)
    denylist = getattr(constants, "SENTRY_DENYLIST", None) or ()
    listed = {str(name) for name in denylist if str(name).isupper()}
    return frozenset(listed) | CREDENTIALS_NAMED_OTHERWISE
