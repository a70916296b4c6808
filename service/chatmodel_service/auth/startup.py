"""Whether the server needs API keys, decided once from the settings at start."""

from __future__ import annotations

import ipaddress

from chatmodel_service.config import Settings

CREATE_KEY_HINT = "chatmodel keys create --project default --scope admin --name ops"


class AuthRefused(Exception):
    """The settings would expose an unauthenticated server beyond this machine."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_required(settings: Settings) -> bool:
    """``required`` and ``disabled`` say so; ``auto``: required unless bound to loopback."""
    if settings.auth == "auto":
        return not is_loopback(settings.host)
    return settings.auth == "required"


def check_serve_auth(settings: Settings) -> bool:
    """For ``chatmodel serve``: whether keys are required; refuses to run without auth
    on a non-loopback address."""
    if settings.auth == "disabled" and not is_loopback(settings.host):
        raise AuthRefused(
            f"refusing to serve on {settings.host} with CHATMODEL_AUTH=disabled: anyone who "
            "can reach it could read every conversation. Create a key with\n"
            f"    {CREATE_KEY_HINT}\n"
            "and unset CHATMODEL_AUTH (or set it to 'required'), or bind 127.0.0.1."
        )
    return auth_required(settings)
